//! `params` and `params_file` of a `[[secret]]`: the JSON body that turns its
//! read into a write (`pki/issue/<role>`, `ssh/sign/<role>`, `transit/decrypt/<key>`,
//! …). Converted and checked once at load; file contents are read then too.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Number, Value};

/// A write's parameters. `Debug` shows the names only: a value may be sensitive
/// (a ciphertext, a public key that identifies a user).
#[derive(Clone, PartialEq)]
pub struct Params(Map<String, Value>);

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// What is wrong with one parameter: its name as written (`params.ttl`,
/// `params_file.public_key`) and the problem.
#[derive(Debug)]
pub struct ParamError {
    /// `params.<name>` or `params_file.<name>`.
    pub key: String,
    /// What is wrong (never the value).
    pub problem: String,
}

fn error(key: String, problem: impl Into<String>) -> ParamError {
    ParamError {
        key,
        problem: problem.into(),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// One TOML value as Vault takes it: lists become comma-separated strings (what
/// both Vault's string and comma-list fields accept, e.g. `alt_names`).
fn json_value(key: &str, v: toml::Value) -> Result<Value, ParamError> {
    let scalar = |v: toml::Value| match v {
        toml::Value::String(s) => Some(Value::String(s)),
        toml::Value::Integer(i) => Some(Value::Number(i.into())),
        toml::Value::Float(f) => Number::from_f64(f).map(Value::Number),
        toml::Value::Boolean(b) => Some(Value::Bool(b)),
        _ => None,
    };
    let kind = |v: &toml::Value| v.type_str();
    match v {
        toml::Value::Array(items) => {
            let mut parts = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    toml::Value::String(s) => parts.push(s),
                    toml::Value::Integer(i) => parts.push(i.to_string()),
                    other => {
                        return Err(error(
                            format!("params.{key}"),
                            format!("a list may hold strings and numbers, not {}", kind(&other)),
                        ))
                    }
                }
            }
            Ok(Value::String(parts.join(",")))
        }
        other => {
            let what = kind(&other);
            scalar(other).ok_or_else(|| {
                error(
                    format!("params.{key}"),
                    format!("must be a string, number, boolean or list, not {what}"),
                )
            })
        }
    }
}

impl Params {
    /// Checks `params` and reads `params_file` (parameter name → file whose
    /// content, without trailing whitespace, is the value).
    pub fn load(
        params: Option<toml::Table>,
        files: Option<BTreeMap<String, String>>,
    ) -> Result<Option<Params>, ParamError> {
        if params.is_none() && files.is_none() {
            return Ok(None);
        }
        let mut map = Map::new();
        for (key, value) in params.unwrap_or_default() {
            if !valid_name(&key) {
                return Err(error(
                    format!("params.{key}"),
                    "a parameter name is letters, digits, `_` and `-`",
                ));
            }
            let v = json_value(&key, value)?;
            map.insert(key, v);
        }
        for (key, file) in files.unwrap_or_default() {
            let name = format!("params_file.{key}");
            if !valid_name(&key) {
                return Err(error(
                    name,
                    "a parameter name is letters, digits, `_` and `-`",
                ));
            }
            if map.contains_key(&key) {
                return Err(error(name, format!("`{key}` is also set in params")));
            }
            let text = std::fs::read_to_string(&file)
                .map_err(|e| error(name.clone(), format!("cannot read {file}: {e}")))?;
            let text = text.trim_end();
            if text.is_empty() {
                return Err(error(name, format!("{file} is empty")));
            }
            map.insert(key, Value::String(text.to_string()));
        }
        if let Some(ttl) = map.get("ttl") {
            check_ttl(ttl)?;
        }
        Ok(Some(Params(map)))
    }

    /// The request body.
    pub fn body(&self) -> Value {
        Value::Object(self.0.clone())
    }

    /// A string parameter.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    /// True when the parameter is set.
    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// The parameter names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

/// Vault's `ttl` parameters take whole seconds or a duration string (`90s`, `1h`).
fn check_ttl(v: &Value) -> Result<(), ParamError> {
    let ok = match v {
        Value::Number(n) => n.as_u64().is_some(),
        Value::String(s) => s.parse::<u64>().is_ok() || humantime::parse_duration(s).is_ok(),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(error(
            "params.ttl".to_string(),
            "must be whole seconds or a duration such as \"90s\" or \"1h\"",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    #[test]
    fn converts_values_and_joins_lists() {
        let p = Params::load(
            Some(table(
                "common_name = \"a.example\"\nalt_names = [\"b.example\", \"c.example\"]\nttl = 30\nexclude_cn_from_sans = true",
            )),
            None,
        )
        .unwrap()
        .unwrap();
        let body = p.body();
        assert_eq!(body["alt_names"], "b.example,c.example");
        assert_eq!(body["ttl"], 30);
        assert_eq!(body["exclude_cn_from_sans"], true);
        assert!(!format!("{p:?}").contains("a.example"));
    }

    #[test]
    fn errors_name_the_parameter() {
        let e = Params::load(Some(table("ttl = \"soon\"")), None).unwrap_err();
        assert_eq!(e.key, "params.ttl");
        let e = Params::load(Some(table("x = { y = 1 }")), None).unwrap_err();
        assert_eq!(e.key, "params.x");
        assert!(e.problem.contains("table"), "{}", e.problem);
        let e = Params::load(Some(table("\"a b\" = 1")), None).unwrap_err();
        assert_eq!(e.key, "params.a b");
    }

    #[test]
    fn files_are_read_and_checked() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("key.pub");
        std::fs::write(&f, "ssh-ed25519 AAAA user\n").unwrap();
        let files = |k: &str, p: &std::path::Path| {
            Some(BTreeMap::from([(k.to_string(), p.display().to_string())]))
        };
        let p = Params::load(None, files("public_key", &f))
            .unwrap()
            .unwrap();
        assert_eq!(p.str("public_key"), Some("ssh-ed25519 AAAA user"));
        let e = Params::load(None, files("public_key", &d.path().join("nope"))).unwrap_err();
        assert_eq!(e.key, "params_file.public_key");
        assert!(e.problem.contains("cannot read"), "{}", e.problem);
        let e =
            Params::load(Some(table("public_key = \"x\"")), files("public_key", &f)).unwrap_err();
        assert!(e.problem.contains("also set"), "{}", e.problem);
    }
}
