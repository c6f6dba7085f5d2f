//! The injected agent's configuration (TOML, passed in `SHROUD_CONFIG_TOML`). It
//! holds addresses, the role and paths; never a secret.

use std::sync::LazyLock;

use serde::Serialize;

use super::annotations::{ConsulText, Injection, SecretKind, CONFIG_MAP_DIR};
use super::config::WebhookConfig;
use super::memo::Memo;
use crate::config::raw::{
    RawAuth, RawConfig, RawLifecycle, RawMetrics, RawOutput, RawPolicy, RawSecret, RawState,
    RawTemplate, RawVault, RawVaultAgent,
};

/// The secrets directory inside the pod.
pub const SECRETS_DIR: &str = "/run/shroud/secrets";
/// Where the agent's own in-memory volume is mounted (in the sidecar only).
pub const STATE_MOUNT: &str = "/run/shroud/state";
/// The agent's private state directory: a restarted agent adopts its token and
/// leases from there. A subdirectory the agent creates, so that it owns it and
/// can make it 0700 (an emptyDir's root belongs to root, mode 0777).
pub const STATE_DIR: &str = "/run/shroud/state/agent";
/// The service-account token the agent logs in with by default.
pub const SA_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

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

/// Configurations rendered recently (TOML serialization costs more than the
/// rest of a review): distinct pod templates × owners.
static RENDERED: LazyLock<Memo<String>> = LazyLock::new(|| Memo::new(512, MAX_MEMO_KEY));
/// Larger configurations (huge inline templates) are rendered every time.
pub const MAX_MEMO_KEY: usize = 64 * 1024;

/// Renders the agent's TOML configuration, in the agent's own schema
/// ([`RawConfig`]): a key the agent does not know cannot be written.
pub fn render(inj: &Injection, cfg: &WebhookConfig, owner: FileOwner, namespace: &str) -> String {
    let raw = build(inj, cfg, owner, namespace);
    RENDERED.get_or(memo_key(&raw), || to_toml(&raw))
}

/// The configuration as TOML, without the memo.
pub fn to_toml(raw: &RawConfig) -> String {
    toml::to_string(raw).expect("the agent config is always serializable")
}

/// The whole configuration as a memo key: its JSON form, which is one-to-one
/// for what [`build`] makes (strings, integers, booleans, string tables; no
/// float, which JSON would write as `null` when NaN) and far cheaper than TOML.
pub fn memo_key(raw: &RawConfig) -> String {
    serde_json::to_string(raw).expect("the agent config is always serializable")
}

/// The agent's configuration for one injection in `namespace`.
pub fn build(inj: &Injection, cfg: &WebhookConfig, owner: FileOwner, namespace: &str) -> RawConfig {
    let o = &inj.overrides;
    // What the webhook cannot read at admission (the ConfigMap's config.hcl and
    // template files) the agent checks at start, against the same prefixes.
    let policy = &cfg.policy.secret_paths;
    let unchecked = inj.config_map.is_some();
    RawConfig {
        vault: RawVault {
            address: Some(
                o.vault_address
                    .as_ref()
                    .unwrap_or(&cfg.vault.address)
                    .clone(),
            ),
            ca_cert: cfg.vault.ca_cert.clone(),
            tls_server_name: o
                .tls_server_name
                .clone()
                .or_else(|| cfg.vault.tls_server_name.clone()),
            namespace: o
                .vault_namespace
                .clone()
                .or_else(|| cfg.vault.namespace.clone()),
            timeout: cfg.vault.timeout.clone(),
        },
        auth: RawAuth {
            method: Some(cfg.auth.method.clone()),
            mount: Some(o.auth_mount.as_ref().unwrap_or(&cfg.auth.mount).clone()),
            role: Some(inj.role.clone()),
            jwt_path: Some(
                cfg.auth
                    .jwt_path
                    .clone()
                    .unwrap_or_else(|| SA_TOKEN_PATH.into()),
            ),
            ..RawAuth::default()
        },
        output: RawOutput {
            dir: Some(SECRETS_DIR.into()),
            require_tmpfs: Some(true),
            // Kubernetes admits only UIDs and GIDs in 0..2^31; the agent runs as
            // this owner, so leaving an impossible one out changes nothing.
            uid: u32::try_from(owner.uid).ok(),
            gid: u32::try_from(owner.gid).ok(),
            mode: Some(format!("{:04o}", owner.mode)),
        },
        state: Some(RawState {
            dir: Some(STATE_DIR.into()),
            require_tmpfs: Some(true),
        }),
        secret: inj
            .secrets
            .iter()
            .map(|s| RawSecret {
                name: Some(s.name.clone()),
                path: Some(s.path.clone()),
                kind: Some(variant_name(s.kind)),
                field: s.field.clone(),
                // A certificate is a directory of fixed files: no format.
                // Nor for a gateway-only secret, which is rendered nowhere.
                format: (s.kind != SecretKind::Pki && !s.gateway_only)
                    .then(|| variant_name(s.format)),
                template: s.template.clone(),
                params: (!s.params.is_empty()).then(|| {
                    s.params
                        .iter()
                        .map(|(k, v)| (k.clone(), toml::Value::String(v.clone())))
                        .collect()
                }),
                gateway_only: s.gateway_only.then_some(true),
                ..RawSecret::default()
            })
            .collect(),
        template: inj
            .templates
            .iter()
            .map(|t| {
                let (contents, source) = match &t.text {
                    ConsulText::Inline(text) => (Some(text.clone()), None),
                    ConsulText::File(file) => (None, Some(file.clone())),
                };
                RawTemplate {
                    name: Some(t.name.clone()),
                    contents,
                    source,
                    left_delimiter: t.left.clone(),
                    right_delimiter: t.right.clone(),
                    error_on_missing_key: t.error_on_missing_key.then_some(true),
                    refresh: None,
                }
            })
            .collect(),
        lifecycle: RawLifecycle {
            revoke_on_exit: Some(o.revoke_on_exit.unwrap_or(cfg.agent.revoke_on_exit)),
            ..RawLifecycle::default()
        },
        // On the pod's address: a PodMonitor scrapes it from outside the pod.
        metrics: RawMetrics {
            listen: (cfg.pod_metrics.agent_port != 0)
                .then(|| format!("0.0.0.0:{}", cfg.pod_metrics.agent_port)),
        },
        vault_agent: inj.config_map.as_ref().map(|_| RawVaultAgent {
            config: Some(format!("{CONFIG_MAP_DIR}/config.hcl")),
        }),
        policy: (unchecked && policy.enabled).then(|| RawPolicy {
            allowed_prefixes: Some(policy.prefixes_for(namespace)),
        }),
        gateway: inj.gateways.iter().map(|g| g.raw.clone()).collect(),
        ..RawConfig::default()
    }
}

/// The name serde gives an annotation's kind or format: the agent's spelling.
fn variant_name(tag: impl Serialize) -> String {
    match toml::Value::try_from(tag) {
        Ok(toml::Value::String(name)) => name,
        other => unreachable!("a unit variant serializes as a string, not {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::decision::{parse, Decision};

    /// An injection with every kind and format, and the webhook's defaults
    /// plus a CA and a timeout.
    fn shop_api() -> (Injection, WebhookConfig, FileOwner) {
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
            ("shroud.dev/secret-cert-kind", "pki"),
            ("shroud.dev/secret-cert-param-common_name", "api.shop.svc"),
            ("shroud.dev/secret-cert-param-ttl", "1h"),
            ("shroud.dev/secret-sts", "aws/sts/shop"),
            ("shroud.dev/secret-sts-param-ttl", "15m"),
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
        let owner = FileOwner {
            uid: 1000,
            gid: 2000,
            mode: 0o440,
        };
        (*inj, cfg, owner)
    }

    /// What the webhook writes is what the agent accepts: parsed and validated by
    /// the agent's own configuration loader.
    #[test]
    fn rendered_config_is_valid_for_the_agent() {
        let (inj, cfg, owner) = shop_api();
        let text = render(&inj, &cfg, owner, "apps");
        let parsed = crate::config::parse("SHROUD_CONFIG_TOML", &text, std::iter::empty())
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(parsed.secrets.len(), 6, "{text}");
        let cert = parsed.secrets.iter().find(|s| s.name == "cert").unwrap();
        assert_eq!(cert.kind, crate::config::SecretKind::Pki);
        let params = cert.params.as_ref().unwrap();
        assert_eq!(params.str("common_name"), Some("api.shop.svc"));
        let sts = parsed.secrets.iter().find(|s| s.name == "sts").unwrap();
        assert_eq!(sts.params.as_ref().unwrap().str("ttl"), Some("15m"));
        let key = parsed.secrets.iter().find(|s| s.name == "key").unwrap();
        assert_eq!(key.read_path(), "secret/data/shop/stripe");
        assert_eq!(key.field.as_deref(), Some("api_key"));
        assert_eq!(parsed.output.uid, Some(1000));
        assert_eq!(parsed.output.gid, Some(2000));
        assert_eq!(parsed.output.mode, 0o440);
        assert_eq!(parsed.metrics_listen, None);
    }

    /// The memo answers exactly what rendering would, for every input that
    /// changes the text: the owner, the webhook's configuration, the injection.
    #[test]
    fn remembered_renders_follow_every_input() {
        let (inj, cfg, owner) = shop_api();
        let first = render(&inj, &cfg, owner, "apps");
        assert_eq!(render(&inj, &cfg, owner, "apps"), first);
        assert_eq!(first, to_toml(&build(&inj, &cfg, owner, "apps")));
        let other_owner = FileOwner {
            mode: 0o400,
            ..owner
        };
        assert!(render(&inj, &cfg, other_owner, "apps").contains("mode = \"0400\""));
        let mut other_cfg = cfg.clone();
        other_cfg.vault.address = "https://elsewhere:8200".into();
        assert!(render(&inj, &other_cfg, owner, "apps").contains("https://elsewhere:8200"));
        let mut other_inj = inj.clone();
        other_inj.role = "another-role".into();
        assert!(render(&other_inj, &cfg, owner, "apps").contains("\"another-role\""));
        assert_eq!(render(&inj, &cfg, owner, "apps"), first);
    }

    /// With `[pod_metrics] agent_port`, the agent serves `/metrics` on the pod's
    /// address for the chart's PodMonitor.
    #[test]
    fn pod_metrics_port_becomes_the_agents_listen_address() {
        let (inj, mut cfg, owner) = shop_api();
        cfg.pod_metrics.agent_port = 9102;
        let text = render(&inj, &cfg, owner, "apps");
        let parsed = crate::config::parse("SHROUD_CONFIG_TOML", &text, std::iter::empty())
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(parsed.metrics_listen.as_deref(), Some("0.0.0.0:9102"));
    }

    /// The text reads back as the very document that was built (nothing set is
    /// lost in serialization), and tables the webhook leaves alone are not written.
    #[test]
    fn rendered_config_round_trips_and_holds_only_what_was_set() {
        let (inj, cfg, owner) = shop_api();
        let text = render(&inj, &cfg, owner, "apps");
        let read: RawConfig = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(read, build(&inj, &cfg, owner, "apps"), "{text}");
        for absent in [
            "[redact]",
            "[metrics]",
            "[audit]",
            "role_id_file",
            "refresh",
        ] {
            assert!(!text.contains(absent), "`{absent}` written:\n{text}");
        }
        assert!(text.contains("kind = \"kv2\"") && text.contains("format = \"template\""));
    }

    /// A compatibility pod's files are `[[template]]`s with the injector's
    /// options; its ConfigMap's config.hcl is named, with the namespace's
    /// allowed prefixes for the agent to enforce at start.
    #[test]
    fn compat_templates_and_config_map() {
        let a: std::collections::BTreeMap<String, String> = [
            ("vault.hashicorp.com/agent-inject", "true"),
            ("vault.hashicorp.com/role", "web"),
            (
                "vault.hashicorp.com/agent-inject-secret-db",
                "secret/data/apps/db",
            ),
            (
                "vault.hashicorp.com/agent-inject-template-env",
                "[[ with secret \"secret/data/apps/env\" ]]x[[ end ]]",
            ),
            ("vault.hashicorp.com/agent-template-left-delim-env", "[["),
            ("vault.hashicorp.com/agent-template-right-delim-env", "]]"),
            ("vault.hashicorp.com/error-on-missing-key-env", "true"),
            ("vault.hashicorp.com/agent-configmap", "web-agent"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let Decision::Inject(inj) = parse(&a, true).unwrap() else {
            panic!("not an injection")
        };
        let (_, cfg, owner) = shop_api();
        let raw = build(&inj, &cfg, owner, "apps");
        assert!(raw.secret.is_empty());
        let names: Vec<_> = raw
            .template
            .iter()
            .map(|t| t.name.as_deref().unwrap())
            .collect();
        assert_eq!(names, ["db", "env"]);
        assert!(raw.template[0]
            .contents
            .as_deref()
            .unwrap()
            .contains("range $k, $v := .Data"));
        assert_eq!(raw.template[1].left_delimiter.as_deref(), Some("[["));
        assert_eq!(raw.template[1].error_on_missing_key, Some(true));
        assert_eq!(
            raw.vault_agent.as_ref().and_then(|v| v.config.as_deref()),
            Some("/vault/configs/config.hcl")
        );
        assert_eq!(
            raw.policy.unwrap().allowed_prefixes.unwrap(),
            ["secret/data/apps/", "database/creds/apps_"]
        );
    }

    /// The webhook writes agent configurations into pods; they must pass this
    /// validation (a contract test between the two).
    #[test]
    fn the_webhooks_agent_config_is_valid() {
        use crate::config::AuthMethod;
        use crate::webhook::annotations::{Origin, SecretFormat, SecretKind as K, SecretSpec as S};
        let spec = |name: &str, kind, field: Option<&str>, format, template: Option<&str>| S {
            name: name.into(),
            path: "p/x".into(),
            path_annotation: "a".into(),
            kind,
            field: field.map(Into::into),
            format,
            template: template.map(Into::into),
            params: Default::default(),
            gateway_only: false,
        };
        let inj = Injection {
            origin: Origin::Shroud,
            role: "app".into(),
            secrets: vec![
                spec("db.json", K::Dynamic, None, SecretFormat::Json, None),
                spec("api", K::Kv2, Some("key"), SecretFormat::Raw, None),
                spec("env", K::Generic, None, SecretFormat::Env, None),
                spec(
                    "dsn",
                    K::Dynamic,
                    None,
                    SecretFormat::Template,
                    Some("{{ username }}"),
                ),
            ],
            containers: None,
            commands: Default::default(),
            on_rotate: None,
            native_sidecar: None,
            warnings: Vec::new(),
            extra_mounts: Vec::new(),
            overrides: Default::default(),
            templates: Vec::new(),
            config_map: None,
            gateways: Vec::new(),
        };
        let text = render(
            &inj,
            &crate::webhook::config::WebhookConfig::default(),
            FileOwner {
                uid: 65532,
                gid: 65532,
                mode: 0o440,
            },
            "apps",
        );
        let c = crate::config::parse("test.toml", &text, std::iter::empty())
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(c.secrets.len(), 4);
        assert_eq!(c.output.uid, Some(65532));
        assert_eq!(c.output.mode, 0o440);
        assert_eq!(c.auth.method, AuthMethod::Kubernetes);
    }
}
