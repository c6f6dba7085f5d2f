//! The lookup cache: content by digest (immutable, so kept until evicted) and
//! tag → digest for a short TTL, each bounded to `registry.cache_size` entries.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lru::LruCache;

use super::command::ImageCommand;
use super::platform::Platform;

/// What a digest names, as far as shroud cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// An image manifest and its configuration's digest.
    Image {
        /// The configuration blob's digest.
        config: String,
    },
    /// An image index: each platform's manifest digest.
    Index(Vec<(Platform, String)>),
    /// An image configuration.
    Config(ImageCommand),
}

/// Both caches behind one lock each (lookups hold them for a map access only).
#[derive(Debug)]
pub struct Cache {
    content: Mutex<LruCache<String, Content>>,
    tags: Mutex<LruCache<String, (String, Instant)>>,
    ttl: Duration,
}

impl Cache {
    /// Caches of `size` entries each; tags live `ttl`.
    pub fn new(size: usize, ttl: Duration) -> Cache {
        let size = NonZeroUsize::new(size.max(1)).expect("max(1)");
        Cache {
            content: Mutex::new(LruCache::new(size)),
            tags: Mutex::new(LruCache::new(size)),
            ttl,
        }
    }

    /// The content of `repo@digest`.
    pub fn content(&self, repo: &str, digest: &str) -> Option<Content> {
        lock(&self.content).get(&key(repo, digest)).cloned()
    }

    /// Remembers the content of `repo@digest`.
    pub fn put_content(&self, repo: &str, digest: &str, content: Content) {
        lock(&self.content).put(key(repo, digest), content);
    }

    /// The digest `repo:tag` pointed to less than the TTL ago.
    pub fn tag(&self, repo: &str, tag: &str, now: Instant) -> Option<String> {
        let mut tags = lock(&self.tags);
        let k = format!("{repo}:{tag}");
        match tags.get(&k) {
            Some((digest, at)) if now.duration_since(*at) < self.ttl => Some(digest.clone()),
            Some(_) => {
                tags.pop(&k);
                None
            }
            None => None,
        }
    }

    /// Remembers that `repo:tag` points to `digest` as of `now`.
    pub fn put_tag(&self, repo: &str, tag: &str, digest: &str, now: Instant) {
        lock(&self.tags).put(format!("{repo}:{tag}"), (digest.to_string(), now));
    }
}

fn key(repo: &str, digest: &str) -> String {
    format!("{repo}@{digest}")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock left a map, not a broken invariant.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_expire_and_content_is_bounded() {
        let c = Cache::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        c.put_tag("r/a", "v1", "sha256:1", t0);
        assert_eq!(
            c.tag("r/a", "v1", t0 + Duration::from_secs(59)).as_deref(),
            Some("sha256:1")
        );
        assert_eq!(c.tag("r/a", "v1", t0 + Duration::from_secs(60)), None);
        for d in ["1", "2", "3"] {
            c.put_content("r/a", d, Content::Image { config: d.into() });
        }
        assert_eq!(c.content("r/a", "1"), None, "the oldest entry is evicted");
        assert!(c.content("r/a", "3").is_some());
    }
}
