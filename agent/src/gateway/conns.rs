//! A gateway's open connections, so that stopping it closes them (before the
//! agent revokes the credential they logged in with).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::stream::Stream;

/// The open connections (client and upstream sides).
#[derive(Debug, Default)]
pub struct Conns {
    open: Mutex<Open>,
    closed: Condvar,
    next: AtomicU64,
}

#[derive(Debug, Default)]
struct Open {
    streams: HashMap<u64, Stream>,
    stopping: bool,
}

/// Registration of one stream; removed when dropped.
#[derive(Debug)]
pub struct Registered {
    conns: Arc<Conns>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut open = self.conns.lock();
        open.streams.remove(&self.id);
        if open.streams.is_empty() {
            self.conns.closed.notify_all();
        }
    }
}

impl Conns {
    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tracks `s` until the registration is dropped; None once stopping (or
    /// when the stream cannot be duplicated): the caller closes it.
    pub fn register(self: &Arc<Self>, s: &Stream) -> Option<Registered> {
        let clone = s.try_clone().ok()?;
        let mut open = self.lock();
        if open.stopping {
            return None;
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        open.streams.insert(id, clone);
        Some(Registered {
            conns: self.clone(),
            id,
        })
    }

    /// Refuses new registrations, shuts every open stream down and waits (at
    /// most `limit`) until their threads have let go of them. Returns how many
    /// were open.
    pub fn close_all(&self, limit: Duration) -> usize {
        let mut open = self.lock();
        open.stopping = true;
        let n = open.streams.len();
        for s in open.streams.values() {
            s.shutdown();
        }
        let deadline = Instant::now() + limit;
        while !open.streams.is_empty() {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            open = self
                .closed
                .wait_timeout(open, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        n
    }
}
