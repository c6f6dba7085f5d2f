//! The core Vault Agent Injector annotations, for pods migrating to shroud:
//! `vault.hashicorp.com/agent-inject`, `role`, `agent-inject-secret-<name>` and
//! `agent-inject-template-<name>`. Templates are Consul Template; the common form
//! (`{{ with secret "P" }}…{{ .Data.data.field }}…{{ end }}`) is translated to
//! shroud's minijinja templates and anything else is denied with the annotation's
//! name, so a migration never renders a file differently without saying so.

use std::collections::BTreeMap;

use super::annotations::{
    default_kind, finish_format, validate_path, validate_secret_name, AnnotationError, Injection,
    Origin, SecretFormat, SecretSpec,
};

/// The Vault Agent Injector's annotation prefix.
pub const PREFIX: &str = "vault.hashicorp.com/";
const INJECT: &str = "vault.hashicorp.com/agent-inject";
/// Set by the Vault Agent Injector on pods it injected.
pub const STATUS: &str = "vault.hashicorp.com/agent-inject-status";
const ROLE: &str = "vault.hashicorp.com/role";
const SECRET: &str = "vault.hashicorp.com/agent-inject-secret-";
const TEMPLATE: &str = "vault.hashicorp.com/agent-inject-template-";

/// Where the Vault Agent Injector puts rendered files; also mounted there.
pub const SECRETS_DIR: &str = "/vault/secrets";

/// Whether `agent-inject` asks for injection.
pub fn requested(annotations: &BTreeMap<String, String>) -> Result<bool, AnnotationError> {
    match annotations.get(INJECT).map(String::as_str) {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => Ok(false),
        Some(_) => Err(AnnotationError::invalid(
            INJECT,
            "must be \"true\" or \"false\"",
        )),
    }
}

/// Whether the Vault injector's own status says the pod is done.
pub fn already_injected(annotations: &BTreeMap<String, String>) -> bool {
    annotations.get(STATUS).map(String::as_str) == Some("injected")
}

/// Reads the compatibility annotations into an injection request.
pub fn parse(annotations: &BTreeMap<String, String>) -> Result<Injection, AnnotationError> {
    let role = annotations.get(ROLE).map(|r| r.trim()).unwrap_or_default();
    if role.is_empty() {
        return Err(AnnotationError::Missing {
            key: ROLE.into(),
            reason: "the Vault role the pod's service account logs in as".into(),
        });
    }
    let mut secrets = BTreeMap::new();
    let mut warnings = Vec::new();
    for (k, v) in annotations {
        if let Some(name) = k.strip_prefix(SECRET) {
            validate_secret_name(name, k)?;
            let path = validate_path(v, k)?;
            secrets.insert(
                name.to_string(),
                SecretSpec {
                    name: name.to_string(),
                    kind: default_kind(&path),
                    path,
                    path_annotation: k.clone(),
                    field: None,
                    format: SecretFormat::Json,
                    template: None,
                    params: BTreeMap::new(),
                },
            );
        } else if k.starts_with(PREFIX)
            && !k.starts_with(TEMPLATE)
            && ![INJECT, ROLE, STATUS].contains(&k.as_str())
        {
            warnings.push(format!(
                "annotation `{k}` is not supported by shroud's Vault Agent compatibility and was ignored"
            ));
        }
    }
    for (k, v) in annotations {
        let Some(name) = k.strip_prefix(TEMPLATE) else {
            continue;
        };
        let Some(spec) = secrets.get_mut(name) else {
            return Err(AnnotationError::invalid(
                k.clone(),
                format!("there is no `{SECRET}{name}` annotation for this template"),
            ));
        };
        spec.template = Some(
            translate_template(v, &spec.path)
                .map_err(|r| AnnotationError::invalid(k.clone(), r))?,
        );
    }
    for spec in secrets.values_mut() {
        finish_format(spec, false).map_err(|e| match e {
            AnnotationError::Invalid { reason, .. } | AnnotationError::Missing { reason, .. } => {
                AnnotationError::invalid(spec.path_annotation.clone(), reason)
            }
            other => other,
        })?;
    }
    if secrets.is_empty() {
        return Err(AnnotationError::Missing {
            key: format!("{SECRET}<name>"),
            reason: "at least one secret".into(),
        });
    }
    Ok(Injection {
        origin: Origin::VaultAgent,
        role: role.to_string(),
        secrets: secrets.into_values().collect(),
        containers: None,
        commands: BTreeMap::new(),
        on_rotate: None,
        native_sidecar: None,
        warnings,
    })
}

/// Translates the common Consul Template form into minijinja over the secret's
/// data: `with secret "<path>"` / `end` blocks vanish, `.Data.data.X` and `.Data.X`
/// become `X`, trim markers (`{{-`, `-}}`) keep their meaning.
pub fn translate_template(src: &str, path: &str) -> Result<String, String> {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    let mut trim_next = false;
    while let Some(open) = rest.find("{{") {
        push_literal(&mut out, &rest[..open], trim_next);
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| "unclosed `{{` in template".to_string())?;
        let mut action = &after[..close];
        rest = &after[close + 2..];
        let trim_left = action.starts_with('-');
        if trim_left {
            action = &action[1..];
            let kept = out.trim_end().len();
            out.truncate(kept);
        }
        trim_next = action.ends_with('-');
        if trim_next {
            action = &action[..action.len() - 1];
        }
        let action = action.trim();
        if let Some(arg) = action.strip_prefix("with secret ") {
            let quoted = arg.trim();
            let inner = quoted
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .ok_or_else(|| {
                    format!(
                        "cannot translate `{{{{ {action} }}}}`: expected with secret \"<path>\""
                    )
                })?;
            if inner != path {
                return Err(format!(
                    "template reads `{inner}` but the secret annotation's path is `{path}`; shroud renders one secret per file"
                ));
            }
        } else if action == "end" {
        } else if let Some(field) = action
            .strip_prefix(".Data.data.")
            .or_else(|| action.strip_prefix(".Data."))
        {
            if field.is_empty()
                || !field
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                || field.as_bytes()[0].is_ascii_digit()
            {
                return Err(format!(
                    "cannot translate `{{{{ {action} }}}}`: field names must be identifiers"
                ));
            }
            out.push_str("{{ ");
            out.push_str(field);
            out.push_str(" }}");
        } else {
            return Err(format!(
                "cannot translate `{{{{ {action} }}}}`: only `with secret`, `end` and `.Data.data.<field>` / `.Data.<field>` are supported; use shroud.dev/ annotations with a minijinja template instead"
            ));
        }
    }
    push_literal(&mut out, rest, trim_next);
    Ok(out)
}

fn push_literal(out: &mut String, text: &str, trim_start: bool) {
    out.push_str(if trim_start { text.trim_start() } else { text });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_the_common_form() {
        let t = "{{- with secret \"database/creds/app\" -}}\npostgres://{{ .Data.username }}:{{ .Data.password }}@db/app\n{{- end }}\n";
        assert_eq!(
            translate_template(t, "database/creds/app").unwrap(),
            "postgres://{{ username }}:{{ password }}@db/app\n"
        );
        let t = "{{ with secret \"secret/data/a\" }}key={{ .Data.data.key }}{{ end }}";
        assert_eq!(
            translate_template(t, "secret/data/a").unwrap(),
            "key={{ key }}"
        );
    }

    #[test]
    fn refuses_what_it_cannot_translate() {
        for t in [
            "{{ with secret \"other\" }}{{ end }}",
            "{{ range $k, $v := .Data }}{{ end }}",
            "{{ .Data.data.a-b }}",
            "{{ .Data",
        ] {
            assert!(translate_template(t, "secret/data/a").is_err(), "{t}");
        }
    }

    #[test]
    fn parses_compat_annotations() {
        let a: BTreeMap<String, String> = [
            ("vault.hashicorp.com/agent-inject", "true"),
            ("vault.hashicorp.com/role", "web"),
            (
                "vault.hashicorp.com/agent-inject-secret-db",
                "database/creds/web",
            ),
            (
                "vault.hashicorp.com/agent-inject-template-db",
                "{{ with secret \"database/creds/web\" }}{{ .Data.password }}{{ end }}",
            ),
            ("vault.hashicorp.com/agent-pre-populate-only", "true"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert!(requested(&a).unwrap());
        let i = parse(&a).unwrap();
        assert_eq!(i.role, "web");
        assert_eq!(i.secrets[0].format, SecretFormat::Template);
        assert_eq!(i.secrets[0].template.as_deref(), Some("{{ password }}"));
        assert_eq!(i.warnings.len(), 1);
        assert!(i.warnings[0].contains("agent-pre-populate-only"));
    }
}
