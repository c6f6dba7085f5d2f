//! The webhook's Prometheus metrics. Labels are namespaces and rule names only:
//! never a pod's annotation values or anything read from Vault. Namespaces come
//! from the request, so they are bounded: a name that is not a namespace name is
//! `invalid`, and past `server.max_metric_namespaces` distinct ones, `other`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use prometheus::{
    Encoder as _, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

/// The webhook's metrics and their registry.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    /// Pods patched, by namespace.
    pub injections: IntCounterVec,
    /// Pods denied, by namespace and rule.
    pub denials: IntCounterVec,
    /// Admission requests, by result (`injected`, `denied`, `skipped`, `invalid`).
    pub requests: IntCounterVec,
    /// Time to answer an admission request.
    pub latency: HistogramVec,
    /// Certificate reloads, by result (`ok`, `error`).
    pub tls_reloads: IntCounterVec,
    namespaces: Arc<Mutex<HashSet<String>>>,
    namespace_cap: Arc<AtomicUsize>,
}

/// The label for namespaces past the cap.
pub const OTHER_NAMESPACE: &str = "other";
/// The label for a namespace field that is not a namespace name.
pub const INVALID_NAMESPACE: &str = "invalid";

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let injections = IntCounterVec::new(
            Opts::new(
                "shroud_webhook_injections_total",
                "Pods injected with shroud, by namespace.",
            ),
            &["namespace"],
        )
        .expect("valid metric");
        let denials = IntCounterVec::new(
            Opts::new(
                "shroud_webhook_denials_total",
                "Pods denied, by namespace and rule.",
            ),
            &["namespace", "rule"],
        )
        .expect("valid metric");
        let requests = IntCounterVec::new(
            Opts::new(
                "shroud_webhook_requests_total",
                "Admission requests, by result.",
            ),
            &["result"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "shroud_webhook_request_duration_seconds",
                "Time from request received to response ready, by path.",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
            &["path"],
        )
        .expect("valid metric");
        let tls_reloads = IntCounterVec::new(
            Opts::new(
                "shroud_webhook_tls_reloads_total",
                "Certificate reloads, by result.",
            ),
            &["result"],
        )
        .expect("valid metric");
        for c in [&injections, &denials, &requests, &tls_reloads] {
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
        }
        registry
            .register(Box::new(latency.clone()))
            .expect("unique metric");
        Metrics {
            registry,
            injections,
            denials,
            requests,
            latency,
            tls_reloads,
            namespaces: Arc::default(),
            namespace_cap: Arc::new(AtomicUsize::new(500)),
        }
    }

    /// The registry the metrics live in, for other parts to register theirs.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Sets how many distinct namespaces get their own label.
    pub fn set_namespace_cap(&self, cap: usize) {
        self.namespace_cap.store(cap, Ordering::Relaxed);
    }

    /// The label value for `namespace`: itself while the set of labels is under
    /// its cap, `other` after, `invalid` when it is not a DNS label.
    pub fn namespace_label(&self, namespace: &str) -> String {
        let valid = !namespace.is_empty()
            && namespace.len() <= 63
            && namespace
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            return INVALID_NAMESPACE.into();
        }
        let mut seen = self.namespaces.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains(namespace) {
            return namespace.into();
        }
        if seen.len() < self.namespace_cap.load(Ordering::Relaxed) {
            seen.insert(namespace.to_string());
            return namespace.into();
        }
        OTHER_NAMESPACE.into()
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encoding to a Vec cannot fail");
        out
    }
}
