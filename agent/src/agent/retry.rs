//! The one retry loop for calls that must get through before a deadline
//! (first login and fetches, revocation): retry transient failures with the
//! schedule's backoff, never sleeping past the deadline. The caller is blocked
//! on the call (nothing published yet, or a shutdown waiting), so the delays
//! stop doubling at the urgent cap, [`BACKOFF_URGENT_MAX`].

use std::time::{Duration, Instant};

use super::schedule::{Backoff, RandomJitter, BACKOFF_URGENT_MAX};
use crate::vault::auth::AuthError;
use crate::vault::VaultError;

/// An error that may pass if the call is retried later.
pub trait Transient {
    /// True when retrying later may help.
    fn is_transient(&self) -> bool;
}

impl Transient for VaultError {
    fn is_transient(&self) -> bool {
        VaultError::is_transient(self)
    }
}

impl Transient for AuthError {
    fn is_transient(&self) -> bool {
        AuthError::is_transient(self)
    }
}

/// Calls `attempt` until it succeeds, fails for good, or fails transiently at
/// or after `deadline`; returns that last failure (never one made only of
/// the deadline having passed). Before each retry
/// `on_retry` learns the error and the delay (for logging).
pub fn retry<T, E: Transient>(
    deadline: Instant,
    mut attempt: impl FnMut() -> Result<T, E>,
    mut on_retry: impl FnMut(&E, Duration),
) -> Result<T, E> {
    let mut backoff = Backoff::default();
    loop {
        match attempt() {
            Err(e) if e.is_transient() && Instant::now() < deadline => {
                let left = deadline.saturating_duration_since(Instant::now());
                let d = backoff
                    .next_delay(BACKOFF_URGENT_MAX, &mut RandomJitter)
                    .min(left)
                    .max(Duration::from_millis(1));
                on_retry(&e, d);
                std::thread::sleep(d);
                // Slept to the deadline: another attempt could only fail for
                // that reason, which would hide why this one failed.
                if Instant::now() >= deadline {
                    return Err(e);
                }
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Fail(bool);
    impl Transient for Fail {
        fn is_transient(&self) -> bool {
            self.0
        }
    }

    #[test]
    fn retries_transient_failures_until_success() {
        let mut calls = 0;
        let mut retries = Vec::new();
        let r = retry(
            Instant::now() + Duration::from_secs(10),
            || {
                calls += 1;
                if calls < 3 {
                    Err(Fail(true))
                } else {
                    Ok(calls)
                }
            },
            |_, d| retries.push(d),
        );
        assert_eq!(r, Ok(3));
        assert_eq!(retries.len(), 2);
        assert!(retries[1] >= retries[0] / 2 && retries[1] <= Duration::from_millis(500));
    }

    #[test]
    fn a_permanent_failure_is_not_retried() {
        let mut calls = 0;
        let r: Result<(), _> = retry(
            Instant::now() + Duration::from_secs(10),
            || {
                calls += 1;
                Err(Fail(false))
            },
            |_, _| panic!("no retry"),
        );
        assert_eq!((r, calls), (Err(Fail(false)), 1));
    }

    #[test]
    fn gives_up_at_the_deadline_without_sleeping_past_it() {
        let start = Instant::now();
        let deadline = start + Duration::from_millis(300);
        let mut calls = 0;
        let r: Result<(), _> = retry(
            deadline,
            || {
                calls += 1;
                Err(Fail(true))
            },
            |_, d| assert!(d <= Duration::from_millis(300)),
        );
        assert_eq!(r, Err(Fail(true)));
        assert!(calls >= 2, "{calls}");
        let end = Instant::now();
        assert!(end >= deadline);
        // One backoff (<= 250 ms at the start) past the deadline at most.
        assert!(
            end < deadline + Duration::from_millis(250),
            "{:?}",
            end - deadline
        );
    }
}
