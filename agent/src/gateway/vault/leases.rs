//! The leases the workload obtained through a vault gateway: recorded from
//! each answer carrying a `lease_id`, renewed at two thirds of their duration
//! while the agent runs, revoked when the gateway stops. With `[state]` each
//! change is written to the state directory before the answer reaches the
//! workload, so that a restarted agent adopts them (`agent::state::gateway`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{error, info};

use crate::agent::state::{GatewayLeaseFile, SavedGatewayLease};
use crate::events::{self, Event};

/// One recorded lease.
#[derive(Debug)]
struct Lease {
    /// The API path of the request that created it.
    path: String,
    /// The duration first granted: the increment asked for at renewal.
    first_ttl: Duration,
    /// Whether Vault said it can be renewed.
    renewable: bool,
    /// When to renew it; None when it is not renewable (or no longer is).
    renew_at: Option<Instant>,
}

/// The open leases of one gateway by id (ids are not secrets; they open
/// nothing), and where they are kept for a successor.
#[derive(Debug, Default)]
pub struct Leases {
    gateway: String,
    open: Mutex<HashMap<String, Lease>>,
    file: Option<Arc<GatewayLeaseFile>>,
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

/// A predecessor's lease the engine found alive at a restart.
#[derive(Debug, Clone)]
pub struct Adopted {
    /// As it was saved.
    pub saved: SavedGatewayLease,
    /// What is left of it.
    pub ttl: Duration,
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
    /// The leases of gateway `gateway`, written to `file` when there is one.
    pub fn new(gateway: &str, file: Option<Arc<GatewayLeaseFile>>) -> Leases {
        Leases {
            gateway: gateway.to_string(),
            open: Mutex::default(),
            file,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Lease>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `open` to the state (under its lock, so writes follow changes
    /// in order). A failure is logged: the lease then ends with the agent's
    /// token if the agent is killed.
    fn persist(&self, open: &HashMap<String, Lease>) {
        let Some(file) = &self.file else {
            return;
        };
        let saved = open
            .iter()
            .map(|(id, l)| SavedGatewayLease {
                gateway: self.gateway.clone(),
                path: l.path.clone(),
                id: id.clone(),
                first_ttl: l.first_ttl.as_secs(),
                renewable: l.renewable,
            })
            .collect();
        if let Err(e) = file.put(&self.gateway, saved) {
            error!(gateway = %self.gateway, error = %e, "cannot save the gateway's leases; a restarted agent would not renew them");
        }
    }

    /// Records `g`, obtained through `path`, as granted now. A lease already
    /// recorded (the workload renewed it through `sys/leases/renew`) keeps
    /// its path and increment; only its renewal moves.
    pub fn record(&self, g: &Granted, path: &str, now: Instant) {
        let mut open = self.lock();
        if let Some(l) = open.get_mut(&g.id) {
            l.renew_at = renew_at(l.renewable && g.renewable, g.duration, now);
            return;
        }
        open.insert(
            g.id.clone(),
            Lease {
                path: path.to_string(),
                first_ttl: g.duration,
                renewable: g.renewable,
                renew_at: renew_at(g.renewable, g.duration, now),
            },
        );
        self.persist(&open);
        drop(open);
        info!(gateway = %self.gateway, path = %path, lease = %g.id, renewable = g.renewable, ttl = g.duration.as_secs(), "recorded a lease obtained through the gateway");
        events::emit(Event::GatewayLease {
            gateway: &self.gateway,
            path,
            lease_id: &g.id,
        });
    }

    /// Takes over a predecessor's leases (found alive by the engine).
    pub fn adopt(&self, adopted: Vec<Adopted>, now: Instant) {
        if adopted.is_empty() {
            return;
        }
        let mut open = self.lock();
        for a in adopted {
            info!(gateway = %self.gateway, path = %a.saved.path, lease = %a.saved.id, ttl = a.ttl.as_secs(), "adopted a lease the previous agent obtained through the gateway");
            open.insert(
                a.saved.id,
                Lease {
                    path: a.saved.path,
                    first_ttl: Duration::from_secs(a.saved.first_ttl),
                    renewable: a.saved.renewable,
                    renew_at: renew_at(a.saved.renewable, a.ttl, now),
                },
            );
        }
        self.persist(&open);
    }

    /// The leases to renew now (id, the path it was obtained through), with
    /// the increment to ask for.
    pub fn due(&self, now: Instant) -> Vec<(String, String, Duration)> {
        self.lock()
            .iter()
            .filter(|(_, l)| l.renew_at.is_some_and(|at| at <= now))
            .map(|(id, l)| (id.clone(), l.path.clone(), l.first_ttl))
            .collect()
    }

    /// `id` was renewed for `duration` (0: it will not be extended again).
    pub fn renewed(&self, id: &str, duration: Duration, now: Instant) {
        if let Some(l) = self.lock().get_mut(id) {
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

    /// Every recorded lease (id, path), forgotten here (to revoke them); the
    /// state keeps them until [`Leases::save`].
    pub fn take_all(&self) -> Vec<(String, String)> {
        self.lock().drain().map(|(id, l)| (id, l.path)).collect()
    }

    /// Writes what is recorded now to the state (after a revocation).
    pub fn save(&self) {
        let open = self.lock();
        self.persist(&open);
    }

    /// The gateway's name.
    pub fn gateway(&self) -> &str {
        &self.gateway
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
        l.record(&g, "database/creds/app", t0);
        assert!(l.due(t0 + Duration::from_secs(19)).is_empty());
        // The increment asked for is the first duration.
        assert_eq!(
            l.due(t0 + Duration::from_secs(20)),
            vec![(
                g.id.clone(),
                "database/creds/app".to_string(),
                Duration::from_secs(30)
            )]
        );
        l.renewed(&g.id, Duration::from_secs(3), t0 + Duration::from_secs(20));
        assert_eq!(l.due(t0 + Duration::from_secs(22)).len(), 1);
        l.renewed(&g.id, Duration::ZERO, t0 + Duration::from_secs(22));
        assert!(l.due(t0 + Duration::from_secs(100)).is_empty());
        assert_eq!(
            l.take_all(),
            vec![(g.id.clone(), "database/creds/app".to_string())]
        );
        assert!(l.is_empty());
    }

    #[test]
    fn a_lease_that_is_not_renewable_is_never_due() {
        let g = granted(br#"{"lease_id":"pki/issue/web/x","lease_duration":30,"renewable":false}"#)
            .unwrap();
        let l = Leases::default();
        let t0 = Instant::now();
        l.record(&g, "pki/issue/web", t0);
        assert!(l.due(t0 + Duration::from_secs(3600)).is_empty());
    }

    #[test]
    fn leases_are_saved_as_they_change_and_adopted_with_what_is_left() {
        let d = tempfile::tempdir().unwrap();
        let cfg = crate::config::StateConfig {
            dir: d.path().join("state"),
            require_tmpfs: false,
        };
        let st = crate::agent::state::StateDir::open(&cfg, "http://v").unwrap();
        let file = Arc::new(st.gateway_leases());
        let l = Leases::new("vault", Some(file.clone()));
        let t0 = Instant::now();
        let g = Granted {
            id: "database/creds/app/one".into(),
            duration: Duration::from_secs(30),
            renewable: true,
        };
        l.record(&g, "database/creds/app", t0);
        let saved =
            std::fs::read_to_string(st.dir().join(crate::agent::state::GATEWAY_FILE)).unwrap();
        assert!(saved.contains("database/creds/app/one"), "{saved}");
        // A successor adopts it with 9 s left: renewed at 6 s, asking for 30.
        let next = Leases::new("vault", Some(file));
        let saved_lease = SavedGatewayLease {
            gateway: "vault".into(),
            path: "database/creds/app".into(),
            id: g.id.clone(),
            first_ttl: 30,
            renewable: true,
        };
        next.adopt(
            vec![Adopted {
                saved: saved_lease,
                ttl: Duration::from_secs(9),
            }],
            t0,
        );
        assert!(next.due(t0 + Duration::from_secs(5)).is_empty());
        assert_eq!(
            next.due(t0 + Duration::from_secs(6)),
            vec![(
                g.id.clone(),
                "database/creds/app".to_string(),
                Duration::from_secs(30)
            )]
        );
        next.take_all();
        next.save();
        let saved =
            std::fs::read_to_string(st.dir().join(crate::agent::state::GATEWAY_FILE)).unwrap();
        assert!(!saved.contains("database/creds/app/one"), "{saved}");
    }
}
