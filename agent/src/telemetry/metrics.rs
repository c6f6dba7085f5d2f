//! Prometheus metrics, updated from security events ([`Metrics`] is an
//! [`EventSink`]) and, at scrape time, from the redacting streams' counters and
//! `/proc/self/statm`.
//!
//! Label values are secret *names* from the configuration, auth method and Vault
//! operation names chosen by shroud's code, and outcome labels. Never secret
//! values, lease ids or paths.

use std::sync::Arc;
use std::time::Duration;

use prometheus::{
    Encoder as _, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts,
    PullingGauge, Registry, TextEncoder,
};

use super::collectors::{LeaseExpiry, Shared, StreamCollector};

use crate::events::{Event, EventSink};
use crate::pump::StreamCounters;

/// Longest lease the gauge represents (ten years); also guards against NaN/inf.
const MAX_TTL: f64 = 315_576_000.0;

/// Which output of the workload a redacting stream carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// The workload's stdout (a pipe).
    Stdout,
    /// The workload's stderr (a pipe).
    Stderr,
    /// The workload's pseudo-terminal (stdout and stderr merged).
    Tty,
}

impl Stream {
    /// The `stream` label value.
    pub fn label(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::Tty => "tty",
        }
    }
}

/// Every metric shroud exports, in one registry.
pub struct Metrics {
    registry: Registry,
    auth_attempts: IntCounterVec,
    token_renewals: IntCounterVec,
    fetches: IntCounterVec,
    lease_renewals: IntCounterVec,
    rotations: IntCounterVec,
    publication_failures: IntCounter,
    revocations: IntCounterVec,
    denials: IntCounter,
    lease_expiry: Arc<LeaseExpiry>,
    vault_latency: HistogramVec,
    wipe_duration: Histogram,
    streams: Arc<StreamCollector>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

pub(super) fn counter(
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    IntCounterVec::new(Opts::new(name, help), labels)
}

impl Metrics {
    /// Creates and registers every metric in a fresh registry.
    pub fn new() -> prometheus::Result<Arc<Metrics>> {
        let m = Metrics {
            registry: Registry::new(),
            auth_attempts: counter(
                "shroud_auth_attempts_total",
                "Logins to Vault by auth method and result (ok, error, denied).",
                &["method", "result"],
            )?,
            token_renewals: counter(
                "shroud_token_renewals_total",
                "Renewals of shroud's own Vault token by result.",
                &["result"],
            )?,
            fetches: counter(
                "shroud_secret_fetches_total",
                "Reads of a secret from Vault by secret name and result.",
                &["secret", "result"],
            )?,
            lease_renewals: counter(
                "shroud_lease_renewals_total",
                "Lease renewals by secret name and result.",
                &["secret", "result"],
            )?,
            rotations: counter(
                "shroud_rotations_total",
                "New values of a secret published to the workload.",
                &["secret"],
            )?,
            publication_failures: IntCounter::new(
                "shroud_publication_failures_total",
                "Publications that failed before the new files were in place (tmpfs full, output directory replaced); the previous values stayed current.",
            )?,
            revocations: counter(
                "shroud_revocations_total",
                "Revocations by kind (lease, token) and result.",
                &["kind", "result"],
            )?,
            denials: IntCounter::new(
                "shroud_denials_total",
                "Requests Vault or a policy refused.",
            )?,
            lease_expiry: Arc::new(LeaseExpiry::new()?),
            vault_latency: HistogramVec::new(
                HistogramOpts::new(
                    "shroud_vault_request_duration_seconds",
                    "Latency of HTTP requests to Vault by operation.",
                ),
                &["operation"],
            )?,
            wipe_duration: Histogram::with_opts(
                HistogramOpts::new(
                    "shroud_wipe_duration_seconds",
                    "Time taken to overwrite and remove the rendered files.",
                )
                .buckets(vec![
                    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0,
                ]),
            )?,
            streams: Arc::new(StreamCollector::new()?),
        };
        let r = &m.registry;
        r.register(Box::new(m.auth_attempts.clone()))?;
        r.register(Box::new(m.token_renewals.clone()))?;
        r.register(Box::new(m.fetches.clone()))?;
        r.register(Box::new(m.lease_renewals.clone()))?;
        r.register(Box::new(m.rotations.clone()))?;
        r.register(Box::new(m.publication_failures.clone()))?;
        r.register(Box::new(m.revocations.clone()))?;
        r.register(Box::new(m.denials.clone()))?;
        r.register(Box::new(Shared(m.lease_expiry.clone())))?;
        r.register(Box::new(m.vault_latency.clone()))?;
        r.register(Box::new(m.wipe_duration.clone()))?;
        r.register(Box::new(Shared(m.streams.clone())))?;
        r.register(Box::new(super::gateway_conns::GatewayCollector::new()?))?;
        r.register(Box::new(PullingGauge::new(
            "shroud_process_resident_memory_bytes",
            "Resident set size of the shroud process (from /proc/self/statm at scrape time).",
            Box::new(|| super::rss::resident_bytes().map_or(f64::NAN, |b| b as f64)),
        )?))?;
        r.register(Box::new(super::memlock::MemlockCollector::new()?))?;
        Ok(Arc::new(m))
    }

    /// The registry, for the HTTP server (and for any extra metrics the caller adds).
    pub fn registry(&self) -> Registry {
        self.registry.clone()
    }

    /// Exports a redacting stream's counters as `shroud_stream_bytes_total` and
    /// `shroud_stream_masked_total` with label `stream`. Counters attached under the
    /// same stream (a restarted workload) are added up.
    pub fn attach_stream(&self, stream: Stream, counters: Arc<StreamCounters>) {
        self.streams.attach(stream, counters);
    }

    /// The registry in Prometheus text format.
    pub fn render(&self) -> String {
        encode(&self.registry)
    }
}

/// `registry` in Prometheus text format.
pub fn encode(registry: &Registry) -> String {
    let mut buf = Vec::new();
    // Encoding into a Vec fails only on inconsistent metric families, which the
    // registry rejects at registration.
    let _ = TextEncoder::new().encode(&registry.gather(), &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

impl EventSink for Metrics {
    fn emit(&self, event: &Event<'_>) {
        match event {
            Event::Login { method, outcome } => self
                .auth_attempts
                .with_label_values(&[*method, outcome.label()])
                .inc(),
            Event::TokenRenew { outcome } => {
                self.token_renewals
                    .with_label_values(&[outcome.label()])
                    .inc();
            }
            Event::Fetch {
                secret,
                outcome,
                lease_id,
                ..
            } => {
                self.fetches
                    .with_label_values(&[*secret, outcome.label()])
                    .inc();
                if let (Some(id), crate::events::Outcome::Ok) = (lease_id, outcome) {
                    self.lease_expiry.fetched(secret, id);
                }
            }
            Event::Renew {
                secret, outcome, ..
            } => self
                .lease_renewals
                .with_label_values(&[*secret, outcome.label()])
                .inc(),
            Event::Rotate { secret, .. } => self.rotations.with_label_values(&[secret]).inc(),
            Event::Revoke {
                secret,
                outcome,
                lease_id,
                ..
            } => {
                let kind = crate::events::revoked_kind(*secret, *lease_id);
                self.revocations
                    .with_label_values(&[kind, outcome.label()])
                    .inc();
                if let (Some(secret), crate::events::Outcome::Ok) = (secret, outcome) {
                    // A revoked lease no longer expires; drop its series
                    // unless a newer lease of the secret is current.
                    self.lease_expiry.forget(secret, *lease_id);
                }
            }
            Event::Wipe { duration, .. } => self.wipe_duration.observe(duration.as_secs_f64()),
            Event::Denial { .. } => self.denials.inc(),
            Event::LeaseTtl { secret, seconds } => self
                .lease_expiry
                .set(secret, Duration::from_secs_f64(seconds.clamp(0.0, MAX_TTL))),
            Event::VaultRequest {
                operation,
                duration,
                ..
            } => self
                .vault_latency
                .with_label_values(&[operation])
                .observe(duration.as_secs_f64()),
            Event::Publish { outcome, .. } => {
                if *outcome != crate::events::Outcome::Ok {
                    self.publication_failures.inc();
                }
            }
            // Gateways count into their own counters (gateway/stats.rs).
            Event::Ready
            | Event::Exit { .. }
            | Event::GatewayLogin { .. }
            | Event::GatewayLease { .. }
            | Event::GatewayRenew { .. }
            | Event::GatewayRevoke { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::events::Outcome;

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(prefix))
    }

    #[test]
    fn events_move_the_right_series() {
        let m = Metrics::new().unwrap();
        m.emit(&Event::Login {
            method: "approle",
            outcome: Outcome::Ok,
        });
        m.emit(&Event::Login {
            method: "approle",
            outcome: Outcome::Denied("permission denied".into()),
        });
        m.emit(&Event::Renew {
            secret: "db",
            path: "database/creds/app",
            lease_id: Some("database/creds/app/AbCdEf"),
            outcome: Outcome::Ok,
        });
        m.emit(&Event::Rotate {
            secret: "db",
            path: "database/creds/app",
            lease_id: Some("database/creds/app/XyZ"),
        });
        m.emit(&Event::LeaseTtl {
            secret: "db",
            seconds: 42.0,
        });
        m.emit(&Event::VaultRequest {
            operation: "renew",
            duration: Duration::from_millis(3),
            outcome: Outcome::Ok,
        });
        m.emit(&Event::Wipe {
            files: 2,
            duration: Duration::from_micros(300),
        });
        m.emit(&Event::Revoke {
            secret: None,
            lease_id: None,
            reason: crate::events::RevokeReason::Shutdown,
            outcome: Outcome::Error("connection refused".into()),
        });
        let text = m.render();
        assert!(text.contains("shroud_auth_attempts_total{method=\"approle\",result=\"ok\"} 1"));
        assert!(text.contains("shroud_auth_attempts_total{method=\"approle\",result=\"denied\"} 1"));
        assert!(text.contains("shroud_lease_renewals_total{result=\"ok\",secret=\"db\"} 1"));
        assert!(text.contains("shroud_rotations_total{secret=\"db\"} 1"));
        let left: f64 = line(&text, "shroud_lease_expiry_seconds{secret=\"db\"} ")
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap();
        assert!(left > 41.0 && left <= 42.0, "{left}");
        assert!(text.contains(
            "shroud_vault_request_duration_seconds_bucket{operation=\"renew\",le=\"0.005\"} 1"
        ));
        assert!(text.contains("shroud_wipe_duration_seconds_count 1"));
        assert!(text.contains("shroud_revocations_total{kind=\"token\",result=\"error\"} 1"));
        assert!(
            !text.contains("AbCdEf") && !text.contains("XyZ"),
            "lease ids leaked"
        );
        let rss = line(&text, "shroud_process_resident_memory_bytes ").unwrap();
        let v: f64 = rss.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(v > 0.0);

        m.emit(&Event::Revoke {
            secret: Some("db"),
            lease_id: Some("database/creds/app/XyZ"),
            reason: crate::events::RevokeReason::Shutdown,
            outcome: Outcome::Ok,
        });
        let text = m.render();
        assert!(text.contains("shroud_revocations_total{kind=\"lease\",result=\"ok\"} 1"));
        assert!(line(&text, "shroud_lease_expiry_seconds{").is_none());
    }

    #[test]
    fn revoking_a_rotated_out_lease_keeps_the_new_leases_expiry() {
        let m = Metrics::new().unwrap();
        let fetch = |lease_id| Event::Fetch {
            secret: "db",
            path: "database/creds/app",
            lease_id: Some(lease_id),
            outcome: Outcome::Ok,
        };
        let revoke = |lease_id| Event::Revoke {
            secret: Some("db"),
            lease_id: Some(lease_id),
            reason: crate::events::RevokeReason::Shutdown,
            outcome: Outcome::Ok,
        };
        let ttl = Event::LeaseTtl {
            secret: "db",
            seconds: 30.0,
        };
        m.emit(&fetch("database/creds/app/old"));
        m.emit(&ttl);
        // Rotation: the new lease is fetched, then the old one revoked.
        m.emit(&fetch("database/creds/app/new"));
        m.emit(&ttl);
        m.emit(&revoke("database/creds/app/old"));
        assert!(line(&m.render(), "shroud_lease_expiry_seconds{secret=\"db\"} ").is_some());
        // Shutdown: the current lease is revoked.
        m.emit(&revoke("database/creds/app/new"));
        assert!(line(&m.render(), "shroud_lease_expiry_seconds{").is_none());
    }

    #[test]
    fn stream_counters_are_read_at_scrape_time_and_summed() {
        let m = Metrics::new().unwrap();
        let a = Arc::new(StreamCounters::default());
        let b = Arc::new(StreamCounters::default());
        m.attach_stream(Stream::Stdout, a.clone());
        m.attach_stream(Stream::Stdout, b.clone());
        a.bytes.store(100, Ordering::Relaxed);
        b.bytes.store(23, Ordering::Relaxed);
        a.masked.store(2, Ordering::Relaxed);
        let text = m.render();
        assert!(
            text.contains("shroud_stream_bytes_total{stream=\"stdout\"} 123"),
            "{text}"
        );
        assert!(text.contains("shroud_stream_masked_total{stream=\"stdout\"} 2"));
        a.bytes.store(200, Ordering::Relaxed);
        assert!(m
            .render()
            .contains("shroud_stream_bytes_total{stream=\"stdout\"} 223"));
    }
}
