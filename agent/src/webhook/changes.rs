//! Pod updates (`/validate`, UPDATE and `pods/ephemeralcontainers`): what shroud
//! put into a pod cannot be changed afterwards, and what is added later (an
//! ephemeral container, a new image) may not use it.
//!
//! An update is not re-derived from scratch: the configuration may have changed
//! since the pod was created, and every label change on an old pod would fail.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};

use super::annotations::STATUS;
use super::config::WebhookConfig;
use super::ownership::{self, RULE_OWNERSHIP};
use super::patch::{AGENT_CONTAINER, BIN_VOLUME, INIT_CONTAINER, SECRETS_VOLUME};
use super::policy::Violation;

fn shroud_annotations(pod: &Pod) -> BTreeMap<String, String> {
    pod.metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| k.to_ascii_lowercase().starts_with("shroud.dev/") || *k == STATUS)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// shroud's containers and volumes and every container's view of shroud's volumes.
fn shroud_parts(pod: &Pod) -> Value {
    let Some(spec) = &pod.spec else {
        return Value::Null;
    };
    let containers: Vec<Value> = ownership::all_containers(spec)
        .into_iter()
        .filter(|(field, _)| !field.starts_with("spec.ephemeralContainers"))
        .map(|(field, c)| {
            if c.name == INIT_CONTAINER || c.name == AGENT_CONTAINER {
                json!([field, c.as_ref()])
            } else {
                let mounts: Vec<_> = c
                    .volume_mounts
                    .iter()
                    .flatten()
                    .filter(|m| m.name == SECRETS_VOLUME || m.name == BIN_VOLUME)
                    .collect();
                json!([field, c.name, c.command, c.args, mounts])
            }
        })
        .collect();
    let volumes: Vec<_> = spec
        .volumes
        .iter()
        .flatten()
        .filter(|v| v.name == SECRETS_VOLUME || v.name == BIN_VOLUME)
        .collect();
    json!({"containers": containers, "volumes": volumes})
}

/// Checks an update of `old` into `new`.
pub fn check_update(old: &Pod, new: &Pod, cfg: &WebhookConfig) -> Result<(), Violation> {
    let deny = |field: &str, reason: String| Violation {
        rule: RULE_OWNERSHIP,
        field: field.to_string(),
        reason,
    };
    if shroud_annotations(old) != shroud_annotations(new) {
        return Err(deny(
            "metadata.annotations",
            "shroud.dev/ annotations cannot change after the pod is created".into(),
        ));
    }
    if shroud_parts(old) != shroud_parts(new) {
        return Err(deny(
            "spec",
            "shroud's containers, volumes and wrapped commands cannot change after the pod is created".into(),
        ));
    }
    let (Some(old_spec), Some(new_spec)) = (&old.spec, &new.spec) else {
        return Ok(());
    };
    let before: BTreeMap<String, Value> = ownership::all_containers(old_spec)
        .into_iter()
        .map(|(f, c)| (f, json!(c.as_ref())))
        .collect();
    // New or changed containers (ephemeral ones, new images) are checked as if
    // they were in a pod of their own, plus the process-namespace rule for
    // ephemeral containers of an injected pod.
    let holders: Vec<&str> = new_spec
        .containers
        .iter()
        .chain(new_spec.init_containers.iter().flatten())
        .filter(|c| {
            c.volume_mounts
                .iter()
                .flatten()
                .any(|m| m.name == SECRETS_VOLUME)
        })
        .map(|c| c.name.as_str())
        .collect();
    for (field, c) in ownership::all_containers(new_spec) {
        if before.get(&field) == Some(&json!(c.as_ref())) {
            continue;
        }
        if c.name == INIT_CONTAINER || c.name == AGENT_CONTAINER {
            continue; // covered by shroud_parts
        }
        let probe = Pod {
            spec: Some(k8s_openapi::api::core::v1::PodSpec {
                containers: vec![c.clone().into_owned()],
                ..Default::default()
            }),
            ..Default::default()
        };
        let wrapped_unchanged = c
            .volume_mounts
            .iter()
            .flatten()
            .any(|m| m.name == SECRETS_VOLUME || m.name == BIN_VOLUME)
            && !field.starts_with("spec.ephemeralContainers");
        if !wrapped_unchanged {
            ownership::check_plain(&probe, cfg).map_err(|mut v| {
                v.field = v.field.replacen("spec.containers[0]", &field, 1);
                v
            })?;
        }
        if field.starts_with("spec.ephemeralContainers") {
            ownership::check_ephemeral(new_spec, &field, &c, &holders)?;
        }
    }
    Ok(())
}
