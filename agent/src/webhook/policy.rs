//! Guardrails from the webhook configuration: host paths that expose node
//! credentials (every pod in the selected namespaces) and the Vault paths a
//! namespace may read (opted-in pods). Each violation names the rule and field.

use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;

use super::annotations::Injection;
use super::config::PolicyConfig;

/// Rule name: host paths exposing node credentials.
pub const RULE_HOST_PATH: &str = "host-path-node-credentials";
/// Rule name: Vault paths outside the namespace's prefixes.
pub const RULE_SECRET_PATH: &str = "secret-path-prefix";

/// A broken rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy `{rule}` denies {field}: {reason}")]
pub struct Violation {
    /// The rule's name.
    pub rule: &'static str,
    /// The offending field.
    pub field: String,
    /// Why.
    pub reason: String,
}

/// Denies hostPath volumes at, under, or above a denied path (mounting `/var`
/// exposes `/var/lib/kubelet` just as well).
pub fn check_host_paths(
    pod: &Pod,
    namespace: &str,
    policy: &PolicyConfig,
) -> Result<(), Violation> {
    let rule = &policy.host_paths;
    if !rule.enabled || rule.exempt_namespaces.iter().any(|n| n == namespace) {
        return Ok(());
    }
    let volumes = pod.spec.as_ref().and_then(|s| s.volumes.as_ref());
    for (i, v) in volumes.into_iter().flatten().enumerate() {
        let Some(host) = &v.host_path else { continue };
        let path = normalize(&host.path);
        for denied in &rule.denied {
            let denied = normalize(denied);
            if path.starts_with(&denied) || denied.starts_with(&path) {
                return Err(Violation {
                    rule: RULE_HOST_PATH,
                    field: format!("spec.volumes[{i}].hostPath.path (volume `{}`)", v.name),
                    reason: format!(
                        "`{}` exposes node credentials at `{}`",
                        host.path,
                        denied.display()
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Denies secrets whose Vault path is outside the prefixes allowed for the namespace.
pub fn check_secret_paths(
    inj: &Injection,
    namespace: &str,
    policy: &PolicyConfig,
) -> Result<(), Violation> {
    let rule = &policy.secret_paths;
    if !rule.enabled {
        return Ok(());
    }
    let allowed = rule.prefixes_for(namespace);
    for s in &inj.secrets {
        if !allowed.iter().any(|p| s.path.starts_with(p.as_str())) {
            return Err(Violation {
                rule: RULE_SECRET_PATH,
                field: format!("metadata.annotations[\"{}\"]", s.path_annotation),
                reason: format!(
                    "`{}` is outside the paths allowed in namespace `{namespace}` ({})",
                    s.path,
                    allowed
                        .iter()
                        .map(|p| format!("`{p}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    }
    Ok(())
}

/// Lexical normalisation: `.` and `..` resolved, duplicate and trailing `/` gone.
fn normalize(p: &str) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{HostPathVolumeSource, PodSpec, Volume};

    fn pod_with_host_path(path: &str) -> Pod {
        Pod {
            spec: Some(PodSpec {
                volumes: Some(vec![
                    Volume {
                        name: "data".into(),
                        ..Volume::default()
                    },
                    Volume {
                        name: "host".into(),
                        host_path: Some(HostPathVolumeSource {
                            path: path.into(),
                            type_: None,
                        }),
                        ..Volume::default()
                    },
                ]),
                ..PodSpec::default()
            }),
            ..Pod::default()
        }
    }

    #[test]
    fn host_paths() {
        let policy = PolicyConfig::default();
        for bad in [
            "/var/run/docker.sock",
            "/var/lib/kubelet/pki",
            "/var",
            "/",
            "/etc/kubernetes/",
            "/tmp/../etc/kubernetes",
        ] {
            let v = check_host_paths(&pod_with_host_path(bad), "apps", &policy).unwrap_err();
            assert_eq!(v.rule, RULE_HOST_PATH);
            assert!(
                v.to_string().contains("spec.volumes[1].hostPath.path"),
                "{v}"
            );
        }
        for ok in ["/var/log/app", "/data", "/var/runner"] {
            check_host_paths(&pod_with_host_path(ok), "apps", &policy).unwrap();
        }
        check_host_paths(
            &pod_with_host_path("/var/run/docker.sock"),
            "kube-system",
            &policy,
        )
        .unwrap();
    }
}
