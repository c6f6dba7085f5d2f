//! How much of shroud's memory is locked in RAM, read at scrape time from
//! [`crate::harden`], `/proc/self/status` (`VmLck`) and the locked arena.

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, IntCounter, IntGauge, Opts};

use crate::harden::{memory_locked, MemoryLock};

const LOCKED_NAME: &str = "shroud_memory_locked";
const LOCKED_HELP: &str = "1 when all of shroud's memory is locked (mlockall), 0 when it is not (no IPC_LOCK and a limited RLIMIT_MEMLOCK, e.g. Pod Security restricted: see shroud_memory_locked_bytes for the part that is).";
const BYTES_NAME: &str = "shroud_memory_locked_bytes";
const BYTES_HELP: &str =
    "Bytes of shroud's memory locked in RAM (VmLck of /proc/self/status at scrape time).";
const UNLOCKED_NAME: &str = "shroud_memory_unlocked_bytes_total";
const UNLOCKED_HELP: &str = "Bytes of heap blocks served from unlocked memory because the locked arena was full (stays 0 when all memory is locked).";

/// The three memory-lock series, built afresh at each scrape.
pub(super) struct MemlockCollector {
    /// Templates for the descriptors.
    locked: Gauge,
    bytes: IntGauge,
    unlocked: IntCounter,
}

impl MemlockCollector {
    pub(super) fn new() -> prometheus::Result<Self> {
        Ok(MemlockCollector {
            locked: Gauge::with_opts(Opts::new(LOCKED_NAME, LOCKED_HELP))?,
            bytes: IntGauge::with_opts(Opts::new(BYTES_NAME, BYTES_HELP))?,
            unlocked: IntCounter::with_opts(Opts::new(UNLOCKED_NAME, UNLOCKED_HELP))?,
        })
    }
}

impl Collector for MemlockCollector {
    fn desc(&self) -> Vec<&Desc> {
        let mut d = self.locked.desc();
        d.extend(self.bytes.desc());
        d.extend(self.unlocked.desc());
        d
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let (Ok(locked), Ok(bytes), Ok(unlocked)) = (
            Gauge::with_opts(Opts::new(LOCKED_NAME, LOCKED_HELP)),
            IntGauge::with_opts(Opts::new(BYTES_NAME, BYTES_HELP)),
            IntCounter::with_opts(Opts::new(UNLOCKED_NAME, UNLOCKED_HELP)),
        ) else {
            return Vec::new();
        };
        locked.set(match memory_locked() {
            Some(MemoryLock::All) => 1.0,
            Some(MemoryLock::Partial | MemoryLock::Nothing) => 0.0,
            None => f64::NAN,
        });
        let vm_lck = crate::harden::proc_status_kib("VmLck").map_or(0, |kib| kib * 1024);
        bytes.set(i64::try_from(vm_lck).unwrap_or(i64::MAX));
        unlocked.inc_by(crate::locked_arena::stats().spilled_bytes);
        let mut out = locked.collect();
        out.extend(bytes.collect());
        out.extend(unlocked.collect());
        out
    }
}
