//! Command-line interface: every role of the one binary. Parsing only; each
//! command's behaviour lives in `commands/`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

// Each lives with what it configures; re-exported because the flags name them.
pub use crate::exec::TtyMode;
pub use crate::logging::LogFormat;

/// shroud: a secrets sidecar for ephemeral workloads.
#[derive(Debug, Parser)]
#[command(name = "shroud", version, about, long_about = None)]
pub struct Cli {
    /// Log format for shroud's own messages on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Auto, env = "SHROUD_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// The role to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The roles.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Filter stdin to stdout, masking every known secret value and its encodings.
    Redact(RedactArgs),
    /// Supervise a command, redacting its stdout and stderr.
    Exec(ExecArgs),
    /// Agent and exec in one process: render secrets, run the command, revoke and wipe.
    Run(RunArgs),
    /// Authenticate to Vault, render and renew secrets until the workload exits.
    Agent(AgentArgs),
    /// Configuration file tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Probes for orchestrators (startup probes, healthchecks).
    #[command(subcommand)]
    Probe(ProbeCommand),
    /// Fail when files contain a known secret value or encoding (a CI gate).
    Scan(ScanArgs),
    /// Audit trail tools.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Kubernetes mutating admission webhook that injects shroud into pods.
    Webhook(WebhookArgs),
    /// Copy this binary to a path (init containers of `FROM scratch` images).
    CopySelf {
        /// Destination file.
        dest: PathBuf,
    },
}

/// Where secret values come from and how they are masked.
#[derive(Clone, Debug, Args)]
pub struct RedactionArgs {
    /// A file holding one secret value (one trailing newline is stripped). Repeatable.
    #[arg(long = "secret-file", value_name = "F")]
    pub secret_files: Vec<PathBuf>,
    /// A directory whose regular files each hold one secret value, plus the agent's
    /// `.shroud/values` redaction set.
    #[arg(long, value_name = "D", env = "SHROUD_SECRETS_DIR")]
    pub secrets_dir: Option<PathBuf>,
    /// Text written in place of each secret.
    #[arg(long, value_name = "S", default_value = "[REDACTED]")]
    pub mask: String,
    /// Values shorter than this many bytes are not masked on their own.
    #[arg(long, value_name = "N", default_value_t = shroud_redactor::DEFAULT_MIN_LENGTH,
          value_parser = parse_min_length)]
    pub min_length: usize,
    /// Release a held possible start of a secret after this much quiet.
    #[arg(long, value_name = "DURATION", default_value = "50ms", value_parser = parse_duration)]
    pub idle: Duration,
}

/// `shroud redact`.
#[derive(Debug, Args)]
pub struct RedactArgs {
    #[command(flatten)]
    pub redaction: RedactionArgs,
}

/// `shroud exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub redaction: RedactionArgs,
    /// What to do with the command when the secrets change: `none`, `signal:NAME`
    /// (e.g. `signal:SIGHUP`) or `restart`.
    #[arg(
        long,
        value_name = "ACTION",
        default_value = "none",
        env = "SHROUD_ON_ROTATE",
        value_parser = crate::exec::rotate::parse_on_rotate
    )]
    pub on_rotate: crate::exec::OnRotate,
    /// Wait for `<secrets-dir>/.shroud/ready` before starting the command.
    #[arg(long)]
    pub wait_ready: bool,
    /// How long `--wait-ready` waits before giving up.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub ready_timeout: Duration,
    /// How long to keep draining output from grandchildren after the command exits.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// After a forwarded SIGTERM/SIGINT, a second one later than this escalates to SIGKILL.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub kill_grace: Duration,
    /// Give the command a pseudo-terminal: `auto` (when stdout is a terminal), `always`, `never`.
    #[arg(long, value_enum, default_value_t = TtyMode::Auto)]
    pub tty: TtyMode,
    /// Serve `/metrics` (the command's output counters), `/healthz` and `/readyz`
    /// on this address (e.g. 127.0.0.1:9103).
    #[arg(long, value_name = "ADDR", env = "SHROUD_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// `shroud run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The agent configuration file (TOML); without it, `SHROUD_CONFIG_TOML` holds
    /// the configuration itself.
    #[arg(long, short, value_name = "F", env = "SHROUD_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: ConfigOverrides,
    /// Give the command a pseudo-terminal: `auto`, `always`, `never`.
    #[arg(long, value_enum, default_value_t = TtyMode::Auto)]
    pub tty: TtyMode,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// `shroud agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The agent configuration file (TOML); without it, `SHROUD_CONFIG_TOML` holds
    /// the configuration itself.
    #[arg(long, short, value_name = "F", env = "SHROUD_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: ConfigOverrides,
}

/// Configuration keys given as flags; they win over the file and `SHROUD_*`.
#[derive(Clone, Debug, Default, Args)]
pub struct ConfigOverrides {
    /// `[vault] address`.
    #[arg(long, value_name = "URL")]
    pub vault_address: Option<String>,
    /// `[auth] method`: kubernetes, approle, jwt, token.
    #[arg(long, value_name = "METHOD")]
    pub auth_method: Option<String>,
    /// `[auth] role`.
    #[arg(long, value_name = "ROLE")]
    pub auth_role: Option<String>,
    /// `[output] dir`.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<String>,
    /// Any other key, as `SECTION.KEY=VALUE` (e.g. `lifecycle.revoke_on_exit=false`).
    /// Repeatable.
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    pub set: Vec<String>,
}

impl ConfigOverrides {
    /// The overrides as `SHROUD_<SECTION>_<KEY>` pairs, applied after the
    /// environment so that flags win.
    pub fn as_env(&self) -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::new();
        let named = [
            ("SHROUD_VAULT_ADDRESS", &self.vault_address),
            ("SHROUD_AUTH_METHOD", &self.auth_method),
            ("SHROUD_AUTH_ROLE", &self.auth_role),
            ("SHROUD_OUTPUT_DIR", &self.output_dir),
        ];
        for (var, value) in named {
            if let Some(v) = value {
                out.push((var.to_string(), v.clone()));
            }
        }
        for item in &self.set {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("--set `{item}`: expected SECTION.KEY=VALUE"))?;
            let (section, key) = key
                .split_once('.')
                .ok_or_else(|| format!("--set `{item}`: expected SECTION.KEY=VALUE"))?;
            out.push((
                format!(
                    "SHROUD_{}_{}",
                    section.to_ascii_uppercase(),
                    key.to_ascii_uppercase()
                ),
                value.to_string(),
            ));
        }
        Ok(out)
    }
}

/// `shroud config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a configuration file without contacting Vault.
    Validate {
        /// The file.
        file: PathBuf,
    },
}

/// `shroud probe …`.
#[derive(Debug, Subcommand)]
pub enum ProbeCommand {
    /// Exit 0 when the agent has rendered every secret (`<dir>/.shroud/ready` exists).
    Ready {
        /// The secrets directory.
        #[arg(long, value_name = "D", env = "SHROUD_SECRETS_DIR")]
        dir: PathBuf,
    },
}

/// `shroud scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub redaction: RedactionArgs,
    /// Take the secret values from an agent configuration (fetches them from Vault).
    #[arg(long, value_name = "F")]
    pub config: Option<PathBuf>,
    /// Files and directories to scan.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// `shroud audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of an audit log.
    Verify {
        /// The audit log.
        file: PathBuf,
        /// The head hash logged when the trail was closed (`audit_head`): also
        /// detects records removed from the end.
        #[arg(long, value_name = "SHA256")]
        expect_head: Option<String>,
    },
}

/// `shroud webhook`.
#[derive(Debug, Args)]
pub struct WebhookArgs {
    /// Address to serve HTTPS on.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8443")]
    pub listen: String,
    /// PEM certificate chain; reloaded when the file changes.
    #[arg(long, value_name = "F")]
    pub tls_cert: PathBuf,
    /// PEM private key; reloaded when the file changes.
    #[arg(long, value_name = "F")]
    pub tls_key: PathBuf,
    /// Webhook configuration and policy (TOML).
    #[arg(long, value_name = "F")]
    pub config: Option<PathBuf>,
}

/// Parses `50ms`, `2s`, `1m30s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("invalid duration `{s}`: {e}"))
}

fn parse_min_length(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "`{s}` is not a whole number of bytes of at least 1"
        )),
    }
}
