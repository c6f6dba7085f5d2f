//! `shroud exec`: load the secrets, watch the directory, supervise the command.

use std::sync::mpsc;
use std::sync::Arc;

use anyhow::Context as _;

use crate::cli::ExecArgs;
use crate::contract::Ack;
use crate::error::usage;
use crate::exec::watch::{self, Reload, SecretsWatcher, WatchError};
use crate::exec::{on_change, supervise, ExecOptions};
use crate::live::LiveSet;
use crate::pump::PumpConfig;
use crate::secrets_source::Sources;

pub fn run(args: ExecArgs) -> anyhow::Result<i32> {
    crate::footprint::limit_malloc_arenas();
    crate::harden::no_dumps();
    crate::harden::lock_memory();
    let r = &args.redaction;
    let sources = Sources {
        files: r.secret_files.clone(),
        dir: r.secrets_dir.clone(),
    };
    if let Some(dir) = &sources.dir {
        // With --wait-ready the directory may appear later (exec and the agent
        // started together); otherwise, or once it exists, unreadable or missing
        // is a usage error now, not a watch error later.
        if args.wait_ready {
            if dir.exists() {
                check_readable(dir)?;
            }
            if let Err(e) = watch::wait_ready(dir, args.ready_timeout) {
                let bad_path = matches!(e, WatchError::NotADirectory { .. });
                let e = anyhow::Error::from(e)
                    .context(format!("--wait-ready --secrets-dir {}", dir.display()));
                return Err(if bad_path { usage(e).into() } else { e });
            }
        }
        check_readable(dir)?;
    } else if args.wait_ready {
        return Err(usage(anyhow::anyhow!("--wait-ready needs --secrets-dir")).into());
    }

    let hooks =
        on_change::with_origins(args.on_change.clone(), &args.on_change_origin).map_err(usage)?;
    if !hooks.is_empty() && sources.dir.is_none() {
        return Err(usage(on_change::OnChangeError::NoDirectory).into());
    }
    on_change::check_shell(std::path::Path::new(on_change::SHELL), &hooks).map_err(usage)?;

    let (rotated_tx, rotated_rx) = mpsc::channel();
    // Watch before loading, so a change during the load is not missed.
    let watching = match &sources.dir {
        Some(dir) => Some((dir.clone(), SecretsWatcher::watch(dir).map_err(usage)?)),
        None => None,
    };
    let fingerprint = sources
        .dir
        .as_deref()
        .map(watch::fingerprint)
        .unwrap_or_default();
    // What the files hold as the command starts: their next contents are news.
    let file_hooks = sources
        .dir
        .as_deref()
        .filter(|_| !hooks.is_empty())
        .map(|dir| on_change::FileHooks::snapshot(dir, hooks));
    let (detect, env) = super::default_detection();
    let detection = super::detection(&args.detection, detect, &env, &r.mask)?;
    // The environment's values go into the first build (one build, not two).
    let env = crate::envmask::collect(&detection.env, std::env::vars_os(), r.min_length);
    let values = sources.read(r.min_length).map_err(usage)?;
    let (set, mut loaded) = values.build(r.lengths(), env.pairs());
    crate::envmask::unreport(&mut loaded.report);
    crate::report::warn_report(&loaded.report, r.min_length);
    crate::report::warn_skipped(&values.skipped);
    crate::report::warn_weak(&values.weak, &loaded.report);
    let live = Arc::new(LiveSet::new(set));
    live.remember_base(
        r.lengths(),
        values
            .values
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice())),
    );
    live.remember_registered(&env.pairs());
    super::log_env_names(env.names());
    drop(env);
    let detectors = detection.detectors;
    // shroud's own log lines are redacted with the same, live, set.
    crate::logging::set_live(Arc::clone(&live));

    let mut published: Option<(std::path::PathBuf, String)> = None;
    let watcher = match watching {
        Some((dir, (mut watcher, pending))) => {
            let mut ack = Ack::new(&dir);
            // Values registered at run time go to the agent, which publishes
            // them to the pod's other execs (contract::registered).
            let id = ack
                .path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let (to, name) = (dir.clone(), id.clone());
            live.set_on_register(Box::new(move |values| {
                if let Err(e) = crate::contract::registered::write(&to, &name, values) {
                    tracing::warn!(error = %e, "cannot publish registered values to the agent");
                }
            }));
            published = Some((dir.clone(), id));
            if let Some(generation) = loaded.generation {
                if let Err(e) = ack.write(generation) {
                    tracing::warn!(path = %ack.path().display(), error = %e, "cannot write the rotation acknowledgement");
                }
            }
            let reload = Reload {
                sources: sources.clone(),
                lengths: r.lengths(),
                live: Arc::clone(&live),
                current: values,
                ack,
                loaded: fingerprint,
            };
            watcher.run(pending, reload, rotated_tx)?;
            Some(watcher)
        }
        None => {
            drop(rotated_tx);
            None
        }
    };

    let counters = Arc::new(crate::exec::OutputCounters::default());
    if let Some(listen) = &args.metrics_listen {
        let addr =
            crate::agent::observe::serve_exec(listen, &counters, crate::exec::uses_pty(args.tty))?;
        tracing::info!(%addr, "serving metrics");
    }
    let opts = ExecOptions {
        tty: args.tty,
        pump: PumpConfig {
            mask: r.mask.as_bytes().to_vec(),
            idle: r.idle,
            strict: r.strict,
            detect: detectors,
            add_mask: crate::pump::AddMask::from_env(),
        },
        on_rotate: args.on_rotate,
        on_change: file_hooks,
        drain_timeout: args.drain_timeout,
        kill_grace: args.kill_grace,
        exit_marker: sources.dir.clone(),
        counters,
        ..ExecOptions::new(args.command.iter().map(Into::into).collect())
    };
    // Without a directory nothing ever rotates: no channel, no forwarding thread.
    let rotations = watcher.is_some().then_some(rotated_rx);
    // Start-up is over: its code need not stay mapped (and locked) in every pod.
    crate::footprint::release_binary_pages();
    let code = supervise(opts, live, rotations);
    if let Some((dir, id)) = published {
        crate::contract::registered::remove(&dir, &id);
    }
    code
}

fn check_readable(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::read_dir(dir)
        .with_context(|| format!("--secrets-dir {}: cannot read directory", dir.display()))
        .map_err(usage)?;
    Ok(())
}
