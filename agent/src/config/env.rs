//! The environment's part of the configuration, applied to the parsed TOML table
//! before it is checked (so a bad value from the environment is reported the same
//! way as one from the file): the `VAULT_*` / `BAO_*` conventions of the Vault
//! and OpenBao tools as defaults beneath the file, and `SHROUD_<SECTION>_<KEY>`
//! overrides above it.

use toml::{Table, Value};

/// Sections that environment variables (and `--set`) may set (`[[secret]]` is a list and is
/// only set through the file or `SHROUD_CONFIG_TOML`).
const SECTIONS: &[&str] = &[
    "vault",
    "auth",
    "output",
    "state",
    "redact",
    "lifecycle",
    "metrics",
    "audit",
];

const INTEGER_KEYS: &[&str] = &["uid", "gid", "min_length", "piece_length", "sign_every"];
const BOOL_KEYS: &[&str] = &[
    "require_tmpfs",
    "revoke_on_exit",
    "revoke_certificates",
    "strict",
];
const FLOAT_KEYS: &[&str] = &["renew_threshold"];
/// Keys whose value is a list: a comma list in a variable (`''` is the empty
/// list), as `--mask-env` takes it.
const LIST_KEYS: &[&str] = &["env"];

/// The Vault/OpenBao tool variables shroud honours: (variable suffix, section,
/// key). `BAO_<suffix>` wins over `VAULT_<suffix>`, as in OpenBao's own tools.
const CONVENTIONS: &[(&str, &str, &str)] = &[
    ("ADDR", "vault", "address"),
    ("CACERT", "vault", "ca_cert"),
    ("NAMESPACE", "vault", "namespace"),
    ("TLS_SERVER_NAME", "vault", "tls_server_name"),
    ("CLIENT_CERT", "auth", "client_cert"),
    ("CLIENT_KEY", "auth", "client_key"),
];

/// Sets each key of [`CONVENTIONS`] that `table` lacks from `BAO_*`, else
/// `VAULT_*`. Returns the names of the variables used.
pub fn apply_conventions(table: &mut Table, vars: &[(String, String)]) -> Vec<String> {
    let lookup = |name: String| {
        vars.iter()
            .find(|(k, v)| *k == name && !v.is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
    };
    let mut used = Vec::new();
    for (suffix, section, key) in CONVENTIONS {
        let Some((var, value)) =
            lookup(format!("BAO_{suffix}")).or_else(|| lookup(format!("VAULT_{suffix}")))
        else {
            continue;
        };
        let entry = table
            .entry(section.to_string())
            .or_insert_with(|| Value::Table(Table::new()));
        // A non-table section is left for the type check to report.
        if let Value::Table(t) = entry {
            if !t.contains_key(*key) {
                t.insert(key.to_string(), Value::String(value));
                used.push(var);
            }
        }
    }
    used
}

/// Why an environment override could not be applied.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {var}: {problem}")]
pub struct EnvError {
    /// The variable.
    pub var: String,
    /// What is wrong with its value (never the value itself).
    pub problem: String,
}

/// Applies every `SHROUD_<SECTION>_<KEY>` in `vars` to `table`. Returns the names
/// of the variables used.
pub fn apply(
    table: &mut Table,
    vars: impl Iterator<Item = (String, String)>,
) -> Result<Vec<String>, EnvError> {
    let mut used = Vec::new();
    for (var, value) in vars {
        let Some(rest) = var.strip_prefix("SHROUD_") else {
            continue;
        };
        let lower = rest.to_ascii_lowercase();
        let Some((section, key)) = SECTIONS.iter().find_map(|s| {
            lower
                .strip_prefix(s)
                .and_then(|k| k.strip_prefix('_'))
                .map(|k| (*s, k.to_string()))
        }) else {
            continue;
        };
        if key.is_empty() {
            continue;
        }
        let parsed = typed(&key, &value).map_err(|problem| EnvError {
            var: var.clone(),
            problem,
        })?;
        let entry = table
            .entry(section.to_string())
            .or_insert_with(|| Value::Table(Table::new()));
        let Value::Table(section_table) = entry else {
            return Err(EnvError {
                var,
                problem: format!("[{section}] in the file is not a table"),
            });
        };
        section_table.insert(key, parsed);
        used.push(var);
    }
    Ok(used)
}

fn typed(key: &str, value: &str) -> Result<Value, String> {
    if INTEGER_KEYS.contains(&key) {
        return value
            .parse::<i64>()
            .map(Value::Integer)
            .map_err(|_| format!("`{key}` must be a whole number"));
    }
    if BOOL_KEYS.contains(&key) {
        return match value {
            "true" | "1" | "yes" => Ok(Value::Boolean(true)),
            "false" | "0" | "no" => Ok(Value::Boolean(false)),
            _ => Err(format!("`{key}` must be true or false")),
        };
    }
    if LIST_KEYS.contains(&key) {
        return Ok(Value::Array(
            value
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| Value::String(item.to_string()))
                .collect(),
        ));
    }
    if FLOAT_KEYS.contains(&key) {
        return value
            .parse::<f64>()
            .map(Value::Float)
            .map_err(|_| format!("`{key}` must be a number"));
    }
    Ok(Value::String(value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(v: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn sets_typed_keys_and_ignores_other_shroud_vars() {
        let mut t = Table::new();
        let used = apply(
            &mut t,
            vars(&[
                ("SHROUD_VAULT_ADDRESS", "http://127.0.0.1:8200"),
                ("SHROUD_OUTPUT_UID", "1000"),
                ("SHROUD_OUTPUT_REQUIRE_TMPFS", "false"),
                ("SHROUD_LOG", "debug"),
                ("SHROUD_CONFIG_TOML", "x"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(used.len(), 3);
        assert_eq!(
            t["vault"]["address"].as_str(),
            Some("http://127.0.0.1:8200")
        );
        assert_eq!(t["output"]["uid"].as_integer(), Some(1000));
        assert_eq!(t["output"]["require_tmpfs"].as_bool(), Some(false));
    }

    #[test]
    fn a_list_key_takes_a_comma_list() {
        let mut t = Table::new();
        apply(
            &mut t,
            vars(&[("SHROUD_REDACT_ENV", "*_TOKEN, DEPLOY_*,,")]),
        )
        .unwrap();
        let list: Vec<_> = t["redact"]["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(list, ["*_TOKEN", "DEPLOY_*"]);
        apply(&mut t, vars(&[("SHROUD_REDACT_ENV", "")])).unwrap();
        assert!(t["redact"]["env"].as_array().unwrap().is_empty());
    }

    #[test]
    fn conventions_fill_only_what_the_file_leaves_out() {
        let mut t: Table = "[vault]\naddress = \"https://file:8200\"".parse().unwrap();
        let env: Vec<(String, String)> = vars(&[
            ("VAULT_ADDR", "https://env:8200"),
            ("VAULT_NAMESPACE", "vault-ns"),
            ("BAO_NAMESPACE", "bao-ns"),
            ("VAULT_CLIENT_CERT", "/c.pem"),
            ("VAULT_CACERT", ""),
        ])
        .collect();
        let used = apply_conventions(&mut t, &env);
        assert_eq!(t["vault"]["address"].as_str(), Some("https://file:8200"));
        assert_eq!(t["vault"]["namespace"].as_str(), Some("bao-ns"));
        assert_eq!(t["auth"]["client_cert"].as_str(), Some("/c.pem"));
        assert!(t["vault"].get("ca_cert").is_none());
        assert_eq!(used, ["BAO_NAMESPACE", "VAULT_CLIENT_CERT"]);
    }

    #[test]
    fn bad_typed_value_names_the_variable() {
        let mut t = Table::new();
        let e = apply(&mut t, vars(&[("SHROUD_OUTPUT_GID", "wheel")])).unwrap_err();
        assert!(e.to_string().contains("SHROUD_OUTPUT_GID"));
    }
}
