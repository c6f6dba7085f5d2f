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
    /// Check that artifacts are the ones a clean scan signed into a ledger.
    Verify(VerifyArgs),
    /// Audit trail tools.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Kubernetes mutating admission webhook that injects shroud into pods.
    Webhook(WebhookArgs),
    /// Register values to mask with the enclosing `shroud exec` / `shroud run`.
    #[command(subcommand)]
    Mask(MaskCommand),
    /// Copy this binary to a path (init containers of `FROM scratch` images).
    CopySelf {
        /// Destination file.
        dest: PathBuf,
    },
}

/// `shroud mask`.
#[derive(Debug, Subcommand)]
pub enum MaskCommand {
    /// Read one value from stdin (never from the command line) and mask it in
    /// everything the enclosing `shroud exec` / `shroud run` writes from now on
    /// (through `SHROUD_MASK_SOCKET`). Returns once the value is masked.
    Add,
}

/// Where secret values come from and how they are masked.
#[derive(Clone, Debug, Args)]
pub struct RedactionArgs {
    /// A file holding one secret value (one trailing newline is stripped). Repeatable.
    #[arg(long = "secret-file", value_name = "F")]
    pub secret_files: Vec<PathBuf>,
    /// A directory whose files (subdirectories and dotfiles included, Kubernetes'
    /// `..data` followed once) each hold one secret value, plus the agent's
    /// `.shroud/values` redaction set. Skipped files are named on stderr.
    #[arg(long, value_name = "D", env = "SHROUD_SECRETS_DIR")]
    pub secrets_dir: Option<PathBuf>,
    /// Text written in place of each secret.
    #[arg(long, value_name = "S", default_value = "[REDACTED]")]
    pub mask: String,
    /// Values shorter than this many bytes are not masked on their own.
    #[arg(long, value_name = "N", default_value_t = shroud_redactor::DEFAULT_MIN_LENGTH,
          value_parser = parse_min_length)]
    pub min_length: usize,
    /// No run of this many consecutive bytes of a value or of any of its forms is
    /// shown, wherever it appears (at least 8).
    #[arg(long, value_name = "P", default_value_t = shroud_redactor::DEFAULT_PIECE_LENGTH,
          value_parser = parse_piece_length)]
    pub piece_length: usize,
    /// Release a held possible start of a secret after this much quiet.
    #[arg(long, value_name = "DURATION", default_value = "50ms", value_parser = parse_duration)]
    pub idle: Duration,
    /// Never release a held possible start of a secret after a pause: wait until the
    /// following bytes (or the end of the stream) resolve it.
    #[arg(long, env = "SHROUD_REDACT_STRICT")]
    pub strict: bool,
}

/// `shroud redact`.
#[derive(Debug, Args)]
pub struct RedactArgs {
    #[command(flatten)]
    pub redaction: RedactionArgs,
    #[command(flatten)]
    pub detection: DetectionArgs,
}

/// Masking credentials shroud did not issue.
#[derive(Clone, Debug, Default, Args)]
pub struct DetectionArgs {
    /// Credential detectors to run: `all` (the default), `none`, or a comma list
    /// of names (github-token, jwt, private-key, url-password, …; docs/redact.md).
    #[arg(long, value_name = "LIST", env = "SHROUD_DETECT")]
    pub detect: Option<String>,
    /// Mask the values of environment variables whose names match these globs
    /// (comma list; `''` turns it off). Default: *_PASSWORD, *_SECRET, *_TOKEN,
    /// *_KEY, *_PRIVATE_KEY, *_ACCESS_KEY, *_SECRET_KEY, *_CREDENTIALS,
    /// *_CONNECTION_STRING, *_DSN.
    #[arg(long, value_name = "GLOBS", env = "SHROUD_MASK_ENV")]
    pub mask_env: Option<String>,
}

/// `shroud exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub redaction: RedactionArgs,
    #[command(flatten)]
    pub detection: DetectionArgs,
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
    /// Run COMMAND with `/bin/sh -c` (beside the command, as its user, its output
    /// masked) each time the file NAME of --secrets-dir is re-rendered with new
    /// contents. Repeatable.
    #[arg(long, value_name = "NAME=COMMAND", value_parser = crate::exec::on_change::parse_on_change)]
    pub on_change: Vec<crate::exec::on_change::OnChange>,
    /// The annotation an `--on-change NAME` came from, named in its errors (set
    /// by the webhook). Repeatable.
    #[arg(long, value_name = "NAME=ORIGIN", value_parser = crate::exec::on_change::parse_origin)]
    pub on_change_origin: Vec<(String, String)>,
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
    #[command(flatten)]
    pub detection: DetectionArgs,
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
    /// Print the shroud configuration equivalent to a Vault/OpenBao Agent one (HCL).
    Import {
        /// The Vault Agent configuration file.
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
    /// Credential detectors to run over the files: `all` (the default), `none`,
    /// or a comma list of names (github-token, private-key, …; docs/redact.md).
    /// A credential they find is a finding named by the detector.
    #[arg(long, value_name = "LIST", env = "SHROUD_DETECT")]
    pub detect: Option<String>,
    #[command(flatten)]
    pub limits: ArchiveLimitArgs,
    /// After a clean scan, sign each file's SHA-256 with this transit key
    /// (`NAME` or `MOUNT/NAME`) into `--ledger`; needs `--config` for Vault.
    #[arg(long, value_name = "KEY", requires_all = ["ledger", "config"])]
    pub sign: Option<String>,
    /// The ledger (hash-chained JSON lines) that `--sign` appends to.
    #[arg(long, value_name = "L", requires = "sign")]
    pub ledger: Option<PathBuf>,
    /// Files and directories to scan.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// Bounds on looking inside archives (archive bombs). Hitting one makes the
/// scan incomplete (exit 2), naming the file.
#[derive(Clone, Copy, Debug, Args)]
pub struct ArchiveLimitArgs {
    /// Archives and compressed streams nested inside one another.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_depth: u32,
    /// Bytes decompressed inside one file, all streams together (suffixes K, M, G, T: powers of 1024).
    #[arg(long, value_name = "SIZE", default_value = "4G", value_parser = parse_size)]
    pub max_bytes: u64,
    /// How many times its size a compressed stream may expand (checked after its first MiB).
    #[arg(long, value_name = "N", default_value_t = 250, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_ratio: u64,
    /// Tar and zip entries inside one file, all archives together.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub max_entries: u64,
}

impl From<ArchiveLimitArgs> for crate::archive::Limits {
    fn from(a: ArchiveLimitArgs) -> Self {
        crate::archive::Limits {
            max_depth: a.max_depth,
            max_bytes: a.max_bytes,
            max_ratio: a.max_ratio,
            max_entries: a.max_entries,
        }
    }
}

/// `shroud verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// An agent configuration: its `[vault]` and `[auth]` are used to verify the
    /// signatures with transit.
    #[arg(long, value_name = "F")]
    pub config: PathBuf,
    /// The ledger written by `shroud scan --sign`.
    #[arg(long, value_name = "L")]
    pub ledger: PathBuf,
    /// Accept only signatures by this transit key (`NAME` or `MOUNT/NAME`).
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// The artifacts (files, or directories walked like `scan` does).
    #[arg(required = true, value_name = "ARTIFACT")]
    pub artifacts: Vec<PathBuf>,
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
        /// The agent configuration with `[audit] sign_key`: check the chain's
        /// signatures with Vault (a rewritten file, or one cut short after its
        /// last signature, fails).
        #[arg(long, value_name = "F")]
        config: Option<PathBuf>,
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

/// Parses a byte count: `1048576`, `512K`, `64M`, `4G`, `1T` (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("`{s}`: the suffix must be K, M, G or T")),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("`{s}` is not a size in bytes (e.g. 4G, 512M, 1048576)"))
}

impl RedactionArgs {
    /// `--min-length` and `--piece-length` together.
    pub fn lengths(&self) -> shroud_redactor::Lengths {
        shroud_redactor::Lengths {
            min: self.min_length,
            piece: self.piece_length,
        }
    }
}

/// The shortest piece length accepted: shorter pieces of random values turn up in
/// ordinary text.
pub const MIN_PIECE_LENGTH: usize = 8;

fn parse_piece_length(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= MIN_PIECE_LENGTH => Ok(n),
        _ => Err(format!(
            "`{s}` is not a whole number of bytes of at least {MIN_PIECE_LENGTH}"
        )),
    }
}

fn parse_min_length(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "`{s}` is not a whole number of bytes of at least 1"
        )),
    }
}
