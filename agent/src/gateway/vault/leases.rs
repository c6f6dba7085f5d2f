//! The leases the workload obtained through a vault gateway: recorded from
//! each answer carrying a `lease_id`, renewed at two thirds of their duration
//! while the agent runs, revoked when the gateway stops.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One recorded lease.
#[derive(Debug)]
struct Lease {
    /// The duration last granted (the increment asked for at renewal).
    duration: Duration,
    /// When to renew it; None when it is not renewable.
    renew_at: Option<Instant>,
}

/// The open leases by id (ids are not secrets; they open nothing).
#[derive(Debug, Default)]
pub struct Leases {
    open: Mutex<HashMap<String, Lease>>,
}

/// The lease fields of a Vault answer, when it carries a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    /// `lease_id`.
    pub id: String,
    /// `lease_duration`.
    pub duration: Duration,
    /// `renewable`.
    pub renewable: bool,
}

/// The lease in a Vault JSON answer (`lease_id` non-empty), if any.
pub fn granted(body: &[u8]) -> Option<Granted> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let id = v.get("lease_id")?.as_str().filter(|s| !s.is_empty())?;
    Some(Granted {
        id: id.to_string(),
        duration: Duration::from_secs(
            v.get("lease_duration")
                .and_then(|d| d.as_u64())
                .unwrap_or(0),
        ),
        renewable: v
            .get("renewable")
            .and_then(|r| r.as_bool())
            .unwrap_or(false),
    })
}

impl Leases {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Lease>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `g` as granted now.
    pub fn record(&self, g: &Granted, now: Instant) {
        self.lock().insert(
            g.id.clone(),
            Lease {
                duration: g.duration,
                renew_at: renew_at(g.renewable, g.duration, now),
            },
        );
    }

    /// The leases to renew now, with the increment to ask for.
    pub fn due(&self, now: Instant) -> Vec<(String, Duration)> {
        self.lock()
            .iter()
            .filter(|(_, l)| l.renew_at.is_some_and(|at| at <= now))
            .map(|(id, l)| (id.clone(), l.duration))
            .collect()
    }

    /// `id` was renewed for `duration` (0: it will not be extended again).
    pub fn renewed(&self, id: &str, duration: Duration, now: Instant) {
        if let Some(l) = self.lock().get_mut(id) {
            l.duration = duration;
            l.renew_at = renew_at(!duration.is_zero(), duration, now);
        }
    }

    /// Stops renewing `id` (it is gone or cannot be renewed); it is still
    /// revoked at stop.
    pub fn stop_renewing(&self, id: &str) {
        if let Some(l) = self.lock().get_mut(id) {
            l.renew_at = None;
        }
    }

    /// Every recorded lease, forgotten here (to revoke them).
    pub fn take_all(&self) -> Vec<String> {
        self.lock().drain().map(|(id, _)| id).collect()
    }

    /// How many are recorded.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Two thirds into the duration, as the agent renews its own leases.
fn renew_at(renewable: bool, duration: Duration, now: Instant) -> Option<Instant> {
    renewable.then(|| now + duration * 2 / 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_with_a_lease_are_recorded_and_renewed_at_two_thirds() {
        assert_eq!(granted(br#"{"lease_id":"","data":{}}"#), None);
        assert_eq!(granted(b"not json"), None);
        let g = granted(
            br#"{"lease_id":"database/creds/app/abc","lease_duration":30,"renewable":true}"#,
        )
        .unwrap();
        assert_eq!(g.duration, Duration::from_secs(30));
        let l = Leases::default();
        let t0 = Instant::now();
        l.record(&g, t0);
        assert!(l.due(t0 + Duration::from_secs(19)).is_empty());
        assert_eq!(l.due(t0 + Duration::from_secs(20)).len(), 1);
        l.renewed(&g.id, Duration::from_secs(3), t0 + Duration::from_secs(20));
        assert_eq!(l.due(t0 + Duration::from_secs(22)).len(), 1);
        l.renewed(&g.id, Duration::ZERO, t0 + Duration::from_secs(22));
        assert!(l.due(t0 + Duration::from_secs(100)).is_empty());
        assert_eq!(l.take_all(), vec![g.id.clone()]);
        assert!(l.is_empty());
    }
}
