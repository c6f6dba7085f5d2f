//! The injected agent's configuration (TOML, passed in `SHROUD_CONFIG_TOML`). It
//! holds addresses, the role and paths; never a secret.

use serde::Serialize;

use super::annotations::{Injection, SecretFormat, SecretKind};
use super::config::WebhookConfig;

/// The secrets directory inside the pod.
pub const SECRETS_DIR: &str = "/run/shroud/secrets";
/// The service-account token the agent logs in with by default.
pub const SA_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

#[derive(Serialize)]
struct AgentToml<'a> {
    vault: Vault<'a>,
    auth: Auth<'a>,
    output: Output,
    secret: Vec<Secret<'a>>,
    lifecycle: Lifecycle,
}

#[derive(Serialize)]
struct Vault<'a> {
    address: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca_cert: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_server_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout: Option<&'a str>,
}

#[derive(Serialize)]
struct Auth<'a> {
    method: &'a str,
    mount: &'a str,
    role: &'a str,
    jwt_path: &'a str,
}

#[derive(Serialize)]
struct Output {
    dir: &'static str,
    require_tmpfs: bool,
    uid: i64,
    gid: i64,
    mode: String,
}

#[derive(Serialize)]
struct Secret<'a> {
    name: &'a str,
    path: &'a str,
    kind: SecretKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    format: SecretFormat,
    #[serde(skip_serializing_if = "Option::is_none")]
    template: Option<&'a str>,
}

#[derive(Serialize)]
struct Lifecycle {
    revoke_on_exit: bool,
}

/// Who owns the rendered files and how they may be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileOwner {
    /// Owner UID (the agent's own UID: it cannot chown).
    pub uid: i64,
    /// Owner GID.
    pub gid: i64,
    /// File mode.
    pub mode: u32,
}

/// Renders the agent's TOML configuration.
pub fn render(inj: &Injection, cfg: &WebhookConfig, owner: FileOwner) -> String {
    let doc = AgentToml {
        vault: Vault {
            address: &cfg.vault.address,
            ca_cert: cfg.vault.ca_cert.as_deref(),
            tls_server_name: cfg.vault.tls_server_name.as_deref(),
            namespace: cfg.vault.namespace.as_deref(),
            timeout: cfg.vault.timeout.as_deref(),
        },
        auth: Auth {
            method: &cfg.auth.method,
            mount: &cfg.auth.mount,
            role: &inj.role,
            jwt_path: cfg.auth.jwt_path.as_deref().unwrap_or(SA_TOKEN_PATH),
        },
        output: Output {
            dir: SECRETS_DIR,
            require_tmpfs: true,
            uid: owner.uid,
            gid: owner.gid,
            mode: format!("{:04o}", owner.mode),
        },
        secret: inj
            .secrets
            .iter()
            .map(|s| Secret {
                name: &s.name,
                path: &s.path,
                kind: s.kind,
                field: s.field.as_deref(),
                format: s.format,
                template: s.template.as_deref(),
            })
            .collect(),
        lifecycle: Lifecycle {
            revoke_on_exit: cfg.agent.revoke_on_exit,
        },
    };
    toml::to_string(&doc).expect("the agent config is always serializable")
}
