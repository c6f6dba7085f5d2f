//! Exponential backoff with jitter, and jittered renewal points.

use std::time::Duration;

use rand::Rng as _;

const BASE: Duration = Duration::from_millis(250);
const MAX: Duration = Duration::from_secs(30);

/// Retry delays: 250 ms doubling up to 30 s, each drawn from [d/2, d] so that
/// many agents restarted together do not hit Vault in step.
#[derive(Debug, Default, Clone)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// The delay before the next retry.
    pub fn next_delay(&mut self) -> Duration {
        let exp = BASE.saturating_mul(1u32 << self.attempt.min(16)).min(MAX);
        self.attempt = self.attempt.saturating_add(1);
        exp.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
    }

    /// After a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// When to act on a lease of `ttl`: `threshold` of it, less up to 10% jitter.
pub fn renew_after(ttl: Duration, threshold: f64) -> Duration {
    ttl.mul_f64(threshold * rand::thread_rng().gen_range(0.9..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_caps() {
        let mut b = Backoff::default();
        let first = b.next_delay();
        assert!(first >= BASE / 2 && first <= BASE);
        for _ in 0..20 {
            assert!(b.next_delay() <= MAX);
        }
        b.reset();
        assert!(b.next_delay() <= BASE);
        let r = renew_after(Duration::from_secs(30), 0.66);
        assert!(r <= Duration::from_secs_f64(19.8) && r >= Duration::from_secs_f64(17.8));
    }
}
