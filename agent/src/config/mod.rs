//! The agent configuration: TOML from `--config F` or `SHROUD_CONFIG_TOML`, with
//! `SHROUD_<SECTION>_<KEY>` overrides, validated into [`Config`] before anything
//! else happens. Every error names the key and where the configuration came from.

mod consul;
mod env;
mod gateway;
mod gateway_forward;
mod injected;
mod params;
pub mod raw;
mod validate;
pub mod vault_agent;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use env::EnvError;
pub use gateway::{
    ForwardSpec, GatewayKind, GatewaySpec, Listen, PathGlob, UpstreamTls, UpstreamUrl,
};
pub use params::Params;
pub use validate::validate;

pub use crate::template::TemplateSource;
pub use consul::ConsulTemplate;

/// Environment variable holding the whole configuration as TOML text.
pub const CONFIG_TOML_ENV: &str = "SHROUD_CONFIG_TOML";

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Neither `--config` nor `SHROUD_CONFIG_TOML` was given.
    #[error("no configuration: pass --config FILE or set {CONFIG_TOML_ENV}")]
    Missing,
    /// The TOML is malformed or has an unknown key or a value of the wrong type.
    #[error("{origin}: {message}")]
    Syntax {
        /// The file or variable.
        origin: String,
        /// The parser's message (names the key and line; never a value).
        message: String,
    },
    /// An environment override is malformed.
    #[error("{origin}: {source}")]
    Env {
        /// The file or variable the rest came from.
        origin: String,
        /// What is wrong.
        source: EnvError,
    },
    /// A Vault Agent configuration (HCL) could not be imported.
    #[error(transparent)]
    Import(#[from] vault_agent::ImportError),
    /// A key has a bad or missing value.
    #[error("{origin}: {key}: {problem}")]
    Invalid {
        /// The file or variable.
        origin: String,
        /// The key, e.g. `[auth] role` or `[[secret]] #2 (db) path`.
        key: String,
        /// What is wrong.
        problem: String,
    },
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it came from (a file path or `SHROUD_CONFIG_TOML`), for messages.
    pub origin: String,
    /// `[vault]`.
    pub vault: VaultConfig,
    /// `[auth]`.
    pub auth: AuthConfig,
    /// `[output]`.
    pub output: OutputConfig,
    /// `[state]`: where the agent keeps what it needs to adopt its leases after
    /// a restart; None when the section is absent (no adoption).
    pub state: Option<StateConfig>,
    /// `[[secret]]`, in file order.
    pub secrets: Vec<SecretSpec>,
    /// `[redact]`.
    pub redact: RedactConfig,
    /// `[lifecycle]`.
    pub lifecycle: LifecycleConfig,
    /// `[metrics] listen`.
    pub metrics_listen: Option<String>,
    /// `[audit] path`.
    pub audit_path: Option<String>,
    /// `[audit] sign_key`, `sign_every`, `sign_interval`.
    pub audit_signing: Option<AuditSigning>,
    /// `[[gateway]]`, in file order.
    pub gateways: Vec<GatewaySpec>,
}

/// Signing the audit chain's head with a transit key (`[audit] sign_key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSigning {
    /// `[audit] sign_key`.
    pub key: crate::vault::transit::TransitKey,
    /// `[audit] sign_every`: sign after this many unsigned records.
    pub every: u64,
    /// `[audit] sign_interval`: sign unsigned records at least this often.
    pub interval: Duration,
}

/// `[vault]`.
#[derive(Debug, Clone)]
pub struct VaultConfig {
    /// Base URL, without a trailing slash.
    pub address: String,
    /// PEM file of CA certificates to trust instead of the built-in roots.
    pub ca_cert: Option<PathBuf>,
    /// Name to verify the server certificate against (and send as SNI).
    pub tls_server_name: Option<String>,
    /// Vault Enterprise / OpenBao namespace.
    pub namespace: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// The auth methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// Kubernetes service-account JWT.
    Kubernetes,
    /// AppRole role_id + secret_id.
    AppRole,
    /// JWT/OIDC role + JWT.
    Jwt,
    /// A token from a file.
    Token,
    /// A TLS client certificate (`auth/cert`).
    Cert,
}

impl AuthMethod {
    /// The name used in the config and in events.
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::Kubernetes => "kubernetes",
            AuthMethod::AppRole => "approle",
            AuthMethod::Jwt => "jwt",
            AuthMethod::Token => "token",
            AuthMethod::Cert => "cert",
        }
    }
}

/// `[auth]`.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The method.
    pub method: AuthMethod,
    /// Where the method is mounted (`auth/<mount>/login`).
    pub mount: String,
    /// Role for kubernetes and jwt.
    pub role: Option<String>,
    /// JWT file for kubernetes and jwt.
    pub jwt_path: PathBuf,
    /// AppRole role_id file.
    pub role_id_file: Option<PathBuf>,
    /// AppRole secret_id file.
    pub secret_id_file: Option<PathBuf>,
    /// Token file for the token method.
    pub token_file: Option<PathBuf>,
    /// PEM certificate (chain) for the cert method; re-read at each login.
    pub client_cert: Option<PathBuf>,
    /// PEM private key for the cert method; re-read at each login.
    pub client_key: Option<PathBuf>,
    /// The cert method's role (`name`); Vault tries every role when absent.
    pub cert_role: Option<String>,
}

/// `[output]`.
#[derive(Debug, Clone)]
pub struct OutputConfig {
    /// Directory the secrets are rendered into.
    pub dir: PathBuf,
    /// Refuse anything but tmpfs/ramfs.
    pub require_tmpfs: bool,
    /// Owner of the rendered files.
    pub uid: Option<u32>,
    /// Group of the rendered files.
    pub gid: Option<u32>,
    /// Permission bits of the rendered files.
    pub mode: u32,
}

/// `[state]`.
#[derive(Debug, Clone)]
pub struct StateConfig {
    /// Directory private to the agent (0700); never the output directory or
    /// inside it, since the workload can read that one.
    pub dir: PathBuf,
    /// Refuse anything but tmpfs/ramfs: the state holds the token and values.
    pub require_tmpfs: bool,
}

/// How a secret is read from Vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// KV version 2: re-read every `refresh`, no lease.
    Kv2,
    /// A leased dynamic secret (database, AWS…): renewed and rotated.
    Dynamic,
    /// Any other read (a write when it has `params`); leased when Vault returns a lease.
    Generic,
    /// A certificate from `pki/issue/<role>`, rendered as a directory.
    Pki,
}

impl SecretKind {
    /// The name used in the config.
    pub fn name(self) -> &'static str {
        match self {
            SecretKind::Kv2 => "kv2",
            SecretKind::Dynamic => "dynamic",
            SecretKind::Generic => "generic",
            SecretKind::Pki => "pki",
        }
    }
}

/// How a secret's file is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// One field's value as-is (`field`, or the only field).
    Raw,
    /// The data as a JSON object.
    Json,
    /// `KEY='value'` lines.
    Env,
    /// A minijinja template over the data.
    Template(TemplateSource),
    /// A Consul Template template (`[[template]]`): its `secret`/`pkiCert`
    /// calls are the secret's reads.
    Consul(ConsulTemplate),
}

/// One `[[secret]]`.
#[derive(Debug, Clone)]
pub struct SecretSpec {
    /// File name in the output directory.
    pub name: String,
    /// Vault logical path as configured.
    pub path: String,
    /// Kind.
    pub kind: SecretKind,
    /// Only this field, raw.
    pub field: Option<String>,
    /// Output format.
    pub format: Format,
    /// kv2 re-read interval.
    pub refresh: Duration,
    /// Request parameters (`params` and `params_file`): the read becomes a write.
    pub params: Option<Params>,
    /// pki: fraction of the certificate's validity after which it is re-issued.
    pub reissue_at: f64,
    /// Used only by `[[gateway]]`s: written to no file (docs/gateway.md).
    pub gateway_only: bool,
}

impl SecretSpec {
    /// The API path to read (`secret/app` → `secret/data/app` for kv2).
    pub fn read_path(&self) -> String {
        let p = self.path.trim_matches('/');
        if self.kind != SecretKind::Kv2 || p.contains("/data/") {
            return p.to_string();
        }
        match p.split_once('/') {
            Some((mount, rest)) => format!("{mount}/data/{rest}"),
            None => format!("{p}/data"),
        }
    }
}

/// `[redact]`.
#[derive(Debug, Clone)]
pub struct RedactConfig {
    /// Mask text.
    pub mask: String,
    /// Shorter values are not masked.
    pub min_length: usize,
    /// Runs of this many bytes of a value or form are masked (the piece rule).
    pub piece_length: usize,
    /// How long retired values stay in the redaction set.
    pub retain: Duration,
    /// Never release a possible start of a secret at an idle flush.
    pub strict: bool,
    /// Credential detectors (`all`, `none` or a comma list), checked.
    pub detect: String,
    /// Environment variable name globs whose values are masked, checked.
    pub env: crate::envmask::EnvPatterns,
}

impl RedactConfig {
    /// `min_length` and `piece_length` together.
    pub fn lengths(&self) -> shroud_redactor::Lengths {
        shroud_redactor::Lengths {
            min: self.min_length,
            piece: self.piece_length,
        }
    }
}

/// What happens to the wrapped command when secrets change (exec's type).
pub use crate::exec::OnRotate;

/// `[lifecycle]`.
#[derive(Debug, Clone)]
pub struct LifecycleConfig {
    /// Revoke leases and the token on exit.
    pub revoke_on_exit: bool,
    /// Rotation action (run mode; exec has its own flag).
    pub on_rotate: OnRotate,
    /// Fraction of a lease after which it is renewed.
    pub renew_threshold: f64,
    /// After SIGTERM, how long to wait for `.shroud/exited` (when an exec is listening).
    pub exit_marker_timeout: Duration,
    /// How long a publication waits for exec acknowledgements.
    pub handshake_timeout: Duration,
    /// How long start-up retries an unreachable Vault before giving up.
    pub startup_timeout: Duration,
    /// How long shutdown retries revocation when Vault is unreachable.
    pub revoke_timeout: Duration,
    /// Revoke the certificates this agent issued (pki) at exit (with `revoke_on_exit`).
    pub revoke_certificates: bool,
    /// How long a replaced lease stays alive after its successor is in place
    /// (capped by what is left of the lease); zero revokes it at once.
    pub retire_grace: Duration,
}

/// Reads, overrides and validates the configuration: `VAULT_*`/`BAO_*` defaults
/// beneath `path` when given, else `SHROUD_CONFIG_TOML`; then the
/// `SHROUD_<SECTION>_<KEY>` environment, then `flags` (pairs of the same form,
/// from the command line).
pub fn load(path: Option<&Path>, flags: Vec<(String, String)>) -> Result<Config, ConfigError> {
    let (origin, text) = match path {
        Some(p) => {
            let origin = p.display().to_string();
            let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.to_path_buf(),
                source,
            })?;
            // `--config agent.hcl`: a Vault Agent configuration, imported.
            if vault_agent::is_vault_agent(p, &text) {
                let toml = vault_agent::import(&origin, &text)?.to_toml(&origin);
                (origin, toml)
            } else {
                (origin, text)
            }
        }
        None => match std::env::var(CONFIG_TOML_ENV) {
            Ok(t) => (CONFIG_TOML_ENV.to_string(), t),
            Err(_) => return Err(ConfigError::Missing),
        },
    };
    parse(&origin, &text, std::env::vars().chain(flags))
}

/// Parses TOML text with the given environment.
pub fn parse(
    origin: &str,
    text: &str,
    vars: impl Iterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    let syntax = |e: toml::de::Error| ConfigError::Syntax {
        origin: origin.to_string(),
        message: e.to_string().trim_end().replace('\n', " "),
    };
    let mut table: toml::Table = text.parse().map_err(syntax)?;
    let vars: Vec<(String, String)> = vars.collect();
    let mut used = env::apply_conventions(&mut table, &vars);
    used.extend(
        env::apply(&mut table, vars.into_iter()).map_err(|source| ConfigError::Env {
            origin: origin.to_string(),
            source,
        })?,
    );
    // Parsing the text itself keeps line numbers in the messages; the table is
    // only needed when the environment changed something.
    let raw: raw::RawConfig = if used.is_empty() {
        toml::from_str(text).map_err(syntax)?
    } else {
        table.try_into().map_err(syntax)?
    };
    validate(origin, raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"
[vault]
address = "http://127.0.0.1:8200/"
[auth]
method = "kubernetes"
role = "app"
[output]
dir = "/run/secrets"
[[secret]]
name = "api"
path = "/secret/team/app/"
kind = "kv2"
"#;

    fn parse_env(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        parse(
            "test.toml",
            text,
            env.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
                .into_iter(),
        )
    }

    #[test]
    fn defaults() {
        let c = parse_env(MIN, &[]).unwrap();
        assert_eq!(c.vault.address, "http://127.0.0.1:8200");
        assert_eq!(c.vault.timeout, Duration::from_secs(10));
        assert_eq!(c.auth.mount, "kubernetes");
        assert_eq!(
            c.auth.jwt_path,
            PathBuf::from("/var/run/secrets/kubernetes.io/serviceaccount/token")
        );
        assert!(c.output.require_tmpfs);
        assert_eq!(c.output.mode, 0o400);
        let s = &c.secrets[0];
        assert_eq!(s.read_path(), "secret/data/team/app");
        assert_eq!(s.format, Format::Raw);
        assert_eq!(s.refresh, Duration::from_secs(300));
        assert_eq!(c.redact.retain, Duration::from_secs(600));
        assert!(!c.redact.strict);
        assert!(c.lifecycle.revoke_on_exit);
        assert_eq!(c.lifecycle.on_rotate, OnRotate::None);
        assert_eq!(c.lifecycle.renew_threshold, 0.66);
        assert_eq!(c.lifecycle.exit_marker_timeout, Duration::from_secs(30));
        assert_eq!(c.lifecycle.handshake_timeout, Duration::from_secs(5));
        assert_eq!(c.lifecycle.retire_grace, Duration::from_secs(30));
    }

    #[test]
    fn retire_grace_is_a_bounded_duration() {
        let with = |v: &str| parse_env(&format!("{MIN}[lifecycle]\nretire_grace = \"{v}\"\n"), &[]);
        assert_eq!(with("0s").unwrap().lifecycle.retire_grace, Duration::ZERO);
        assert_eq!(
            with("1h").unwrap().lifecycle.retire_grace,
            Duration::from_secs(3600)
        );
        let e = with("2h").unwrap_err().to_string();
        assert!(
            e.contains("[lifecycle] retire_grace: must be at most 1h"),
            "{e}"
        );
        let e = with("soon").unwrap_err().to_string();
        assert!(
            e.contains("[lifecycle] retire_grace: invalid duration `soon`"),
            "{e}"
        );
        let env = parse_env(MIN, &[("SHROUD_LIFECYCLE_RETIRE_GRACE", "5s")]).unwrap();
        assert_eq!(env.lifecycle.retire_grace, Duration::from_secs(5));
    }

    #[test]
    fn piece_length_defaults_to_12_and_is_at_least_8() {
        assert_eq!(parse_env(MIN, &[]).unwrap().redact.piece_length, 12);
        let c = parse_env(&format!("{MIN}[redact]\npiece_length = 16\n"), &[]).unwrap();
        assert_eq!(c.redact.lengths().piece, 16);
        let c = parse_env(MIN, &[("SHROUD_REDACT_PIECE_LENGTH", "9")]).unwrap();
        assert_eq!(c.redact.piece_length, 9);
        let e = parse_env(&format!("{MIN}[redact]\npiece_length = 7\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[redact] piece_length") && e.contains("at least 8"),
            "{e}"
        );
    }

    #[test]
    fn audit_signing_keys_are_checked_and_named() {
        assert_eq!(parse_env(MIN, &[]).unwrap().audit_signing, None);
        let signed = format!(
            "{MIN}[audit]\npath = \"/var/log/a.jsonl\"\nsign_key = \"ops/transit/audit\"\n"
        );
        let a = parse_env(&signed, &[("SHROUD_AUDIT_SIGN_EVERY", "7")])
            .unwrap()
            .audit_signing
            .unwrap();
        assert_eq!(
            (a.key.mount.as_str(), a.key.name.as_str()),
            ("ops/transit", "audit")
        );
        assert_eq!((a.every, a.interval), (7, Duration::from_secs(60)));
        for (extra, key) in [
            ("[audit]\nsign_key = \"k\"\n", "[audit] sign_key"),
            (
                "[audit]\npath = \"stderr\"\nsign_key = \"k\"\n",
                "[audit] sign_key",
            ),
            (
                "[audit]\npath = \"a\"\nsign_key = \"a b\"\n",
                "[audit] sign_key",
            ),
            (
                "[audit]\npath = \"a\"\nsign_every = 3\n",
                "[audit] sign_every",
            ),
            (
                "[audit]\npath = \"a\"\nsign_key = \"k\"\nsign_every = 0\n",
                "[audit] sign_every",
            ),
            (
                "[audit]\npath = \"a\"\nsign_key = \"k\"\nsign_interval = \"0s\"\n",
                "[audit] sign_interval",
            ),
        ] {
            let e = parse_env(&format!("{MIN}{extra}"), &[])
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{extra}: {e}");
        }
    }

    #[test]
    fn kv2_paths() {
        let mut c = parse_env(MIN, &[]).unwrap();
        let s = &mut c.secrets[0];
        s.path = "secret/data/x".into();
        assert_eq!(s.read_path(), "secret/data/x");
        s.path = "kv".into();
        assert_eq!(s.read_path(), "kv/data");
        s.kind = SecretKind::Dynamic;
        s.path = "database/creds/app".into();
        assert_eq!(s.read_path(), "database/creds/app");
    }

    #[test]
    fn redact_detect_and_env_are_checked() {
        let c = parse_env(MIN, &[]).unwrap();
        assert_eq!(c.redact.detect, "all");
        assert!(c.redact.env.matches("GITHUB_TOKEN"));
        let c = parse_env(
            &format!("{MIN}\n[redact]\ndetect = \"jwt,github-token\"\nenv = []\n"),
            &[],
        )
        .unwrap();
        assert_eq!(c.redact.detect, "jwt,github-token");
        assert!(c.redact.env.is_empty());
        let e = parse_env(&format!("{MIN}\n[redact]\ndetect = \"jwt,nope\"\n"), &[]).unwrap_err();
        assert!(
            e.to_string().contains("[redact] detect") && e.to_string().contains("nope"),
            "{e}"
        );
        let e = parse_env(&format!("{MIN}\n[redact]\nenv = [\"A-B\"]\n"), &[]).unwrap_err();
        assert!(e.to_string().contains("[redact] env"), "{e}");
        // From the environment, a comma list, as `--mask-env` takes it.
        let c = parse_env(MIN, &[("SHROUD_REDACT_ENV", "DEPLOY_*,*_PAT")]).unwrap();
        assert!(c.redact.env.matches("DEPLOY_KEY") && c.redact.env.matches("GH_PAT"));
        assert!(!c.redact.env.matches("GITHUB_TOKEN"));
        let c = parse_env(MIN, &[("SHROUD_REDACT_ENV", "")]).unwrap();
        assert!(c.redact.env.is_empty());
    }

    #[test]
    fn env_overrides_the_file() {
        let c = parse_env(
            MIN,
            &[
                ("SHROUD_AUTH_ROLE", "other"),
                ("SHROUD_OUTPUT_REQUIRE_TMPFS", "false"),
                ("SHROUD_LIFECYCLE_ON_ROTATE", "signal:HUP"),
                ("SHROUD_REDACT_STRICT", "true"),
            ],
        )
        .unwrap();
        assert_eq!(c.auth.role.as_deref(), Some("other"));
        assert!(c.redact.strict);
        assert!(!c.output.require_tmpfs);
        assert_eq!(
            c.lifecycle.on_rotate,
            OnRotate::Signal(nix::sys::signal::Signal::SIGHUP)
        );
        let e = parse_env(MIN, &[("SHROUD_VAULT_ADRESS", "x")]).unwrap_err();
        assert!(e.to_string().contains("adress"), "{e}");
    }

    #[test]
    fn errors_name_file_and_key() {
        let e = parse_env(
            &MIN.replace("kind = \"kv2\"", "kind = \"kv2\"\nfeild = \"x\""),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("test.toml:") && e.contains("feild"), "{e}");
        let e = parse_env(&MIN.replace("role = \"app\"\n", ""), &[])
            .unwrap_err()
            .to_string();
        assert_eq!(e, "test.toml: [auth] role: is required");
        let twice = format!("{MIN}[[secret]]\nname = \"api\"\npath = \"x\"\n");
        let e = parse_env(&twice, &[]).unwrap_err().to_string();
        assert!(
            e.contains("#2 name") && e.contains("used by another"),
            "{e}"
        );
        let e = parse_env(
            &MIN.replace(
                "kind = \"kv2\"",
                "kind = \"kv2\"\nfield = \"a\"\nformat = \"json\"",
            ),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("(api) field"), "{e}");
    }

    #[test]
    fn state_dir_is_the_agents_own() {
        assert!(parse_env(MIN, &[]).unwrap().state.is_none());
        let with = |dir: &str| format!("{MIN}[state]\ndir = \"{dir}\"\n");
        let c = parse_env(&with("/run/shroud-state"), &[]).unwrap();
        let st = c.state.unwrap();
        assert_eq!(st.dir, PathBuf::from("/run/shroud-state"));
        assert!(st.require_tmpfs);
        for bad in [
            "/run/secrets",
            "/run/secrets/",
            "/run/secrets/.state",
            "/run/x/../secrets/s",
            "/run",
        ] {
            let e = parse_env(&with(bad), &[]).unwrap_err().to_string();
            assert!(e.starts_with("test.toml: [state] dir: "), "{bad}: {e}");
        }
        let e = parse_env(&with("state"), &[]).unwrap_err().to_string();
        assert!(e.contains("absolute"), "{e}");
        let e = parse_env(&format!("{MIN}[state]\nrequire_tmpfs = false\n"), &[])
            .unwrap_err()
            .to_string();
        assert_eq!(e, "test.toml: [state] dir: is required");
        let c = parse_env(
            MIN,
            &[
                ("SHROUD_STATE_DIR", "/run/st"),
                ("SHROUD_STATE_REQUIRE_TMPFS", "false"),
            ],
        )
        .unwrap();
        assert!(!c.state.unwrap().require_tmpfs);
    }
}
