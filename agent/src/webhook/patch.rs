//! The JSON patch that injects shroud into a pod: two in-memory volumes and a
//! disk one for the binary, the copy-self init container, the agent (native or classic sidecar), and every
//! wrapped container's command rewritten to run under `shroud exec`.

use std::collections::BTreeSet;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation, RemoveOperation, ReplaceOperation};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    ExecAction, Pod, PodSpec, Probe, ResourceRequirements, SeccompProfile, SecurityContext, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::Value;

use super::agent_config::{self, FileOwner, SECRETS_DIR, STATE_MOUNT};
use super::annotations::{Injection, Overrides, CONFIG_MAP_DIR, INJECTED, STATUS};
use super::config::WebhookConfig;
use super::registry::error::LookupError;
use super::registry::{platform, Lookup, Resolved};
use crate::contract::META_DIR;

/// The in-memory volume holding the rendered secrets.
pub const SECRETS_VOLUME: &str = "shroud-secrets";
/// The in-memory volume holding the agent's state (token, leases), mounted only
/// in the agent: the workload cannot read it.
pub const STATE_VOLUME: &str = "shroud-state";
/// The disk volume holding the copied shroud binary (not a secret, so not RAM).
pub const BIN_VOLUME: &str = "shroud-bin";
/// The ConfigMap of `agent-configmap` (Vault Agent compatibility), mounted
/// read-only in the agent only, at [`CONFIG_MAP_DIR`].
pub const CONFIG_VOLUME: &str = "shroud-vault-configs";
/// Where the binary volume is mounted.
pub const BIN_DIR: &str = "/shroud/bin";
/// The copied binary, run by wrapped containers.
pub const BIN: &str = "/shroud/bin/shroud";
/// The init container that copies the binary.
pub const INIT_CONTAINER: &str = "shroud-init";
/// The agent container.
pub const AGENT_CONTAINER: &str = "shroud-agent";
/// The annotation `kubectl logs/exec` read to pick a container.
pub const DEFAULT_CONTAINER: &str = "kubectl.kubernetes.io/default-container";
/// The label PodMonitors select injected pods by.
pub const INJECTED_LABEL: &str = "shroud.dev/injected";
/// The agent's metrics port name.
pub const AGENT_METRICS_PORT: &str = "shroud-metrics";
/// The environment variable carrying the agent's TOML configuration.
pub const CONFIG_ENV: &str = "SHROUD_CONFIG_TOML";

/// Why a pod cannot be injected as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The pod has no spec.
    #[error("the pod has no spec")]
    NoSpec,
    /// A container to wrap has no command and no annotation giving it.
    #[error("container `{container}` has no `command` in the pod spec and reading image entrypoints from registries is off (`registry.enabled = false`), so shroud cannot know what to run: set `command` on the container, or annotate the pod with `{annotation}` holding the image's entrypoint, e.g. '[\"/app/server\", \"--port\", \"8080\"]' (its `args` are appended)")]
    NoCommand {
        /// The container.
        container: String,
        /// The annotation that would fix it.
        annotation: String,
    },
    /// The image's command could not be read from its registry.
    #[error("container `{container}` has no `command`, and its image's entrypoint could not be read: {error}; fix the registry access, or annotate the pod with `{annotation}` holding the command to run")]
    Image {
        /// The container.
        container: String,
        /// The annotation that would work around it.
        annotation: String,
        /// Why the lookup failed.
        error: Box<LookupError>,
    },
    /// The image has neither ENTRYPOINT nor CMD and the container no `args`.
    #[error("container `{container}` has no `command` or `args`, and its image `{image}` has neither ENTRYPOINT nor CMD: set `command`, or annotate the pod with `{annotation}`")]
    ImageHasNoCommand {
        /// The container.
        container: String,
        /// The image.
        image: String,
        /// The annotation that would fix it.
        annotation: String,
    },
    /// An annotation names a container the pod does not have.
    #[error(
        "annotation `{annotation}` names container `{container}`, which the pod does not have"
    )]
    UnknownContainer {
        /// The annotation.
        annotation: String,
        /// The container name.
        container: String,
    },
    /// An init container cannot be wrapped with a classic sidecar.
    #[error("annotation `shroud.dev/containers` lists init container `{container}`, which can only get secrets from a native sidecar: remove `shroud.dev/native-sidecar: \"false\"` or the container from the list")]
    InitNeedsNativeSidecar {
        /// The init container.
        container: String,
    },
    /// The pod already uses a name or path shroud needs.
    #[error("{field} is already used by the pod: `{name}` is reserved for shroud")]
    Conflict {
        /// The field (e.g. `spec.volumes`).
        field: String,
        /// The conflicting name or path.
        name: String,
    },
}

/// The patch and notes for the user.
#[derive(Debug)]
pub struct Built {
    /// The JSON patch.
    pub patch: Patch,
    /// Admission warnings.
    pub warnings: Vec<String>,
}

/// A container of the pod: index in `containers` or `initContainers`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// `spec.containers[i]`.
    Main(usize),
    /// `spec.initContainers[i]`.
    Init(usize),
}

/// The containers to wrap whose command must come from their image: no
/// `command` in the spec and no `shroud.dev/command-<container>` annotation.
pub fn image_lookups(pod: &Pod, inj: &Injection, cfg: &WebhookConfig) -> Vec<Lookup> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    let native = inj.native_sidecar.unwrap_or(cfg.native_sidecar);
    let Ok(targets) = select_targets(spec, inj, native) else {
        return Vec::new();
    };
    let default = cfg
        .registry
        .default_platform
        .parse()
        .expect("validated with the configuration");
    let wanted = platform::wanted(spec, &default);
    targets
        .iter()
        .map(|slot| container(spec, *slot))
        .filter(|c| c.command.as_ref().is_none_or(|v| v.is_empty()))
        .filter(|c| !inj.commands.contains_key(&c.name))
        .filter_map(|c| {
            Some(Lookup {
                container: c.name.clone(),
                image: c.image.clone()?,
                wanted: wanted.clone(),
            })
        })
        .collect()
}

/// Builds the patch for an opted-in pod in `namespace`; `images` holds the
/// commands read from registries for the containers [`image_lookups`] named.
pub fn build(
    pod: &Pod,
    inj: &Injection,
    cfg: &WebhookConfig,
    namespace: &str,
    images: &Resolved,
) -> Result<Built, PatchError> {
    let spec = pod.spec.as_ref().ok_or(PatchError::NoSpec)?;
    check_reserved(spec)?;
    let native = inj.native_sidecar.unwrap_or(cfg.native_sidecar);
    let targets = select_targets(spec, inj, native)?;
    let index = ContainerIndex::new(spec);
    for name in inj.commands.keys() {
        if index.find(name).is_none() {
            return Err(PatchError::UnknownContainer {
                annotation: format!("shroud.dev/command-{name}"),
                container: name.clone(),
            });
        }
    }
    let mut warnings = inj.warnings.clone();
    if spec.automount_service_account_token == Some(false) && cfg.auth.jwt_path.is_none() {
        warnings.push("the pod sets automountServiceAccountToken: false, so the shroud agent has no service-account token to log in to Vault with".into());
    }

    let mut ops = Vec::new();
    let sources = Sources { inj, cfg, images };
    for (n, slot) in targets.iter().enumerate() {
        let exec_port = exec_metrics_port(cfg, n, &mut warnings);
        wrap(spec, *slot, &sources, exec_port, &mut ops, &mut warnings)?;
    }
    push_array(
        &mut ops,
        &["spec", "volumes"],
        spec.volumes.as_ref().map(Vec::len),
        volumes(cfg, inj),
        None,
    );
    let init = init_container(cfg);
    let agent = expected_agent(spec, &targets, inj, cfg, namespace, &mut warnings);
    if service_account_mount(spec).is_none()
        && cfg.auth.jwt_path.is_none()
        && spec.automount_service_account_token != Some(false)
    {
        warnings.push(format!("no container mounts the service-account token at {SA_TOKEN_DIR}, so the shroud agent has none to log in to Vault with"));
    }
    let init_len = spec.init_containers.as_ref().map(Vec::len);
    let mut new_init = vec![to_value(&init)];
    if native {
        new_init.push(to_value(&agent));
    }
    // The copy must run before any other init container that might be wrapped,
    // and the native agent before those so their secrets are ready.
    push_array(
        &mut ops,
        &["spec", "initContainers"],
        init_len,
        new_init,
        Some(0),
    );
    if !native {
        push_array(
            &mut ops,
            &["spec", "containers"],
            Some(spec.containers.len()),
            vec![to_value(&agent)],
            None,
        );
    }
    let mut annotations = serde_json::Map::new();
    annotations.insert(STATUS.into(), Value::from(INJECTED));
    // `kubectl logs/exec` should land in the workload, not in the sidecar.
    let first_app = targets.iter().find_map(|s| match s {
        Slot::Main(i) => Some(spec.containers[*i].name.clone()),
        Slot::Init(_) => None,
    });
    let user_chose = pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(DEFAULT_CONTAINER));
    if let (Some(name), false) = (first_app, user_chose) {
        annotations.insert(DEFAULT_CONTAINER.into(), Value::from(name));
    }
    if pod.metadata.labels.is_some() {
        ops.push(add(
            &["metadata", "labels", INJECTED_LABEL],
            Value::from("true"),
        ));
    } else {
        ops.push(add(
            &["metadata", "labels"],
            serde_json::json!({ INJECTED_LABEL: "true" }),
        ));
    }
    if pod.metadata.annotations.is_some() {
        for (k, v) in annotations {
            ops.push(add(&["metadata", "annotations", &k], v));
        }
    } else {
        ops.push(add(
            &["metadata", "annotations"],
            Value::Object(annotations),
        ));
    }
    Ok(Built {
        patch: Patch(ops),
        warnings,
    })
}

/// The agent container this webhook gives a pod whose containers to wrap are
/// `targets`: its file owner, its configuration, and (restricted namespaces) no
/// `IPC_LOCK`. Used to build the patch and to re-derive an injected pod.
pub(crate) fn expected_agent(
    spec: &PodSpec,
    targets: &[Slot],
    inj: &Injection,
    cfg: &WebhookConfig,
    namespace: &str,
    warnings: &mut Vec<String>,
) -> Container {
    let native = inj.native_sidecar.unwrap_or(cfg.native_sidecar);
    let owner = file_owner(spec, targets, inj, cfg, warnings);
    let config_toml = agent_config::render(inj, cfg, owner, namespace);
    let ipc_lock = !(cfg.agent.restricted_everywhere
        || cfg
            .agent
            .restricted_namespaces
            .iter()
            .any(|n| n == namespace));
    let mut agent = agent_container(cfg, &inj.overrides, owner, config_toml, native, ipc_lock);
    if inj.config_map.is_some() {
        agent.volume_mounts.get_or_insert_with(Vec::new).push(mount(
            CONFIG_VOLUME,
            CONFIG_MAP_DIR,
            true,
            None,
        ));
    }
    // The ServiceAccount admission plugin mounted the token into the pod's own
    // containers before webhooks run; containers added here get it only by copy.
    if let Some(token) = service_account_mount(spec) {
        agent.volume_mounts.get_or_insert_with(Vec::new).push(token);
    }
    agent
}

/// Where the kubelet mounts the pod's service-account token.
pub const SA_TOKEN_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

fn service_account_mount(spec: &PodSpec) -> Option<VolumeMount> {
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .filter(|c| c.name != AGENT_CONTAINER && c.name != INIT_CONTAINER)
        .flat_map(|c| c.volume_mounts.iter().flatten())
        .find(|m| m.mount_path == SA_TOKEN_DIR)
        .map(|m| VolumeMount {
            read_only: Some(true),
            ..m.clone()
        })
}

fn check_reserved(spec: &PodSpec) -> Result<(), PatchError> {
    for v in spec.volumes.iter().flatten() {
        if [SECRETS_VOLUME, STATE_VOLUME, BIN_VOLUME].contains(&v.name.as_str()) {
            return Err(PatchError::Conflict {
                field: "spec.volumes".into(),
                name: v.name.clone(),
            });
        }
    }
    for c in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        if c.name == INIT_CONTAINER || c.name == AGENT_CONTAINER {
            return Err(PatchError::Conflict {
                field: "container name".into(),
                name: c.name.clone(),
            });
        }
    }
    // A container may name a volume the webhook is about to add: it would read
    // the secrets unmasked, or replace the binary wrapped containers run.
    for (field, c) in super::ownership::all_containers(spec) {
        for m in c.volume_mounts.iter().flatten() {
            if m.name == SECRETS_VOLUME || m.name == BIN_VOLUME {
                return Err(PatchError::Conflict {
                    field: format!("{field}.volumeMounts (container `{}`)", c.name),
                    name: m.name.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Containers by name, so selecting many is linear.
struct ContainerIndex<'a>(std::collections::HashMap<&'a str, Slot>);

impl<'a> ContainerIndex<'a> {
    fn new(spec: &'a PodSpec) -> Self {
        let mut map = std::collections::HashMap::new();
        for (i, c) in spec.init_containers.iter().flatten().enumerate() {
            map.insert(c.name.as_str(), Slot::Init(i));
        }
        // Main containers win a name clash, as before.
        for (i, c) in spec.containers.iter().enumerate() {
            map.insert(c.name.as_str(), Slot::Main(i));
        }
        ContainerIndex(map)
    }

    fn find(&self, name: &str) -> Option<Slot> {
        self.0.get(name).copied()
    }
}

pub(crate) fn container(spec: &PodSpec, slot: Slot) -> &Container {
    match slot {
        Slot::Main(i) => &spec.containers[i],
        Slot::Init(i) => &spec.init_containers.as_ref().expect("slot from find")[i],
    }
}

/// The containers to wrap: those named by `shroud.dev/containers`, or every main
/// container (except a classic agent, when re-deriving an injected pod).
pub(crate) fn select_targets(
    spec: &PodSpec,
    inj: &Injection,
    native: bool,
) -> Result<Vec<Slot>, PatchError> {
    let Some(names) = &inj.containers else {
        return Ok((0..spec.containers.len())
            .filter(|&i| spec.containers[i].name != AGENT_CONTAINER)
            .map(Slot::Main)
            .collect());
    };
    let index = ContainerIndex::new(spec);
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for name in names {
        let slot = index
            .find(name)
            .ok_or_else(|| PatchError::UnknownContainer {
                annotation: "shroud.dev/containers".into(),
                container: name.clone(),
            })?;
        if let Slot::Init(_) = slot {
            if !native {
                return Err(PatchError::InitNeedsNativeSidecar {
                    container: name.clone(),
                });
            }
        }
        if seen.insert(name) {
            out.push(slot);
        }
    }
    Ok(out)
}

/// The agent runs as the workload's UID when all wrapped containers share a known
/// non-root one, so files can be 0400; with an `fsGroup`, group-readable; otherwise
/// readable by the containers that mount the volume, with a warning.
fn file_owner(
    spec: &PodSpec,
    targets: &[Slot],
    inj: &Injection,
    cfg: &WebhookConfig,
    warnings: &mut Vec<String>,
) -> FileOwner {
    let mut owner = default_file_owner(spec, targets, inj, cfg, warnings);
    if let Some(mode) = inj.overrides.file_mode {
        owner.mode = mode;
    }
    owner
}

fn default_file_owner(
    spec: &PodSpec,
    targets: &[Slot],
    inj: &Injection,
    cfg: &WebhookConfig,
    warnings: &mut Vec<String>,
) -> FileOwner {
    let agent_user = inj.overrides.agent_user.unwrap_or(cfg.agent.run_as_user);
    let agent_group = inj.overrides.agent_group.unwrap_or(cfg.agent.run_as_group);
    let pod_sc = spec.security_context.as_ref();
    let uids: BTreeSet<Option<i64>> = targets
        .iter()
        .map(|s| {
            container(spec, *s)
                .security_context
                .as_ref()
                .and_then(|sc| sc.run_as_user)
                .or_else(|| pod_sc.and_then(|p| p.run_as_user))
        })
        .collect();
    let fs_group = pod_sc.and_then(|p| p.fs_group);
    let gid = fs_group.unwrap_or(agent_group);
    match uids.into_iter().collect::<Vec<_>>().as_slice() {
        [Some(uid)] if *uid > 0 => {
            if inj.overrides.agent_user.is_some_and(|u| u != *uid) {
                warnings.push(format!("agent-run-as-user is not applied: the agent runs as the wrapped containers' user {uid} so that the secret files can be theirs alone"));
            }
            FileOwner {
                uid: *uid,
                gid,
                mode: 0o400,
            }
        }
        _ if fs_group.is_some() => FileOwner {
            uid: agent_user,
            gid,
            mode: 0o440,
        },
        _ => {
            warnings.push("the wrapped containers' user is unknown or not shared and the pod has no fsGroup, so secret files are readable by every container that mounts them (0444); set runAsUser or fsGroup for 0400/0440".into());
            FileOwner {
                uid: agent_user,
                gid,
                mode: 0o444,
            }
        }
    }
}

/// Where a wrapped command line comes from: annotations, configuration, registries.
struct Sources<'a> {
    inj: &'a Injection,
    cfg: &'a WebhookConfig,
    images: &'a Resolved,
}

fn wrap(
    spec: &PodSpec,
    slot: Slot,
    sources: &Sources<'_>,
    metrics_port: Option<(String, i32)>,
    ops: &mut Vec<PatchOperation>,
    warnings: &mut Vec<String>,
) -> Result<(), PatchError> {
    let Sources { inj, cfg, images } = *sources;
    let c = container(spec, slot);
    let (list, index) = match slot {
        Slot::Main(i) => ("containers", i),
        Slot::Init(i) => ("initContainers", i),
    };
    let index = index.to_string();
    let base = ["spec", list, index.as_str()];
    let annotation = format!("shroud.dev/command-{}", c.name);
    let args = c.args.as_deref().unwrap_or_default();
    let line: Vec<String> = match (
        c.command.as_ref().filter(|v| !v.is_empty()),
        inj.commands.get(&c.name),
    ) {
        (Some(cmd), from_annotation) => {
            if from_annotation.is_some() {
                warnings.push(format!(
                    "container `{}` has a command in its spec, so `{annotation}` was ignored",
                    c.name
                ));
            }
            [cmd.as_slice(), args].concat()
        }
        (None, Some(cmd)) => [cmd.as_slice(), args].concat(),
        (None, None) => match images.get(&c.name) {
            Some(Ok(image)) => {
                image
                    .command_line(Some(args))
                    .ok_or_else(|| PatchError::ImageHasNoCommand {
                        container: c.name.clone(),
                        image: c.image.clone().unwrap_or_default(),
                        annotation: annotation.clone(),
                    })?
            }
            Some(Err(error)) => {
                return Err(PatchError::Image {
                    container: c.name.clone(),
                    annotation,
                    error: Box::new(error.clone()),
                })
            }
            None => {
                return Err(PatchError::NoCommand {
                    container: c.name.clone(),
                    annotation,
                })
            }
        },
    };
    let mut command = exec_prefix(inj, cfg, metrics_port.as_ref().map(|(_, p)| *p));
    command.extend(line);
    let cmd_path = [base[0], base[1], base[2], "command"];
    if c.command.is_some() {
        ops.push(PatchOperation::Replace(ReplaceOperation {
            path: ptr(&cmd_path),
            value: Value::from(command),
        }));
    } else {
        ops.push(add(&cmd_path, Value::from(command)));
    }
    if c.args.is_some() {
        ops.push(PatchOperation::Remove(RemoveOperation {
            path: ptr(&[base[0], base[1], base[2], "args"]),
        }));
    }
    let field = || format!("spec.{list}[{index}].volumeMounts (container `{}`)", c.name);
    let ours = wrapped_mounts(inj);
    let mut all: Vec<VolumeMount> = Vec::new();
    for existing in c.volume_mounts.iter().flatten() {
        if let Some(path) = reserved_path(&existing.mount_path, inj) {
            return Err(PatchError::Conflict {
                field: field(),
                name: format!("{} (at or under {path})", existing.mount_path),
            });
        }
        all.push(existing.clone());
    }
    all.extend(ours);
    // One op for the whole list: its size does not grow with the mounts.
    ops.push(add(
        &[base[0], base[1], base[2], "volumeMounts"],
        Value::Array(all.iter().map(to_value).collect()),
    ));
    if let Some((name, port)) = metrics_port {
        let taken = c
            .ports
            .iter()
            .flatten()
            .any(|p| p.container_port == port || p.name.as_deref() == Some(name.as_str()));
        if taken {
            return Err(PatchError::Conflict {
                field: format!("spec.{list}[{index}].ports (container `{}`)", c.name),
                name: format!("{name} ({port})"),
            });
        }
        let port = ContainerPort {
            name: Some(name),
            container_port: port,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        };
        push_array(
            ops,
            &[base[0], base[1], base[2], "ports"],
            c.ports.as_ref().map(Vec::len),
            vec![to_value(&port)],
            None,
        );
    }
    Ok(())
}

/// `shroud exec` and its flags, up to and including `--`: what a wrapped
/// container's command starts with (`metrics_port`: its exec `/metrics`, see
/// [`exec_metrics_port`]).
pub(crate) fn exec_prefix(
    inj: &Injection,
    cfg: &WebhookConfig,
    metrics_port: Option<i32>,
) -> Vec<String> {
    let mut command = vec![
        BIN.to_string(),
        "exec".into(),
        "--secrets-dir".into(),
        SECRETS_DIR.into(),
    ];
    if let Some(on_rotate) = &inj.on_rotate {
        command.extend(["--on-rotate".to_string(), on_rotate.clone()]);
    }
    for t in &inj.templates {
        if let Some(c) = &t.command {
            command.extend([
                "--on-change".to_string(),
                format!("{}={}", t.name, c.command),
                "--on-change-origin".to_string(),
                format!("{}={}", t.name, c.annotation),
            ]);
        }
    }
    // Always wait for `.shroud/ready`: with a native sidecar the kubelet's startup
    // probe gates only the pod's first start; when the app container restarts
    // while the agent re-renders (it revokes and exits on the exit marker and is
    // restarted too), the app must not start before its secrets are back.
    // As long as the agent's startup budget: a classic sidecar has no startup
    // probe, so exec's own wait is all that keeps the app from starting early,
    // and giving up sooner than the agent would only restart the container.
    if let Some(port) = metrics_port {
        command.push("--metrics-listen".into());
        command.push(format!("0.0.0.0:{port}"));
    }
    command.push("--wait-ready".into());
    command.push("--ready-timeout".into());
    command.push(format!("{}s", cfg.agent.startup_timeout_seconds));
    command.push("--".into());
    command
}

/// The mounts a wrapped container gets.
pub(crate) fn wrapped_mounts(inj: &Injection) -> Vec<VolumeMount> {
    let mut mounts = vec![
        mount(SECRETS_VOLUME, SECRETS_DIR, true, None),
        // `shroud exec` writes its ack and exit marker under `.shroud/`; the
        // rendered secrets stay read-only.
        mount(
            SECRETS_VOLUME,
            &format!("{SECRETS_DIR}/{META_DIR}"),
            false,
            Some(META_DIR),
        ),
        mount(BIN_VOLUME, BIN_DIR, true, None),
    ];
    for path in &inj.extra_mounts {
        mounts.push(mount(SECRETS_VOLUME, path, true, None));
    }
    mounts
}

/// The directories shroud mounts into a wrapped container. A mount of the pod's
/// own at or under one would shadow shroud's binary or secrets (the runtime
/// mounts deeper paths last).
pub(crate) fn reserved_path<'a>(mount_path: &str, inj: &'a Injection) -> Option<&'a str> {
    let path = mount_path.trim_end_matches('/');
    [SHROUD_ROOT, RUN_ROOT]
        .into_iter()
        .chain(inj.extra_mounts.iter().map(String::as_str))
        .find(|r| path == *r || path.starts_with(&format!("{r}/")))
}

/// Parent of the binary's directory.
pub const SHROUD_ROOT: &str = "/shroud";
/// Parent of the secrets directory.
pub const RUN_ROOT: &str = "/run/shroud";

pub(crate) fn volumes(cfg: &WebhookConfig, inj: &Injection) -> Vec<Value> {
    let memory = |limit: Option<&str>| Volume {
        empty_dir: Some(EmptyDirVolumeSource {
            medium: Some("Memory".into()),
            size_limit: limit.map(|l| Quantity(l.to_string())),
        }),
        ..Volume::default()
    };
    vec![
        to_value(&Volume {
            name: SECRETS_VOLUME.into(),
            ..memory(Some(&cfg.secrets_size_limit))
        }),
        to_value(&Volume {
            name: STATE_VOLUME.into(),
            ..memory(Some("4Mi"))
        }),
        // The binary is no secret: on the node's disk it is page cache the kernel
        // can reclaim, where a memory volume would charge its 18 MB to the pod.
        to_value(&Volume {
            name: BIN_VOLUME.into(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: None,
                size_limit: Some(Quantity("64Mi".into())),
            }),
            ..Volume::default()
        }),
    ]
    .into_iter()
    .chain(inj.config_map.as_ref().map(|name| {
        to_value(&Volume {
            name: CONFIG_VOLUME.into(),
            config_map: Some(ConfigMapVolumeSource {
                name: name.clone(),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        })
    }))
    .collect()
}

fn least_privilege(uid: i64, gid: i64, ipc_lock: bool) -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(uid),
        run_as_group: Some(gid),
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: ipc_lock.then(|| vec!["IPC_LOCK".into()]),
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        }),
        ..SecurityContext::default()
    }
}

fn resources(cfg: &WebhookConfig, overrides: &Overrides) -> ResourceRequirements {
    let a = &cfg.agent;
    let pair = |cpu: &str, mem: &str| {
        Some(
            [
                ("cpu".to_string(), Quantity(cpu.into())),
                ("memory".to_string(), Quantity(mem.into())),
            ]
            .into_iter()
            .collect(),
        )
    };
    let mut r = ResourceRequirements {
        requests: pair(&a.cpu_request, &a.memory_request),
        limits: pair(&a.cpu_limit, &a.memory_limit),
        ..ResourceRequirements::default()
    };
    for (which, resource, quantity) in &overrides.resources {
        let list = if which == "limits" {
            &mut r.limits
        } else {
            &mut r.requests
        };
        list.get_or_insert_with(Default::default)
            .insert(resource.clone(), Quantity(quantity.clone()));
    }
    r
}

pub(crate) fn init_container(cfg: &WebhookConfig) -> Container {
    Container {
        name: INIT_CONTAINER.into(),
        image: Some(cfg.image.clone()),
        image_pull_policy: Some(cfg.image_pull_policy.clone()),
        command: Some(vec!["/shroud".into(), "copy-self".into(), BIN.into()]),
        volume_mounts: Some(vec![mount(BIN_VOLUME, BIN_DIR, false, None)]),
        security_context: Some(least_privilege(
            cfg.agent.run_as_user,
            cfg.agent.run_as_group,
            false,
        )),
        resources: Some(resources(cfg, &Overrides::default())),
        ..Container::default()
    }
}

/// The name and port of the `n`th wrapped container's exec metrics, if served.
pub(crate) fn exec_metrics_port(
    cfg: &WebhookConfig,
    n: usize,
    warnings: &mut Vec<String>,
) -> Option<(String, i32)> {
    let first = i32::from(cfg.pod_metrics.exec_port);
    if first == 0 {
        return None;
    }
    match i32::try_from(n).ok().and_then(|n| first.checked_add(n)) {
        Some(port) if port <= 65535 && n < 100 => Some((format!("shroud-exec-{n}"), port)),
        _ => {
            warnings.push(format!("wrapped container #{n} serves no exec metrics: no port left after pod_metrics.exec_port"));
            None
        }
    }
}

fn agent_container(
    cfg: &WebhookConfig,
    overrides: &Overrides,
    owner: FileOwner,
    config_toml: String,
    native: bool,
    ipc_lock: bool,
) -> Container {
    let ready = Probe {
        exec: Some(ExecAction {
            command: Some(vec![
                BIN.into(),
                "probe".into(),
                "ready".into(),
                "--dir".into(),
                SECRETS_DIR.into(),
            ]),
        }),
        period_seconds: Some(1),
        timeout_seconds: Some(1),
        failure_threshold: Some(if native {
            cfg.agent.startup_timeout_seconds
        } else {
            1
        }),
        ..Probe::default()
    };
    let (startup_probe, readiness_probe) = if native {
        (Some(ready), None)
    } else {
        (None, Some(ready))
    };
    Container {
        name: AGENT_CONTAINER.into(),
        image: Some(cfg.image.clone()),
        image_pull_policy: Some(cfg.image_pull_policy.clone()),
        // The copied binary, not the image's /shroud: the agent and every wrapped
        // container's exec then map one file, so its pages are in memory once.
        command: Some(vec![BIN.into(), "agent".into()]),
        env: Some(vec![EnvVar {
            name: CONFIG_ENV.into(),
            value: Some(config_toml),
            value_from: None,
        }]),
        restart_policy: native.then(|| "Always".into()),
        startup_probe,
        readiness_probe,
        volume_mounts: Some(vec![
            mount(SECRETS_VOLUME, SECRETS_DIR, false, None),
            mount(STATE_VOLUME, STATE_MOUNT, false, None),
            mount(BIN_VOLUME, BIN_DIR, true, None),
        ]),
        security_context: Some(least_privilege(owner.uid, owner.gid, ipc_lock)),
        resources: Some(resources(cfg, overrides)),
        ports: (cfg.pod_metrics.agent_port != 0).then(|| {
            vec![ContainerPort {
                name: Some(AGENT_METRICS_PORT.into()),
                container_port: i32::from(cfg.pod_metrics.agent_port),
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            }]
        }),
        ..Container::default()
    }
}

fn mount(volume: &str, path: &str, read_only: bool, sub_path: Option<&str>) -> VolumeMount {
    VolumeMount {
        name: volume.into(),
        mount_path: path.into(),
        read_only: read_only.then_some(true),
        sub_path: sub_path.map(str::to_string),
        ..VolumeMount::default()
    }
}

/// Appends `items` to the array at `path` (or inserts them from `at`), creating
/// the array when the pod has none.
fn push_array(
    ops: &mut Vec<PatchOperation>,
    path: &[&str],
    existing_len: Option<usize>,
    items: Vec<Value>,
    at: Option<usize>,
) {
    if existing_len.is_none() {
        ops.push(add(path, Value::Array(items)));
        return;
    }
    for (n, item) in items.into_iter().enumerate() {
        let index = match at {
            Some(i) => (i + n).to_string(),
            None => "-".to_string(),
        };
        let mut p: Vec<&str> = path.to_vec();
        p.push(&index);
        ops.push(add(&p, item));
    }
}

fn ptr(tokens: &[&str]) -> PointerBuf {
    PointerBuf::from_tokens(tokens.iter().copied())
}

fn add(path: &[&str], value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        path: ptr(path),
        value,
    })
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("Kubernetes types serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::decision::{parse, Decision};

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn injection(extra: &[(&str, &str)]) -> Injection {
        let mut a: std::collections::BTreeMap<String, String> = [
            ("shroud.dev/inject", "true"),
            ("shroud.dev/role", "r"),
            ("shroud.dev/secret-db", "secret/data/ns/db"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        a.retain(|_, v| !v.is_empty());
        match parse(&a, false).unwrap() {
            Decision::Inject(i) => *i,
            d => panic!("{d:?}"),
        }
    }

    fn app(extra: serde_json::Value) -> serde_json::Value {
        let mut c = serde_json::json!({"name": "app", "image": "i", "command": ["/app"]});
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        c
    }

    #[test]
    fn reserved_names_and_paths_are_conflicts() {
        let cfg = WebhookConfig::default();
        let inj = injection(&[]);
        let p = pod(
            serde_json::json!({"spec": {"containers": [app(serde_json::json!({}))],
            "volumes": [{"name": "shroud-bin", "emptyDir": {}}]}}),
        );
        let e = build(&p, &inj, &cfg, "ns", &Resolved::new()).unwrap_err();
        assert!(
            matches!(e, PatchError::Conflict { ref name, .. } if name == "shroud-bin"),
            "{e}"
        );
        let p = pod(
            serde_json::json!({"spec": {"containers": [app(serde_json::json!({
            "volumeMounts": [{"name": "x", "mountPath": "/shroud/bin"}]}))]}}),
        );
        let e = build(&p, &inj, &cfg, "ns", &Resolved::new())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/shroud/bin") && e.contains("container `app`"),
            "{e}"
        );
        let p = pod(
            serde_json::json!({"spec": {"containers": [app(serde_json::json!({})),
            {"name": "shroud-agent", "image": "i"}]}}),
        );
        assert!(build(&p, &inj, &cfg, "ns", &Resolved::new()).is_err());
    }

    #[test]
    fn container_selection_errors() {
        let cfg = WebhookConfig::default();
        let p = pod(serde_json::json!({"spec": {
            "initContainers": [{"name": "init", "image": "i", "command": ["/init"]}],
            "containers": [app(serde_json::json!({}))]}}));
        let e = build(
            &p,
            &injection(&[("shroud.dev/containers", "app,ghost")]),
            &cfg,
            "ns",
            &Resolved::new(),
        )
        .unwrap_err();
        assert_eq!(
            e,
            PatchError::UnknownContainer {
                annotation: "shroud.dev/containers".into(),
                container: "ghost".into()
            }
        );
        let e = build(
            &p,
            &injection(&[
                ("shroud.dev/containers", "init"),
                ("shroud.dev/native-sidecar", "false"),
            ]),
            &cfg,
            "ns",
            &Resolved::new(),
        )
        .unwrap_err();
        assert_eq!(
            e,
            PatchError::InitNeedsNativeSidecar {
                container: "init".into()
            }
        );
        let e = build(
            &p,
            &injection(&[("shroud.dev/command-ghost", "/x")]),
            &cfg,
            "ns",
            &Resolved::new(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("shroud.dev/command-ghost"), "{e}");
        // A native sidecar can serve a listed init container.
        build(
            &p,
            &injection(&[("shroud.dev/containers", "init, app")]),
            &cfg,
            "ns",
            &Resolved::new(),
        )
        .unwrap();
    }

    fn many_containers(n: usize) -> Pod {
        let containers: Vec<serde_json::Value> = (0..n)
            .map(|i| {
                serde_json::json!({
                    "name": format!("c{i}"), "image": "registry.example/app:1",
                    "command": ["/app", "--port", "8080"], "args": ["--verbose"],
                    "env": [{"name": "LOG", "value": "info"}],
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}]})
            })
            .collect();
        pod(serde_json::json!({"spec": {"containers": containers,
            "volumes": [{"name": "data", "emptyDir": {}}]}}))
    }

    /// Ops go per changed field of each wrapped container, never a whole list of
    /// the pod's: containers that are not wrapped are not in the patch at all, and
    /// no field of the pod's passes through k8s-openapi's types on the way back
    /// (a field newer than them would be dropped). For 300 wrapped containers the
    /// patch is within 2.5x the pod (measured: 907 ops, 179,790 bytes for a
    /// 73,909-byte pod; one whole-list op per list would be 175,253 bytes).
    #[test]
    fn ops_touch_only_the_wrapped_containers() {
        let cfg = WebhookConfig::default();
        let p = many_containers(300);
        let pod_len = serde_json::to_vec(&p).unwrap().len();
        let all = build(&p, &injection(&[]), &cfg, "ns", &Resolved::new()).unwrap();
        let all_len = serde_json::to_vec(&all.patch).unwrap().len();
        assert!(all_len * 2 < pod_len * 5, "{all_len} vs {pod_len}");
        let some = build(
            &p,
            &injection(&[("shroud.dev/containers", "c7,c250")]),
            &cfg,
            "ns",
            &Resolved::new(),
        )
        .unwrap();
        let mut touched = BTreeSet::new();
        for op in &some.patch.0 {
            let path = op.path().to_string();
            if let Some(rest) = path.strip_prefix("/spec/containers/") {
                touched.insert(rest.split('/').next().unwrap().to_string());
            }
            assert_ne!(path, "/spec/containers", "no whole-list op");
        }
        assert_eq!(
            touched,
            BTreeSet::from(["7".to_string(), "250".to_string()])
        );
        assert!(serde_json::to_vec(&some.patch).unwrap().len() < 4_000);
    }
}
