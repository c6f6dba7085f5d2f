//! Fair shares of the registry fetch permits: one registry host, or one
//! namespace, may hold at most a few of them at once, so a registry that
//! accepts connections and never answers (or a tenant who names one) cannot
//! take every permit from the others. Keys are chosen by pod authors, so an
//! entry lives only while someone holds or waits for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// At most `per_key` holders per key.
#[derive(Debug)]
pub struct Shares {
    per_key: usize,
    /// Each key's semaphore and how many hold or wait for it.
    map: Mutex<HashMap<String, (Arc<Semaphore>, usize)>>,
}

/// One held share; released (and its key forgotten when nobody else holds
/// or waits for it) on drop.
#[derive(Debug)]
pub struct Share {
    permit: Option<OwnedSemaphorePermit>,
    owner: Arc<Shares>,
    key: String,
}

impl Shares {
    /// Shares of `per_key` (at least 1) holders per key.
    pub fn new(per_key: usize) -> Arc<Shares> {
        Arc::new(Shares {
            per_key: per_key.max(1),
            map: Mutex::default(),
        })
    }

    /// Waits for a share of `key`.
    pub async fn acquire(self: &Arc<Self>, key: &str) -> Share {
        let sem = {
            let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
            let (sem, users) = map
                .entry(key.to_string())
                .or_insert_with(|| (Arc::new(Semaphore::new(self.per_key)), 0));
            *users += 1;
            sem.clone()
        };
        let mut guard = Share {
            permit: None,
            owner: self.clone(),
            key: key.to_string(),
        };
        // Never closed; the guard forgets the key if this wait is abandoned.
        guard.permit = sem.acquire_owned().await.ok();
        guard
    }

    /// Keys with holders or waiters (for tests).
    pub fn len(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no key is held or waited for.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut map = self
            .owner
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((_, users)) = map.get_mut(&self.key) {
            *users -= 1;
            if *users == 0 {
                map.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_gets_its_share_and_is_forgotten_when_unused() {
        let shares = Shares::new(2);
        let a1 = shares.acquire("slow:443").await;
        let _a2 = shares.acquire("slow:443").await;
        let third = shares.acquire("slow:443");
        tokio::pin!(third);
        assert!(
            futures_poll(&mut third).is_none(),
            "a third holder of one key waits"
        );
        let _b = shares.acquire("healthy:443").await;
        assert_eq!(shares.len(), 2);
        drop(a1);
        let a3 = third.await;
        drop((a3, _a2, _b));
        assert!(shares.is_empty());
        // An abandoned wait forgets its key too.
        let held = shares.acquire("k").await;
        let _h2 = shares.acquire("k").await;
        {
            let w = shares.acquire("k");
            tokio::pin!(w);
            assert!(futures_poll(&mut w).is_none());
        }
        drop((held, _h2));
        assert!(shares.is_empty());
    }

    fn futures_poll<F: std::future::Future + Unpin>(f: &mut F) -> Option<F::Output> {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        match std::pin::Pin::new(f).poll(&mut cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        }
    }
}
