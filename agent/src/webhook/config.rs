//! The webhook's configuration file (TOML): what to inject and the guardrail
//! policy. Parsed once at start into [`WebhookConfig`]; every key has a default so
//! an empty file (or none) is a valid configuration.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::limits::ServerLimits;
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
    /// Bounds on what a request may cost.
    pub server: ServerLimits,
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
            server: ServerLimits::default(),
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
    /// Namespaces enforcing Pod Security "restricted": the agent gets no
    /// `IPC_LOCK` there (it locks what RLIMIT_MEMLOCK allows and says so).
    pub restricted_namespaces: Vec<String>,
    /// Never add `IPC_LOCK` (every namespace treated as restricted).
    pub restricted_everywhere: bool,
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
            restricted_namespaces: Vec::new(),
            restricted_everywhere: false,
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

/// How hostPath volumes are judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostPathMode {
    /// Only paths at or under an `allowed` entry (Pod Security "baseline" denies
    /// every hostPath; this is that plus explicit exceptions).
    AllowList,
    /// Everything except paths at, under or above a `denied` entry. Advisory:
    /// symlinks and `/proc/<pid>/root` reach any file through a path not listed.
    DenyList,
}

/// hostPath volumes.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostPathPolicy {
    /// Whether the rule is applied.
    pub enabled: bool,
    /// `allow-list` (default) or `deny-list`.
    pub mode: HostPathMode,
    /// Namespaces the rule does not apply to.
    pub exempt_namespaces: Vec<String>,
    /// allow-list mode: a hostPath volume at or under one of these is admitted.
    pub allowed: Vec<String>,
    /// deny-list mode: a hostPath volume at, under, or above any of them is denied.
    pub denied: Vec<String>,
}

/// The host paths denied in deny-list mode: magic links into other processes'
/// roots, container runtime sockets and state, the kubelet's and Kubernetes'
/// configuration and credentials, etcd's data, CNI configuration, pod logs.
pub const DEFAULT_DENIED_HOST_PATHS: &[&str] = &[
    "/proc",
    "/sys",
    "/dev",
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/run/docker",
    "/run/docker",
    "/var/run/containerd",
    "/run/containerd",
    "/var/run/crio",
    "/run/crio",
    "/var/run/cri-dockerd.sock",
    "/run/cri-dockerd.sock",
    "/var/run/podman",
    "/run/podman",
    "/run/k3s",
    "/run/flannel",
    "/var/lib/kubelet",
    "/etc/kubernetes",
    "/var/lib/etcd",
    "/var/lib/rancher",
    "/etc/rancher",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/var/lib/containers",
    "/etc/containerd",
    "/etc/crio",
    "/etc/cni",
    "/opt/cni",
    "/var/lib/cni",
    "/var/log/pods",
    "/var/log/containers",
    "/root",
    "/home",
    "/etc/ssh",
    "/etc/shadow",
];

impl Default for HostPathPolicy {
    fn default() -> Self {
        HostPathPolicy {
            enabled: true,
            mode: HostPathMode::AllowList,
            exempt_namespaces: vec!["kube-system".into()],
            allowed: Vec::new(),
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
                "database/creds/{namespace}_".into(),
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
            .map(|p| p.replace(NAMESPACE_PLACEHOLDER, namespace))
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
        let hp = &self.policy.host_paths;
        for (list, paths) in [("denied", &hp.denied), ("allowed", &hp.allowed)] {
            for (i, p) in paths.iter().enumerate() {
                if !p.starts_with('/') || p.split('/').any(|s| s == "..") {
                    return Err(invalid(
                        &format!("policy.host_paths.{list}[{i}]"),
                        "must be an absolute path without `..`",
                    ));
                }
            }
        }
        let sp = &self.policy.secret_paths;
        let all = sp
            .allowed_prefixes
            .iter()
            .map(|p| ("policy.secret_paths.allowed_prefixes".to_string(), p))
            .chain(sp.namespaces.iter().flat_map(|(ns, v)| {
                v.iter()
                    .map(move |p| (format!("policy.secret_paths.namespaces.{ns}"), p))
            }));
        for (key, p) in all {
            check_prefix(p).map_err(|reason| invalid(&key, &format!("`{p}`: {reason}")))?;
        }
        if let Err((key, reason)) = self.server.check() {
            return Err(invalid(key, reason));
        }
        Ok(())
    }
}

/// A secret path prefix: non-empty, relative, and `{namespace}` followed by a
/// character a namespace name cannot contain, so `team` cannot claim `team-b`'s
/// paths.
fn check_prefix(p: &str) -> Result<(), &'static str> {
    if p.is_empty() || p.starts_with('/') {
        return Err("prefixes must be non-empty Vault paths without a leading `/`");
    }
    for (at, _) in p.match_indices(NAMESPACE_PLACEHOLDER) {
        let next = p[at + NAMESPACE_PLACEHOLDER.len()..].chars().next();
        let in_name = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if !matches!(next, Some(c) if !in_name(c)) {
            return Err("`{namespace}` must be followed by a character a namespace name cannot contain (`/`, `_` or `.`), or one namespace could claim another's paths (`team` and `team-b`)");
        }
    }
    Ok(())
}

/// Replaced by the pod's namespace in secret path prefixes.
pub const NAMESPACE_PLACEHOLDER: &str = "{namespace}";

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
    fn namespace_prefixes_end_at_a_boundary() {
        for bad in [
            "database/creds/{namespace}-",
            "secret/data/{namespace}",
            "kv/{namespace}x/",
        ] {
            let text = format!("[policy.secret_paths]\nallowed_prefixes = [\"{bad}\"]\n");
            let e = WebhookConfig::parse(&text, "f").unwrap_err().to_string();
            assert!(
                e.contains("policy.secret_paths.allowed_prefixes") && e.contains("boundary")
                    || e.contains("cannot contain"),
                "{e}"
            );
        }
        for ok in [
            "database/creds/{namespace}_",
            "secret/data/{namespace}/",
            "pki/issue/{namespace}.web",
        ] {
            let text = format!("[policy.secret_paths]\nallowed_prefixes = [\"{ok}\"]\n");
            WebhookConfig::parse(&text, "f").unwrap();
        }
    }

    #[test]
    fn server_limits() {
        let cfg = WebhookConfig::parse("[server]\nbody_timeout = \"2s\"\n", "f").unwrap();
        assert_eq!(cfg.server.body_timeout, std::time::Duration::from_secs(2));
        assert_eq!(cfg.server.max_containers, 300);
        let e = WebhookConfig::parse("[server]\nidle_timeout = \"soon\"\n", "f")
            .unwrap_err()
            .to_string();
        assert!(e.contains("idle_timeout") || e.contains("soon"), "{e}");
        let e = WebhookConfig::parse("[server]\nmax_containers = 0\n", "f")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`server.max_containers`"), "{e}");
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
