//! Cancel keys: each client gets a key of the gateway's own (so it learns
//! nothing of the upstream's), mapped to the upstream connection's key while
//! the connection lasts.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// An upstream connection's cancel target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Where the upstream connection goes.
    pub addr: SocketAddr,
    /// Its BackendKeyData process id.
    pub pid: i32,
    /// Its BackendKeyData secret key.
    pub key: i32,
}

/// The gateway's keys of one listener's open connections.
#[derive(Debug, Default)]
pub struct CancelKeys {
    map: Mutex<HashMap<(i32, i32), Target>>,
}

/// A key handed out; removed from the map when dropped.
#[derive(Debug)]
pub struct Issued {
    keys: Arc<CancelKeys>,
    /// The (process id, secret key) the client was given.
    pub key: (i32, i32),
}

impl Drop for Issued {
    fn drop(&mut self) {
        self.keys.lock().remove(&self.key);
    }
}

impl CancelKeys {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(i32, i32), Target>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new random key for `target`.
    pub fn issue(self: &Arc<Self>, target: Target) -> Issued {
        let mut map = self.lock();
        let key = loop {
            // A positive process id, as a server's would be.
            let k = (rand::random::<i32>() & i32::MAX, rand::random::<i32>());
            if k.0 != 0 && !map.contains_key(&k) {
                break k;
            }
        };
        map.insert(key, target);
        Issued {
            keys: self.clone(),
            key,
        }
    }

    /// The upstream target of the gateway key `(pid, key)`.
    pub fn target(&self, pid: i32, key: i32) -> Option<Target> {
        self.lock().get(&(pid, key)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_while_issued() {
        let keys = Arc::new(CancelKeys::default());
        let t = Target {
            addr: "127.0.0.1:5432".parse().unwrap(),
            pid: 42,
            key: 7,
        };
        let issued = keys.issue(t);
        let (pid, key) = issued.key;
        assert!(pid > 0);
        assert_eq!(keys.target(pid, key), Some(t));
        assert_eq!(keys.target(pid, key.wrapping_add(1)), None);
        drop(issued);
        assert_eq!(keys.target(pid, key), None);
    }
}
