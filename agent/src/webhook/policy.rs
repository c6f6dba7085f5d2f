//! Guardrails from the webhook configuration: hostPath volumes (every pod in the
//! selected namespaces) and the Vault paths a namespace may read (opted-in pods).
//! Each violation names the rule and field.

use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;

use super::annotations::{validate_path, Injection};
use super::config::{HostPathMode, PolicyConfig};

/// Rule name: hostPath volumes.
pub const RULE_HOST_PATH: &str = "host-path";
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

/// In allow-list mode, admits hostPath volumes only at or under an allowed path;
/// in deny-list mode, denies them at, under, or above a denied path (mounting
/// `/var` exposes `/var/lib/kubelet` just as well). A path with a `..` segment is
/// denied in both: the node resolves it through symlinks, not as text.
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
        let deny = |reason: String| Violation {
            rule: RULE_HOST_PATH,
            field: format!("spec.volumes[{i}].hostPath.path (volume `{}`)", v.name),
            reason,
        };
        if !host.path.starts_with('/') || host.path.split('/').any(|s| s == "..") {
            return Err(deny(format!(
                "`{}` is not an absolute path without `..` segments",
                host.path
            )));
        }
        let path = normalize(&host.path);
        match rule.mode {
            HostPathMode::AllowList => {
                if !rule.allowed.iter().any(|a| path.starts_with(normalize(a))) {
                    return Err(deny(format!(
                        "`{}` is not at or under a host path allowed by the webhook's policy.host_paths.allowed ({})",
                        host.path,
                        listed(&rule.allowed)
                    )));
                }
            }
            HostPathMode::DenyList => {
                for denied in &rule.denied {
                    let denied = normalize(denied);
                    if path.starts_with(&denied) || denied.starts_with(&path) {
                        return Err(deny(format!(
                            "`{}` exposes the node at `{}`",
                            host.path,
                            denied.display()
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}

fn listed(items: &[String]) -> String {
    if items.is_empty() {
        return "none".into();
    }
    items
        .iter()
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ")
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
                    listed(&allowed)
                ),
            });
        }
    }
    for t in &inj.templates {
        let deny = |reason: String| Violation {
            rule: RULE_SECRET_PATH,
            field: format!("metadata.annotations[\"{}\"]", t.annotation),
            reason,
        };
        let calls = super::templates::consul_calls(t)
            .map_err(|e| deny(format!("the template's Vault paths cannot be checked: {e}")))?;
        // A template file is checked by the agent at start, against the same
        // prefixes handed over in its configuration (agent_config.rs).
        for c in calls.into_iter().flatten() {
            let path = c.path.trim_start_matches('/');
            if validate_path(path, "").is_err() {
                return Err(deny(format!(
                    "the template reads `{}`, which is not a plain Vault path (segments of [A-Za-z0-9._~@:+=,-], no `.` or `..`)",
                    c.path
                )));
            }
            if !allowed.iter().any(|p| path.starts_with(p.as_str())) {
                return Err(deny(format!(
                    "the template reads `{path}`, outside the paths allowed in namespace `{namespace}` ({})",
                    listed(&allowed)
                )));
            }
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

    fn compat(template: &str) -> Injection {
        let a: std::collections::BTreeMap<String, String> = [
            ("vault.hashicorp.com/agent-inject", "true"),
            ("vault.hashicorp.com/role", "web"),
            ("vault.hashicorp.com/agent-inject-template-app", template),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        match crate::webhook::decision::parse(&a, true).unwrap() {
            crate::webhook::decision::Decision::Inject(i) => *i,
            d => panic!("{d:?}"),
        }
    }

    /// Every `secret`/`pkiCert` call of a Consul template is checked, wherever
    /// it sits in the tree; a path built at run time cannot be, and is denied.
    #[test]
    fn every_call_of_a_consul_template_is_checked() {
        let policy = PolicyConfig::default();
        let ok = "{{ with secret \"secret/data/apps/db\" }}{{ .Data.data.pw }}{{ end }}";
        check_secret_paths(&compat(ok), "apps", &policy).unwrap();
        for (bad, why) in [
            ("{{ with secret \"secret/data/apps/db\" }}{{ end }}{{ if true }}{{ with secret \"secret/data/kube/x\" }}{{ end }}{{ end }}", "secret/data/kube/x"),
            ("{{ range $i := (secret \"secret/data/apps/a\").Data }}{{ (secret \"/secret/data/other/b\").Data }}{{ end }}", "secret/data/other/b"),
            ("{{ define \"t\" }}{{ with pkiCert \"pki/issue/admin\" \"common_name=x\" }}{{ .Cert }}{{ end }}{{ end }}{{ template \"t\" }}", "pki/issue/admin"),
            ("{{ with secret \"secret/data/apps/../kube/x\" }}{{ end }}", "not a plain Vault path"),
            ("{{ $p := \"secret/data/kube/x\" }}{{ with secret $p }}{{ end }}", "cannot be checked"),
            ("{{ with secret (printf \"secret/data/%s/x\" \"kube\") }}{{ end }}", "cannot be checked"),
        ] {
            let v = check_secret_paths(&compat(bad), "apps", &policy).unwrap_err();
            assert_eq!(v.rule, RULE_SECRET_PATH);
            assert!(v.reason.contains(why), "{bad}: {v}");
            assert!(
                v.field.contains("vault.hashicorp.com/agent-inject-template-app"),
                "{v}"
            );
        }
    }

    #[test]
    fn host_paths_allow_list() {
        let mut policy = PolicyConfig::default();
        policy.host_paths.allowed = vec!["/data/shared".into()];
        for bad in [
            "/proc/1/root/run/containerd/containerd.sock",
            "/proc/self/root",
            "/data",
            "/data/shared/../../var/lib/kubelet",
            "/data/sharedx",
            "relative",
            "/",
        ] {
            let v = check_host_paths(&pod_with_host_path(bad), "apps", &policy).unwrap_err();
            assert_eq!(v.rule, RULE_HOST_PATH);
            assert!(
                v.to_string().contains("spec.volumes[1].hostPath.path"),
                "{v}"
            );
        }
        for ok in ["/data/shared", "/data/shared/x", "/data//shared/./y/"] {
            check_host_paths(&pod_with_host_path(ok), "apps", &policy).unwrap();
        }
    }

    #[test]
    fn host_paths_deny_list() {
        let mut policy = PolicyConfig::default();
        policy.host_paths.mode = HostPathMode::DenyList;
        for bad in [
            "/var/run/docker.sock",
            "/var/lib/kubelet/pki",
            "/var",
            "/",
            "/etc/kubernetes/",
            "/tmp/../etc/kubernetes",
            "/proc/1/root",
            "/run/podman/podman.sock",
            "/var/lib/etcd",
            "/etc/cni/net.d",
            "/var/log/pods",
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
