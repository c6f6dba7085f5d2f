//! The Vault Agent Injector's annotations (`vault.hashicorp.com/`) and the OpenBao
//! injector's (`openbao.org/`, the same names), for pods migrating to shroud. Every
//! annotation of both is known (`table.rs`): honoured with its meaning, accepted
//! with a warning when it only tunes the replaced agent process, or denied with the
//! reason; an unknown one is denied. Every file is a Consul Template template
//! (`[[template]]` in the agent's configuration), the injector's own or its
//! default `map`/`json` one, so it renders byte for byte as under the injector.

mod table;

use std::collections::BTreeMap;

use super::annotations::{
    validate_path, validate_secret_name, AnnotationError, ConsulSpec, ConsulText, FileCommand,
    Injection, Origin, Overrides, CONFIG_MAP_DIR,
};
use table::Handling;

/// Which injector's annotations a pod carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// HashiCorp's vault-k8s.
    Vault,
    /// openbao-k8s.
    OpenBao,
}

impl Family {
    const ALL: [Family; 2] = [Family::Vault, Family::OpenBao];

    /// The annotation prefix.
    pub fn prefix(self) -> &'static str {
        match self {
            Family::Vault => "vault.hashicorp.com/",
            Family::OpenBao => "openbao.org/",
        }
    }

    fn agent(self) -> &'static str {
        match self {
            Family::Vault => "Vault Agent",
            Family::OpenBao => "OpenBao Agent",
        }
    }

    fn key(self, rest: &str) -> String {
        format!("{}{rest}", self.prefix())
    }
}

/// The injectors' status annotations (set on pods they injected).
pub const STATUSES: [&str; 2] = [
    "vault.hashicorp.com/agent-inject-status",
    "openbao.org/agent-inject-status",
];

/// Where the injectors put rendered files; shroud mounts the secrets there too
/// unless `secret-volume-path` says otherwise.
pub const SECRETS_DIR: &str = "/vault/secrets";
/// The OpenBao injector's default.
pub const OPENBAO_SECRETS_DIR: &str = "/openbao/secrets";

/// Which family asks for injection (`agent-inject: "true"`), if any. Both at once
/// is an error.
pub fn requested(
    annotations: &BTreeMap<String, String>,
) -> Result<Option<Family>, AnnotationError> {
    let mut on = None;
    for f in Family::ALL {
        let key = f.key("agent-inject");
        let yes = match annotations.get(&key) {
            None => false,
            Some(v) => parse_bool(v, &key)?,
        };
        if yes {
            if let Some(other) = on {
                return Err(AnnotationError::invalid(
                    key,
                    format!(
                        "both {}agent-inject and {}agent-inject are set: keep one",
                        Family::prefix(other),
                        f.prefix()
                    ),
                ));
            }
            on = Some(f);
        }
    }
    Ok(on)
}

/// Whether an injector's own status says the pod is done.
pub fn already_injected(annotations: &BTreeMap<String, String>) -> bool {
    STATUSES
        .iter()
        .any(|k| annotations.get(*k).map(String::as_str) == Some("injected"))
}

/// `true`/`false` as the injectors read them (Go's `strconv.ParseBool`).
fn parse_bool(v: &str, key: &str) -> Result<bool, AnnotationError> {
    match v.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(AnnotationError::invalid(
            key,
            "must be \"true\" or \"false\"",
        )),
    }
}

/// One secret as the per-name annotations describe it, before validation.
#[derive(Default)]
struct Raw<'a> {
    path: Option<&'a str>,
    template: Option<&'a str>,
    template_file: Option<&'a str>,
    left_delim: Option<&'a str>,
    right_delim: Option<&'a str>,
    missing_key: Option<&'a str>,
    file: Option<&'a str>,
    perms: Option<&'a str>,
    volume_path: Option<&'a str>,
    preserve_case: Option<&'a str>,
    command: Option<&'a str>,
}

/// Reads the family's annotations into an injection request.
pub fn parse(
    annotations: &BTreeMap<String, String>,
    family: Family,
) -> Result<Injection, AnnotationError> {
    let mut pod: BTreeMap<&str, (String, &str)> = BTreeMap::new();
    let mut named: BTreeMap<&str, Raw<'_>> = BTreeMap::new();
    let mut warnings = Vec::new();
    for (k, v) in annotations {
        let Some(rest) = k.strip_prefix(family.prefix()) else {
            if let Some(other) = Family::ALL
                .into_iter()
                .find(|o| *o != family && k.starts_with(o.prefix()))
            {
                return Err(AnnotationError::invalid(
                    k.clone(),
                    format!(
                        "the pod is injected through {}agent-inject: {} annotations do not apply to it",
                        family.prefix(),
                        other.prefix()
                    ),
                ));
            }
            continue;
        };
        let Some((base, name, handling)) = table::classify(rest) else {
            return Err(AnnotationError::invalid(
                k.clone(),
                format!(
                    "not an annotation of the {} injector (docs/migrate.md lists them all)",
                    family.agent()
                ),
            ));
        };
        match handling {
            Handling::Refused(reason) => {
                return Err(AnnotationError::invalid(
                    k.clone(),
                    format!("cannot be honoured: {reason}"),
                ))
            }
            Handling::RefusedIfTrue(reason) => {
                if parse_bool(v, k)? {
                    return Err(AnnotationError::invalid(
                        k.clone(),
                        format!("cannot be honoured: {reason}"),
                    ));
                }
            }
            Handling::AgentTuning => warnings.push(format!(
                "annotation `{k}` tunes the {} process, which shroud replaces; it has no effect",
                family.agent()
            )),
            Handling::Honoured => match name {
                None => {
                    pod.insert(base, (k.clone(), v.as_str()));
                }
                Some(n) => {
                    let raw = named.entry(n).or_default();
                    let slot = match base {
                        "agent-inject-secret" => &mut raw.path,
                        "agent-inject-template" => &mut raw.template,
                        "agent-inject-template-file" => &mut raw.template_file,
                        "agent-template-left-delim" => &mut raw.left_delim,
                        "agent-template-right-delim" => &mut raw.right_delim,
                        "error-on-missing-key" => &mut raw.missing_key,
                        "agent-inject-file" => &mut raw.file,
                        "agent-inject-perms" => &mut raw.perms,
                        "secret-volume-path" => &mut raw.volume_path,
                        "agent-inject-command" => &mut raw.command,
                        _ => &mut raw.preserve_case,
                    };
                    // Like the injectors: an empty value is as if absent.
                    *slot = Some(v.as_str()).filter(|v| !v.trim().is_empty());
                }
            },
        }
    }
    let get = |base: &str| pod.get(base).map(|(k, v)| (k.as_str(), *v));
    let role = get("role").map(|(_, r)| r.trim()).unwrap_or_default();
    if role.is_empty() {
        return Err(AnnotationError::Missing {
            key: family.key("role"),
            reason: "the Vault role the pod's service account logs in as".into(),
        });
    }
    let mut inj = Injection {
        origin: Origin::VaultAgent,
        role: role.to_string(),
        secrets: Vec::new(),
        containers: None,
        commands: BTreeMap::new(),
        on_rotate: None,
        native_sidecar: None,
        warnings,
        extra_mounts: Vec::new(),
        overrides: Overrides::default(),
        templates: Vec::new(),
        config_map: None,
        gateways: Vec::new(),
    };
    pod_wide(family, &get, &mut inj)?;
    let preserve_all = match get("preserve-secret-case") {
        Some((k, v)) => parse_bool(v, k)?,
        None => false,
    };
    let default_template = match get("agent-inject-default-template") {
        None => DefaultTemplate::Map,
        Some((k, v)) => match v.trim().to_ascii_lowercase().as_str() {
            "map" => DefaultTemplate::Map,
            "json" => DefaultTemplate::Json,
            _ => return Err(AnnotationError::invalid(k, "must be `map` or `json`")),
        },
    };
    if let Some((k, v)) = get("agent-configmap") {
        let name = v.trim();
        if !is_dns_subdomain(name) {
            return Err(AnnotationError::invalid(
                k,
                "must be the name of a ConfigMap in the pod's namespace",
            ));
        }
        inj.config_map = Some(name.to_string());
    }
    let mut modes = BTreeMap::new();
    let mut names = BTreeMap::new();
    for (raw_name, raw) in &named {
        let key = |base: &str| family.key(&format!("{base}-{raw_name}"));
        // Like vault-k8s's `secrets()`: a secret, a template or a template file
        // names a file; the other per-name annotations only tune one.
        if raw.path.is_none() && raw.template.is_none() && raw.template_file.is_none() {
            if let Some(base) = [
                (raw.file.is_some(), "agent-inject-file"),
                (raw.perms.is_some(), "agent-inject-perms"),
                (raw.volume_path.is_some(), "secret-volume-path"),
                (raw.left_delim.is_some(), "agent-template-left-delim"),
                (raw.right_delim.is_some(), "agent-template-right-delim"),
                (raw.missing_key.is_some(), "error-on-missing-key"),
                (raw.command.is_some(), "agent-inject-command"),
            ]
            .iter()
            .find_map(|(set, b)| set.then_some(*b))
            {
                return Err(AnnotationError::invalid(
                    key(base),
                    format!(
                        "there is no `{}` (or -template-/-template-file-) annotation for this secret",
                        key("agent-inject-secret")
                    ),
                ));
            }
            continue;
        }
        let preserve = match raw.preserve_case {
            Some(v) => parse_bool(v, &key("preserve-secret-case"))?,
            None => preserve_all,
        };
        let name = if preserve {
            raw_name.to_string()
        } else {
            raw_name.to_lowercase()
        };
        let secret_key = key("agent-inject-secret");
        let file = match raw.file {
            Some(f) => {
                let k = key("agent-inject-file");
                let f = f.trim();
                if f.contains('/') {
                    return Err(AnnotationError::invalid(k, "shroud writes every file directly in the secrets directory: give a file name, and the directory with secret-volume-path"));
                }
                validate_secret_name(f, &k)?;
                f.to_string()
            }
            None => {
                validate_secret_name(&name, &secret_key)?;
                name.clone()
            }
        };
        if let Some(previous) = names.insert(file.clone(), raw_name) {
            return Err(AnnotationError::invalid(
                secret_key,
                format!("writes the file `{file}`, as the secret `{previous}` does"),
            ));
        }
        if let Some(perms) = raw.perms {
            let k = key("agent-inject-perms");
            modes.insert(parse_mode(perms, &k)?, k);
        }
        if let Some(dir) = raw.volume_path {
            add_mount(&mut inj.extra_mounts, dir, &key("secret-volume-path"))?;
        }
        // vault-k8s: the inline template wins over the template file, which
        // wins over the default template of the secret's path.
        let (annotation, text) = match (raw.template, raw.template_file, raw.path) {
            (Some(t), _, _) => (
                key("agent-inject-template"),
                ConsulText::Inline(t.to_string()),
            ),
            (None, Some(f), _) => {
                let k = key("agent-inject-template-file");
                (
                    k.clone(),
                    ConsulText::File(template_file(f, inj.config_map.as_deref(), &k)?),
                )
            }
            (None, None, Some(p)) => {
                let path = validate_path(p, &secret_key)?;
                (
                    secret_key.clone(),
                    ConsulText::Inline(default_template.text(&path)),
                )
            }
            (None, None, None) => unreachable!("skipped above"),
        };
        let delim = |v: Option<&str>| v.map(str::to_string);
        inj.templates.push(ConsulSpec {
            name: file,
            annotation,
            text,
            left: delim(raw.left_delim),
            right: delim(raw.right_delim),
            error_on_missing_key: match raw.missing_key {
                Some(v) => parse_bool(v, &key("error-on-missing-key"))?,
                None => false,
            },
            command: raw
                .command
                .map(|c| file_command(c, &key("agent-inject-command")))
                .transpose()?,
        });
    }
    match modes.len() {
        0 => {}
        1 => inj.overrides.file_mode = modes.into_keys().next(),
        _ => {
            let keys: Vec<String> = modes.into_values().collect();
            return Err(AnnotationError::invalid(
                keys.join(", "),
                "shroud writes every secret file of a pod with one mode: give them the same perms",
            ));
        }
    }
    if inj.templates.is_empty() && inj.config_map.is_none() {
        return Err(AnnotationError::Missing {
            key: family.key("agent-inject-secret-<name>"),
            reason: "at least one secret (or an agent-configmap whose config.hcl has templates)"
                .into(),
        });
    }
    inj.templates.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(inj)
}

/// `agent-inject-command-*`: run by `shroud exec --on-change` in the wrapped
/// containers with `/bin/sh -c`, as consul-template runs it in the agent's.
fn file_command(v: &str, key: &str) -> Result<FileCommand, AnnotationError> {
    if v.contains('\0') {
        return Err(AnnotationError::invalid(key, "must not contain a NUL byte"));
    }
    Ok(FileCommand {
        annotation: key.to_string(),
        command: v.to_string(),
    })
}

/// `agent-inject-template-file-*`: a file of the mounted ConfigMap.
fn template_file(v: &str, config_map: Option<&str>, key: &str) -> Result<String, AnnotationError> {
    if config_map.is_none() {
        return Err(AnnotationError::invalid(
            key,
            "the template file must come from the ConfigMap of `agent-configmap` (mounted at /vault/configs), and the pod has none",
        ));
    }
    let f = v.trim();
    let inside = f
        .strip_prefix(CONFIG_MAP_DIR)
        .and_then(|r| r.strip_prefix('/'))
        .filter(|r| {
            r.split('/')
                .all(|s| !s.is_empty() && s != "." && s != ".." && !s.starts_with(".."))
        });
    if inside.is_none() {
        return Err(AnnotationError::invalid(
            key,
            format!("must be a file inside {CONFIG_MAP_DIR}/, where the ConfigMap of `agent-configmap` is mounted"),
        ));
    }
    Ok(f.to_string())
}

/// A Kubernetes object name (RFC 1123 subdomain).
fn is_dns_subdomain(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// `agent-inject-default-template`.
#[derive(Clone, Copy)]
enum DefaultTemplate {
    /// `key: value` lines in key order, the injector's default.
    Map,
    /// The data as JSON.
    Json,
}

impl DefaultTemplate {
    /// vault-k8s's `DefaultMapTemplate` / `DefaultJSONTemplate` (agent-inject/agent/config.go)
    /// for `path`, rendered by the Consul Template engine as under vault-k8s.
    fn text(self, path: &str) -> String {
        match self {
            DefaultTemplate::Map => format!(
                "{{{{ with secret \"{path}\" }}}}{{{{ range $k, $v := .Data }}}}{{{{ $k }}}}: {{{{ $v }}}}\n{{{{ end }}}}{{{{ end }}}}"
            ),
            DefaultTemplate::Json => {
                format!("{{{{ with secret \"{path}\" }}}}{{{{ .Data | toJSON }}}}\n{{{{ end }}}}")
            }
        }
    }
}

/// The pod-wide annotations that change the injection.
fn pod_wide<'a>(
    family: Family,
    get: &dyn Fn(&str) -> Option<(&'a str, &'a str)>,
    inj: &mut Injection,
) -> Result<(), AnnotationError> {
    let o = &mut inj.overrides;
    if let Some((k, v)) = get("auth-type") {
        if v.trim() != "kubernetes" {
            return Err(AnnotationError::invalid(
                k,
                "shroud's injected agents log in with the pod's service account: only `kubernetes`",
            ));
        }
    }
    if let Some((k, v)) = get("auth-path") {
        let mount = v.trim().trim_matches('/');
        let mount = mount.strip_prefix("auth/").unwrap_or(mount);
        validate_path(mount, k)?;
        o.auth_mount = Some(mount.to_string());
    }
    if let Some((k, v)) = get("namespace") {
        validate_path(v.trim().trim_matches('/'), k)?;
        o.vault_namespace = Some(v.trim().trim_matches('/').to_string());
    }
    if let Some((k, v)) = get("service") {
        let v = v.trim();
        if !(v.starts_with("https://") || v.starts_with("http://"))
            || v.contains(char::is_whitespace)
        {
            return Err(AnnotationError::invalid(
                k,
                "must be the Vault address, e.g. https://vault.vault.svc:8200",
            ));
        }
        o.vault_address = Some(v.to_string());
    }
    if let Some((k, v)) = get("tls-server-name") {
        let v = v.trim();
        if v.is_empty()
            || !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))
        {
            return Err(AnnotationError::invalid(k, "must be a DNS name"));
        }
        o.tls_server_name = Some(v.to_string());
    }
    for (base, which, resource) in [
        ("agent-limits-cpu", "limits", "cpu"),
        ("agent-limits-mem", "limits", "memory"),
        ("agent-limits-ephemeral", "limits", "ephemeral-storage"),
        ("agent-requests-cpu", "requests", "cpu"),
        ("agent-requests-mem", "requests", "memory"),
        ("agent-requests-ephemeral", "requests", "ephemeral-storage"),
    ] {
        if let Some((k, v)) = get(base) {
            let q = v.trim();
            if !is_quantity(q) {
                return Err(AnnotationError::invalid(
                    k,
                    "must be a Kubernetes quantity such as 250m, 64Mi or 1",
                ));
            }
            o.resources.push((which.into(), resource.into(), q.into()));
        }
    }
    for (base, slot) in [
        ("agent-run-as-user", &mut o.agent_user),
        ("agent-run-as-group", &mut o.agent_group),
    ] {
        if let Some((k, v)) = get(base) {
            let id: i64 = v.trim().parse().ok().filter(|n| (1..=i64::from(i32::MAX)).contains(n)).ok_or_else(|| {
                AnnotationError::invalid(k, "must be a user or group id from 1 to 2147483647 (shroud's agent never runs as root)")
            })?;
            *slot = Some(id);
        }
    }
    if let Some((k, v)) = get("agent-revoke-on-shutdown") {
        o.revoke_on_exit = Some(parse_bool(v, k)?);
    }
    if let Some((k, v)) = get("agent-inject-containers") {
        let names: Vec<String> = v
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if names.is_empty() {
            return Err(AnnotationError::invalid(
                k,
                "must list at least one container name (comma-separated)",
            ));
        }
        inj.containers = Some(names);
    }
    let default_dir = match family {
        Family::Vault => SECRETS_DIR,
        Family::OpenBao => OPENBAO_SECRETS_DIR,
    };
    match get("secret-volume-path") {
        Some((k, v)) => add_mount(&mut inj.extra_mounts, v, k)?,
        None => inj.extra_mounts.push(default_dir.to_string()),
    }
    // What shroud does anyway, or does better, said where it differs.
    let notes: [(&str, bool, &str); 4] = [
        ("agent-pre-populate", false, "the agent always renders before the app starts (native sidecar startup probe, or exec's wait)"),
        ("agent-pre-populate-only", true, "shroud keeps its agent running beside the app, to renew and rotate the credentials and revoke them when the app exits; Jobs still complete (native sidecar)"),
        ("agent-init-first", false, "shroud's containers always come first, so the pod's own init containers can already read the secrets"),
        ("agent-run-as-same-user", false, "the agent runs as the wrapped containers' user whenever they share one"),
    ];
    for (base, when, note) in notes {
        if let Some((k, v)) = get(base) {
            if parse_bool(v, k)? == when {
                inj.warnings.push(format!("annotation `{k}`: {note}"));
            }
        }
    }
    Ok(())
}

/// A directory for `secret-volume-path`: absolute, clean, not a system path.
fn add_mount(mounts: &mut Vec<String>, dir: &str, key: &str) -> Result<(), AnnotationError> {
    let d = dir.trim().trim_end_matches('/');
    let clean = d.starts_with('/')
        && d.len() > 1
        && d[1..]
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
        && d.bytes()
            .all(|b| b.is_ascii_graphic() && !b"\\:*?\"".contains(&b));
    if !clean {
        return Err(AnnotationError::invalid(
            key,
            "must be an absolute directory such as /vault/secrets",
        ));
    }
    // A directory mounted over hides what the image has there: never a whole
    // system directory, nothing under the kernel's or Kubernetes' own.
    let whole = [
        "/etc", "/bin", "/sbin", "/lib", "/lib64", "/usr", "/var", "/run", "/tmp", "/home", "/root",
    ];
    let trees = [
        "/proc",
        "/sys",
        "/dev",
        "/var/run/secrets",
        "/run/secrets",
        "/shroud",
        "/run/shroud",
    ];
    if whole.contains(&d)
        || trees
            .iter()
            .any(|s| d == *s || d.starts_with(&format!("{s}/")))
    {
        return Err(AnnotationError::invalid(
            key,
            format!("`{d}` is a system or shroud directory"),
        ));
    }
    if !mounts.iter().any(|m| m == d) {
        mounts.push(d.to_string());
    }
    Ok(())
}

/// A file mode as the injectors take it (`0400`, `440`).
fn parse_mode(v: &str, key: &str) -> Result<u32, AnnotationError> {
    let v = v.trim();
    u32::from_str_radix(v, 8)
        .ok()
        .filter(|m| (3..=4).contains(&v.len()) && *m <= 0o777 && m & 0o400 != 0)
        .ok_or_else(|| {
            AnnotationError::invalid(
                key,
                "must be an octal file mode such as 0400 or 0440, readable by its owner",
            )
        })
}

/// A Kubernetes resource quantity: a decimal number and an optional suffix.
fn is_quantity(q: &str) -> bool {
    let digits = q.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &q[digits.len()..];
    let number = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|b| *b == b'.').count() <= 1
        && digits.bytes().any(|b| b.is_ascii_digit());
    number
        && [
            "", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
        ]
        .contains(&suffix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn vault(extra: &[(&str, &str)]) -> Result<Injection, AnnotationError> {
        let mut a = map(&[
            ("vault.hashicorp.com/agent-inject", "true"),
            ("vault.hashicorp.com/role", "web"),
            (
                "vault.hashicorp.com/agent-inject-secret-db",
                "database/creds/web",
            ),
        ]);
        a.extend(map(extra));
        parse(&a, Family::Vault)
    }

    fn inline(t: &ConsulSpec) -> &str {
        match &t.text {
            ConsulText::Inline(s) => s,
            ConsulText::File(f) => panic!("a file: {f}"),
        }
    }

    #[test]
    fn parses_compat_annotations() {
        let tpl = "{{ with secret \"database/creds/web\" }}{{ .Data.password }}{{ end }}";
        let i = vault(&[
            ("vault.hashicorp.com/agent-inject-template-db", tpl),
            ("vault.hashicorp.com/agent-pre-populate-only", "true"),
        ])
        .unwrap();
        assert_eq!(i.role, "web");
        assert!(i.secrets.is_empty());
        // The injector's template as is: the agent renders it with Consul Template.
        assert_eq!(inline(&i.templates[0]), tpl);
        assert_eq!(
            i.templates[0].annotation,
            "vault.hashicorp.com/agent-inject-template-db"
        );
        assert_eq!(i.warnings.len(), 1);
        assert!(i.warnings[0].contains("agent-pre-populate-only"));
        assert_eq!(i.extra_mounts, ["/vault/secrets"]);
    }

    /// The default templates are vault-k8s's `DefaultMapTemplate` and
    /// `DefaultJSONTemplate`, and render through the Consul Template engine as
    /// under the injector: `map[...]` for nested values, keys in byte order.
    #[test]
    fn the_default_templates_are_the_injectors() {
        use crate::ctmpl::{Context, Options, SecretCall, Template, Value};
        let render = |text: &str| {
            let data = serde_json::json!({"username": "v-app-x", "password": "p-1", "Zone": "b"});
            let v = Value::secret("r", "", 0, false, data.as_object().unwrap(), &[]);
            Template::parse(text, &Options::default())
                .unwrap()
                .render(
                    &|c: &SecretCall| (c.path == "database/creds/web").then(|| v.clone()),
                    Context {
                        getenv: &|_| None,
                        now: std::time::UNIX_EPOCH,
                    },
                )
                .unwrap()
        };
        let i = vault(&[]).unwrap();
        assert_eq!(
            inline(&i.templates[0]),
            "{{ with secret \"database/creds/web\" }}{{ range $k, $v := .Data }}{{ $k }}: {{ $v }}\n{{ end }}{{ end }}"
        );
        assert_eq!(
            render(inline(&i.templates[0])),
            "Zone: b\npassword: p-1\nusername: v-app-x\n"
        );
        let i = vault(&[("vault.hashicorp.com/agent-inject-default-template", "json")]).unwrap();
        assert_eq!(
            render(inline(&i.templates[0])),
            "{\"Zone\":\"b\",\"password\":\"p-1\",\"username\":\"v-app-x\"}\n"
        );
    }

    /// A template without `agent-inject-secret-*` names its own paths; the
    /// delimiters and `error-on-missing-key` reach the template.
    #[test]
    fn template_only_secrets_delimiters_and_missing_keys() {
        let i = vault(&[
            (
                "vault.hashicorp.com/agent-inject-template-app.env",
                "[[ with secret \"secret/data/a\" ]]A=[[ .Data.data.a ]][[ end ]]",
            ),
            (
                "vault.hashicorp.com/agent-template-left-delim-app.env",
                "[[",
            ),
            (
                "vault.hashicorp.com/agent-template-right-delim-app.env",
                "]]",
            ),
            ("vault.hashicorp.com/error-on-missing-key-app.env", "true"),
        ])
        .unwrap();
        let names: Vec<&str> = i.templates.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["app.env", "db"]);
        let t = &i.templates[0];
        assert_eq!(t.left.as_deref(), Some("[["));
        assert_eq!(t.right.as_deref(), Some("]]"));
        assert!(t.error_on_missing_key);
        assert!(!i.templates[1].error_on_missing_key);
        let e = vault(&[("vault.hashicorp.com/error-on-missing-key-x", "true")]).unwrap_err();
        assert!(e.to_string().contains("error-on-missing-key-x"), "{e}");
    }

    /// `agent-configmap` mounts the ConfigMap; template files must be in it.
    #[test]
    fn config_map_and_template_files() {
        let i = vault(&[
            ("vault.hashicorp.com/agent-configmap", "app-agent"),
            (
                "vault.hashicorp.com/agent-inject-template-file-db",
                "/vault/configs/db.ctmpl",
            ),
        ])
        .unwrap();
        assert_eq!(i.config_map.as_deref(), Some("app-agent"));
        assert_eq!(
            i.templates[0].text,
            ConsulText::File("/vault/configs/db.ctmpl".into())
        );
        // The inline template wins, as in vault-k8s.
        let i = vault(&[
            ("vault.hashicorp.com/agent-configmap", "app-agent"),
            (
                "vault.hashicorp.com/agent-inject-template-file-db",
                "/vault/configs/db.ctmpl",
            ),
            (
                "vault.hashicorp.com/agent-inject-template-db",
                "{{ with secret \"a/b\" }}{{ end }}",
            ),
        ])
        .unwrap();
        assert!(matches!(i.templates[0].text, ConsulText::Inline(_)));
        // With only a ConfigMap, its config.hcl names the files.
        let a = map(&[
            ("vault.hashicorp.com/agent-inject", "true"),
            ("vault.hashicorp.com/role", "web"),
            ("vault.hashicorp.com/agent-configmap", "app-agent"),
        ]);
        assert!(parse(&a, Family::Vault).unwrap().templates.is_empty());
        for (k, v) in [
            ("vault.hashicorp.com/agent-configmap", "Not_A_Name"),
            (
                "vault.hashicorp.com/agent-inject-template-file-db",
                "/etc/passwd",
            ),
            (
                "vault.hashicorp.com/agent-inject-template-file-db",
                "/vault/configs/../x",
            ),
        ] {
            let e = vault(&[("vault.hashicorp.com/agent-configmap", "cm"), (k, v)]).unwrap_err();
            assert!(e.to_string().contains(k), "{k}: {e}");
        }
    }

    #[test]
    fn which_family_asks() {
        let v = map(&[("vault.hashicorp.com/agent-inject", "true")]);
        assert_eq!(requested(&v).unwrap(), Some(Family::Vault));
        let o = map(&[("openbao.org/agent-inject", "1")]);
        assert_eq!(requested(&o).unwrap(), Some(Family::OpenBao));
        let off = map(&[("openbao.org/agent-inject", "false")]);
        assert_eq!(requested(&off).unwrap(), None);
        let both = map(&[
            ("vault.hashicorp.com/agent-inject", "true"),
            ("openbao.org/agent-inject", "true"),
        ]);
        assert!(requested(&both).is_err());
        assert!(requested(&map(&[("openbao.org/agent-inject", "yes")])).is_err());
    }

    #[test]
    fn openbao_names_and_default_directory() {
        let a = map(&[
            ("openbao.org/agent-inject", "true"),
            ("openbao.org/role", "web"),
            ("openbao.org/agent-inject-secret-DB", "database/creds/web"),
        ]);
        let i = parse(&a, Family::OpenBao).unwrap();
        // Lower-cased like the injectors do, unless preserve-secret-case.
        assert_eq!(i.templates[0].name, "db");
        assert_eq!(i.extra_mounts, ["/openbao/secrets"]);
        let mut mixed = a.clone();
        mixed.insert("vault.hashicorp.com/role".into(), "x".into());
        let e = parse(&mixed, Family::OpenBao).unwrap_err();
        assert!(e.to_string().contains("vault.hashicorp.com/role"), "{e}");
    }

    #[test]
    fn per_secret_annotations() {
        let i = vault(&[
            ("vault.hashicorp.com/agent-inject-file-db", "db.env"),
            ("vault.hashicorp.com/agent-inject-perms-db", "0440"),
            (
                "vault.hashicorp.com/secret-volume-path-db",
                "/etc/app/secrets/",
            ),
            (
                "vault.hashicorp.com/agent-inject-secret-Api",
                "secret/data/web/api",
            ),
            ("vault.hashicorp.com/preserve-secret-case-Api", "true"),
            ("vault.hashicorp.com/agent-inject-default-template", "json"),
        ])
        .unwrap();
        let names: Vec<&str> = i.templates.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["Api", "db.env"]);
        assert_eq!(i.overrides.file_mode, Some(0o440));
        assert_eq!(i.extra_mounts, ["/vault/secrets", "/etc/app/secrets"]);
        assert!(i.templates.iter().all(|t| inline(t).contains("toJSON")));
    }

    /// `agent-inject-command-<name>` follows the file the name writes, and is
    /// denied for a name that writes none.
    #[test]
    fn commands_follow_their_file() {
        let i = vault(&[
            ("vault.hashicorp.com/agent-inject-file-db", "db.env"),
            (
                "vault.hashicorp.com/agent-inject-command-db",
                "kill -HUP $(pidof app)",
            ),
        ])
        .unwrap();
        assert_eq!(
            i.templates[0].command,
            Some(FileCommand {
                annotation: "vault.hashicorp.com/agent-inject-command-db".into(),
                command: "kill -HUP $(pidof app)".into(),
            })
        );
        let e = vault(&[("vault.hashicorp.com/agent-inject-command-other", "true")]).unwrap_err();
        assert!(
            e.to_string()
                .contains("vault.hashicorp.com/agent-inject-command-other"),
            "{e}"
        );
    }

    #[test]
    fn pod_wide_overrides() {
        let i = vault(&[
            ("vault.hashicorp.com/auth-path", "auth/k8s-east"),
            ("vault.hashicorp.com/namespace", "team-a"),
            ("vault.hashicorp.com/service", "https://vault.example:8200"),
            ("vault.hashicorp.com/tls-server-name", "vault.example"),
            ("vault.hashicorp.com/agent-limits-mem", "64Mi"),
            ("vault.hashicorp.com/agent-requests-cpu", "250m"),
            ("vault.hashicorp.com/agent-run-as-user", "1234"),
            ("vault.hashicorp.com/agent-run-as-group", "2345"),
            ("vault.hashicorp.com/agent-revoke-on-shutdown", "false"),
            ("vault.hashicorp.com/agent-inject-containers", "app, worker"),
            ("vault.hashicorp.com/secret-volume-path", "/etc/secrets"),
            ("vault.hashicorp.com/log-level", "debug"),
        ])
        .unwrap();
        let o = &i.overrides;
        assert_eq!(o.auth_mount.as_deref(), Some("k8s-east"));
        assert_eq!(o.vault_namespace.as_deref(), Some("team-a"));
        assert_eq!(
            o.vault_address.as_deref(),
            Some("https://vault.example:8200")
        );
        assert_eq!(o.tls_server_name.as_deref(), Some("vault.example"));
        assert_eq!(o.agent_user, Some(1234));
        assert_eq!(o.agent_group, Some(2345));
        assert_eq!(o.revoke_on_exit, Some(false));
        assert_eq!(o.resources.len(), 2);
        assert_eq!(
            i.containers.as_deref(),
            Some(&["app".to_string(), "worker".to_string()][..])
        );
        assert_eq!(i.extra_mounts, ["/etc/secrets"]);
        assert!(
            i.warnings.iter().any(|w| w.contains("log-level")),
            "{:?}",
            i.warnings
        );
    }

    #[test]
    fn what_cannot_be_honoured_is_denied_by_name() {
        for (k, v) in [
            ("vault.hashicorp.com/agent-inject-token", "true"),
            ("vault.hashicorp.com/tls-skip-verify", "true"),
            (
                "vault.hashicorp.com/agent-inject-template-file-db",
                "/vault/tpl",
            ),
            ("vault.hashicorp.com/agent-share-process-namespace", "true"),
            ("vault.hashicorp.com/agent-json-patch", "[]"),
            ("vault.hashicorp.com/auth-type", "jwt"),
            ("vault.hashicorp.com/agent-inject-secrets-db", "x"),
            ("vault.hashicorp.com/agent-inject-file-db", "sub/dir"),
            ("vault.hashicorp.com/agent-inject-perms-db", "0999"),
            ("vault.hashicorp.com/agent-limits-cpu", "lots"),
            ("vault.hashicorp.com/agent-run-as-user", "0"),
            ("vault.hashicorp.com/secret-volume-path", "/etc"),
            ("vault.hashicorp.com/secret-volume-path", "relative"),
            ("vault.hashicorp.com/agent-inject-file-other", "x"),
        ] {
            let e = vault(&[(k, v)]).unwrap_err();
            assert!(e.to_string().contains(k), "{k}: {e}");
        }
        // Turning off what cannot be honoured is what shroud does anyway.
        for (k, v) in [
            ("vault.hashicorp.com/agent-inject-token", "false"),
            ("vault.hashicorp.com/tls-skip-verify", "false"),
        ] {
            assert!(vault(&[(k, v)]).is_ok(), "{k}");
        }
        let e = vault(&[
            ("vault.hashicorp.com/agent-inject-secret-b", "secret/data/b"),
            ("vault.hashicorp.com/agent-inject-perms-db", "0400"),
            ("vault.hashicorp.com/agent-inject-perms-b", "0440"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("one mode"), "{e}");
    }
}
