//! Entrypoint resolution: for a container to wrap that has no `command`, read
//! its image's ENTRYPOINT and CMD from the registry (OCI distribution API) so the
//! webhook can wrap exactly what the kubelet would run.
//!
//! - [`reference`]: image names, short-name expansion, loopback hosts;
//! - [`platform`]: which platform of an index the pod will run;
//! - [`client`], [`challenge`], [`creds`]: HTTP, Basic/Bearer challenges, Docker config JSON;
//! - [`allow`]: which hosts and resolved addresses every hop may use (`registry.allowed`);
//! - [`resolve`]: name resolution that checks what it hands out, by the deadline;
//! - [`manifest`]: manifests, indexes and configurations (oci-spec types);
//! - [`cache`]: digest → content and tag → digest (short TTL), bounded;
//! - [`inflight`]: concurrent misses of one image share one fetch;
//! - [`shares`]: per-registry and per-namespace shares of the fetch turns;
//! - [`command`]: the kubelet's ENTRYPOINT/CMD/args rule;
//! - [`config`], [`error`], [`metrics`].
//!
//! The resolver answers from the cache without leaving the async runtime; only
//! misses go to blocking threads (one per registry host of an admission), and all
//! of one admission's registry work — waiting for a turn, every image, round trip,
//! redirect and token request — ends by one deadline, `registry.timeout` after it
//! starts. At most `max_in_flight` admissions' misses are worked on at once (the
//! webhook passes `server.max_concurrent_reviews`), of which one registry host
//! and one namespace hold at most their share ([`shares`]): a registry that
//! never answers cannot take every turn. A blocking lookup keeps its turn until
//! it really ends (by the deadline), so a dead registry cannot pile up blocking
//! threads either. A miss for an image that another admission is fetching waits
//! for that fetch (within its own deadline) instead of asking the registry again.
//! Every host the client connects to passes [`allow`].

pub mod allow;
pub mod cache;
pub mod challenge;
pub mod client;
pub mod command;
pub mod config;
pub mod creds;
pub mod error;
pub mod inflight;
pub mod manifest;
pub mod metrics;
pub mod platform;
pub mod reference;
pub mod resolve;
pub mod shares;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use cache::{Cache, Content};
use client::{Client, ClientError, Session};
use command::ImageCommand;
use config::RegistryConfig;
use error::LookupError;
use inflight::{Flight, InFlight, Key, Outcome, Role, Slot};
use metrics::RegistryMetrics;
use platform::{Platform, Wanted};
use reference::ImageRef;
use shares::Shares;

/// One container whose image's command is needed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lookup {
    /// The container's name.
    pub container: String,
    /// Its `image`.
    pub image: String,
    /// The platforms the pod may run on.
    pub wanted: Wanted,
}

/// A miss this admission fetches: container, image, platforms, the promise to its followers.
type Lead = (String, ImageRef, Wanted, Flight);

/// Each looked-up container's image command, or why there is none.
pub type Resolved = BTreeMap<String, Result<ImageCommand, LookupError>>;

/// Resolves image commands through the cache and the registries.
#[derive(Clone, Debug)]
pub struct Resolver {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    cache: Cache,
    timeout: Duration,
    metrics: RegistryMetrics,
    /// One permit per admission (and registry host) whose misses are being fetched.
    in_flight: Arc<Semaphore>,
    /// A registry host's share of `in_flight`.
    per_registry: Arc<Shares>,
    /// A namespace's share of `in_flight`.
    per_namespace: Arc<Shares>,
    /// The misses being fetched, shared with concurrent lookups of the same image.
    fetching: Arc<InFlight>,
}

impl Resolver {
    /// A resolver for `cfg`, counting into `metrics`, fetching the misses of at
    /// most `max_in_flight` admissions at once.
    pub fn new(
        cfg: &RegistryConfig,
        metrics: RegistryMetrics,
        max_in_flight: usize,
    ) -> Result<Resolver, ClientError> {
        Ok(Resolver {
            inner: Arc::new(Inner {
                client: Client::new(cfg)?,
                cache: Cache::new(cfg.cache_size, cfg.tag_ttl),
                timeout: cfg.timeout,
                metrics,
                in_flight: Arc::new(Semaphore::new(max_in_flight.max(1))),
                per_registry: Shares::new(cfg.max_fetches_per_registry),
                per_namespace: Shares::new(cfg.max_fetches_per_namespace),
                fetching: Arc::default(),
            }),
        })
    }

    /// Resolves the lookups of one admission in `namespace`: cached answers at
    /// once, the rest on blocking threads, everything (waiting for a turn
    /// included) by one deadline `registry.timeout` from now. A miss that
    /// another admission is already fetching waits for that fetch instead.
    pub async fn resolve(&self, namespace: &str, lookups: Vec<Lookup>) -> Resolved {
        let inner = &self.inner;
        let mut out = Resolved::new();
        let mut leads = Vec::new();
        let mut follows = Vec::new();
        let now = Instant::now();
        for l in lookups {
            let result = ImageRef::parse(&l.image)
                .map_err(LookupError::from)
                .and_then(|img| {
                    let cached = resolve(&inner.cache, None, &img, &l.wanted, now)?;
                    Ok((img, cached))
                });
            match result {
                Ok((_, Some(cmd))) => {
                    inner.metrics.lookups.with_label_values(&["cached"]).inc();
                    out.insert(l.container, Ok(cmd));
                }
                Ok((img, None)) => match inner.fetching.join(Key::new(&img, &l.wanted.platforms)) {
                    Role::Lead(flight) => leads.push((l.container, img, l.wanted, flight)),
                    Role::Follow(slot) => follows.push((l.container, img, l.wanted, slot)),
                },
                Err(e) => {
                    inner.count_failure(&e);
                    out.insert(l.container, Err(e));
                }
            }
        }
        let deadline = Instant::now() + inner.timeout;
        // Together: a pod with two containers of one image follows itself.
        let (fetched, coalesced) = tokio::join!(
            self.fetch(namespace, leads, deadline),
            self.follow(namespace, follows, deadline)
        );
        for (how, results) in [("fetched", fetched), ("coalesced", coalesced)] {
            for (container, r) in results {
                match &r {
                    Ok(_) => inner.metrics.lookups.with_label_values(&[how]).inc(),
                    Err(e) => inner.count_failure(e),
                }
                out.insert(container, r);
            }
        }
        out
    }

    /// Fetches the misses this admission leads, one registry host at a time,
    /// each on a blocking thread holding a permit, its registry's share and
    /// this namespace's share; each outcome is handed to its followers as soon
    /// as it is known, even when this admission has stopped waiting. Every
    /// round trip ends by `deadline`, so the permits come back by then too.
    async fn fetch(
        &self,
        namespace: &str,
        leads: Vec<Lead>,
        deadline: Instant,
    ) -> Vec<(String, Outcome)> {
        let mut groups: Vec<(String, Vec<Lead>)> = Vec::new();
        for lead in leads {
            let host = lead.1.api_host().to_string();
            match groups.iter_mut().find(|(h, _)| *h == host) {
                Some((_, group)) => group.push(lead),
                None => groups.push((host, vec![lead])),
            }
        }
        let until = tokio::time::Instant::from_std(deadline);
        let share = tokio::time::timeout_at(until, self.inner.per_namespace.acquire(namespace))
            .await
            .ok()
            .map(Arc::new);
        let mut out = Vec::new();
        for (host, group) in groups {
            let names: Vec<(String, ImageRef)> = group
                .iter()
                .map(|(c, img, _, _)| (c.clone(), img.clone()))
                .collect();
            let Some(share) = share.clone() else {
                out.extend(
                    names
                        .into_iter()
                        .map(|(c, img)| (c, Err(self.inner.timeout_error(&img)))),
                );
                continue;
            };
            let worker = self.inner.clone();
            let task = async move {
                let registry = worker.per_registry.acquire(&host).await;
                let permit = worker.in_flight.clone().acquire_owned().await.ok()?;
                let work = tokio::task::spawn_blocking(move || {
                    let _held = (permit, registry, share);
                    let _counted = Counted::inc(&worker.metrics.fetching);
                    group
                        .into_iter()
                        .map(|(container, img, wanted, flight)| {
                            let r = worker.client.session(&img, deadline).and_then(|mut s| {
                                resolve(&worker.cache, Some(&mut s), &img, &wanted, Instant::now())
                                    .map(|c| c.expect("a lookup with the network always answers"))
                            });
                            flight.land(&r);
                            (container, r)
                        })
                        .collect::<Vec<_>>()
                });
                Some(work.await)
            };
            match tokio::time::timeout_at(until, task).await {
                Ok(Some(Ok(results))) => out.extend(results),
                Ok(Some(Err(join))) => out.extend(names.into_iter().map(|(c, img)| {
                    let reason = format!("the lookup failed: {join}");
                    let image = img.to_string();
                    (c, Err(LookupError::Invalid { image, reason }))
                })),
                Ok(None) | Err(_) => out.extend(
                    names
                        .into_iter()
                        .map(|(c, img)| (c, Err(self.inner.timeout_error(&img)))),
                ),
            }
        }
        out
    }

    /// Waits, within the same deadline, for the fetches other lookups lead.
    async fn follow(
        &self,
        namespace: &str,
        follows: Vec<(String, ImageRef, Wanted, Slot)>,
        deadline: Instant,
    ) -> Vec<(String, Outcome)> {
        let mut out = Vec::with_capacity(follows.len());
        let mut waiting = Waiting::start(&self.inner.metrics.waiting, follows.len());
        for (container, img, wanted, slot) in follows {
            let r = self
                .wait_or_lead(namespace, &container, img, wanted, slot, deadline)
                .await;
            waiting.one_done();
            out.push((container, r));
        }
        out
    }

    /// The outcome of the fetch `slot` waits for; when its leader ends without
    /// one (its own admission gave up before fetching), this lookup joins
    /// again, and may lead, with the time it has left.
    async fn wait_or_lead(
        &self,
        namespace: &str,
        container: &str,
        img: ImageRef,
        wanted: Wanted,
        mut slot: Slot,
        deadline: Instant,
    ) -> Outcome {
        let until = tokio::time::Instant::from_std(deadline);
        loop {
            match tokio::time::timeout_at(until, inflight::wait(slot, &img)).await {
                Ok(Some(r)) => return r,
                Err(_) => return Err(self.inner.timeout_error(&img)),
                Ok(None) => {}
            }
            match self.inner.fetching.join(Key::new(&img, &wanted.platforms)) {
                Role::Follow(again) => slot = again,
                Role::Lead(flight) => {
                    let error = self.inner.timeout_error(&img);
                    let lead = vec![(container.to_string(), img, wanted, flight)];
                    return match self.fetch(namespace, lead, deadline).await.pop() {
                        Some((_, r)) => r,
                        None => Err(error),
                    };
                }
            }
        }
    }
}

/// Followers counted in the `waiting` gauge until they have their answer, or
/// their admission is dropped (a client that went away).
struct Waiting<'g> {
    gauge: &'g prometheus::IntGauge,
    left: i64,
}

impl<'g> Waiting<'g> {
    fn start(gauge: &'g prometheus::IntGauge, n: usize) -> Waiting<'g> {
        let left = i64::try_from(n).unwrap_or(i64::MAX);
        gauge.add(left);
        Waiting { gauge, left }
    }

    fn one_done(&mut self) {
        self.left -= 1;
        self.gauge.dec();
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.gauge.sub(self.left);
    }
}

/// A gauge counting something while it lasts.
struct Counted(prometheus::IntGauge);

impl Counted {
    fn inc(gauge: &prometheus::IntGauge) -> Counted {
        gauge.inc();
        Counted(gauge.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Inner {
    fn timeout_error(&self, img: &ImageRef) -> LookupError {
        LookupError::Timeout {
            image: img.to_string(),
            registry: img.api_host().to_string(),
            after: self.timeout,
        }
    }

    /// Counts a failure and logs it with what the pod author is not shown.
    fn count_failure(&self, e: &LookupError) {
        self.metrics.lookups.with_label_values(&["failed"]).inc();
        self.metrics.failures.with_label_values(&[e.reason()]).inc();
        tracing::warn!(
            error = %e,
            registry = e.registry().unwrap_or("-"),
            detail = e.detail().unwrap_or("-"),
            "image entrypoint lookup failed"
        );
    }
}

/// Resolves `img` for `wanted`. Without `net`, answers from the cache only and
/// returns `Ok(None)` at the first miss; with it, always `Some` or an error.
fn resolve(
    cache: &Cache,
    mut net: Option<&mut Session<'_>>,
    img: &ImageRef,
    wanted: &Wanted,
    now: Instant,
) -> Result<Option<ImageCommand>, LookupError> {
    let repo = img.repo_key();
    let invalid = |reason: String| LookupError::Invalid {
        image: img.to_string(),
        reason,
    };
    let top = match (&img.digest, &img.tag) {
        (Some(d), _) => d.clone(),
        (None, tag) => {
            let tag = tag.as_deref().unwrap_or("latest");
            match cache.tag(&repo, tag, now) {
                Some(d) => d,
                None => {
                    let Some(s) = net.as_deref_mut() else {
                        return Ok(None);
                    };
                    let doc = s.manifest(tag)?;
                    let content = manifest::parse_manifest(&doc).map_err(invalid)?;
                    cache.put_content(&repo, &doc.digest, content);
                    cache.put_tag(&repo, tag, &doc.digest, now);
                    doc.digest
                }
            }
        }
    };
    let Some(content) = manifest_content(cache, net.as_deref_mut(), img, &top)? else {
        return Ok(None);
    };
    match content {
        Content::Image { config } => image_command(cache, net, img, &config),
        Content::Index(entries) => {
            let mut chosen: Vec<(Platform, ImageCommand)> = Vec::new();
            for want in &wanted.platforms {
                let Some((platform, digest)) = pick(&entries, want) else {
                    continue;
                };
                let Some(content) = manifest_content(cache, net.as_deref_mut(), img, digest)?
                else {
                    return Ok(None);
                };
                let Content::Image { config } = content else {
                    return Err(invalid(format!(
                        "the index entry for {platform} is not an image manifest"
                    )));
                };
                let Some(cmd) = image_command(cache, net.as_deref_mut(), img, &config)? else {
                    return Ok(None);
                };
                chosen.push((platform.clone(), cmd));
            }
            let Some((_, first)) = chosen.first() else {
                return Err(LookupError::NoPlatform {
                    image: img.to_string(),
                    wanted: join(wanted.platforms.iter()),
                    available: join(entries.iter().map(|(p, _)| p)),
                });
            };
            if chosen.iter().any(|(_, c)| c != first) {
                return Err(LookupError::PlatformsDisagree {
                    image: img.to_string(),
                    platforms: join(chosen.iter().map(|(p, _)| p)),
                });
            }
            Ok(Some(first.clone()))
        }
        Content::Config(_) => Err(invalid(format!(
            "{top} is an image configuration, not a manifest"
        ))),
    }
}

/// The index entry for `want`: an exact variant match, else the first entry of
/// that os/arch.
fn pick<'e>(entries: &'e [(Platform, String)], want: &Platform) -> Option<&'e (Platform, String)> {
    entries
        .iter()
        .find(|(p, _)| p == want)
        .or_else(|| entries.iter().find(|(p, _)| want.accepts(p)))
}

fn manifest_content(
    cache: &Cache,
    net: Option<&mut Session<'_>>,
    img: &ImageRef,
    digest: &str,
) -> Result<Option<Content>, LookupError> {
    let repo = img.repo_key();
    if let Some(c) = cache.content(&repo, digest) {
        return Ok(Some(c));
    }
    let Some(s) = net else { return Ok(None) };
    let doc = s.manifest(digest)?;
    let invalid = |reason: String| LookupError::Invalid {
        image: img.to_string(),
        reason,
    };
    if digest.starts_with("sha256:") && doc.digest != digest {
        return Err(invalid(format!(
            "manifest {digest} has content with digest {}",
            doc.digest
        )));
    }
    let content = manifest::parse_manifest(&doc).map_err(invalid)?;
    cache.put_content(&repo, digest, content.clone());
    Ok(Some(content))
}

fn image_command(
    cache: &Cache,
    net: Option<&mut Session<'_>>,
    img: &ImageRef,
    config: &str,
) -> Result<Option<ImageCommand>, LookupError> {
    let repo = img.repo_key();
    if let Some(Content::Config(c)) = cache.content(&repo, config) {
        return Ok(Some(c));
    }
    let Some(s) = net else { return Ok(None) };
    let doc = s.blob(config)?;
    let cmd = manifest::parse_config(&doc).map_err(|reason| LookupError::Invalid {
        image: img.to_string(),
        reason,
    })?;
    cache.put_content(&repo, config, Content::Config(cmd.clone()));
    Ok(Some(cmd))
}

fn join<'p>(platforms: impl Iterator<Item = &'p Platform>) -> String {
    let v: Vec<String> = platforms.map(Platform::to_string).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup() -> Lookup {
        Lookup {
            container: "web".into(),
            // Nothing listens on port 1: a fetch fails at once, as unreachable.
            image: "127.0.0.1:1/shop/web:1".into(),
            wanted: Wanted {
                platforms: vec![Platform::new("linux", "amd64", None)],
                from_pod: false,
            },
        }
    }

    /// A follower whose leader gave up before fetching (its admission's time
    /// ran out waiting for a turn) fetches itself with the time it has left,
    /// instead of failing with its leader.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_follower_outlives_a_leader_that_gave_up() {
        let cfg = RegistryConfig {
            timeout: Duration::from_secs(2),
            plain_http: vec!["127.0.0.1:1".into()],
            ..RegistryConfig::default()
        };
        let metrics = RegistryMetrics::register(&prometheus::Registry::new());
        let resolver = Resolver::new(&cfg, metrics.clone(), 1).unwrap();
        // The only turn is taken: the leader waits for it until its deadline.
        let turn = resolver
            .inner
            .in_flight
            .clone()
            .acquire_owned()
            .await
            .unwrap();
        let r = resolver.clone();
        let leader = tokio::spawn(async move { r.resolve("shop", vec![lookup()]).await });
        while resolver.inner.fetching.is_empty() {
            tokio::task::yield_now().await;
        }
        // Started a second later, the follower's deadline is a second later.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let r = resolver.clone();
        let follower = tokio::spawn(async move { r.resolve("shop", vec![lookup()]).await });
        let led = leader.await.unwrap();
        assert!(
            matches!(led["web"], Err(LookupError::Timeout { .. })),
            "{led:?}"
        );
        drop(turn);
        let followed = follower.await.unwrap();
        assert!(
            matches!(followed["web"], Err(LookupError::Unreachable { .. })),
            "the follower fetched itself: {followed:?}"
        );
        assert_eq!(metrics.waiting.get(), 0);
        assert!(resolver.inner.fetching.is_empty());
    }
}
