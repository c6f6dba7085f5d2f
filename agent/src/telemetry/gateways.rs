//! Per-gateway counters (kinds http and vault), read at scrape time:
//! `shroud_gateway_requests_total`, `shroud_gateway_received_bytes_total`,
//! `shroud_gateway_sent_bytes_total`, `shroud_gateway_upstream_errors_total`,
//! each with the gateway's name as its only label.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounterVec, Opts};

/// What a gateway counts; it increments them, the collector reads them.
#[derive(Debug, Default)]
pub struct GatewayCounters {
    /// Requests answered (refused ones included).
    pub requests: AtomicU64,
    /// Body bytes received from clients.
    pub received: AtomicU64,
    /// Body bytes sent to clients.
    pub sent: AtomicU64,
    /// Requests whose upstream could not be reached or failed (502, 504).
    pub upstream_errors: AtomicU64,
}

const METRICS: [(&str, &str); 4] = [
    (
        "shroud_gateway_requests_total",
        "Requests a gateway answered (refused ones included), by gateway.",
    ),
    (
        "shroud_gateway_received_bytes_total",
        "Request body bytes a gateway received from clients, by gateway.",
    ),
    (
        "shroud_gateway_sent_bytes_total",
        "Response body bytes a gateway sent to clients, by gateway.",
    ),
    (
        "shroud_gateway_upstream_errors_total",
        "Requests a gateway answered 502 or 504 (upstream unreachable, failed or slow), by gateway.",
    ),
];

/// Reads the attached [`GatewayCounters`] at scrape time.
pub(super) struct GatewayCollector {
    templates: Vec<IntCounterVec>,
    attached: Mutex<Vec<(String, Arc<GatewayCounters>)>>,
}

fn vecs() -> prometheus::Result<Vec<IntCounterVec>> {
    METRICS
        .iter()
        .map(|(name, help)| IntCounterVec::new(Opts::new(*name, *help), &["gateway"]))
        .collect()
}

impl GatewayCollector {
    pub(super) fn new() -> prometheus::Result<Self> {
        Ok(GatewayCollector {
            templates: vecs()?,
            attached: Mutex::new(Vec::new()),
        })
    }

    pub(super) fn attach(&self, gateway: &str, counters: Arc<GatewayCounters>) {
        self.attached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((gateway.to_string(), counters));
    }
}

impl Collector for GatewayCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.templates.iter().flat_map(|t| t.desc()).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Ok(out) = vecs() else {
            return Vec::new();
        };
        for (name, c) in self
            .attached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let values = [&c.requests, &c.received, &c.sent, &c.upstream_errors];
            for (vec, v) in out.iter().zip(values) {
                vec.with_label_values(&[name])
                    .inc_by(v.load(Ordering::Relaxed));
            }
        }
        out.iter().flat_map(|v| v.collect()).collect()
    }
}
