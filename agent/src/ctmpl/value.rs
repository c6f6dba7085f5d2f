//! The values a Consul Template template works with, shaped like the Go values
//! consul-template hands to `text/template`: JSON from Vault decoded with
//! `UseNumber` (numbers keep their literal text), maps, slices, and the two
//! structs templates read fields of (`*dependency.Secret`, `PemEncoded`).

use std::collections::BTreeMap;
use std::rc::Rc;

/// A Go value as `text/template` sees it.
#[derive(Clone, PartialEq)]
pub enum Value {
    /// The nil interface / invalid value (`<no value>` when printed).
    Nil,
    /// `bool`.
    Bool(bool),
    /// `int`.
    Int(i64),
    /// `float64`.
    Float(f64),
    /// `json.Number`: a string type holding a JSON number's text.
    Number(String),
    /// `string`.
    Str(String),
    /// `[]interface{}` (or `[]string`).
    List(Vec<Value>),
    /// `map[string]interface{}` (Go ranges and prints it in key order).
    Map(BTreeMap<String, Value>),
    /// A struct with exported fields in declaration order.
    Struct(Rc<Struct>),
}

/// A Go struct value: its type name (for messages and `%v`) and fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Struct {
    /// e.g. `dependency.Secret`.
    pub type_name: &'static str,
    /// Exported fields in declaration order.
    pub fields: Vec<(&'static str, Value)>,
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the content: values come from secrets.
        write!(f, "Value({})", self.type_name())
    }
}

impl Struct {
    /// The field `name`, if the struct has it.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

impl Value {
    /// The Go type name used in `%!verb(type=value)` and error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Number(_) => "json.Number",
            Value::Str(_) => "string",
            Value::List(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
            Value::Struct(s) => s.type_name,
        }
    }

    /// Go's `truth`: false for nil, false, 0, "" and empty maps and slices.
    pub fn truth(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Number(s) | Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Struct(_) => true,
        }
    }

    /// The text of a string-kinded value (`string`, `json.Number`).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Number(s) => Some(s),
            _ => None,
        }
    }

    /// A JSON value as consul-template decodes Vault's answers.
    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.to_string()),
            serde_json::Value::String(s) => Value::Str(s.clone()),
            serde_json::Value::Array(a) => Value::List(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(m) => Value::Map(
                m.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// A `*dependency.Secret` as `secret` returns it.
    pub fn secret(
        request_id: &str,
        lease_id: &str,
        lease_duration: i64,
        renewable: bool,
        data: &serde_json::Map<String, serde_json::Value>,
        warnings: &[String],
    ) -> Value {
        let warnings = if warnings.is_empty() {
            Value::Nil
        } else {
            Value::List(warnings.iter().map(|w| Value::Str(w.clone())).collect())
        };
        Value::Struct(Rc::new(Struct {
            type_name: "*dependency.Secret",
            fields: vec![
                ("RequestID", Value::Str(request_id.to_string())),
                ("LeaseID", Value::Str(lease_id.to_string())),
                ("LeaseDuration", Value::Int(lease_duration)),
                ("Renewable", Value::Bool(renewable)),
                (
                    "Data",
                    Value::Map(
                        data.iter()
                            .map(|(k, v)| (k.clone(), Value::from_json(v)))
                            .collect(),
                    ),
                ),
                ("Warnings", warnings),
                ("Auth", Value::Nil),
                ("WrapInfo", Value::Nil),
            ],
        }))
    }
}
