//! One module per command; each returns the process exit code.

mod agent;
mod audit;
mod config;
mod copy_self;
mod exec;
mod mask;
mod probe;
mod redact;
mod run;
mod scan;
mod scan_config;
mod sign;
mod verify;
mod webhook;

use std::path::Path;
use std::sync::Arc;

use crate::cli::{Cli, Command, ConfigCommand, MaskCommand, ProbeCommand};
use crate::error::usage;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Redact(args) => redact::run(args),
        Command::Agent(args) => agent::run(args),
        Command::Run(args) => run::run(args),
        Command::Config(ConfigCommand::Validate { file }) => config::validate(&file),
        Command::Config(ConfigCommand::Import { file }) => config::import(&file),
        Command::Probe(ProbeCommand::Ready { dir }) => probe::ready(&dir),
        Command::Exec(args) => exec::run(args),
        Command::Scan(args) => scan::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Audit(cmd) => audit::run(cmd),
        Command::Webhook(args) => webhook::run(args),
        Command::CopySelf { dest } => copy_self::run(dest),
        Command::Mask(MaskCommand::Add) => mask::add(),
    }
}

/// Loads the agent configuration (`--config` or `SHROUD_CONFIG_TOML`, then the
/// environment, then flags); errors exit 64.
fn load_config(
    path: Option<&Path>,
    flags: &crate::cli::ConfigOverrides,
) -> anyhow::Result<crate::config::Config> {
    let flags = flags.as_env().map_err(|e| usage(anyhow::anyhow!(e)))?;
    crate::config::load(path, flags).map_err(|e| usage(e).into())
}

/// What `--detect` and `--mask-env` (else the configuration's `[redact]`)
/// select.
struct Detection {
    detectors: Option<Arc<shroud_redactor::detect::DetectorSet>>,
    env: crate::envmask::EnvPatterns,
}

/// The detectors and environment patterns the flags (else the configuration's
/// `[redact]`) select. Bad lists exit 64.
fn detection(
    flags: &crate::cli::DetectionArgs,
    detect: &str,
    env: &crate::envmask::EnvPatterns,
    mask: &str,
) -> anyhow::Result<Detection> {
    use shroud_redactor::detect::DetectorSet;
    let list = flags.detect.as_deref().unwrap_or(detect);
    let set = DetectorSet::parse(list, mask.as_bytes())
        .map_err(|e| usage(anyhow::anyhow!("--detect: {e}")))?;
    let env = match &flags.mask_env {
        Some(l) => crate::envmask::EnvPatterns::parse(l).map_err(|e| usage(anyhow::anyhow!(e)))?,
        None => env.clone(),
    };
    Ok(Detection {
        detectors: (!set.is_empty()).then(|| Arc::new(set)),
        env,
    })
}

/// Logs the environment variables whose values are masked (never the values).
fn log_env_names(names: &[String]) {
    if !names.is_empty() {
        tracing::info!(variables = ?names, "masking the values of environment variables");
    }
}

/// The defaults of `--detect` and `--mask-env` outside a configuration.
fn default_detection() -> (&'static str, crate::envmask::EnvPatterns) {
    (
        crate::envmask::DEFAULT_DETECT,
        crate::envmask::EnvPatterns::parse(crate::envmask::DEFAULT_PATTERNS)
            .expect("valid defaults"),
    )
}

/// Memory hardening for the roles that hold secrets.
fn harden() {
    crate::harden::no_dumps();
    crate::harden::lock_memory();
}

/// Starts the engine; configuration-caused failures exit 64.
fn start_engine(
    cfg: Arc<crate::config::Config>,
    live: Option<Arc<crate::live::LiveSet>>,
    hook: Option<crate::agent::engine::OnPublish>,
) -> anyhow::Result<crate::agent::Engine> {
    if cfg.secrets.is_empty() {
        return Err(usage(anyhow::anyhow!(
            "{}: [[secret]]: at least one [[secret]] or [[template]] is required to run the agent (a configuration used only to reach Vault, for `verify`, `scan --config` or `audit verify --config`, needs none)",
            cfg.origin
        ))
        .into());
    }
    crate::agent::Engine::start(cfg, live, hook).map_err(|e| {
        if e.is_config() {
            usage(e).into()
        } else {
            anyhow::Error::new(e)
        }
    })
}

/// Starts the `[[gateway]]`s on the engine's current values (after the first
/// render); from then on the engine feeds them each new value. Once they
/// listen, the agent is ready (`.shroud/ready`). A secret without username
/// and password exits 64.
fn start_gateways(
    cfg: &crate::config::Config,
    engine: &mut crate::agent::Engine,
) -> anyhow::Result<crate::gateway::Gateways> {
    use crate::gateway::{Credentials, GatewayError, Gateways};
    if cfg.gateways.is_empty() {
        return Ok(Gateways::default());
    }
    let credentials = Arc::new(
        Credentials::for_secrets(cfg.gateways.iter().map(|g| g.secret.clone())).with_documents(
            cfg.gateways
                .iter()
                .filter(|g| g.forward.is_some() && !g.secret.is_empty())
                .map(|g| g.secret.clone()),
        ),
    );
    engine.share_credentials(credentials.clone());
    let mut gateways =
        Gateways::start(&cfg.gateways, &cfg.output, &credentials).map_err(|e| match e {
            GatewayError::NoCredential { .. }
            | GatewayError::Headers { .. }
            | GatewayError::Tls { .. } => usage(e).into(),
            e => anyhow::Error::new(e),
        })?;
    if let Err(e) = engine.gateways_listening() {
        gateways.stop();
        return Err(e.into());
    }
    Ok(gateways)
}
