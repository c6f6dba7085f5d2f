//! The gateways' counters (docs/gateway.md) as Prometheus metrics, read at
//! scrape time from `gateway::stats`: the same set for every kind (postgres,
//! http, vault), plus `requests_total` for the kinds that answer requests.
//! Labels: `gateway` (its configured name) and fixed words (`kind`, `result`).

use std::sync::atomic::Ordering;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounterVec, IntGaugeVec, Opts};

use super::metrics::counter;
use crate::gateway::stats;

const OPEN: (&str, &str) = (
    "shroud_gateway_connections_open",
    "Client connections a gateway holds open now.",
);
const TOTAL: (&str, &str) = (
    "shroud_gateway_connections_total",
    "Client connections a gateway accepted.",
);
const UP: (&str, &str) = (
    "shroud_gateway_upstream_bytes_total",
    "Bytes a gateway copied from its clients to the upstream server (after the login).",
);
const DOWN: (&str, &str) = (
    "shroud_gateway_client_bytes_total",
    "Bytes a gateway copied from the upstream server to its clients (after the login).",
);
const ERRORS: (&str, &str) = (
    "shroud_gateway_errors_total",
    "Client connections a gateway ended with an error, by kind.",
);
const REQUESTS: (&str, &str) = (
    "shroud_gateway_requests_total",
    "Requests an http or vault gateway answered (refused ones included).",
);
const LOGINS: (&str, &str) = (
    "shroud_gateway_upstream_logins_total",
    "Logins a gateway made to the upstream server with the current credential, by result.",
);

/// Reads every gateway's counters at scrape time.
pub(super) struct GatewayCollector {
    templates: Vec<Box<dyn Collector>>,
}

struct Fresh {
    open: IntGaugeVec,
    total: IntCounterVec,
    up: IntCounterVec,
    down: IntCounterVec,
    errors: IntCounterVec,
    logins: IntCounterVec,
    requests: IntCounterVec,
}

fn fresh() -> prometheus::Result<Fresh> {
    Ok(Fresh {
        open: IntGaugeVec::new(Opts::new(OPEN.0, OPEN.1), &["gateway"])?,
        total: counter(TOTAL.0, TOTAL.1, &["gateway"])?,
        up: counter(UP.0, UP.1, &["gateway"])?,
        down: counter(DOWN.0, DOWN.1, &["gateway"])?,
        errors: counter(ERRORS.0, ERRORS.1, &["gateway", "kind"])?,
        logins: counter(LOGINS.0, LOGINS.1, &["gateway", "result"])?,
        requests: counter(REQUESTS.0, REQUESTS.1, &["gateway"])?,
    })
}

impl GatewayCollector {
    pub(super) fn new() -> prometheus::Result<Self> {
        let f = fresh()?;
        Ok(GatewayCollector {
            templates: vec![
                Box::new(f.open),
                Box::new(f.total),
                Box::new(f.up),
                Box::new(f.down),
                Box::new(f.errors),
                Box::new(f.logins),
                Box::new(f.requests),
            ],
        })
    }
}

impl Collector for GatewayCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.templates.iter().flat_map(|t| t.desc()).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let all = stats::all();
        if all.is_empty() {
            return Vec::new();
        }
        let Ok(f) = fresh() else {
            return Vec::new();
        };
        for (name, s) in &all {
            let n = name.as_str();
            let open = i64::try_from(s.open.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
            f.open.with_label_values(&[n]).set(open);
            f.total
                .with_label_values(&[n])
                .inc_by(s.total.load(Ordering::Relaxed));
            f.up.with_label_values(&[n])
                .inc_by(s.to_upstream.load(Ordering::Relaxed));
            f.down
                .with_label_values(&[n])
                .inc_by(s.to_client.load(Ordering::Relaxed));
            for (kind, v) in s.errors() {
                f.errors.with_label_values(&[n, kind.label()]).inc_by(v);
            }
            for (result, v) in s.logins() {
                f.logins.with_label_values(&[n, result.label()]).inc_by(v);
            }
            if s.per_request.load(Ordering::Relaxed) {
                f.requests
                    .with_label_values(&[n])
                    .inc_by(s.requests.load(Ordering::Relaxed));
            }
        }
        let mut out = f.open.collect();
        for c in [&f.total, &f.up, &f.down, &f.errors, &f.logins, &f.requests] {
            out.extend(c.collect());
        }
        out
    }
}
