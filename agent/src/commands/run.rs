//! `shroud run`: agent and exec in one process. Render, supervise the command
//! with exec's supervisor (its output masked with the set the agent swaps), and
//! when it ends wipe, revoke and exit with its status.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info};

use crate::agent::Wake;
use crate::cli::RunArgs;
use crate::events::{self, Event};
use crate::exec::{supervise, ExecOptions, OutputCounters, Rotated};
use crate::live::LiveSet;
use crate::pump::PumpConfig;

pub fn run(args: RunArgs) -> anyhow::Result<i32> {
    let cfg = Arc::new(super::load_config(args.config.as_deref(), &args.overrides)?);
    super::harden();
    let observers = crate::agent::observe::install(&cfg)?;
    let (tx, rx) = mpsc::channel();
    // Until the supervisor takes over SIGTERM/SIGINT (it owns them while the
    // command runs), a signal must still lead to a clean shutdown.
    crate::agent::wake::forward_signals(tx.clone())?;
    let live = Arc::new(LiveSet::new(shroud_redactor::SecretSet::empty()));
    crate::logging::set_live(live.clone());
    let (rotated_tx, rotated_rx) = mpsc::channel();
    let hook: crate::agent::engine::OnPublish = Box::new(move || {
        let _ = rotated_tx.send(Rotated { generation: None });
    });
    let mut engine = super::start_engine(cfg.clone(), Some(live.clone()), Some(hook))
        .inspect_err(|e| observers.fail(e))?;
    if let Ok(Wake::Signal(sig)) = rx.try_recv() {
        info!(signal = sig, "stopped before the command started");
        engine.shutdown();
        events::emit(Event::Exit { code: 128 + sig });
        observers.finish();
        return Ok(128 + sig);
    }
    // The supervisor has no environment option; set it before any child exists.
    std::env::set_var("SHROUD_SECRETS_DIR", engine.dir());
    let counters = Arc::new(OutputCounters::default());
    observers.attach_output(&counters, crate::exec::uses_pty(args.tty));
    let opts = ExecOptions {
        command: args.command.iter().map(Into::into).collect(),
        tty: args.tty,
        pump: PumpConfig {
            mask: cfg.redact.mask.as_bytes().to_vec(),
            strict: cfg.redact.strict,
            ..PumpConfig::default()
        },
        on_rotate: cfg.lifecycle.on_rotate,
        drain_timeout: Duration::from_secs(2),
        kill_grace: cfg.lifecycle.exit_marker_timeout,
        exit_marker: None,
        counters,
    };
    let spawned = std::thread::Builder::new()
        .name("supervise".into())
        .spawn(move || {
            let code = match supervise(opts, live, Some(rotated_rx)) {
                Ok(code) => code,
                Err(e) => {
                    error!("{e:#}");
                    crate::error::exit_code(&e)
                }
            };
            let _ = tx.send(Wake::ChildExited(code));
        });
    let supervisor = match spawned {
        Ok(handle) => handle,
        Err(e) => {
            engine.shutdown();
            return Err(anyhow::Error::new(e).context("starting the supervisor thread"));
        }
    };
    let code = loop {
        match engine.run(&rx) {
            Wake::ChildExited(code) => break code,
            Wake::Signal(sig) => {
                // Caught by our handler in the moment before the supervisor
                // installed its own: hand it on once the supervisor owns it.
                std::thread::sleep(Duration::from_millis(20));
                let _ = nix::sys::signal::raise(
                    nix::sys::signal::Signal::try_from(sig)
                        .unwrap_or(nix::sys::signal::Signal::SIGTERM),
                );
            }
            Wake::ExitMarker => {}
        }
    };
    let _ = supervisor.join();
    info!(code, "command ended; wiping and revoking");
    engine.shutdown();
    events::emit(Event::Exit { code });
    observers.finish();
    Ok(code)
}
