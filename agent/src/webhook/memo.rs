//! Results of pure admission work remembered by their whole input.
//!
//! A rollout sends the same pod template hundreds of times; checking its agent
//! configuration (every template compiled, the TOML parsed and validated with
//! the agent's loader) gives the same answer each time. The key is the complete
//! input, compared in full (no hash standing in for it), so a hit gives exactly
//! what the work would; inputs over a size bound are not remembered, so the
//! memory is bounded by entries × key size.

use std::num::NonZeroUsize;
use std::sync::{Mutex, PoisonError};

use lru::LruCache;

/// A bounded LRU of `input → result`.
#[derive(Debug)]
pub struct Memo<V> {
    entries: Mutex<LruCache<String, V>>,
    max_key: usize,
}

impl<V: Clone> Memo<V> {
    /// At most `entries` results, for inputs of at most `max_key` bytes.
    pub fn new(entries: usize, max_key: usize) -> Memo<V> {
        Memo {
            entries: Mutex::new(LruCache::new(
                NonZeroUsize::new(entries.max(1)).expect("max(1)"),
            )),
            max_key,
        }
    }

    /// The result for `key`, computed by `work` unless remembered. The lock is
    /// not held while working (two threads may both work on a new key: same answer).
    pub fn get_or(&self, key: String, work: impl FnOnce() -> V) -> V {
        if key.len() > self.max_key {
            return work();
        }
        if let Some(v) = self.lock().get(&key) {
            return v.clone();
        }
        let v = work();
        self.lock().put(key, v.clone());
        v
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, V>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_bounded_by_entries_and_key_size() {
        let m = Memo::new(2, 8);
        let calls = std::cell::Cell::new(0);
        let get = |k: &str| {
            m.get_or(k.into(), || {
                calls.set(calls.get() + 1);
                k.len()
            })
        };
        assert_eq!(get("a"), 1);
        assert_eq!(get("a"), 1);
        assert_eq!(get("bb"), 2);
        assert_eq!(get("ccc"), 3); // evicts "a"
        assert_eq!(get("a"), 1);
        assert_eq!(get("too long a key"), 14);
        assert_eq!(get("too long a key"), 14);
        assert_eq!(calls.get(), 6);
    }
}
