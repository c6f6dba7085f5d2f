//! Connections by the lease of the credential they logged in with, so that
//! the end of a retired lease's grace closes exactly those (docs/gateway.md,
//! "Rotation"). Closing is a request: the upstream side's writing half is
//! shut, the server ends the session after what it is sending, and the relay
//! then tells the client why at a message boundary.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::stream::Stream;

/// The open upstream connections of every gateway, by lease id.
#[derive(Debug, Default)]
pub struct Leases {
    open: Mutex<HashMap<u64, Entry>>,
    next: AtomicU64,
}

#[derive(Debug)]
struct Entry {
    lease_id: String,
    upstream: Stream,
    retired: Arc<AtomicBool>,
}

/// One connection's registration; removed when dropped.
#[derive(Debug)]
pub struct Tracked {
    leases: Arc<Leases>,
    id: u64,
    retired: Arc<AtomicBool>,
}

impl Tracked {
    /// Whether its lease's grace ended (the relay then closes the client
    /// with 57P01 instead of silently).
    pub fn retired(&self) -> &Arc<AtomicBool> {
        &self.retired
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.leases.lock().remove(&self.id);
    }
}

impl Leases {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tracks `upstream`, logged in with lease `lease_id`. None when the
    /// stream cannot be duplicated (the caller then does not track it).
    pub fn track(self: &Arc<Self>, lease_id: &str, upstream: &Stream) -> Option<Tracked> {
        let upstream = upstream.try_clone().ok()?;
        let retired = Arc::new(AtomicBool::new(false));
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(
            id,
            Entry {
                lease_id: lease_id.to_string(),
                upstream,
                retired: retired.clone(),
            },
        );
        Some(Tracked {
            leases: self.clone(),
            id,
            retired,
        })
    }

    /// Lease `lease_id` is about to be revoked: every connection that logged
    /// in with it is asked to close. Returns how many.
    pub fn retire(&self, lease_id: &str) -> usize {
        let open = self.lock();
        let mut n = 0;
        for e in open.values().filter(|e| e.lease_id == lease_id) {
            e.retired.store(true, Ordering::SeqCst);
            e.upstream.shutdown_write();
            n += 1;
        }
        n
    }

    /// How many connections are open on lease `lease_id`.
    pub fn open_on(&self, lease_id: &str) -> usize {
        self.lock()
            .values()
            .filter(|e| e.lease_id == lease_id)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    #[test]
    fn retiring_a_lease_closes_only_its_connections() {
        let leases = Arc::new(Leases::default());
        let (a, mut a_peer) = UnixStream::pair().unwrap();
        let (b, b_peer) = UnixStream::pair().unwrap();
        let (a, b) = (Stream::Unix(a), Stream::Unix(b));
        let ta = leases.track("lease-1", &a).unwrap();
        let tb = leases.track("lease-2", &b).unwrap();
        assert_eq!(leases.open_on("lease-1"), 1);
        assert_eq!(leases.retire("lease-1"), 1);
        assert!(ta.retired().load(Ordering::SeqCst));
        assert!(!tb.retired().load(Ordering::SeqCst));
        // The server side sees the end of its input.
        let mut buf = [0u8; 1];
        assert_eq!(a_peer.read(&mut buf).unwrap(), 0);
        b_peer.set_nonblocking(true).unwrap();
        assert!(
            (&b_peer).read(&mut buf).is_err(),
            "lease-2's connection was touched"
        );
        drop(ta);
        assert_eq!(leases.open_on("lease-1"), 0);
        assert_eq!(leases.retire("lease-1"), 0);
    }
}
