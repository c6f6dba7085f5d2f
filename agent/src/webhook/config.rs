//! The webhook's configuration file (TOML): what to inject and the guardrail
//! policy. Parsed once at start into [`WebhookConfig`]; every key has a default so
//! an empty file (or none) is a valid configuration.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::registry::config::RegistryConfig;

/// Errors reading the configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read webhook config {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped keys.
    #[error("invalid webhook config {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message (names the key and line).
        message: String,
    },
    /// A value has the right type but is not acceptable.
    #[error("invalid webhook config {path}: `{key}` {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// The dotted key.
        key: String,
        /// Why it was rejected.
        reason: String,
    },
}

/// The whole configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// The image holding `/shroud` (init container and agent).
    pub image: String,
    /// `imagePullPolicy` of the injected containers.
    pub image_pull_policy: String,
    /// `sizeLimit` of the in-memory secrets volume.
    pub secrets_size_limit: String,
    /// Whether pods get the agent as a native sidecar unless they say otherwise.
    pub native_sidecar: bool,
    /// Where and how the agent reaches Vault.
    pub vault: VaultConfig,
    /// How the agent authenticates.
    pub auth: AuthConfig,
    /// The agent container.
    pub agent: AgentContainerConfig,
    /// Migration aids.
    pub compat: CompatConfig,
    /// Guardrails.
    pub policy: PolicyConfig,
    /// Reading image entrypoints from registries.
    pub registry: RegistryConfig,
    /// Metrics endpoints of the injected agent and execs.
    pub pod_metrics: PodMetricsConfig,
}

/// `[pod_metrics]`: ports on which injected pods serve shroud's metrics, for a
/// PodMonitor (0: not served).
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PodMetricsConfig {
    /// The agent's `/metrics` (container port `shroud-metrics`).
    pub agent_port: u16,
    /// The first wrapped container's exec `/metrics` (`shroud-exec-0`); the
    /// next wrapped containers use the following ports.
    pub exec_port: u16,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            image: "shroud:0.1.0".into(),
            image_pull_policy: "IfNotPresent".into(),
            secrets_size_limit: "16Mi".into(),
            native_sidecar: true,
            vault: VaultConfig::default(),
            auth: AuthConfig::default(),
            agent: AgentContainerConfig::default(),
            compat: CompatConfig::default(),
            policy: PolicyConfig::default(),
            registry: RegistryConfig::default(),
            pod_metrics: PodMetricsConfig::default(),
        }
    }
}

/// `[vault]`: copied into every agent's configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VaultConfig {
    /// Vault or OpenBao address as seen from the pods.
    pub address: String,
    /// CA bundle path inside the agent container.
    pub ca_cert: Option<String>,
    /// TLS server name to verify.
    pub tls_server_name: Option<String>,
    /// Vault Enterprise / OpenBao namespace.
    pub namespace: Option<String>,
    /// Request timeout, e.g. `10s`.
    pub timeout: Option<String>,
}

impl Default for VaultConfig {
    fn default() -> Self {
        VaultConfig {
            address: "https://vault.vault.svc:8200".into(),
            ca_cert: None,
            tls_server_name: None,
            namespace: None,
            timeout: None,
        }
    }
}

/// `[auth]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `kubernetes` or `jwt` (the pod's service-account token is the identity).
    pub method: String,
    /// The auth method's mount path.
    pub mount: String,
    /// The token the agent logs in with; default: the pod's service-account token.
    pub jwt_path: Option<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            method: "kubernetes".into(),
            mount: "kubernetes".into(),
            jwt_path: None,
        }
    }
}

/// `[agent]`: the injected agent container.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentContainerConfig {
    /// UID the agent runs as when the workload's own UID is unknown or root.
    pub run_as_user: i64,
    /// GID the agent runs as when the pod has no `fsGroup`.
    pub run_as_group: i64,
    /// CPU request.
    pub cpu_request: String,
    /// Memory request.
    pub memory_request: String,
    /// CPU limit.
    pub cpu_limit: String,
    /// Memory limit.
    pub memory_limit: String,
    /// Seconds the startup probe waits for the first render before the kubelet
    /// restarts the agent.
    pub startup_timeout_seconds: i32,
    /// Revoke leases and the token when the workload exits.
    pub revoke_on_exit: bool,
}

impl Default for AgentContainerConfig {
    fn default() -> Self {
        AgentContainerConfig {
            run_as_user: 65532,
            run_as_group: 65532,
            cpu_request: "10m".into(),
            memory_request: "16Mi".into(),
            cpu_limit: "200m".into(),
            memory_limit: "64Mi".into(),
            startup_timeout_seconds: 120,
            revoke_on_exit: true,
        }
    }
}

/// `[compat]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompatConfig {
    /// Understand the core Vault Agent Injector annotations.
    pub vault_agent: bool,
}

/// `[policy]`: guardrails applied to every pod the webhook sees.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// `[policy.host_paths]`.
    pub host_paths: HostPathPolicy,
    /// `[policy.secret_paths]`.
    pub secret_paths: SecretPathPolicy,
}

/// Host paths that expose node credentials.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostPathPolicy {
    /// Whether the rule is applied.
    pub enabled: bool,
    /// Namespaces the rule does not apply to.
    pub exempt_namespaces: Vec<String>,
    /// Denied paths: a hostPath volume at, under, or above any of them is denied.
    pub denied: Vec<String>,
}

/// The host paths denied by default: container runtime sockets, the kubelet's and
/// Kubernetes' configuration and credentials.
pub const DEFAULT_DENIED_HOST_PATHS: &[&str] = &[
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/run/containerd",
    "/run/containerd",
    "/var/run/crio",
    "/run/crio",
    "/var/run/cri-dockerd.sock",
    "/var/lib/kubelet",
    "/etc/kubernetes",
    "/var/lib/rancher",
    "/etc/rancher",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/root/.kube",
    "/root/.docker",
];

impl Default for HostPathPolicy {
    fn default() -> Self {
        HostPathPolicy {
            enabled: true,
            exempt_namespaces: vec!["kube-system".into()],
            denied: DEFAULT_DENIED_HOST_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

/// Which Vault paths a namespace's pods may ask for.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretPathPolicy {
    /// Whether the rule is applied.
    pub enabled: bool,
    /// Prefixes allowed in every namespace; `{namespace}` is replaced by the pod's.
    pub allowed_prefixes: Vec<String>,
    /// Extra prefixes per namespace (also with `{namespace}` expansion).
    pub namespaces: BTreeMap<String, Vec<String>>,
}

impl Default for SecretPathPolicy {
    fn default() -> Self {
        SecretPathPolicy {
            enabled: true,
            allowed_prefixes: vec![
                "secret/data/{namespace}/".into(),
                "database/creds/{namespace}-".into(),
            ],
            namespaces: BTreeMap::new(),
        }
    }
}

impl SecretPathPolicy {
    /// The prefixes allowed for `namespace`, expanded.
    pub fn prefixes_for(&self, namespace: &str) -> Vec<String> {
        self.allowed_prefixes
            .iter()
            .chain(self.namespaces.get(namespace).into_iter().flatten())
            .map(|p| p.replace("{namespace}", namespace))
            .collect()
    }
}

impl WebhookConfig {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<WebhookConfig, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text, &shown)
    }

    /// Parses and validates configuration text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<WebhookConfig, ConfigError> {
        let cfg: WebhookConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        cfg.validate(origin)?;
        Ok(cfg)
    }

    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: &str| ConfigError::Invalid {
            path: origin.to_string(),
            key: key.to_string(),
            reason: reason.to_string(),
        };
        if self.image.trim().is_empty() {
            return Err(invalid("image", "must not be empty"));
        }
        if !matches!(
            self.image_pull_policy.as_str(),
            "Always" | "IfNotPresent" | "Never"
        ) {
            return Err(invalid(
                "image_pull_policy",
                "must be Always, IfNotPresent or Never",
            ));
        }
        for (key, q) in [
            ("secrets_size_limit", &self.secrets_size_limit),
            ("agent.cpu_request", &self.agent.cpu_request),
            ("agent.memory_request", &self.agent.memory_request),
            ("agent.cpu_limit", &self.agent.cpu_limit),
            ("agent.memory_limit", &self.agent.memory_limit),
        ] {
            if !is_quantity(q) {
                return Err(invalid(
                    key,
                    "must be a Kubernetes quantity such as `16Mi` or `100m`",
                ));
            }
        }
        if self.vault.address.trim().is_empty() {
            return Err(invalid("vault.address", "must not be empty"));
        }
        if !matches!(self.auth.method.as_str(), "kubernetes" | "jwt") {
            return Err(invalid(
                "auth.method",
                "must be `kubernetes` or `jwt` (injected pods log in with their service-account token)",
            ));
        }
        if self.agent.run_as_user <= 0 {
            return Err(invalid("agent.run_as_user", "must be a non-root UID (> 0)"));
        }
        if self.agent.run_as_group < 0 {
            return Err(invalid("agent.run_as_group", "must be >= 0"));
        }
        if self.agent.startup_timeout_seconds <= 0 {
            return Err(invalid("agent.startup_timeout_seconds", "must be > 0"));
        }
        if let Err((key, reason)) = self.registry.validate() {
            return Err(invalid(&key, &reason));
        }
        for (i, p) in self.policy.host_paths.denied.iter().enumerate() {
            if !p.starts_with('/') {
                return Err(invalid(
                    &format!("policy.host_paths.denied[{i}]"),
                    "must be an absolute path",
                ));
            }
        }
        for p in self.policy.secret_paths.allowed_prefixes.iter().chain(
            self.policy
                .secret_paths
                .namespaces
                .values()
                .flat_map(|v| v.iter()),
        ) {
            if p.is_empty() || p.starts_with('/') {
                return Err(invalid(
                    "policy.secret_paths",
                    "prefixes must be non-empty Vault paths without a leading `/`",
                ));
            }
        }
        Ok(())
    }
}

/// A Kubernetes resource quantity: a decimal number with an optional suffix.
pub fn is_quantity(s: &str) -> bool {
    const SUFFIXES: &[&str] = &[
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E", "",
    ];
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(digits_end);
    !num.is_empty()
        && num.chars().filter(|&c| c == '.').count() <= 1
        && num != "."
        && SUFFIXES.contains(&suffix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_defaults() {
        let cfg = WebhookConfig::parse("", "t").unwrap();
        assert_eq!(cfg.image, "shroud:0.1.0");
        assert!(cfg.native_sidecar);
        assert!(cfg
            .policy
            .host_paths
            .denied
            .contains(&"/var/run/docker.sock".to_string()));
    }

    #[test]
    fn unknown_key_is_named() {
        let e = WebhookConfig::parse("[policy.host_path]\nenabled = true\n", "f.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("f.toml") && e.contains("host_path"), "{e}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = WebhookConfig::parse("secrets_size_limit = \"lots\"\n", "f")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`secrets_size_limit`"), "{e}");
        let e = WebhookConfig::parse("[agent]\nrun_as_user = 0\n", "f")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`agent.run_as_user`"), "{e}");
    }

    #[test]
    fn registry_values_are_checked() {
        let cfg = WebhookConfig::parse(
            "[registry]\ntimeout = \"2s\"\nplain_http = [\"127.0.0.1:5000\"]\non_failure = \"admit\"\n",
            "f",
        )
        .unwrap();
        assert_eq!(cfg.registry.timeout, std::time::Duration::from_secs(2));
        for (text, key) in [
            (
                "plain_http = [\"registry.example:80\"]",
                "`registry.plain_http`",
            ),
            ("timeout = \"40s\"", "`registry.timeout`"),
            (
                "default_platform = \"amd64\"",
                "`registry.default_platform`",
            ),
            ("cache_size = 0", "`registry.cache_size`"),
        ] {
            let e = WebhookConfig::parse(&format!("[registry]\n{text}\n"), "f")
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
        let e = WebhookConfig::parse("[registry]\ntimeout = \"soon\"\n", "f")
            .unwrap_err()
            .to_string();
        assert!(e.contains("timeout") && e.contains("soon"), "{e}");
    }

    #[test]
    fn prefixes_expand_namespace() {
        let mut p = SecretPathPolicy::default();
        p.namespaces
            .insert("pay".into(), vec!["kv/data/shared/{namespace}/".into()]);
        let got = p.prefixes_for("pay");
        assert!(got.contains(&"secret/data/pay/".to_string()));
        assert!(got.contains(&"kv/data/shared/pay/".to_string()));
        assert!(!p.prefixes_for("other").iter().any(|x| x.contains("shared")));
    }

    #[test]
    fn quantities() {
        for ok in ["16Mi", "100m", "1", "0.5", "2Gi"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "Mi", "1.2.3", "16MB", "-1"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }
}
