//! `shroud run`: agent and supervisor in one process. Render, run the command
//! with redacted output, and when it ends wipe, revoke and exit with its status.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use tracing::{info, warn};

use crate::agent::child::{self, ChildPid};
use crate::agent::Wake;
use crate::cli::RunArgs;
use crate::config::OnRotate;
use crate::error::Exit;
use crate::events::{self, Event};
use crate::live::LiveSet;
use crate::pump::PumpConfig;

pub fn run(args: RunArgs) -> anyhow::Result<i32> {
    let cfg = Arc::new(super::load_config(args.config.as_deref())?);
    super::harden();
    let observers = crate::agent::observe::install(&cfg)?;
    let (tx, rx) = mpsc::channel();
    crate::agent::wake::forward_signals(tx.clone())?;
    let live = Arc::new(LiveSet::new(shroud_redactor::SecretSet::empty()));
    crate::logging::set_live(live.clone());
    let pid = ChildPid::default();
    let hook_pid = pid.clone();
    let on_rotate = cfg.lifecycle.on_rotate.clone();
    if on_rotate == OnRotate::Restart {
        warn!("on_rotate = \"restart\" is not supported by `shroud run` yet; the command keeps running");
    }
    let hook: crate::agent::engine::OnPublish = Box::new(move || {
        if let OnRotate::Signal(sig) = on_rotate {
            hook_pid.signal(sig);
        }
    });
    let mut engine = super::start_engine(cfg.clone(), Some(live.clone()), Some(hook))?;
    let pump_config = PumpConfig {
        mask: cfg.redact.mask.as_bytes().to_vec(),
        ..PumpConfig::default()
    };
    let spawned = child::spawn(&args.command, engine.dir(), live, pump_config, tx);
    let running = match spawned {
        Ok(p) => p,
        Err(e) => {
            engine.shutdown();
            return Err(Exit {
                code: e.code,
                message: e.to_string(),
            }
            .into());
        }
    };
    let _ = (pid, &running);
    let code = loop {
        match engine.run(&rx) {
            Wake::ChildExited(code) => break code,
            Wake::Signal(sig) => {
                info!(signal = sig, "forwarding signal to the command");
                running.signal(sig);
                break wait_child(&rx, &running, &cfg);
            }
            Wake::ExitMarker => {}
        }
    };
    info!(code, "command ended; wiping and revoking");
    engine.shutdown();
    events::emit(Event::Exit { code });
    observers.finish();
    Ok(code)
}

/// Waits for the command after a forwarded signal; SIGKILL after
/// `exit_marker_timeout` or a second signal.
fn wait_child(rx: &mpsc::Receiver<Wake>, pid: &ChildPid, cfg: &crate::config::Config) -> i32 {
    let deadline = Instant::now() + cfg.lifecycle.exit_marker_timeout;
    let mut killed = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(if killed {
            std::time::Duration::from_secs(5)
        } else {
            left
        }) {
            Ok(Wake::ChildExited(code)) => return code,
            Ok(Wake::Signal(_)) | Err(mpsc::RecvTimeoutError::Timeout) if !killed => {
                warn!("command did not stop; killing it");
                pid.signal(libc::SIGKILL);
                killed = true;
            }
            Ok(_) => {}
            Err(_) => return 128 + libc::SIGKILL,
        }
    }
}
