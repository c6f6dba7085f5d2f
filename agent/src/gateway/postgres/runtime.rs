//! The runtime a postgres gateway's relays and upstream TLS sessions run on:
//! two workers (the machine's cores) for all its connections, where the
//! relay once took two threads per connection.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::runtime::Runtime;
use tracing::warn;

use crate::gateway::stats::Stats;

/// Worker threads: a relay step is a read and a write, so two keep both
/// cores busy under load and cost little idle.
const WORKERS: usize = 2;
/// How long a stop lets the relays' tasks finish.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(1);

/// A new runtime for gateway `name`.
pub fn build(name: &str) -> std::io::Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .thread_name(format!("gateway-{name}-relay"))
        .enable_all()
        .build()
}

/// Ends `runtime` once the gateway's connections are closed. A connection
/// still counted may be a login on its own thread, which would use the
/// runtime's timers after the end (a panic): the runtime is then left to the
/// process's exit, which the stop precedes.
pub fn stop(name: &str, runtime: Option<Runtime>, stats: &Stats) {
    let Some(runtime) = runtime else {
        return;
    };
    let open = stats.open.load(Ordering::SeqCst);
    if open == 0 {
        runtime.shutdown_timeout(SHUTDOWN_WAIT);
    } else {
        warn!(gateway = %name, connections = open, "connections still open after the stop; their runtime is left running");
        std::mem::forget(runtime);
    }
}
