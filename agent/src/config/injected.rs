//! What the webhook hands an injected agent besides its own tables, for Vault
//! Agent compatibility pods: `[vault_agent] config`, the `config.hcl` of the
//! pod's `agent-configmap` (mounted where vault-k8s mounts it), whose
//! `template` stanzas are added through the import code; and `[policy]
//! allowed_prefixes`, the webhook's secret-path policy for the pod's namespace,
//! enforced here on every read because the webhook cannot read a ConfigMap (or
//! a template file in it) at admission. Either failing fails the agent's start
//! with the file, line and reason.

use super::raw::{RawConfig, RawPolicy};
use super::{vault_agent, ConfigError, Format, SecretSpec};

const CONFIG_KEY: &str = "[vault_agent] config";
const PREFIXES_KEY: &str = "[policy] allowed_prefixes";

/// Adds the templates of the Vault Agent configuration `[vault_agent] config`
/// names. Its `vault`, `auto_auth` and output directory are not used: the
/// webhook's `[vault]`, `[auth]` and `[output]` in this configuration win, so a
/// ConfigMap cannot point the agent at another Vault, role or directory.
pub(super) fn add_vault_agent_templates(
    origin: &str,
    raw: &mut RawConfig,
) -> Result<(), ConfigError> {
    let Some(file) = raw.vault_agent.as_ref().and_then(|v| v.config.clone()) else {
        return Ok(());
    };
    let text = std::fs::read_to_string(&file).map_err(|e| ConfigError::Invalid {
        origin: origin.to_string(),
        key: CONFIG_KEY.into(),
        problem: format!("cannot read {file}: {e}"),
    })?;
    let imported = vault_agent::import(&file, &text)?;
    raw.template.extend(imported.config.template);
    raw.secret.extend(imported.config.secret);
    Ok(())
}

/// Checks every Vault path the secrets read (each call of a Consul template)
/// against `[policy] allowed_prefixes`, when set.
pub(super) fn check_prefixes(
    origin: &str,
    policy: Option<&RawPolicy>,
    secrets: &[SecretSpec],
) -> Result<(), ConfigError> {
    let Some(prefixes) = policy.and_then(|p| p.allowed_prefixes.as_ref()) else {
        return Ok(());
    };
    for s in secrets {
        let paths: Vec<String> = match &s.format {
            Format::Consul(t) => t
                .calls
                .iter()
                .map(|c| c.path.trim_matches('/').to_string())
                .collect(),
            _ => vec![s.read_path()],
        };
        for path in paths {
            if !prefixes.iter().any(|p| path.starts_with(p.as_str())) {
                let what = match &s.format {
                    Format::Consul(t) => format!("template {} ({})", s.name, t.source.origin),
                    _ => format!("secret {}", s.name),
                };
                return Err(ConfigError::Invalid {
                    origin: origin.to_string(),
                    key: PREFIXES_KEY.into(),
                    problem: format!(
                        "{what} reads `{path}`, outside the allowed prefixes ({})",
                        prefixes
                            .iter()
                            .map(|p| format!("`{p}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    const HEAD: &str = "[vault]\naddress = \"http://127.0.0.1:8200\"\n[auth]\nmethod = \"kubernetes\"\nrole = \"web\"\n[output]\ndir = \"/run/s\"\n";

    fn hcl(dir: &std::path::Path, text: &str) -> String {
        let p = dir.join("config.hcl");
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    const AGENT: &str = "auto_auth {\n  method \"kubernetes\" {\n    mount_path = \"auth/kubernetes\"\n    config = { role = \"other\" }\n  }\n}\ntemplate {\n  destination = \"/vault/secrets/db\"\n  contents = \"{{ with secret \\\"secret/data/web/db\\\" }}{{ .Data.data.pw }}{{ end }}\"\n}\n";

    #[test]
    fn the_config_maps_templates_are_added_and_the_webhooks_tables_win() {
        let d = tempfile::tempdir().unwrap();
        let f = hcl(d.path(), AGENT);
        let c = parse(
            "t.toml",
            &format!("{HEAD}[vault_agent]\nconfig = \"{f}\"\n[policy]\nallowed_prefixes = [\"secret/data/web/\"]\n"),
            std::iter::empty(),
        )
        .unwrap();
        assert_eq!(c.secrets.len(), 1);
        assert_eq!(c.secrets[0].name, "db");
        assert_eq!(c.auth.role.as_deref(), Some("web"));
        assert_eq!(c.output.dir, std::path::PathBuf::from("/run/s"));
    }

    #[test]
    fn a_path_outside_the_prefixes_or_an_unsupported_stanza_fails_the_start() {
        let d = tempfile::tempdir().unwrap();
        let f = hcl(d.path(), AGENT);
        let e = parse(
            "t.toml",
            &format!("{HEAD}[vault_agent]\nconfig = \"{f}\"\n[policy]\nallowed_prefixes = [\"secret/data/shop/\"]\n"),
            std::iter::empty(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("[policy] allowed_prefixes") && e.contains("secret/data/web/db"),
            "{e}"
        );
        let f = hcl(d.path(), &format!("{AGENT}cache {{}}\n"));
        let e = parse(
            "t.toml",
            &format!("{HEAD}[vault_agent]\nconfig = \"{f}\"\n"),
            std::iter::empty(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(&f) && e.contains("line 11") && e.contains("cache"),
            "{e}"
        );
        let e = parse(
            "t.toml",
            &format!("{HEAD}[vault_agent]\nconfig = \"/nonexistent/c.hcl\"\n"),
            std::iter::empty(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("[vault_agent] config") && e.contains("/nonexistent/c.hcl"),
            "{e}"
        );
    }

    #[test]
    fn prefixes_apply_to_plain_secrets_too() {
        let e = parse(
            "t.toml",
            &format!("{HEAD}[policy]\nallowed_prefixes = [\"secret/data/web/\"]\n[[secret]]\nname = \"x\"\npath = \"secret/data/other/x\"\nkind = \"kv2\"\n"),
            std::iter::empty(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("secret x reads `secret/data/other/x`"), "{e}");
    }
}
