//! Leases replaced by a rotation and kept alive for `[lifecycle] retire_grace`
//! (deadlines from the pure `schedule`): revoked when the grace ends, saved in
//! `[state]` so a restarted agent still revokes them on time, revoked at once
//! at shutdown. [`Engine::retiring`] shows them to whoever needs to know which
//! credentials are on their way out (gateways draining connections).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing::info;

use super::Engine;
use crate::agent::state::SavedRetiring;
use crate::events::RevokeReason;

/// A credential replaced by a rotation, still valid in Vault until `revoke_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetiringCredential<'a> {
    /// The `[[secret]]` name.
    pub secret: &'a str,
    /// The retired lease's id.
    pub lease_id: &'a str,
    /// When it is revoked (the end of the grace, or of the lease if sooner).
    pub revoke_at: Instant,
}

/// `at` on the wall clock, Unix milliseconds (for the state file).
fn unix_ms_of(at: Instant) -> u64 {
    let now = Instant::now();
    let wall = if at >= now {
        SystemTime::now() + (at - now)
    } else {
        SystemTime::now()
            .checked_sub(now - at)
            .unwrap_or(UNIX_EPOCH)
    };
    wall.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// No saved grace is longer than `[lifecycle] retire_grace` may be: a later
/// deadline in the file (a clock step, an edit) is cut to this.
const LONGEST: Duration = Duration::from_secs(3600);

/// The instant of Unix milliseconds `ms` (now when it has passed, at most
/// [`LONGEST`] away).
fn instant_of(ms: u64) -> Instant {
    let wall = UNIX_EPOCH + Duration::from_millis(ms);
    let left = wall
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO)
        .min(LONGEST);
    Instant::now() + left
}

impl Engine {
    /// The credentials replaced by a rotation and still in their retire
    /// grace, oldest first. A gateway keeps connections opened with one of
    /// them until its `revoke_at`, and opens new ones only with the current
    /// credential.
    pub fn retiring(&self) -> Vec<RetiringCredential<'_>> {
        self.schedule
            .retiring()
            .iter()
            .map(|r| RetiringCredential {
                secret: &self.secrets[r.secret].spec.name,
                lease_id: &r.lease_id,
                revoke_at: r.revoke_at,
            })
            .collect()
    }

    /// Revokes the retiring leases whose grace is over.
    pub(super) fn revoke_retired(&mut self) {
        let due = self.schedule.retired_due(Instant::now());
        if due.is_empty() {
            return;
        }
        for r in &due {
            let name = &self.secrets[r.secret].spec.name;
            info!(secret = %name, "the replaced lease's grace is over; revoking it");
            // Its gateway connections close first, never before the grace ends.
            if let Some(board) = &self.credentials {
                let n = board.retire(&r.lease_id);
                if n > 0 {
                    info!(secret = %name, connections = n, "closing the gateway connections of the retired lease");
                }
            }
            // One quick attempt per lease: a failure is logged and audited,
            // and shutdown does not retry leases it no longer holds.
            let deadline = Instant::now() + self.cfg.lifecycle.revoke_timeout;
            self.revoke_lease(r.secret, &r.lease_id, RevokeReason::Retired, deadline);
        }
        self.save_state();
    }

    /// The retiring leases as saved in `[state]`.
    pub(super) fn saved_retiring(&self) -> Vec<SavedRetiring> {
        self.schedule
            .retiring()
            .iter()
            .map(|r| SavedRetiring {
                secret: self.secrets[r.secret].spec.name.clone(),
                id: r.lease_id.clone(),
                revoke_at_ms: unix_ms_of(r.revoke_at),
            })
            .collect()
    }

    /// Takes over the predecessor's retiring leases (its token is now ours):
    /// each is revoked at its saved deadline, at once when that has passed or
    /// its secret is no longer configured.
    pub(super) fn restore_retiring(&mut self, saved: &[SavedRetiring]) {
        for r in saved {
            match self.secrets.iter().position(|s| s.spec.name == r.secret) {
                Some(i) => {
                    self.schedule
                        .retire_at(i, r.id.clone(), instant_of(r.revoke_at_ms));
                }
                None => self.revoke_stale(&r.id, RevokeReason::Retired),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_survive_the_trip_through_the_wall_clock() {
        let at = Instant::now() + Duration::from_secs(20);
        let back = instant_of(unix_ms_of(at));
        let diff = if back > at { back - at } else { at - back };
        assert!(diff < Duration::from_millis(50), "{diff:?}");
        // A deadline that has passed comes back as now.
        let past = unix_ms_of(Instant::now()) - 5_000;
        assert!(instant_of(past) <= Instant::now());
        assert!(instant_of(u64::MAX) <= Instant::now() + LONGEST);
    }
}
