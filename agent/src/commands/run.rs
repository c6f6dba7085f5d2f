//! `shroud run`: agent and exec in one process. Render, supervise the command
//! with exec's supervisor (its output masked with the set the agent swaps), and
//! when it ends wipe, revoke and exit with its status.

use std::sync::mpsc;
use std::sync::Arc;

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
    let _signals = crate::agent::wake::forward_signals(tx.clone())?;
    let live = Arc::new(LiveSet::new(shroud_redactor::SecretSet::empty()));
    live.remember_base(cfg.redact.lengths(), std::iter::empty());
    let detection = super::detection(
        &args.detection,
        &cfg.redact.detect,
        &cfg.redact.env,
        &cfg.redact.mask,
    )?;
    super::log_env_names(&crate::envmask::register(
        &live,
        &detection.env,
        std::env::vars_os(),
    ));
    let detectors = detection.detectors;
    crate::logging::set_live(live.clone());
    let (rotated_tx, rotated_rx) = mpsc::channel();
    let hook: crate::agent::engine::OnPublish = Box::new(move || {
        let _ = rotated_tx.send(Rotated { generation: None });
    });
    let mut engine = super::start_engine(cfg.clone(), Some(live.clone()), Some(hook))
        .inspect_err(|e| observers.fail(e))?;
    let mut gateways = match super::start_gateways(&cfg, &mut engine) {
        Ok(g) => g,
        Err(e) => {
            engine.shutdown();
            observers.fail(&e);
            return Err(e);
        }
    };
    // Hand the signals over to the supervisor: from here they wait for it, so
    // one that arrives while it starts reaches the command. One that came
    // before is a stop.
    crate::signals::hold();
    if let Ok(Wake::Signal(sig)) = rx.try_recv() {
        info!(signal = sig, "stopped before the command started");
        gateways.stop();
        engine.shutdown();
        events::emit(Event::Exit { code: 128 + sig });
        observers.finish();
        return Ok(128 + sig);
    }
    let (stop_tx, stop_rx) = mpsc::channel();
    let wake = tx.clone();
    let notice = std::thread::Builder::new()
        .name("stop-notice".into())
        .spawn(move || {
            for at in stop_rx {
                let _ = wake.send(Wake::Stopping(at));
            }
        });
    if let Err(e) = notice {
        gateways.stop();
        engine.shutdown();
        return Err(anyhow::Error::new(e).context("starting the stop-notice thread"));
    }
    let counters = Arc::new(OutputCounters::default());
    observers.attach_output(&counters, crate::exec::uses_pty(args.tty));
    let opts = ExecOptions {
        env: vec![("SHROUD_SECRETS_DIR".into(), engine.dir().into())],
        tty: args.tty,
        pump: PumpConfig {
            mask: cfg.redact.mask.as_bytes().to_vec(),
            strict: cfg.redact.strict,
            detect: detectors,
            add_mask: crate::pump::AddMask::from_env(),
            ..PumpConfig::default()
        },
        on_rotate: cfg.lifecycle.on_rotate,
        kill_grace: cfg.lifecycle.exit_marker_timeout,
        kill_after_grace: true,
        stop_notice: Some(stop_tx),
        counters,
        ..ExecOptions::new(args.command.iter().map(Into::into).collect())
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
            gateways.stop();
            engine.shutdown();
            return Err(anyhow::Error::new(e).context("starting the supervisor thread"));
        }
    };
    let code = loop {
        match engine.run(&rx) {
            Wake::ChildExited(code) => break code,
            Wake::Stopping(at) => {
                let l = &cfg.lifecycle;
                engine.stop_by(at + l.exit_marker_timeout + l.revoke_timeout);
            }
            // Signals go to the supervisor since the handover above; run mode
            // has no exit marker to watch.
            Wake::Signal(_) | Wake::ExitMarker => {}
        }
    };
    let _ = supervisor.join();
    info!(code, "command ended; wiping and revoking");
    // Connections through the gateways end before their credential is revoked.
    gateways.stop();
    engine.shutdown();
    events::emit(Event::Exit { code });
    observers.finish();
    Ok(code)
}
