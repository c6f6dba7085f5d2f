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
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics: Option<Metrics>,
}

#[derive(Serialize)]
struct Metrics {
    listen: String,
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
        // On the pod's address: a PodMonitor scrapes it from outside the pod.
        metrics: (cfg.pod_metrics.agent_port != 0).then(|| Metrics {
            listen: format!("0.0.0.0:{}", cfg.pod_metrics.agent_port),
        }),
    };
    toml::to_string(&doc).expect("the agent config is always serializable")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::annotations::{parse, Decision};

    /// What the webhook writes is what the agent accepts: parsed and validated by
    /// the agent's own configuration loader.
    #[test]
    fn rendered_config_is_valid_for_the_agent() {
        let annotations = [
            ("shroud.dev/inject", "true"),
            ("shroud.dev/role", "shop-api"),
            ("shroud.dev/secret-db", "database/creds/shop-api"),
            ("shroud.dev/secret-key", "secret/data/shop/stripe"),
            ("shroud.dev/secret-key-field", "api_key"),
            ("shroud.dev/secret-env", "secret/data/shop/env"),
            ("shroud.dev/secret-env-format", "env"),
            ("shroud.dev/secret-url", "database/creds/shop-api"),
            (
                "shroud.dev/secret-url-template",
                "postgres://{{ username }}:{{ password }}@db/shop",
            ),
            ("shroud.dev/secret-cert", "pki/issue/shop"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let Decision::Inject(inj) = parse(&annotations, false).unwrap() else {
            panic!("not an injection")
        };
        let mut cfg = WebhookConfig::default();
        cfg.vault.ca_cert = Some("/etc/ca.pem".into());
        cfg.vault.timeout = Some("5s".into());
        cfg.pod_metrics.agent_port = 9102;
        let owner = FileOwner {
            uid: 1000,
            gid: 2000,
            mode: 0o440,
        };
        let text = render(&inj, &cfg, owner);
        let parsed = crate::config::parse("SHROUD_CONFIG_TOML", &text, std::iter::empty())
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(parsed.secrets.len(), 5, "{text}");
        assert_eq!(parsed.metrics_listen.as_deref(), Some("0.0.0.0:9102"));
        let key = parsed.secrets.iter().find(|s| s.name == "key").unwrap();
        assert_eq!(key.read_path(), "secret/data/shop/stripe");
        assert_eq!(key.field.as_deref(), Some("api_key"));
    }
}
