//! The readiness state behind `/readyz`, set by the agent as it goes.

use std::sync::atomic::{AtomicBool, Ordering};

/// Flags the agent flips; `/readyz` answers 200 only when all are true.
#[derive(Debug, Default)]
pub struct Health {
    rendered: AtomicBool,
    token_valid: AtomicBool,
    /// The last publication failed: the workload's files are stale.
    publish_failed: AtomicBool,
}

impl Health {
    /// The first complete render is done (every secret written once).
    pub fn set_rendered(&self, done: bool) {
        self.rendered.store(done, Ordering::Release);
    }

    /// The Vault token is valid (set after login and each successful renewal;
    /// cleared when a renewal fails for good or the token is revoked).
    pub fn set_token_valid(&self, valid: bool) {
        self.token_valid.store(valid, Ordering::Release);
    }

    /// Whether the last publication failed (set on failure, cleared by the
    /// next one that works).
    pub fn set_publish_failed(&self, failed: bool) {
        self.publish_failed.store(failed, Ordering::Release);
    }

    /// True when the first render is done, the token is valid and the last
    /// publication worked.
    pub fn is_ready(&self) -> bool {
        self.not_ready_reason().is_none()
    }

    /// Why the agent is not ready, for the `/readyz` body; None when it is.
    pub fn not_ready_reason(&self) -> Option<&'static str> {
        match (
            self.rendered.load(Ordering::Acquire),
            self.token_valid.load(Ordering::Acquire),
            self.publish_failed.load(Ordering::Acquire),
        ) {
            (true, true, false) => None,
            (false, _, _) => Some("secrets not rendered yet"),
            (true, false, _) => Some("vault token not valid"),
            (true, true, true) => Some("the last publication failed; the files are stale"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_needs_both_flags() {
        let h = Health::default();
        assert!(!h.is_ready());
        h.set_token_valid(true);
        assert_eq!(h.not_ready_reason(), Some("secrets not rendered yet"));
        h.set_rendered(true);
        assert!(h.is_ready());
        h.set_publish_failed(true);
        assert!(!h.is_ready());
        h.set_publish_failed(false);
        h.set_token_valid(false);
        assert_eq!(h.not_ready_reason(), Some("vault token not valid"));
    }
}
