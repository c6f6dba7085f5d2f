//! `[registry]` in the webhook's configuration: how image entrypoints are read
//! from registries for containers that do not spell out their `command`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::allow::{HostPolicy, ANY_PUBLIC};
use super::platform::Platform;
use super::reference::is_loopback_host;

/// What happens to a pod whose image cannot be resolved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Deny the pod, naming the image and the reason.
    #[default]
    Deny,
    /// Admit the pod unchanged (not injected), with a warning.
    Admit,
}

/// `[registry]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// Whether entrypoints are read from registries at all.
    pub enabled: bool,
    /// The whole lookup for one admission (every image, every round trip).
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// A Docker config JSON (`.dockerconfigjson` of an image pull secret).
    pub docker_config: Option<PathBuf>,
    /// PEM CA certificates trusted besides the built-in web roots.
    pub ca_bundle: Option<PathBuf>,
    /// Loopback registries (`host:port`) spoken to over plain HTTP.
    pub plain_http: Vec<String>,
    /// Hosts the client may connect to (registries, redirect targets, token
    /// realms): `*` (any public host), `host`, `host:port`, `*.domain[:port]`.
    pub allowed: Vec<String>,
    /// Admissions whose misses one registry host may have fetched at once.
    pub max_fetches_per_registry: usize,
    /// Admissions whose misses one namespace may have fetched at once.
    pub max_fetches_per_namespace: usize,
    /// Entries kept in the digest cache (and in the tag cache).
    pub cache_size: usize,
    /// How long a tag → digest answer is reused.
    #[serde(with = "duration")]
    pub tag_ttl: Duration,
    /// The platform assumed when the pod does not constrain `kubernetes.io/arch`/`os`.
    pub default_platform: String,
    /// Deny or admit (uninjected) when an image cannot be resolved.
    pub on_failure: OnFailure,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            enabled: true,
            timeout: Duration::from_secs(3),
            docker_config: None,
            ca_bundle: None,
            plain_http: Vec::new(),
            allowed: vec![ANY_PUBLIC.to_string()],
            max_fetches_per_registry: 2,
            max_fetches_per_namespace: 2,
            cache_size: 1024,
            tag_ttl: Duration::from_secs(60),
            default_platform: "linux/amd64".into(),
            on_failure: OnFailure::Deny,
        }
    }
}

impl RegistryConfig {
    /// Checks the values; the error is `(key, reason)` with the key under `registry.`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |k: &str, r: &str| Err((format!("registry.{k}"), r.to_string()));
        if self.timeout.is_zero() || self.timeout > Duration::from_secs(25) {
            return bad(
                "timeout",
                "must be between 1ms and 25s (well under the admission timeout, at most 30s)",
            );
        }
        if self.max_fetches_per_registry == 0 {
            return bad("max_fetches_per_registry", "must be > 0");
        }
        if self.max_fetches_per_namespace == 0 {
            return bad("max_fetches_per_namespace", "must be > 0");
        }
        if let Err(reason) = HostPolicy::new(&self.allowed, &[]) {
            return bad("allowed", &reason);
        }
        if self.cache_size == 0 {
            return bad("cache_size", "must be > 0");
        }
        if self.default_platform.parse::<Platform>().is_err() {
            return bad(
                "default_platform",
                "must be `os/arch` or `os/arch/variant`, e.g. `linux/amd64`",
            );
        }
        for host in &self.plain_http {
            if !is_loopback_host(host) {
                return bad(
                    "plain_http",
                    &format!("`{host}` is not a loopback registry: plain HTTP is only allowed for 127.0.0.0/8, [::1] and localhost"),
                );
            }
        }
        if let Err(reason) = HostPolicy::new(&[], &self.plain_http) {
            return bad("plain_http", &reason);
        }
        Ok(())
    }
}

/// `"4s"`-style durations through humantime.
mod duration {
    use std::time::Duration;

    use serde::{Deserialize as _, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| {
            serde::de::Error::custom(format!("`{s}` is not a duration like `4s`: {e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_hosts_and_shares_are_checked() {
        assert!(RegistryConfig::default().validate().is_ok());
        let bad = |cfg: RegistryConfig| cfg.validate().unwrap_err();
        let (key, reason) = bad(RegistryConfig {
            allowed: vec!["*".into(), "a*.example.com".into()],
            ..RegistryConfig::default()
        });
        assert_eq!(key, "registry.allowed");
        assert!(reason.contains("a*.example.com"), "{reason}");
        let (key, _) = bad(RegistryConfig {
            max_fetches_per_registry: 0,
            ..RegistryConfig::default()
        });
        assert_eq!(key, "registry.max_fetches_per_registry");
        let (key, _) = bad(RegistryConfig {
            max_fetches_per_namespace: 0,
            ..RegistryConfig::default()
        });
        assert_eq!(key, "registry.max_fetches_per_namespace");
        let ok = RegistryConfig {
            allowed: vec![
                "registry.local:5000".into(),
                "*.corp.example".into(),
                "[::1]:7000".into(),
            ],
            plain_http: vec!["127.0.0.1:5000".into()],
            ..RegistryConfig::default()
        };
        assert!(ok.validate().is_ok());
    }
}
