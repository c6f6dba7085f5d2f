//! Wiring the observability parts (metrics and health endpoints, audit trail and
//! its signer) to the agent's events, from `[metrics] listen` and `[audit]`. The agent
//! itself only emits events; this module installs the sinks that listen.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;

use crate::audit::{Audit, AuditTarget};
use crate::config::Config;
use crate::error::usage;
use crate::events::{self, Event, EventSink, Outcome};
use crate::telemetry::{self, Health, Metrics, Stream};

/// Flips the `/readyz` flags from events: ready after the first render, token
/// valid after a login or renewal that worked.
#[derive(Debug)]
struct HealthSink(Arc<Health>);

impl EventSink for HealthSink {
    fn emit(&self, event: &Event<'_>) {
        match event {
            Event::Login { outcome, .. } | Event::TokenRenew { outcome } => {
                if *outcome == Outcome::Ok {
                    self.0.set_token_valid(true);
                } else if matches!(outcome, Outcome::Denied(_)) {
                    self.0.set_token_valid(false);
                }
            }
            Event::Ready => self.0.set_rendered(true),
            Event::Publish { outcome, .. } => self.0.set_publish_failed(*outcome != Outcome::Ok),
            Event::Revoke {
                secret: None,
                lease_id: None,
                outcome: Outcome::Ok,
                ..
            } => self.0.set_token_valid(false),
            _ => {}
        }
    }
}

/// The installed sinks; keep alive for the life of the process.
#[derive(Debug)]
pub struct Observers {
    audit: Option<Arc<Audit>>,
    metrics: Option<Arc<Metrics>>,
    /// The metrics server's local address, when one is listening.
    pub metrics_addr: Option<SocketAddr>,
}

impl Observers {
    /// Exports the supervised command's output counters (run mode) as the
    /// `shroud_stream_*` metrics; in tty mode everything is on `stdout`'s counters.
    pub fn attach_output(&self, counters: &crate::exec::OutputCounters, tty: bool) {
        if let Some(m) = &self.metrics {
            let first = if tty { Stream::Tty } else { Stream::Stdout };
            m.attach_stream(first, counters.stdout.clone());
            if !tty {
                m.attach_stream(Stream::Stderr, counters.stderr.clone());
            }
        }
    }

    /// The agent could not start: records the exit (with the code the process
    /// will exit with) and closes the audit trail.
    pub fn fail(&self, error: &anyhow::Error) {
        events::emit(Event::Exit {
            code: crate::error::exit_code(error),
        });
        self.finish();
    }

    /// Closes the audit trail (fsync, logs its head hash).
    pub fn finish(&self) {
        if let Some(a) = &self.audit {
            a.finish();
        }
    }
}

/// Installs metrics (and serves them when `[metrics] listen` is set) and the
/// audit trail (when `[audit] path` is set).
pub fn install(cfg: &Config) -> anyhow::Result<Observers> {
    let mut observers = Observers {
        audit: None,
        metrics: None,
        metrics_addr: None,
    };
    if let Some(path) = &cfg.audit_path {
        let audit = Audit::open(&AuditTarget::from_config(path)).map_err(|e| {
            usage(anyhow::Error::new(e).context(format!("{}: [audit] path", cfg.origin)))
        })?;
        if let Some(signing) = &cfg.audit_signing {
            let signer =
                crate::signing::HeadSession::new(cfg, signing.key.clone()).map_err(|e| {
                    usage(
                        anyhow::Error::new(e).context(format!("{}: [audit] sign_key", cfg.origin)),
                    )
                })?;
            audit.enable_signing(Box::new(signer), signing.every, signing.interval);
        }
        events::install(audit.clone());
        observers.audit = Some(audit);
    }
    let Some(listen) = &cfg.metrics_listen else {
        return Ok(observers);
    };
    let addr: SocketAddr = listen.parse().map_err(|_| {
        usage(anyhow::anyhow!(
            "{}: [metrics] listen: `{listen}` is not an address like 127.0.0.1:9102",
            cfg.origin
        ))
    })?;
    let metrics = Metrics::new().context("creating metrics")?;
    events::install(metrics.clone());
    observers.metrics = Some(metrics.clone());
    let health = Arc::new(Health::default());
    events::install(Arc::new(HealthSink(health.clone())));
    observers.metrics_addr = Some(
        serve(addr, &metrics, health)
            .with_context(|| format!("[metrics] listen: cannot bind {addr}"))?,
    );
    Ok(observers)
}

/// `shroud exec --metrics-listen`: serves the command's stream counters (and
/// RSS). `/readyz` is 200 from the start: exec has loaded its secrets by then and
/// holds no Vault token.
pub fn serve_exec(
    listen: &str,
    counters: &crate::exec::OutputCounters,
    tty: bool,
) -> anyhow::Result<SocketAddr> {
    let addr: SocketAddr = listen.parse().map_err(|_| {
        usage(anyhow::anyhow!(
            "--metrics-listen: `{listen}` is not an address like 127.0.0.1:9102"
        ))
    })?;
    let metrics = Metrics::new().context("creating metrics")?;
    let observers = Observers {
        audit: None,
        metrics: Some(metrics.clone()),
        metrics_addr: None,
    };
    observers.attach_output(counters, tty);
    let health = Arc::new(Health::default());
    health.set_rendered(true);
    health.set_token_valid(true);
    serve(addr, &metrics, health)
        .map_err(|e| usage(e.context(format!("--metrics-listen: cannot bind {addr}"))).into())
}

/// Binds `addr` and serves `metrics` and `health` on a thread of its own.
fn serve(addr: SocketAddr, metrics: &Metrics, health: Arc<Health>) -> anyhow::Result<SocketAddr> {
    // A one-thread runtime on its own thread: the agent's own loop is blocking
    // and must not be delayed by scrapes, nor scrapes by a slow Vault.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("starting the metrics runtime")?;
    let server = rt.block_on(telemetry::Server::bind(addr))?;
    let local = server.local_addr().unwrap_or(addr);
    let registry = metrics.registry();
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            if let Err(e) = rt.block_on(server.run(registry, health)) {
                tracing::error!(error = %e, "metrics server stopped");
            }
        })
        .context("starting the metrics thread")?;
    Ok(local)
}
