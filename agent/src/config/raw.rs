//! The configuration as written: TOML tables with every key optional, so that the
//! validation step can name each missing or malformed key itself. Unknown keys are
//! rejected by serde and named in its error.
//!
//! The same types serialize: the webhook builds a [`RawConfig`] for each injected
//! agent, so the two cannot drift apart. TOML leaves out a `None` field by itself,
//! and a table that is all defaults is skipped, so the output holds only what was
//! set.

use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default, skip_serializing_if = "is_default")]
    pub vault: RawVault,
    #[serde(default, skip_serializing_if = "is_default")]
    pub auth: RawAuth,
    #[serde(default, skip_serializing_if = "is_default")]
    pub output: RawOutput,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<RawState>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret: Vec<RawSecret>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub template: Vec<RawTemplate>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub redact: RawRedact,
    #[serde(default, skip_serializing_if = "is_default")]
    pub lifecycle: RawLifecycle,
    #[serde(default, skip_serializing_if = "is_default")]
    pub metrics: RawMetrics,
    #[serde(default, skip_serializing_if = "is_default")]
    pub audit: RawAudit,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateway: Vec<RawGateway>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault_agent: Option<RawVaultAgent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<RawPolicy>,
}

/// `[vault_agent]`: a Vault Agent configuration whose templates are added
/// (config/injected.rs).
#[derive(Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawVaultAgent {
    pub config: Option<String>,
}

/// `[policy]`: limits on what this configuration may read (config/injected.rs).
#[derive(Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub allowed_prefixes: Option<Vec<String>>,
}

#[derive(Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawVault {
    pub address: Option<String>,
    pub ca_cert: Option<String>,
    pub tls_server_name: Option<String>,
    pub namespace: Option<String>,
    pub timeout: Option<String>,
}

#[derive(Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub method: Option<String>,
    pub mount: Option<String>,
    pub role: Option<String>,
    pub jwt_path: Option<String>,
    pub role_id_file: Option<String>,
    pub secret_id_file: Option<String>,
    pub token_file: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    pub dir: Option<String>,
    pub require_tmpfs: Option<bool>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub mode: Option<String>,
}

#[derive(Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    pub dir: Option<String>,
    pub require_tmpfs: Option<bool>,
}

#[derive(Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecret {
    pub name: Option<String>,
    pub path: Option<String>,
    pub kind: Option<String>,
    pub field: Option<String>,
    pub format: Option<String>,
    pub template: Option<String>,
    pub template_file: Option<String>,
    pub refresh: Option<String>,
    pub params: Option<toml::Table>,
    pub params_file: Option<std::collections::BTreeMap<String, String>>,
    pub reissue_at: Option<f64>,
    pub gateway_only: Option<bool>,
}

/// `[[template]]`: a Consul Template template (Vault Agent's `template` stanza).
#[derive(Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawTemplate {
    pub name: Option<String>,
    pub contents: Option<String>,
    pub source: Option<String>,
    pub left_delimiter: Option<String>,
    pub right_delimiter: Option<String>,
    pub error_on_missing_key: Option<bool>,
    pub refresh: Option<String>,
}

#[derive(Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedact {
    pub mask: Option<String>,
    pub min_length: Option<usize>,
    pub piece_length: Option<usize>,
    pub retain: Option<String>,
    pub strict: Option<bool>,
    pub detect: Option<String>,
    pub env: Option<Vec<String>>,
}

#[derive(Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawLifecycle {
    pub revoke_on_exit: Option<bool>,
    pub on_rotate: Option<String>,
    pub renew_threshold: Option<f64>,
    pub exit_marker_timeout: Option<String>,
    pub handshake_timeout: Option<String>,
    pub startup_timeout: Option<String>,
    pub revoke_timeout: Option<String>,
    pub revoke_certificates: Option<bool>,
    pub retire_grace: Option<String>,
}

#[derive(Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    pub listen: Option<String>,
}

#[derive(Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    pub path: Option<String>,
    pub sign_key: Option<String>,
    pub sign_every: Option<u64>,
    pub sign_interval: Option<String>,
}

/// One `[[gateway]]` (docs/gateway.md).
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawGateway {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub secret: Option<String>,
    pub listen: Option<String>,
    pub upstream: Option<String>,
    pub allow_remote: Option<bool>,
    /// kind http: header name → template rendered from the secret.
    pub headers: Option<std::collections::BTreeMap<String, String>>,
    /// kind http: an `Authorization: Basic` header from two templates.
    pub basic: Option<RawBasic>,
    /// kind http: PEM CA file trusted for the upstream instead of the web roots.
    pub ca_cert: Option<String>,
    /// kind vault: the API paths the workload may use (policy globs).
    pub paths: Option<Vec<String>>,
    /// kind postgres: `disable`, `require` or `verify-full`.
    pub sslmode: Option<String>,
    /// kind postgres: the CA for `verify-full`.
    pub ca_file: Option<String>,
    /// Client connections open at once.
    pub max_connections: Option<u32>,
}

/// `[[gateway]] basic = { username = "…", password = "…" }`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawBasic {
    pub username: Option<String>,
    pub password: Option<String>,
}

/// Whether a table holds nothing but defaults (and so need not be written).
fn is_default<T: Default + PartialEq>(table: &T) -> bool {
    *table == T::default()
}
