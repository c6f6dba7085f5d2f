//! `shroud agent`: render and maintain the secrets until SIGTERM/SIGINT or the
//! exec's exit marker, then wipe and revoke.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use tracing::{info, warn};

use crate::agent::{Engine, Wake};
use crate::cli::AgentArgs;
use crate::contract;
use crate::events::{self, Event};
use crate::live::LiveSet;

pub fn run(args: AgentArgs) -> anyhow::Result<i32> {
    crate::footprint::limit_malloc_arenas();
    let cfg = Arc::new(super::load_config(args.config.as_deref(), &args.overrides)?);
    super::harden();
    let observers = crate::agent::observe::install(&cfg)?;
    let (tx, rx) = mpsc::channel();
    let _signals = crate::agent::wake::forward_signals(tx.clone())?;
    // The agent's own log lines are masked with the values it publishes.
    let live = Arc::new(LiveSet::new(shroud_redactor::SecretSet::empty()));
    crate::logging::set_live(live.clone());
    let mut engine =
        super::start_engine(cfg.clone(), Some(live), None).inspect_err(|e| observers.fail(e))?;
    let mut gateways = match super::start_gateways(&cfg, &mut engine) {
        Ok(g) => g,
        Err(e) => {
            engine.shutdown();
            observers.fail(&e);
            return Err(e);
        }
    };
    engine.poll_exit_marker();
    // The watch is the fast path; the engine's once-a-second directory check is
    // the backstop (the directory may be deleted between the first render and
    // here, or later, and is then created again without this watch).
    let _watcher = match crate::agent::wake::watch_exit_marker(engine.dir(), tx) {
        Ok(w) => Some(w),
        Err(e) => {
            warn!(dir = %engine.dir().display(), error = %e, "cannot watch the directory for the exit marker; checking for it every second instead");
            None
        }
    };
    // Start-up is over: its code need not stay mapped (and locked) in every pod.
    crate::footprint::release_binary_pages();
    let reason = engine.run(&rx);
    if let Wake::Signal(sig) = reason {
        // One deadline from the signal: the wait for the workload, then the
        // revocation, whatever Vault does meanwhile.
        let l = &cfg.lifecycle;
        engine.stop_by(Instant::now() + l.exit_marker_timeout + l.revoke_timeout);
        wait_for_marker(&engine, &rx, &cfg, sig);
    }
    info!(reason = ?reason, "shutting down");
    // Connections through the gateways end before their credential is revoked.
    gateways.stop();
    engine.shutdown();
    events::emit(Event::Exit { code: 0 });
    observers.finish();
    Ok(0)
}

/// After SIGTERM, a workload that an exec is supervising may still be shutting
/// down with its credentials: wait for its exit marker (bounded), unless no exec
/// is listening or a second signal arrives.
fn wait_for_marker(
    engine: &Engine,
    rx: &mpsc::Receiver<Wake>,
    cfg: &crate::config::Config,
    sig: i32,
) {
    let dir = engine.dir();
    // An exec killed outright leaves its ack file behind, unlocked: no workload
    // is left to wait for there.
    let execs = !contract::live_acks(dir).is_empty();
    if !execs || contract::has_exited(dir) {
        return;
    }
    info!(signal = sig, timeout = ?cfg.lifecycle.exit_marker_timeout, "waiting for the workload's exit marker");
    let deadline = Instant::now() + cfg.lifecycle.exit_marker_timeout;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(Wake::ExitMarker | Wake::Signal(_)) | Err(_) => return,
            Ok(Wake::ChildExited(_) | Wake::Stopping(_)) => {}
        }
    }
}
