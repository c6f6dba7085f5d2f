//! `SHROUD_<SECTION>_<KEY>` environment overrides, applied to the parsed TOML
//! table before it is checked, so that a bad value or unknown key from the
//! environment is reported the same way as one from the file.

use toml::{Table, Value};

/// Sections that environment variables (and `--set`) may set (`[[secret]]` is a list and is
/// only set through the file or `SHROUD_CONFIG_TOML`).
const SECTIONS: &[&str] = &[
    "vault",
    "auth",
    "output",
    "redact",
    "lifecycle",
    "metrics",
    "audit",
];

const INTEGER_KEYS: &[&str] = &["uid", "gid", "min_length", "sign_every"];
const BOOL_KEYS: &[&str] = &["require_tmpfs", "revoke_on_exit"];
const FLOAT_KEYS: &[&str] = &["renew_threshold"];

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
    fn bad_typed_value_names_the_variable() {
        let mut t = Table::new();
        let e = apply(&mut t, vars(&[("SHROUD_OUTPUT_GID", "wheel")])).unwrap_err();
        assert!(e.to_string().contains("SHROUD_OUTPUT_GID"));
    }
}
