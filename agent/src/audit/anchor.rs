//! Anchoring the chain: with `[audit] sign_key` the chain's head is signed with
//! a transit key (every `sign_every` records, every `sign_interval`, and at
//! exit) and the signature is written into the chain as a `chain_signature`
//! record. A signature covers the first `records` records through `head`, the
//! hash of the last of them; `final` marks the one written at exit. Whoever can
//! rewrite the file cannot make new signatures, so a rewritten chain, or one cut
//! short after its last signature, is reported by `shroud audit verify --config`.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::sink::Audit;

/// A signature as written into the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHead {
    /// The key, `MOUNT/NAME`.
    pub key: String,
    /// The key version that signed.
    pub key_version: u64,
    /// `vault:vN:…`.
    pub signature: String,
}

/// Signs chain heads; [`crate::signing::HeadSession`] does it with transit.
pub trait HeadSigner: Send {
    /// Signs `message` ([`head_message`]).
    fn sign(&mut self, message: &[u8]) -> Result<SignedHead, String>;
    /// Ends the signer's session (revokes its token).
    fn close(&mut self);
}

/// What a chain signature covers: the record count, the head hash after them,
/// and whether it is the final signature of a run.
pub fn head_message(records: u64, head: &str, is_final: bool) -> Vec<u8> {
    let kind = if is_final { "final" } else { "periodic" };
    format!("shroud-audit-head-v1\n{records}\n{head}\n{kind}").into_bytes()
}

/// The signing state of an [`Audit`].
pub(crate) struct Anchor {
    pub(crate) signer: Box<dyn HeadSigner>,
    pub(crate) every: u64,
}

/// Stops the interval thread when dropped or told to.
#[derive(Debug)]
pub(crate) struct Ticker {
    stop: mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    /// Signs `audit`'s unsigned records every `interval`.
    pub(crate) fn start(audit: &Arc<Audit>, interval: Duration) -> Ticker {
        let (stop, stopped) = mpsc::channel::<()>();
        let weak = Arc::downgrade(audit);
        let thread = std::thread::Builder::new()
            .name("shroud-audit-sign".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    match weak.upgrade() {
                        Some(audit) => audit.sign_if_unsigned(),
                        None => return,
                    }
                }
            })
            .expect("spawning the audit signing thread");
        Ticker {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the thread and waits for it.
    pub(crate) fn stop(&mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Shared slot for the anchor: `try_lock` from the record path (a signer's own
/// login event must not wait on itself), `lock` at exit.
pub(crate) type AnchorSlot = Mutex<Option<Anchor>>;
