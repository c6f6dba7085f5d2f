//! Concurrent misses of one image share one registry fetch (a singleflight map).
//!
//! A rollout admits many replicas of the same pod at once; before this, each of
//! them missed the cache and asked the registry itself. Now the first miss for
//! a key leads (it fetches); every later miss for the same key, until the leader
//! ends, follows: it waits for the leader's answer, success or error. Nothing is
//! kept after the leader ends (the cache holds successes; errors are not cached),
//! so a failure is shared only by the lookups that were already waiting for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

use super::command::ImageCommand;
use super::error::LookupError;
use super::platform::Platform;
use super::reference::ImageRef;

/// What a lookup ends with.
pub type Outcome = Result<ImageCommand, LookupError>;

/// What identifies a lookup's answer: the expanded reference and the platforms
/// it is picked for (`nginx` and `docker.io/library/nginx:latest` share one).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    repo: String,
    reference: String,
    platforms: Vec<Platform>,
}

impl Key {
    /// The key of `img` wanted on `platforms`.
    pub fn new(img: &ImageRef, platforms: &[Platform]) -> Key {
        Key {
            repo: img.repo_key(),
            reference: img.reference().to_string(),
            platforms: platforms.to_vec(),
        }
    }
}

/// Where a follower waits for the outcome.
pub type Slot = watch::Receiver<Option<Outcome>>;

/// The lookups being fetched now, by key.
#[derive(Debug, Default)]
pub struct InFlight {
    map: Mutex<HashMap<Key, Slot>>,
}

/// A lookup's part in a fetch.
#[derive(Debug)]
pub enum Role {
    /// Nobody is fetching this key: fetch it and [`Flight::land`] the outcome.
    Lead(Flight),
    /// Another lookup is fetching it: [`wait`] for its outcome.
    Follow(Slot),
}

/// The leader's promise to publish its outcome; dropping it unlanded (a
/// panic) releases the followers with an error.
#[derive(Debug)]
pub struct Flight {
    owner: Arc<InFlight>,
    key: Key,
    tx: watch::Sender<Option<Outcome>>,
}

impl InFlight {
    /// Leads the fetch of `key`, or follows the one in flight.
    pub fn join(self: &Arc<Self>, key: Key) -> Role {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(rx) = map.get(&key) {
            return Role::Follow(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        map.insert(key.clone(), rx);
        Role::Lead(Flight {
            owner: self.clone(),
            key,
            tx,
        })
    }

    /// How many keys are being fetched (for tests).
    pub fn len(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether nothing is being fetched.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn remove(&self, key: &Key) {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}

impl Flight {
    /// Publishes the outcome to every follower and ends the flight.
    pub fn land(self, outcome: &Outcome) {
        // Removed first: a lookup that starts after this finds the cache filled
        // (on success) or fetches anew (errors are not kept).
        self.owner.remove(&self.key);
        self.tx.send_replace(Some(outcome.clone()));
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        if self.tx.borrow().is_none() {
            self.owner.remove(&self.key);
        }
    }
}

/// The leader's outcome for a follower of `img`: the leader's, with the image
/// named as this pod names it. `None` when the leader ended without one.
pub async fn wait(mut slot: Slot, img: &ImageRef) -> Option<Outcome> {
    let outcome = slot.wait_for(Option::is_some).await.ok()?.clone()?;
    Some(outcome.map_err(|e| e.for_image(&img.original)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(image: &str) -> Key {
        let img = ImageRef::parse(image).unwrap();
        Key::new(&img, &[Platform::new("linux", "amd64", None)])
    }

    #[tokio::test]
    async fn followers_share_the_leaders_outcome_and_nothing_stays() {
        let f = Arc::new(InFlight::default());
        let Role::Lead(flight) = f.join(key("nginx")) else {
            panic!("the first lookup leads")
        };
        let Role::Follow(slot) = f.join(key("docker.io/library/nginx:latest")) else {
            panic!("the same expanded reference follows")
        };
        assert!(matches!(f.join(key("nginx:1.27")), Role::Lead(_)));
        let img = ImageRef::parse("nginx").unwrap();
        let waiter = tokio::spawn(async move { wait(slot, &img).await });
        let cmd = ImageCommand {
            entrypoint: vec!["/e".into()],
            cmd: vec![],
        };
        flight.land(&Ok(cmd.clone()));
        assert_eq!(waiter.await.unwrap(), Some(Ok(cmd)));
        assert!(f.is_empty());
        assert!(matches!(f.join(key("nginx")), Role::Lead(_)));
    }

    #[tokio::test]
    async fn a_shared_error_names_the_followers_image_and_a_lost_leader_releases() {
        let f = Arc::new(InFlight::default());
        let Role::Lead(flight) = f.join(key("nginx")) else {
            panic!()
        };
        let Role::Follow(slot) = f.join(key("nginx:latest")) else {
            panic!()
        };
        flight.land(&Err(LookupError::NotFound {
            image: "nginx".into(),
            registry: "registry-1.docker.io".into(),
        }));
        let img = ImageRef::parse("nginx:latest").unwrap();
        let Some(Err(e)) = wait(slot, &img).await else {
            panic!()
        };
        assert!(e.to_string().contains("`nginx:latest`"), "{e}");

        let Role::Lead(flight) = f.join(key("nginx")) else {
            panic!("errors are not kept")
        };
        let Role::Follow(slot) = f.join(key("nginx")) else {
            panic!()
        };
        drop(flight);
        assert!(f.is_empty());
        assert_eq!(wait(slot, &ImageRef::parse("nginx").unwrap()).await, None);
    }
}
