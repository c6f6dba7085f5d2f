//! `shroud webhook`: loads the configuration and certificate, then serves
//! admission reviews over HTTPS until SIGTERM or SIGINT.

use std::sync::Arc;

use anyhow::Context as _;

use crate::cli::WebhookArgs;
use crate::error::usage;
use crate::webhook::config::WebhookConfig;
use crate::webhook::metrics::Metrics;
use crate::webhook::registry::metrics::RegistryMetrics;
use crate::webhook::registry::{creds, Resolver};
use crate::webhook::server::{self, App};
use crate::webhook::tls::{self, ReloadingCert};

/// Runs the command.
pub fn run(args: WebhookArgs) -> anyhow::Result<i32> {
    let config = match &args.config {
        Some(path) => WebhookConfig::load(path).map_err(usage)?,
        None => WebhookConfig::default(),
    };
    let cert = Arc::new(ReloadingCert::new(&args.tls_cert, &args.tls_key).map_err(usage)?);
    let metrics = Metrics::new();
    let reloads = metrics.tls_reloads.clone();
    let _watcher = tls::watch(cert.clone(), move |result| match result {
        Ok(true) => {
            reloads.with_label_values(&["ok"]).inc();
            tracing::info!("serving certificate reloaded");
        }
        Ok(false) => {}
        Err(e) => {
            reloads.with_label_values(&["error"]).inc();
            tracing::warn!(error = %e, "certificate reload failed; still serving the previous one");
        }
    })?;
    let tls_config = Arc::new(tls::server_config(cert));
    let resolver = Resolver::new(
        &config.registry,
        RegistryMetrics::register(metrics.registry()),
        config.server.max_concurrent_reviews,
    )
    .map_err(usage)?;
    if let Some(path) = &config.registry.docker_config {
        // Fail at start, not at the first pod: the file must exist and parse.
        creds::lookup(path, "").map_err(usage)?;
    }
    let app = Arc::new(App::new(config, metrics, resolver));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("shroud-webhook")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| usage(anyhow::anyhow!("--listen {}: {e}", args.listen)))?;
        let local = listener.local_addr()?;
        tracing::info!(address = %local, "shroud webhook listening");
        eprintln!("shroud webhook listening on https://{local}");
        server::serve(listener, tls_config, app, shutdown_signal()).await;
        tracing::info!("shroud webhook stopped");
        Ok(0)
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
