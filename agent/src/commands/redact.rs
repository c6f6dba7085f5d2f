//! `shroud redact`: stdin to stdout through the redactor.

use std::io;

use anyhow::Context as _;

use crate::cli::RedactArgs;
use crate::error::usage;
use crate::live::LiveSet;
use crate::pump::{pump, PumpConfig, StreamCounters};
use crate::secrets_source::Sources;

pub fn run(args: RedactArgs) -> anyhow::Result<i32> {
    let r = &args.redaction;
    let sources = Sources {
        files: r.secret_files.clone(),
        dir: r.secrets_dir.clone(),
    };
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
    let live = std::sync::Arc::new(LiveSet::new(set));
    live.remember_base(
        r.lengths(),
        values
            .values
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice())),
    );
    drop(values);
    live.remember_registered(&env.pairs());
    super::log_env_names(env.names());
    drop(env);
    let detectors = detection.detectors;
    crate::logging::set_live(live.clone());
    let config = PumpConfig {
        mask: r.mask.as_bytes().to_vec(),
        idle: r.idle,
        strict: r.strict,
        detect: detectors,
        add_mask: crate::pump::AddMask::from_env(),
    };
    let stdin = io::stdin();
    let stdout = io::stdout();
    use std::os::fd::AsFd as _;
    pump(
        stdin.as_fd(),
        stdout.as_fd(),
        &live,
        &config,
        &StreamCounters::default(),
    )
    .context("redacting stdin to stdout")?;
    Ok(0)
}
