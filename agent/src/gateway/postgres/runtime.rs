//! Where a postgres gateway's relays and upstream TLS sessions run: one
//! worker thread with a current-thread runtime (`gateway::workers`) for all
//! its connections, as PgBouncer's one event loop.
//!
//! One worker, not two: a relay step is a read and a write on one task,
//! which gives a second thread nothing to do but wake-ups. With two
//! work-stealing workers the one that took the I/O events woke the other to
//! steal (a futex wake and a context switch per transaction under load): the
//! relay's CPU per select-only transaction was 2–22 % higher than on one
//! worker (docs/gateway.md, "one relay thread, no split halves").

use std::sync::atomic::Ordering;

use tracing::warn;

use crate::gateway::stats::Stats;
use crate::gateway::workers::Workers;

/// The relay's threads.
const WORKERS: usize = 1;

/// Starts the worker of gateway `name`.
pub fn start(name: &str) -> std::io::Result<Workers> {
    Workers::start(WORKERS, &format!("gateway-{name}-relay"))
}

/// Ends `workers` once the gateway's connections are closed. A connection
/// still counted may be a login on its own thread, which would use the
/// runtime's timers after the end (a panic): the worker is then left to the
/// process's exit, which the stop precedes.
pub fn stop(name: &str, workers: Option<Workers>, stats: &Stats) {
    let Some(mut workers) = workers else {
        return;
    };
    let open = stats.open.load(Ordering::SeqCst);
    if open == 0 {
        workers.stop();
    } else {
        warn!(gateway = %name, connections = open, "connections still open after the stop; their runtime is left running");
        workers.abandon();
    }
}
