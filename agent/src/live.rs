//! The secret set shared by every output stream, swappable while they run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use shroud_redactor::SecretSet;

/// The current redaction set and a counter that changes on every swap, so a
/// stream can notice a swap with one atomic load per read.
#[derive(Debug)]
pub struct LiveSet {
    current: ArcSwap<SecretSet>,
    swaps: AtomicU64,
}

impl LiveSet {
    /// Starts with `set`.
    pub fn new(set: SecretSet) -> Self {
        LiveSet {
            current: ArcSwap::from_pointee(set),
            swaps: AtomicU64::new(0),
        }
    }

    /// The set now in force.
    pub fn load(&self) -> Arc<SecretSet> {
        self.current.load_full()
    }

    /// Replaces the set. Every byte a stream reads after this returns is examined
    /// against the new set (streams check [`LiveSet::swaps`] after each read).
    pub fn store(&self, set: SecretSet) {
        self.current.store(Arc::new(set));
        self.swaps.fetch_add(1, Ordering::Release);
    }

    /// How many times the set was replaced.
    pub fn swaps(&self) -> u64 {
        self.swaps.load(Ordering::Acquire)
    }
}
