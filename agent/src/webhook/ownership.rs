//! The injected volumes, shroud's containers and its paths belong to shroud.
//!
//! A pod that does not ask for injection may not use them; a pod that carries
//! them (after the mutation, or because its author wrote them by hand) is
//! re-derived: its sidecar, init container, volumes and wrapped commands must be
//! exactly what this webhook would produce from its annotations. Only the fields
//! that decide what runs and what it can reach are compared, so defaults the API
//! server fills in after the mutation (termination message path, probe
//! thresholds) do not matter.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, Probe, VolumeMount};
use serde_json::{json, Value};

use super::annotations::{Injection, INJECTED, PREFIX, STATUS};
use super::config::WebhookConfig;
use super::decision::{self, Decision};
use super::patch::{self, Slot, AGENT_CONTAINER, BIN, BIN_VOLUME, CONFIG_ENV, INIT_CONTAINER};
use super::patch::{CONFIG_VOLUME, SECRETS_VOLUME, STATE_VOLUME};
use super::policy::{self, Violation};

/// Rule name: shroud's volumes, containers and paths used by something else.
pub const RULE_OWNERSHIP: &str = "shroud-ownership";

fn deny(field: impl Into<String>, reason: impl Into<String>) -> Violation {
    Violation {
        rule: RULE_OWNERSHIP,
        field: field.into(),
        reason: reason.into(),
    }
}

/// Every container of the spec with its field path: containers, init
/// containers, ephemeral containers (read as containers: same fields).
pub fn all_containers(spec: &PodSpec) -> Vec<(String, Cow<'_, Container>)> {
    let mut out: Vec<(String, Cow<'_, Container>)> = Vec::new();
    for (i, c) in spec.containers.iter().enumerate() {
        out.push((format!("spec.containers[{i}]"), Cow::Borrowed(c)));
    }
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        out.push((format!("spec.initContainers[{i}]"), Cow::Borrowed(c)));
    }
    for (i, e) in spec.ephemeral_containers.iter().flatten().enumerate() {
        let c = serde_json::to_value(e)
            .and_then(serde_json::from_value::<Container>)
            .unwrap_or_default();
        out.push((format!("spec.ephemeralContainers[{i}]"), Cow::Owned(c)));
    }
    out
}

/// `registry/repo:tag@sha256:…` → `registry/repo`.
fn repository(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    match no_digest.rfind(':') {
        Some(i) if !no_digest[i..].contains('/') => &no_digest[..i],
        _ => no_digest,
    }
}

/// Whether the pod carries or claims an injection (status, volumes or containers
/// of shroud's); a container merely running shroud is judged by [`check_plain`].
pub fn claims_injection(pod: &Pod) -> bool {
    let claimed = pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(STATUS));
    let Some(spec) = &pod.spec else {
        return claimed;
    };
    claimed
        || spec
            .volumes
            .iter()
            .flatten()
            .any(|v| is_shroud_volume(&v.name))
        || all_containers(spec)
            .iter()
            .any(|(_, c)| c.name == INIT_CONTAINER || c.name == AGENT_CONTAINER)
}

/// One of the volumes this webhook adds.
fn is_shroud_volume(name: &str) -> bool {
    [SECRETS_VOLUME, STATE_VOLUME, BIN_VOLUME, CONFIG_VOLUME].contains(&name)
}

/// Runs the shroud image, carries an agent configuration, or runs the copied binary.
fn is_shroud(c: &Container, cfg: &WebhookConfig) -> bool {
    c.image
        .as_deref()
        .is_some_and(|i| repository(i) == repository(&cfg.image))
        || c.env.iter().flatten().any(|e| e.name == CONFIG_ENV)
        || argv(c).first().is_some_and(|a| a == BIN)
}

/// A container that is not shroud's and not wrapped: none of shroud's volumes,
/// not the shroud image, no agent configuration, no `envFrom` that could carry one.
fn check_plain_container(field: &str, c: &Container, cfg: &WebhookConfig) -> Result<(), Violation> {
    if let Some(m) = c
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| is_shroud_volume(&m.name))
    {
        return Err(deny(
            format!("{field}.volumeMounts (container `{}`)", c.name),
            format!(
                "volume `{}` belongs to shroud: only wrapped containers get it, from the webhook",
                m.name
            ),
        ));
    }
    if is_shroud(c, cfg) {
        return Err(deny(
            format!("{field} (container `{}`)", c.name),
            format!("runs shroud (image `{}`, `{CONFIG_ENV}` or `{BIN}`) but is not a container this webhook added", repository(&cfg.image)),
        ));
    }
    Ok(())
}

/// A pod that is not injected: no container may use shroud's parts.
pub fn check_plain(pod: &Pod, cfg: &WebhookConfig) -> Result<(), Violation> {
    let Some(spec) = &pod.spec else { return Ok(()) };
    for (field, c) in all_containers(spec) {
        check_plain_container(&field, &c, cfg)?;
    }
    Ok(())
}

/// An injected (or claimed) pod: re-derives what the webhook would produce from
/// its annotations and compares.
pub fn check_injected(pod: &Pod, namespace: &str, cfg: &WebhookConfig) -> Result<(), Violation> {
    let spec = pod
        .spec
        .as_ref()
        .ok_or_else(|| deny("spec", "the pod has no spec"))?;
    let mut ann: BTreeMap<String, String> = pod.metadata.annotations.clone().unwrap_or_default();
    let status = ann.remove(STATUS);
    for k in super::vault_compat::STATUSES {
        ann.remove(k);
    }
    if status.as_deref() != Some(INJECTED) {
        return Err(deny(
            format!("metadata.annotations[\"{STATUS}\"]"),
            "the pod carries shroud's containers or volumes but was not injected by this webhook",
        ));
    }
    let inj = match decision::parse(&ann, cfg.compat.vault_agent) {
        Ok(Decision::Inject(i)) => i,
        Ok(_) => {
            return Err(deny(
                format!("metadata.annotations[\"{PREFIX}inject\"]"),
                "the pod claims to be injected but its annotations do not request injection",
            ))
        }
        Err(e) => return Err(deny("metadata.annotations", e.to_string())),
    };
    policy::check_secret_paths(&inj, namespace, &cfg.policy)?;
    check_process_sharing(spec)?;
    let native = inj.native_sidecar.unwrap_or(cfg.native_sidecar);
    let targets = patch::select_targets(spec, &inj, native)
        .map_err(|e| deny("metadata.annotations", e.to_string()))?;
    let agent = patch::expected_agent(spec, &targets, &inj, cfg, namespace, &mut Vec::new());
    let init = patch::init_container(cfg);
    check_shroud_containers(spec, &targets, &init, &agent, native)?;
    check_volumes(spec, cfg, &inj)?;
    let target_names: Vec<&str> = targets
        .iter()
        .map(|s| patch::container(spec, *s).name.as_str())
        .collect();
    // Each wrapped container's own prefix (its exec metrics port is its rank).
    // What follows `--` is the workload's command, from the pod, an annotation or
    // its image's registry: it grants nothing, so it is not re-derived.
    let prefixes: Vec<Vec<String>> = (0..targets.len())
        .map(|n| {
            let port = patch::exec_metrics_port(cfg, n, &mut Vec::new());
            patch::exec_prefix(&inj, cfg, port.map(|(_, p)| p))
        })
        .collect();
    let ours = patch::wrapped_mounts(&inj);
    for (field, c) in all_containers(spec) {
        if c.name == INIT_CONTAINER || c.name == AGENT_CONTAINER {
            continue;
        }
        if field.starts_with("spec.ephemeralContainers") {
            check_ephemeral(spec, &field, &c, &target_names)?;
        }
        let target = target_names.iter().position(|n| *n == c.name.as_str());
        if let (Some(n), false) = (target, field.starts_with("spec.ephemeral")) {
            check_wrapped(&field, &c, &prefixes[n], &ours, &inj)?;
        } else {
            check_plain_container(&field, &c, cfg)?;
        }
    }
    Ok(())
}

/// Shared process namespaces let every container read the wrapped processes'
/// files through `/proc/<pid>/root`, secrets included.
pub fn check_process_sharing(spec: &PodSpec) -> Result<(), Violation> {
    for (field, shared) in [
        ("spec.hostPID", spec.host_pid),
        ("spec.shareProcessNamespace", spec.share_process_namespace),
    ] {
        if shared == Some(true) {
            return Err(deny(
                field,
                "an injected pod cannot share its process namespace: other processes would read the secrets through /proc/<pid>/root",
            ));
        }
    }
    Ok(())
}

/// The volumes must be the in-memory ones this webhook adds. Their `sizeLimit` is
/// not compared: the API server may rewrite a quantity in canonical form
/// (`0.5Gi` → `512Mi`), and it decides no access.
fn check_volumes(spec: &PodSpec, cfg: &WebhookConfig, inj: &Injection) -> Result<(), Violation> {
    let without_size = |mut v: Value| {
        if let Some(e) = v.get_mut("emptyDir").and_then(Value::as_object_mut) {
            e.remove("sizeLimit");
        }
        v
    };
    let sorted = |mut v: Vec<Value>| {
        v.sort_by_key(|x| x.to_string());
        v
    };
    let expected: Vec<Value> = patch::volumes(cfg, inj)
        .into_iter()
        .map(without_size)
        .collect();
    let actual: Vec<Value> = spec
        .volumes
        .iter()
        .flatten()
        .filter(|v| is_shroud_volume(&v.name))
        .map(|v| without_size(serde_json::to_value(v).unwrap_or_default()))
        .collect();
    if sorted(actual) != sorted(expected) {
        return Err(deny(
            "spec.volumes",
            format!("volumes `{SECRETS_VOLUME}`, `{STATE_VOLUME}` and `{BIN_VOLUME}` are not the volumes this webhook adds"),
        ));
    }
    Ok(())
}

fn position(list: Option<&Vec<Container>>, name: &str) -> Option<usize> {
    list.and_then(|l| l.iter().position(|c| c.name == name))
}

fn check_shroud_containers(
    spec: &PodSpec,
    targets: &[Slot],
    init: &Container,
    agent: &Container,
    native: bool,
) -> Result<(), Violation> {
    let inits = spec.init_containers.as_ref();
    let init_at = position(inits, INIT_CONTAINER).ok_or_else(|| {
        deny(
            "spec.initContainers",
            format!("`{INIT_CONTAINER}` is missing"),
        )
    })?;
    compare(
        &format!("spec.initContainers[{init_at}]"),
        init,
        &inits.expect("found")[init_at],
    )?;
    let (agent_field, actual_agent, agent_at) = if native {
        let at = position(inits, AGENT_CONTAINER).ok_or_else(|| {
            deny(
                "spec.initContainers",
                format!("`{AGENT_CONTAINER}` (native sidecar) is missing"),
            )
        })?;
        (
            format!("spec.initContainers[{at}]"),
            &inits.expect("found")[at],
            at,
        )
    } else {
        let at = position(Some(&spec.containers), AGENT_CONTAINER)
            .ok_or_else(|| deny("spec.containers", format!("`{AGENT_CONTAINER}` is missing")))?;
        (
            format!("spec.containers[{at}]"),
            &spec.containers[at],
            usize::MAX,
        )
    };
    compare(&agent_field, agent, actual_agent)?;
    if native && agent_at < init_at {
        return Err(deny(
            "spec.initContainers",
            format!("`{INIT_CONTAINER}` must run before `{AGENT_CONTAINER}`"),
        ));
    }
    for slot in targets {
        if let Slot::Init(i) = slot {
            if *i < init_at || (native && *i < agent_at) {
                return Err(deny(
                    format!("spec.initContainers[{i}]"),
                    "a wrapped init container runs before shroud's binary and agent are in place",
                ));
            }
        }
    }
    // Two of a name would let the kubelet-visible one differ from the checked one.
    let count = |n: &str| {
        all_containers(spec)
            .iter()
            .filter(|(_, c)| c.name == n)
            .count()
    };
    if count(INIT_CONTAINER) != 1 || count(AGENT_CONTAINER) != 1 {
        return Err(deny("spec", "shroud's containers appear more than once"));
    }
    Ok(())
}

fn probe(p: &Option<Probe>) -> Value {
    p.as_ref()
        .map(|p| json!({"exec": p.exec, "httpGet": p.http_get, "tcpSocket": p.tcp_socket, "grpc": p.grpc}))
        .unwrap_or(Value::Null)
}

fn mount_key(m: &VolumeMount) -> Value {
    json!({
        "name": m.name,
        "mountPath": m.mount_path.trim_end_matches('/'),
        "readOnly": m.read_only.unwrap_or(false),
        "subPath": m.sub_path.as_deref().filter(|s| !s.is_empty()),
        "subPathExpr": m.sub_path_expr.as_deref().filter(|s| !s.is_empty()),
        "mountPropagation": m.mount_propagation,
        "recursiveReadOnly": m.recursive_read_only,
    })
}

/// The fields that decide what a container runs and what it can reach.
fn projection(c: &Container) -> BTreeMap<&'static str, Value> {
    let mut mounts: Vec<Value> = c.volume_mounts.iter().flatten().map(mount_key).collect();
    mounts.sort_by_key(|m| m.to_string());
    [
        ("image", json!(c.image)),
        ("command", json!(argv(c))),
        ("env", json!(c.env)),
        (
            "envFrom",
            json!(c.env_from.as_ref().filter(|v| !v.is_empty())),
        ),
        ("volumeMounts", json!(mounts)),
        (
            "volumeDevices",
            json!(c.volume_devices.as_ref().filter(|v| !v.is_empty())),
        ),
        ("securityContext", json!(c.security_context)),
        ("lifecycle", json!(c.lifecycle)),
        ("startupProbe", probe(&c.startup_probe)),
        ("readinessProbe", probe(&c.readiness_probe)),
        ("livenessProbe", probe(&c.liveness_probe)),
        ("restartPolicy", json!(c.restart_policy)),
        ("workingDir", json!(c.working_dir)),
    ]
    .into_iter()
    .collect()
}

fn compare(field: &str, expected: &Container, actual: &Container) -> Result<(), Violation> {
    let (e, a) = (projection(expected), projection(actual));
    if let Some((key, _)) = e.iter().find(|(k, v)| a.get(*k) != Some(*v)) {
        return Err(deny(
            format!("{field}.{key} (container `{}`)", actual.name),
            "differs from what this webhook produces from the pod's annotations",
        ));
    }
    Ok(())
}

/// command ++ args: what the container executes.
fn argv(c: &Container) -> Vec<String> {
    c.command
        .iter()
        .flatten()
        .chain(c.args.iter().flatten())
        .cloned()
        .collect()
}

fn check_wrapped(
    field: &str,
    c: &Container,
    prefix: &[String],
    ours: &[VolumeMount],
    inj: &Injection,
) -> Result<(), Violation> {
    let name = &c.name;
    if !argv(c).starts_with(prefix) {
        return Err(deny(
            format!("{field}.command (container `{name}`)"),
            format!(
                "a wrapped container runs `{}` with the flags this webhook sets",
                prefix.join(" ")
            ),
        ));
    }
    let mut expected: Vec<Value> = ours.iter().map(mount_key).collect();
    let mut actual = Vec::new();
    for m in c.volume_mounts.iter().flatten() {
        let shroud_volume = is_shroud_volume(&m.name);
        if shroud_volume {
            actual.push(mount_key(m));
        } else if let Some(root) = patch::reserved_path(&m.mount_path, inj) {
            return Err(deny(
                format!("{field}.volumeMounts (container `{name}`)"),
                format!(
                    "`{}` is at or under {root}, which belongs to shroud",
                    m.mount_path
                ),
            ));
        }
    }
    for d in c.volume_devices.iter().flatten() {
        if let Some(root) = patch::reserved_path(&d.device_path, inj) {
            return Err(deny(
                format!("{field}.volumeDevices (container `{name}`)"),
                format!(
                    "`{}` is at or under {root}, which belongs to shroud",
                    d.device_path
                ),
            ));
        }
    }
    expected.sort_by_key(|m| m.to_string());
    actual.sort_by_key(|m| m.to_string());
    if expected != actual {
        return Err(deny(
            format!("{field}.volumeMounts (container `{name}`)"),
            "the mounts of shroud's volumes are not the ones this webhook adds",
        ));
    }
    if c.env.iter().flatten().any(|e| e.name == CONFIG_ENV) {
        return Err(deny(
            format!("{field}.env (container `{name}`)"),
            format!("`{CONFIG_ENV}` is the agent's"),
        ));
    }
    Ok(())
}

/// An ephemeral container shares the target's process namespace: through
/// `/proc/<pid>/root` it reads whatever the target can.
pub(crate) fn check_ephemeral(
    spec: &PodSpec,
    field: &str,
    c: &Container,
    targets: &[&str],
) -> Result<(), Violation> {
    let i: usize = field
        .trim_start_matches("spec.ephemeralContainers[")
        .trim_end_matches(']')
        .parse()
        .unwrap_or(0);
    let target = spec
        .ephemeral_containers
        .as_ref()
        .and_then(|l| l.get(i))
        .and_then(|e| e.target_container_name.as_deref());
    if let Some(t) = target.filter(|t| targets.contains(t) || *t == AGENT_CONTAINER) {
        return Err(deny(
            format!("{field}.targetContainerName (container `{}`)", c.name),
            format!("`{t}` holds shroud's secrets; a debug container in its process namespace could read them"),
        ));
    }
    Ok(())
}
