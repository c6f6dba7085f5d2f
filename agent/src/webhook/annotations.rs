//! `shroud.dev/` pod annotations → a validated [`Injection`]. Every key under `shroud.dev/` must be
//! known: a typo must be a denial, not a pod that silently starts without secrets.

use std::collections::BTreeMap;

/// The annotation prefix.
pub const PREFIX: &str = "shroud.dev/";
/// Set on injected pods; a pod carrying it is never patched again.
pub const STATUS: &str = "shroud.dev/status";
/// The value of [`STATUS`] once injected.
pub const INJECTED: &str = "injected";

pub(crate) const INJECT: &str = "inject";
const ROLE: &str = "role";
const CONTAINERS: &str = "containers";
const ON_ROTATE: &str = "on-rotate";
const NATIVE_SIDECAR: &str = "native-sidecar";
const SECRET: &str = "secret-";
const COMMAND: &str = "command-";
const SUFFIXES: &[&str] = &["-kind", "-field", "-format", "-template", GATEWAY_ONLY];
/// `secret-<name>-gateway-only: "true"`: the secret is handed to the pod's
/// gateways only, written to no file (`[[secret]] gateway_only`).
const GATEWAY_ONLY: &str = "-gateway-only";
/// `secret-<name>-param-<key>`: one request parameter (the read becomes a write).
const PARAM: &str = "-param-";

/// Why a pod's annotations are rejected. Every variant names the annotation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnotationError {
    /// A `shroud.dev/` key that shroud does not know.
    #[error("unknown annotation `{key}` (known: inject, role, secret-<name>[-kind|-field|-format|-template|-gateway-only|-param-<key>], gateway-<name>, containers, command-<container>, on-rotate, native-sidecar, status)")]
    Unknown {
        /// The full annotation key.
        key: String,
    },
    /// A known key with a value that is not acceptable.
    #[error("annotation `{key}`: {reason}")]
    Invalid {
        /// The full annotation key.
        key: String,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// A key that must be present when injection is requested.
    #[error("annotation `{key}` is required: {reason}")]
    Missing {
        /// The full annotation key.
        key: String,
        /// Why it is needed.
        reason: String,
    },
}

impl AnnotationError {
    pub(crate) fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        AnnotationError::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// How the agent reads a secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretKind {
    /// A KV version 2 secret (`<mount>/data/<path>`), re-read periodically.
    Kv2,
    /// A leased secret (database credentials, …), renewed and revoked.
    Dynamic,
    /// Any other read (a write with parameters).
    Generic,
    /// A certificate from `<mount>/issue/<role>`, written as a directory.
    Pki,
}

/// How the agent renders a secret into its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretFormat {
    /// One field's value as is.
    Raw,
    /// The data as a JSON object.
    Json,
    /// `KEY=value` lines.
    Env,
    /// A minijinja template over the data.
    Template,
}

/// One secret the pod asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretSpec {
    /// File name in the secrets directory (the `<name>` of the annotation).
    pub name: String,
    /// The Vault path.
    pub path: String,
    /// The annotation the path came from (for error messages).
    pub path_annotation: String,
    /// How to read it.
    pub kind: SecretKind,
    /// Only this field.
    pub field: Option<String>,
    /// How to render it.
    pub format: SecretFormat,
    /// The template when `format` is `template`.
    pub template: Option<String>,
    /// Request parameters (`-param-<key>`), which turn the read into a write.
    pub params: BTreeMap<String, String>,
    /// `-gateway-only: "true"`: for the gateways only, in no file.
    pub gateway_only: bool,
}

/// Which annotation family asked for injection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// `shroud.dev/…`.
    Shroud,
    /// `vault.hashicorp.com/…` (compatibility mode).
    VaultAgent,
}

/// A validated injection request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Injection {
    /// Which annotations it came from.
    pub origin: Origin,
    /// The Vault role.
    pub role: String,
    /// The secrets, sorted by name.
    pub secrets: Vec<SecretSpec>,
    /// Containers to wrap; `None`: every container (not init containers).
    pub containers: Option<Vec<String>>,
    /// `command-<container>`: the command to wrap when the spec has none.
    pub commands: BTreeMap<String, Vec<String>>,
    /// `--on-rotate` for the wrapped commands.
    pub on_rotate: Option<String>,
    /// Native sidecar (`Some(true)`), classic (`Some(false)`), or the default.
    pub native_sidecar: Option<bool>,
    /// Notes for the user (compatibility annotations accepted without effect).
    pub warnings: Vec<String>,
    /// More directories at which wrapped containers see the secrets (read-only),
    /// besides shroud's own: `/vault/secrets` for Vault Agent pods, or what their
    /// `secret-volume-path` annotations say.
    pub extra_mounts: Vec<String>,
    /// Per-pod changes to the webhook's defaults (Vault Agent annotations).
    pub overrides: Overrides,
    /// Consul Template templates (`[[template]]`), sorted by file name: every
    /// file of a Vault Agent compatibility pod.
    pub templates: Vec<ConsulSpec>,
    /// `agent-configmap`: the ConfigMap mounted into the agent at
    /// [`CONFIG_MAP_DIR`], whose `config.hcl` adds templates.
    pub config_map: Option<String>,
    /// `gateway-<name>`: the agent's `[[gateway]]`s, sorted by name.
    pub gateways: Vec<super::gateways::GatewayAnnotation>,
}

/// Where an `agent-configmap` ConfigMap is mounted in the agent (as vault-k8s
/// and openbao-k8s mount it).
pub const CONFIG_MAP_DIR: &str = "/vault/configs";

/// One Consul Template template of a compatibility pod (vault-k8s's
/// `template` stanza for one secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsulSpec {
    /// File name in the secrets directory.
    pub name: String,
    /// The annotation the template came from (for error messages).
    pub annotation: String,
    /// The template's text, or the file holding it.
    pub text: ConsulText,
    /// `agent-template-left-delim-*` (default `{{`).
    pub left: Option<String>,
    /// `agent-template-right-delim-*` (default `}}`).
    pub right: Option<String>,
    /// `error-on-missing-key-*`.
    pub error_on_missing_key: bool,
    /// `agent-inject-command-*`: run in the wrapped containers (`shroud exec
    /// --on-change`) when this file gets new contents.
    pub command: Option<FileCommand>,
}

/// A shell command run when one file changes, and the annotation it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileCommand {
    /// The annotation (named in exec's errors through `--on-change-origin`).
    pub annotation: String,
    /// The command, for `/bin/sh -c`.
    pub command: String,
}

/// Where a [`ConsulSpec`]'s text is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsulText {
    /// In the annotation (or the injector's default template).
    Inline(String),
    /// A file the agent reads at start (`agent-inject-template-file-*`, inside
    /// the mounted ConfigMap): the webhook cannot read it at admission.
    File(String),
}

/// What a pod's annotations may change of the webhook's configuration for it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `[vault] address` (`service`).
    pub vault_address: Option<String>,
    /// `[vault] namespace` (`namespace`).
    pub vault_namespace: Option<String>,
    /// `[vault] tls_server_name` (`tls-server-name`).
    pub tls_server_name: Option<String>,
    /// `[auth] mount` (`auth-path`, without its `auth/`).
    pub auth_mount: Option<String>,
    /// The agent's user and the files' owner where the app's is not used
    /// (`agent-run-as-user`).
    pub agent_user: Option<i64>,
    /// The agent's group (`agent-run-as-group`).
    pub agent_group: Option<i64>,
    /// Every secret file's mode (`agent-inject-perms-*`).
    pub file_mode: Option<u32>,
    /// The agent container's `resources`: (`limits`|`requests`, resource, quantity).
    pub resources: Vec<(String, String, String)>,
    /// `[lifecycle] revoke_on_exit` (`agent-revoke-on-shutdown`).
    pub revoke_on_exit: Option<bool>,
}

/// The `shroud.dev/` keys with the prefix removed; unknown keys are errors.
pub(crate) fn shroud_keys(
    annotations: &BTreeMap<String, String>,
) -> Result<BTreeMap<&str, &str>, AnnotationError> {
    let mut out = BTreeMap::new();
    for (k, v) in annotations {
        let Some(rest) = k.strip_prefix(PREFIX) else {
            // The API server validates keys lowercased, so `Shroud.dev/inject` is a
            // valid key that must not be mistaken for someone else's.
            if k.get(..PREFIX.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(PREFIX))
            {
                return Err(AnnotationError::invalid(
                    k.clone(),
                    format!("annotation keys of shroud are spelled `{PREFIX}` in lower case"),
                ));
            }
            continue;
        };
        let known = matches!(
            rest,
            INJECT | ROLE | CONTAINERS | ON_ROTATE | NATIVE_SIDECAR | "status"
        ) || rest.strip_prefix(SECRET).is_some_and(|n| !n.is_empty())
            || rest.strip_prefix(COMMAND).is_some_and(|n| !n.is_empty())
            || rest
                .strip_prefix(super::gateways::GATEWAY)
                .is_some_and(|n| !n.is_empty());
        if !known {
            return Err(AnnotationError::Unknown { key: k.clone() });
        }
        out.insert(rest, v.as_str());
    }
    Ok(out)
}

pub(crate) fn key(rest: &str) -> String {
    format!("{PREFIX}{rest}")
}

pub(crate) fn parse_shroud(ours: &BTreeMap<&str, &str>) -> Result<Injection, AnnotationError> {
    let role = ours.get(ROLE).map(|r| r.trim()).unwrap_or_default();
    if role.is_empty() {
        return Err(AnnotationError::Missing {
            key: key(ROLE),
            reason: "the Vault role the pod's service account logs in as".into(),
        });
    }
    let mut paths = BTreeMap::new();
    let mut options: Vec<(&str, &str, &str)> = Vec::new();
    let mut params: Vec<(&str, &str, &str)> = Vec::new();
    for (k, v) in ours {
        let Some(rest) = k.strip_prefix(SECRET) else {
            continue;
        };
        if let Some((name, param)) = rest.split_once(PARAM) {
            params.push((name, param, v));
            continue;
        }
        match SUFFIXES.iter().find(|s| rest.ends_with(*s)) {
            Some(suffix) => options.push((&rest[..rest.len() - suffix.len()], suffix, v)),
            None => {
                paths.insert(rest, *v);
            }
        }
    }
    let mut secrets = BTreeMap::new();
    for (name, path) in paths {
        let path_key = key(&format!("{SECRET}{name}"));
        validate_secret_name(name, &path_key)?;
        let path = validate_path(path, &path_key)?;
        secrets.insert(
            name,
            SecretSpec {
                name: name.to_string(),
                kind: default_kind(&path),
                path,
                path_annotation: path_key,
                field: None,
                format: SecretFormat::Json,
                template: None,
                params: BTreeMap::new(),
                gateway_only: false,
            },
        );
    }
    let mut explicit_format = BTreeMap::new();
    for (name, suffix, value) in options {
        let k = key(&format!("{SECRET}{name}{suffix}"));
        let Some(spec) = secrets.get_mut(name) else {
            return Err(AnnotationError::invalid(
                k,
                format!("there is no `{PREFIX}{SECRET}{name}` annotation giving the secret's path (secret names cannot end in -kind, -field, -format, -template or -gateway-only, nor contain -param-)"),
            ));
        };
        match suffix {
            GATEWAY_ONLY => {
                spec.gateway_only = match value.trim() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(AnnotationError::invalid(k, "must be \"true\" or \"false\"")),
                }
            }
            "-kind" => spec.kind = parse_kind(value, &k)?,
            "-field" => {
                if value.trim().is_empty() {
                    return Err(AnnotationError::invalid(k, "must not be empty"));
                }
                spec.field = Some(value.trim().to_string());
            }
            "-format" => {
                spec.format = parse_format(value, &k)?;
                explicit_format.insert(name, ());
            }
            _ => spec.template = Some(value.to_string()),
        }
    }
    for (name, param, value) in params {
        let k = key(&format!("{SECRET}{name}{PARAM}{param}"));
        let Some(spec) = secrets.get_mut(name) else {
            return Err(AnnotationError::invalid(
                k,
                format!("there is no `{PREFIX}{SECRET}{name}` annotation giving the secret's path"),
            ));
        };
        let valid = !param.is_empty()
            && param
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
        if !valid {
            return Err(AnnotationError::invalid(
                k,
                "a parameter name is letters, digits, `_` and `-`",
            ));
        }
        spec.params.insert(param.to_string(), value.to_string());
    }
    for spec in secrets.values_mut() {
        let explicit = explicit_format.contains_key(spec.name.as_str());
        if spec.kind == SecretKind::Pki {
            finish_pki(spec, explicit)?;
        } else {
            finish_format(spec, explicit)?;
        }
        if spec.kind == SecretKind::Kv2 && !spec.params.is_empty() {
            return Err(AnnotationError::invalid(
                format!(
                    "{}{PARAM}{}",
                    spec.path_annotation,
                    spec.params
                        .keys()
                        .next()
                        .map(String::as_str)
                        .unwrap_or_default()
                ),
                "parameters turn the read into a write; kv2 secrets are only read",
            ));
        }
    }
    if secrets.is_empty() {
        return Err(AnnotationError::Missing {
            key: key(&format!("{SECRET}<name>")),
            reason: "at least one secret, e.g. shroud.dev/secret-db: database/creds/app".into(),
        });
    }
    let mut inj = Injection {
        origin: Origin::Shroud,
        role: role.to_string(),
        secrets: secrets.into_values().collect(),
        containers: None,
        commands: BTreeMap::new(),
        on_rotate: None,
        native_sidecar: None,
        warnings: Vec::new(),
        extra_mounts: Vec::new(),
        overrides: Overrides::default(),
        templates: Vec::new(),
        config_map: None,
        gateways: super::gateways::parse(ours)?,
    };
    apply_common(ours, &mut inj)?;
    Ok(inj)
}

/// The annotations that also apply to Vault Agent compatibility pods.
pub(crate) fn apply_common(
    ours: &BTreeMap<&str, &str>,
    inj: &mut Injection,
) -> Result<(), AnnotationError> {
    if let Some(list) = ours.get(CONTAINERS) {
        let names: Vec<String> = list
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if names.is_empty() {
            return Err(AnnotationError::invalid(
                key(CONTAINERS),
                "must list at least one container name (comma-separated)",
            ));
        }
        inj.containers = Some(names);
    }
    for (k, v) in ours {
        if let Some(container) = k.strip_prefix(COMMAND) {
            let words = parse_command(v).map_err(|r| AnnotationError::invalid(key(k), r))?;
            inj.commands.insert(container.to_string(), words);
        }
    }
    if let Some(v) = ours.get(ON_ROTATE) {
        inj.on_rotate =
            Some(parse_on_rotate(v).map_err(|r| AnnotationError::invalid(key(ON_ROTATE), r))?);
    }
    inj.native_sidecar = match ours.get(NATIVE_SIDECAR).copied() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            return Err(AnnotationError::invalid(
                key(NATIVE_SIDECAR),
                "must be \"true\" or \"false\"",
            ))
        }
    };
    Ok(())
}

/// Fills the default format and checks that format and template agree.
pub(crate) fn finish_format(spec: &mut SecretSpec, explicit: bool) -> Result<(), AnnotationError> {
    let base = spec.path_annotation.clone();
    if !explicit {
        spec.format = match (&spec.template, &spec.field) {
            (Some(_), _) => SecretFormat::Template,
            (None, Some(_)) => SecretFormat::Raw,
            (None, None) => SecretFormat::Json,
        };
    }
    match (spec.format, &spec.template) {
        (SecretFormat::Template, None) => Err(AnnotationError::Missing {
            key: format!("{base}-template"),
            reason: "format is `template`".into(),
        }),
        (f, Some(_)) if f != SecretFormat::Template => Err(AnnotationError::invalid(
            format!("{base}-template"),
            "a template needs format `template` (or no -format annotation)",
        )),
        (SecretFormat::Raw, _) if spec.field.is_none() => Err(AnnotationError::Missing {
            key: format!("{base}-field"),
            reason: "format `raw` writes one field's value".into(),
        }),
        _ => Ok(()),
    }
}

/// A certificate is a directory of fixed files: no field, format or template,
/// and a `common_name` to issue it for.
fn finish_pki(spec: &SecretSpec, explicit_format: bool) -> Result<(), AnnotationError> {
    let base = &spec.path_annotation;
    let fixed = [
        (spec.field.is_some(), "-field"),
        (explicit_format, "-format"),
        (spec.template.is_some(), "-template"),
    ];
    if let Some((_, suffix)) = fixed.iter().find(|(set, _)| *set) {
        return Err(AnnotationError::invalid(
            format!("{base}{suffix}"),
            "a pki secret is written as a directory (tls.crt, tls.key, ca.crt); leave it out",
        ));
    }
    if spec
        .params
        .get("common_name")
        .is_none_or(|cn| cn.trim().is_empty())
    {
        return Err(AnnotationError::Missing {
            key: format!("{base}{PARAM}common_name"),
            reason: "a pki secret is a certificate issued for this name".into(),
        });
    }
    let segs: Vec<&str> = spec.path.split('/').collect();
    if segs.len() < 3 || segs[segs.len() - 2] != "issue" {
        return Err(AnnotationError::invalid(
            base.clone(),
            "a pki secret's path is `<mount>/issue/<role>`",
        ));
    }
    Ok(())
}

/// A secret name becomes a file name in the secrets directory.
pub(crate) fn validate_secret_name(name: &str, k: &str) -> Result<(), AnnotationError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(AnnotationError::invalid(
            k,
            "the secret name (the file name) must be 1-63 of [A-Za-z0-9._-] and not start with `.`",
        ))
    }
}

/// A Vault path: relative, segments of `[A-Za-z0-9._~@:+=,-]` that are not empty,
/// `.` or `..`. No `%` or `\`: what is checked here is, segment for segment,
/// what Vault receives (the agent percent-encodes each segment).
pub(crate) fn validate_path(path: &str, k: &str) -> Result<String, AnnotationError> {
    let p = path.trim();
    let bad = p.is_empty()
        || p.split('/').any(|s| s.is_empty() || s == "." || s == "..")
        || !p
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._~@:+=,-/".contains(&b));
    if bad {
        return Err(AnnotationError::invalid(
            k,
            "must be a Vault path such as `secret/data/team/app`: segments of [A-Za-z0-9._~@:+=,-] separated by single `/`, no leading `/`, no `.` or `..` segments",
        ));
    }
    Ok(p.to_string())
}

/// `…/data/…` is KV v2, `…/creds/…` is leased, anything else is a plain read.
pub(crate) fn default_kind(path: &str) -> SecretKind {
    let mut segs = path.split('/').skip(1);
    if segs.clone().next() == Some("data") {
        SecretKind::Kv2
    } else if segs.any(|s| s == "creds") {
        SecretKind::Dynamic
    } else {
        SecretKind::Generic
    }
}

fn parse_kind(v: &str, k: &str) -> Result<SecretKind, AnnotationError> {
    match v.trim() {
        "kv2" => Ok(SecretKind::Kv2),
        "dynamic" => Ok(SecretKind::Dynamic),
        "generic" => Ok(SecretKind::Generic),
        "pki" => Ok(SecretKind::Pki),
        _ => Err(AnnotationError::invalid(
            k,
            "must be one of kv2, dynamic, generic, pki",
        )),
    }
}

fn parse_format(v: &str, k: &str) -> Result<SecretFormat, AnnotationError> {
    match v.trim() {
        "raw" => Ok(SecretFormat::Raw),
        "json" => Ok(SecretFormat::Json),
        "env" => Ok(SecretFormat::Env),
        "template" => Ok(SecretFormat::Template),
        _ => Err(AnnotationError::invalid(
            k,
            "must be one of raw, json, env, template",
        )),
    }
}

/// A command: a JSON array of strings, or words separated by whitespace.
fn parse_command(v: &str) -> Result<Vec<String>, String> {
    let v = v.trim();
    let words: Vec<String> = if v.starts_with('[') {
        serde_json::from_str(v).map_err(|_| {
            "must be a JSON array of strings, e.g. [\"python\", \"app.py\"], or words separated by spaces".to_string()
        })?
    } else {
        v.split_whitespace().map(str::to_string).collect()
    };
    if words.is_empty() || words[0].is_empty() {
        return Err("must name the program to run".into());
    }
    Ok(words)
}

/// `none`, `restart`, or `signal:<NAME>`, checked with the parser `shroud exec`
/// itself uses, so an accepted pod never fails at exec's flag parsing.
fn parse_on_rotate(v: &str) -> Result<String, String> {
    let v = v.trim();
    crate::exec::rotate::parse_on_rotate(v)
        .map(|_| v.to_string())
        .map_err(|e| {
            format!("{e}; expected `none`, `restart` or `signal:<NAME>` (e.g. signal:SIGHUP)")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::decision::{parse, Decision};

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn inject(pairs: &[(&str, &str)]) -> Injection {
        match parse(&ann(pairs), false).unwrap() {
            Decision::Inject(i) => *i,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pki_kind_and_params() {
        let base = [
            ("shroud.dev/inject", "true"),
            ("shroud.dev/role", "app"),
            ("shroud.dev/secret-tls", "pki/issue/web"),
            ("shroud.dev/secret-tls-kind", "pki"),
            ("shroud.dev/secret-tls-param-common_name", "web.example"),
            (
                "shroud.dev/secret-tls-param-alt_names",
                "a.example,b.example",
            ),
            ("shroud.dev/secret-ssh", "ssh/sign/app"),
            ("shroud.dev/secret-ssh-param-public_key", "ssh-ed25519 AAAA"),
        ];
        let i = inject(&base);
        let ssh = &i.secrets[0];
        assert_eq!((ssh.name.as_str(), ssh.kind), ("ssh", SecretKind::Generic));
        assert_eq!(ssh.params["public_key"], "ssh-ed25519 AAAA");
        let tls = &i.secrets[1];
        assert_eq!(tls.kind, SecretKind::Pki);
        assert_eq!(tls.params.len(), 2);

        let with = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = base.to_vec();
            pairs.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
            pairs.extend_from_slice(extra);
            parse(&ann(&pairs), false).unwrap_err()
        };
        let e = with(&[("shroud.dev/secret-tls-param-common_name", " ")]);
        assert!(
            matches!(&e, AnnotationError::Missing { key, .. } if key == "shroud.dev/secret-tls-param-common_name"),
            "{e}"
        );
        let e = with(&[("shroud.dev/secret-tls-format", "json")]);
        assert!(
            matches!(&e, AnnotationError::Invalid { key, .. } if key == "shroud.dev/secret-tls-format"),
            "{e}"
        );
        let e = with(&[("shroud.dev/secret-tls", "pki/sign/web")]);
        assert!(
            matches!(&e, AnnotationError::Invalid { key, .. } if key == "shroud.dev/secret-tls"),
            "{e}"
        );
        let e = with(&[("shroud.dev/secret-nope-param-ttl", "1h")]);
        assert!(e.to_string().contains("secret-nope-param-ttl"), "{e}");
        let e = with(&[("shroud.dev/secret-tls-param-a.b", "1")]);
        assert!(e.to_string().contains("parameter name"), "{e}");
        let e = with(&[
            ("shroud.dev/secret-kv", "secret/data/x"),
            ("shroud.dev/secret-kv-param-version", "2"),
        ]);
        assert!(
            e.to_string().contains("secret-kv-param-version") && e.to_string().contains("kv2"),
            "{e}"
        );
    }

    #[test]
    fn not_requested_without_inject() {
        assert_eq!(
            parse(&ann(&[("a", "b")]), false).unwrap(),
            Decision::NotRequested
        );
        assert_eq!(
            parse(&ann(&[("shroud.dev/inject", "false")]), false).unwrap(),
            Decision::NotRequested
        );
    }

    #[test]
    fn full_request() {
        let i = inject(&[
            ("shroud.dev/inject", "true"),
            ("shroud.dev/role", "app"),
            ("shroud.dev/secret-db", "database/creds/team-app"),
            ("shroud.dev/secret-api", "secret/data/team/api"),
            ("shroud.dev/secret-api-field", "token"),
            ("shroud.dev/secret-conf", "secret/data/team/conf"),
            ("shroud.dev/secret-conf-template", "user={{ user }}"),
            ("shroud.dev/containers", "app, worker"),
            ("shroud.dev/command-app", "[\"python\", \"-m\", \"app\"]"),
            ("shroud.dev/command-worker", "celery worker"),
            ("shroud.dev/on-rotate", "signal:SIGHUP"),
            ("shroud.dev/native-sidecar", "false"),
        ]);
        assert_eq!(i.role, "app");
        let names: Vec<_> = i.secrets.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["api", "conf", "db"]);
        assert_eq!(i.secrets[0].kind, SecretKind::Kv2);
        assert_eq!(i.secrets[0].format, SecretFormat::Raw);
        assert_eq!(i.secrets[1].format, SecretFormat::Template);
        assert_eq!(i.secrets[2].kind, SecretKind::Dynamic);
        assert_eq!(i.secrets[2].format, SecretFormat::Json);
        assert_eq!(
            i.containers.as_deref(),
            Some(&["app".to_string(), "worker".to_string()][..])
        );
        assert_eq!(i.commands["app"], ["python", "-m", "app"]);
        assert_eq!(i.commands["worker"], ["celery", "worker"]);
        assert_eq!(i.on_rotate.as_deref(), Some("signal:SIGHUP"));
        assert_eq!(i.native_sidecar, Some(false));
    }

    #[test]
    fn unknown_key_is_named_even_without_inject() {
        let e = parse(&ann(&[("shroud.dev/injet", "true")]), false).unwrap_err();
        assert_eq!(
            e,
            AnnotationError::Unknown {
                key: "shroud.dev/injet".into()
            }
        );
        assert!(e.to_string().contains("`shroud.dev/injet`"));
    }

    #[test]
    fn errors_name_the_annotation() {
        let base = [("shroud.dev/inject", "true"), ("shroud.dev/role", "r")];
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("shroud.dev/secret-db", "/abs")], "shroud.dev/secret-db"),
            (
                &[("shroud.dev/secret-db", "secret/data/ns/%2e%2e/other/db")],
                "shroud.dev/secret-db",
            ),
            (
                &[("shroud.dev/secret-db", "secret/data/ns/..\\other\\db")],
                "shroud.dev/secret-db",
            ),
            (&[("Shroud.dev/inject", "false")], "Shroud.dev/inject"),
            (&[("SHROUD.DEV/secret-x", "a/b")], "SHROUD.DEV/secret-x"),
            (
                &[("shroud.dev/secret-db", "a/../b")],
                "shroud.dev/secret-db",
            ),
            (
                &[
                    ("shroud.dev/secret-db", "a/b"),
                    ("shroud.dev/secret-db-kind", "kv3"),
                ],
                "shroud.dev/secret-db-kind",
            ),
            (
                &[
                    ("shroud.dev/secret-db", "a/b"),
                    ("shroud.dev/secret-db-format", "yaml"),
                ],
                "shroud.dev/secret-db-format",
            ),
            (
                &[
                    ("shroud.dev/secret-db", "a/b"),
                    ("shroud.dev/secret-db-format", "template"),
                ],
                "shroud.dev/secret-db-template",
            ),
            (
                &[
                    ("shroud.dev/secret-db", "a/b"),
                    ("shroud.dev/secret-db-format", "raw"),
                ],
                "shroud.dev/secret-db-field",
            ),
            (
                &[("shroud.dev/secret-db-field", "x")],
                "shroud.dev/secret-db-field",
            ),
            (
                &[("shroud.dev/secret-.hidden", "a/b")],
                "shroud.dev/secret-.hidden",
            ),
            (
                &[
                    ("shroud.dev/secret-db", "a/b"),
                    ("shroud.dev/on-rotate", "reboot"),
                ],
                "shroud.dev/on-rotate",
            ),
            (
                &[
                    ("shroud.dev/secret-db", "a/b"),
                    ("shroud.dev/native-sidecar", "yes"),
                ],
                "shroud.dev/native-sidecar",
            ),
            (
                &[
                    ("shroud.dev/secret-db", "a/b"),
                    ("shroud.dev/command-app", "[1]"),
                ],
                "shroud.dev/command-app",
            ),
            (
                &[
                    ("shroud.dev/secret-db", "a/b"),
                    ("shroud.dev/containers", " , "),
                ],
                "shroud.dev/containers",
            ),
            (&[], "shroud.dev/secret-<name>"),
        ];
        for (extra, want) in cases {
            let mut all: Vec<(&str, &str)> = base.to_vec();
            all.extend_from_slice(extra);
            let e = parse(&ann(&all), false).unwrap_err().to_string();
            assert!(e.contains(&format!("`{want}`")), "{extra:?}: {e}");
        }
        let e = parse(
            &ann(&[
                ("shroud.dev/inject", "true"),
                ("shroud.dev/secret-db", "a/b"),
            ]),
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`shroud.dev/role`"), "{e}");
        let e = parse(&ann(&[("shroud.dev/inject", "yes")]), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`shroud.dev/inject`"), "{e}");
    }

    #[test]
    fn already_injected() {
        assert_eq!(
            parse(
                &ann(&[
                    ("shroud.dev/inject", "true"),
                    ("shroud.dev/status", "injected")
                ]),
                false
            )
            .unwrap(),
            Decision::AlreadyInjected
        );
    }

    #[test]
    fn kinds_by_path() {
        assert_eq!(default_kind("secret/data/a/b"), SecretKind::Kv2);
        assert_eq!(default_kind("database/creds/app"), SecretKind::Dynamic);
        assert_eq!(default_kind("pki/issue/web"), SecretKind::Generic);
        assert_eq!(default_kind("data/x"), SecretKind::Generic);
    }
}
