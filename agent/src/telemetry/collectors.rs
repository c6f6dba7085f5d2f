//! Collectors whose values are computed at scrape time: the redacting streams'
//! counters (owned by the pumps) and the time left on each lease (a deadline, so
//! the gauge counts down between renewals).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, IntCounterVec, Opts};

use super::metrics::{counter, Stream};
use crate::pump::StreamCounters;

/// Reads the attached [`StreamCounters`] at scrape time.
pub(super) struct StreamCollector {
    /// Templates: give the descriptors, and the options for each scrape's copy.
    bytes: IntCounterVec,
    masked: IntCounterVec,
    attached: Mutex<Vec<(Stream, Arc<StreamCounters>)>>,
}

const BYTES_NAME: &str = "shroud_stream_bytes_total";
const BYTES_HELP: &str = "Bytes of workload output read by the redactor, by stream.";
const MASKED_NAME: &str = "shroud_stream_masked_total";
const MASKED_HELP: &str =
    "Masks written into workload output (overlapping occurrences count once), by stream.";

impl StreamCollector {
    pub(super) fn new() -> prometheus::Result<Self> {
        Ok(StreamCollector {
            bytes: counter(BYTES_NAME, BYTES_HELP, &["stream"])?,
            masked: counter(MASKED_NAME, MASKED_HELP, &["stream"])?,
            attached: Mutex::new(Vec::new()),
        })
    }

    pub(super) fn attach(&self, stream: Stream, counters: Arc<StreamCounters>) {
        self.attached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((stream, counters));
    }
}

impl Collector for StreamCollector {
    fn desc(&self) -> Vec<&Desc> {
        let mut d = self.bytes.desc();
        d.extend(self.masked.desc());
        d
    }

    fn collect(&self) -> Vec<MetricFamily> {
        // A fresh vector per scrape, filled with the counters' current totals: the
        // counters live in the pumps, so there is nothing to increment here.
        let (Ok(bytes), Ok(masked)) = (
            counter(BYTES_NAME, BYTES_HELP, &["stream"]),
            counter(MASKED_NAME, MASKED_HELP, &["stream"]),
        ) else {
            return Vec::new();
        };
        for (stream, c) in self
            .attached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            bytes
                .with_label_values(&[stream.label()])
                .inc_by(c.bytes.load(Ordering::Relaxed));
            masked
                .with_label_values(&[stream.label()])
                .inc_by(c.masked.load(Ordering::Relaxed));
        }
        let mut out = bytes.collect();
        out.extend(masked.collect());
        out
    }
}

/// Lets the registry own a collector that `Metrics` also keeps.
pub(super) struct Shared<C>(pub Arc<C>);

impl<C: Collector> Collector for Shared<C> {
    fn desc(&self) -> Vec<&Desc> {
        self.0.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.0.collect()
    }
}

const EXPIRY_NAME: &str = "shroud_lease_expiry_seconds";
const EXPIRY_HELP: &str =
    "Seconds until the secret's lease expires (negative once expired without renewal).";

/// When each secret's lease expires; reported as seconds left at scrape time.
pub(super) struct LeaseExpiry {
    template: GaugeVec,
    deadlines: Mutex<BTreeMap<String, Instant>>,
    /// The lease each secret's deadline belongs to (from its last fetch), so
    /// that revoking a rotated-out lease keeps the new lease's series.
    leases: Mutex<BTreeMap<String, String>>,
}

impl LeaseExpiry {
    pub(super) fn new() -> prometheus::Result<Self> {
        Ok(LeaseExpiry {
            template: GaugeVec::new(Opts::new(EXPIRY_NAME, EXPIRY_HELP), &["secret"])?,
            deadlines: Mutex::new(BTreeMap::new()),
            leases: Mutex::new(BTreeMap::new()),
        })
    }

    /// The lease of `secret` has `left` to live from now.
    pub(super) fn set(&self, secret: &str, left: Duration) {
        self.deadlines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(secret.to_string(), Instant::now() + left);
    }

    /// `secret` was fetched with lease `lease_id`: later deadlines are that lease's.
    pub(super) fn fetched(&self, secret: &str, lease_id: &str) {
        self.leases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(secret.to_string(), lease_id.to_string());
    }

    /// A lease of `secret` was revoked: drop the series when it was the current
    /// lease (or when the lease is unknown), not when a rotation revoked the
    /// lease it replaced.
    pub(super) fn forget(&self, secret: &str, lease_id: Option<&str>) {
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        let current = leases.get(secret).map(String::as_str);
        if lease_id.is_some() && current.is_some() && current != lease_id {
            return;
        }
        leases.remove(secret);
        self.deadlines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(secret);
    }
}

impl Collector for LeaseExpiry {
    fn desc(&self) -> Vec<&Desc> {
        self.template.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Ok(gauge) = GaugeVec::new(Opts::new(EXPIRY_NAME, EXPIRY_HELP), &["secret"]) else {
            return Vec::new();
        };
        let now = Instant::now();
        for (secret, deadline) in self
            .deadlines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let left = if *deadline >= now {
                (*deadline - now).as_secs_f64()
            } else {
                -(now - *deadline).as_secs_f64()
            };
            gauge.with_label_values(&[secret]).set(left);
        }
        gauge.collect()
    }
}
