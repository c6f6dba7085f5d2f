//! The audit trail's [`HeadSigner`]: a [`Session`] and the `[audit] sign_key`.

use super::Session;
use crate::audit::{HeadSigner, SignedHead};
use crate::config::Config;
use crate::vault::transit::TransitKey;

/// Signs audit chain heads with a transit key through its own login, which is
/// separate from the agent's (so the final signature can be made after the
/// agent's token is revoked) and revoked by [`HeadSigner::close`].
#[derive(Debug)]
pub struct HeadSession {
    session: Session,
    key: TransitKey,
}

impl HeadSession {
    /// A signer for `key` with `cfg`'s Vault and login.
    pub fn new(cfg: &Config, key: TransitKey) -> Result<HeadSession, super::SignError> {
        Ok(HeadSession {
            session: Session::new(cfg)?,
            key,
        })
    }
}

impl HeadSigner for HeadSession {
    fn sign(&mut self, message: &[u8]) -> Result<SignedHead, String> {
        let s = self
            .session
            .sign(&self.key, message)
            .map_err(|e| e.to_string())?;
        Ok(SignedHead {
            key: self.key.to_string(),
            key_version: s.key_version,
            signature: s.signature,
        })
    }

    fn close(&mut self) {
        if let Err(e) = self.session.close() {
            tracing::warn!(error = %e, "audit signing session");
        }
    }
}
