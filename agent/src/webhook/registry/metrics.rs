//! Registry lookup metrics: results, and failures by reason (bounded labels only;
//! never an image name, which pods choose freely).

use prometheus::{IntCounterVec, IntGauge, Opts, Registry};

/// The counters, registered in the webhook's registry.
#[derive(Clone, Debug)]
pub struct RegistryMetrics {
    /// Images resolved, by `result`: `cached` (no round trip), `fetched`,
    /// `coalesced` (answered by another admission's fetch), `failed`.
    pub lookups: IntCounterVec,
    /// Failed lookups by `reason` (see `LookupError::reason`).
    pub failures: IntCounterVec,
    /// Lookups waiting now for a fetch another admission leads.
    pub waiting: IntGauge,
    /// Blocking registry fetches running now (each holds a permit).
    pub fetching: IntGauge,
}

impl RegistryMetrics {
    /// Creates the counters and registers them in `registry`.
    pub fn register(registry: &Registry) -> RegistryMetrics {
        let lookups = IntCounterVec::new(
            Opts::new(
                "shroud_webhook_registry_lookups_total",
                "Image entrypoint lookups, by result (cached, fetched, coalesced: answered by another admission's fetch of the same image, failed).",
            ),
            &["result"],
        )
        .expect("valid metric");
        let failures = IntCounterVec::new(
            Opts::new(
                "shroud_webhook_registry_failures_total",
                "Image entrypoint lookups that failed, by reason.",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let waiting = IntGauge::new(
            "shroud_webhook_registry_waiting_lookups",
            "Image entrypoint lookups waiting now for another admission's fetch of the same image.",
        )
        .expect("valid metric");
        let fetching = IntGauge::new(
            "shroud_webhook_registry_fetches_in_flight",
            "Blocking registry fetches running now, one per admission and registry host; each ends by its admission's registry.timeout.",
        )
        .expect("valid metric");
        for c in [&lookups, &failures] {
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
        }
        for g in [&waiting, &fetching] {
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
        }
        RegistryMetrics {
            lookups,
            failures,
            waiting,
            fetching,
        }
    }
}
