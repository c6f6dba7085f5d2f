//! One signing identity: a Vault client logged in on first use, kept for the
//! session, and revoked at [`Session::close`] (or drop).

use crate::agent::snapshot::{revoke, SnapshotError};
use crate::config::{AuthMethod, Config};
use crate::vault::auth::{self, AuthError};
use crate::vault::transit::{self, Signature, TransitKey};
use crate::vault::{VaultClient, VaultError};

/// Why signing or verifying failed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The `[vault]` settings (TLS) are unusable.
    #[error(transparent)]
    Client(VaultError),
    /// Login failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Transit refused or failed the request.
    #[error("transit key {key}: {source}")]
    Transit {
        /// The key.
        key: String,
        /// The error.
        source: VaultError,
    },
    /// The session's token could not be revoked.
    #[error("could not revoke the signing session's Vault token: {0}")]
    Revoke(String),
}

impl SignError {
    /// True for errors caused by the configuration or its credential files.
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            SignError::Client(_)
                | SignError::Auth(AuthError::Credential { .. } | AuthError::Empty { .. })
        )
    }
}

/// A transit key used through a logged-in client.
pub struct Session {
    cfg: Config,
    client: VaultClient,
    logged_in: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("logged_in", &self.logged_in)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session with `cfg`'s `[vault]` and `[auth]`; nothing is sent yet.
    pub fn new(cfg: &Config) -> Result<Session, SignError> {
        Ok(Session {
            client: VaultClient::new(&cfg.vault).map_err(SignError::Client)?,
            cfg: cfg.clone(),
            logged_in: false,
        })
    }

    /// Signs `message` with `key`.
    pub fn sign(&mut self, key: &TransitKey, message: &[u8]) -> Result<Signature, SignError> {
        self.call(key, |c| transit::sign(c, key, message))
    }

    /// Whether `signature` is `key`'s signature of `message`.
    pub fn verify(
        &mut self,
        key: &TransitKey,
        message: &[u8],
        signature: &str,
    ) -> Result<bool, SignError> {
        self.call(key, |c| transit::verify(c, key, message, signature))
    }

    /// Logs in if needed and calls `f`; a token that expired in a long session
    /// (403) is replaced by a new login once.
    fn call<T>(
        &mut self,
        key: &TransitKey,
        f: impl Fn(&VaultClient) -> Result<T, VaultError>,
    ) -> Result<T, SignError> {
        let fresh = !self.logged_in;
        if fresh {
            auth::login(&self.cfg.auth, &mut self.client)?;
            self.logged_in = true;
        }
        match f(&self.client) {
            Err(VaultError::Denied { .. }) if !fresh => {
                auth::login(&self.cfg.auth, &mut self.client)?;
                f(&self.client)
            }
            other => other,
        }
        .map_err(|source| SignError::Transit {
            key: key.to_string(),
            source,
        })
    }

    /// Revokes the session's token (unless it was the operator's, `method =
    /// "token"`), retrying transient failures for `[lifecycle] revoke_timeout`.
    pub fn close(&mut self) -> Result<(), SignError> {
        if !std::mem::take(&mut self.logged_in) {
            return Ok(());
        }
        let result = if self.cfg.auth.method == AuthMethod::Token {
            Ok(())
        } else {
            revoke(&self.cfg, &self.client, &[]).map_err(|e| match e {
                SnapshotError::Revoke { source, .. } => SignError::Revoke(source.to_string()),
                other => SignError::Revoke(other.to_string()),
            })
        };
        self.client.set_token(None);
        result
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::warn!(error = %e, "signing session");
        }
    }
}
