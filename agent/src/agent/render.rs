//! Turning a secret's data into its file's bytes: one field raw, JSON, env lines,
//! or a minijinja template. Errors name the secret and, for templates, the line.

use serde_json::Value;
use zeroize::Zeroizing;

use crate::config::{Format, SecretKind, SecretSpec};
use crate::template::TemplateError;
use crate::vault::api::SecretData;

/// Why a secret could not be rendered. Never holds a value.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// `field` names a field the secret does not have.
    #[error("secret `{secret}`: field `{field}` not found (fields: {available})")]
    NoField {
        /// Secret name.
        secret: String,
        /// The field asked for.
        field: String,
        /// Field names present.
        available: String,
    },
    /// `raw` without `field` needs exactly one field.
    #[error("secret `{secret}`: format raw needs `field` when the secret has {count} fields ({available})")]
    Ambiguous {
        /// Secret name.
        secret: String,
        /// Number of fields.
        count: usize,
        /// Field names present.
        available: String,
    },
    /// A certificate answer lacks a PEM field.
    #[error("secret `{secret}`: {problem}")]
    Pki {
        /// Secret name.
        secret: String,
        /// What is missing.
        problem: String,
    },
    /// The template did not compile or render.
    #[error(transparent)]
    Template(#[from] TemplateError),
}

fn names(data: &SecretData) -> String {
    data.0.keys().cloned().collect::<Vec<_>>().join(", ")
}

fn scalar(v: &Value) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(match v {
        Value::String(s) => s.as_bytes().to_vec(),
        other => other.to_string().into_bytes(),
    })
}

/// What a secret becomes in the output directory.
#[derive(Clone, PartialEq, Eq)]
pub enum Rendered {
    /// One file, `<dir>/<name>`.
    File(Zeroizing<Vec<u8>>),
    /// A directory of files, `<dir>/<name>/<file>`, replaced as one unit.
    Dir(super::certs::DirFiles),
}

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rendered::File(b) => write!(f, "File({} bytes)", b.len()),
            Rendered::Dir(files) => f
                .debug_list()
                .entries(files.iter().map(|(n, _)| n))
                .finish(),
        }
    }
}

/// What `spec` renders to from `data`: a directory for pki, else one file.
pub fn render(spec: &SecretSpec, data: &SecretData) -> Result<Rendered, RenderError> {
    if spec.kind == SecretKind::Pki {
        return super::certs::files(&spec.name, data).map(Rendered::Dir);
    }
    render_file(spec, data).map(Rendered::File)
}

/// The values of `data` to mask, by field name: every leaf, or for a
/// certificate its key and PEM blocks.
pub fn masked_values(spec: &SecretSpec, data: &SecretData) -> Vec<(String, Zeroizing<Vec<u8>>)> {
    if spec.kind == SecretKind::Pki {
        return super::certs::masked(data);
    }
    if let Format::Consul(_) = spec.format {
        return super::consul::masked(data);
    }
    data.leaves()
}

/// The file content for `spec` from `data`.
fn render_file(spec: &SecretSpec, data: &SecretData) -> Result<Zeroizing<Vec<u8>>, RenderError> {
    if let Some(field) = &spec.field {
        return data
            .0
            .get(field)
            .map(scalar)
            .ok_or_else(|| RenderError::NoField {
                secret: spec.name.clone(),
                field: field.clone(),
                available: names(data),
            });
    }
    match &spec.format {
        Format::Raw => {
            if data.0.len() == 1 {
                Ok(scalar(data.0.values().next().unwrap_or(&Value::Null)))
            } else {
                Err(RenderError::Ambiguous {
                    secret: spec.name.clone(),
                    count: data.0.len(),
                    available: names(data),
                })
            }
        }
        Format::Json => {
            let mut out = Zeroizing::new(serde_json::to_vec_pretty(&data.0).unwrap_or_default());
            out.push(b'\n');
            Ok(out)
        }
        Format::Env => {
            let mut out = Zeroizing::new(Vec::new());
            for (k, v) in &data.0 {
                out.extend(env_key(k).bytes());
                out.extend_from_slice(b"='");
                for &b in scalar(v).iter() {
                    if b == b'\'' {
                        out.extend_from_slice(b"'\\''");
                    } else {
                        out.push(b);
                    }
                }
                out.extend_from_slice(b"'\n");
            }
            Ok(out)
        }
        Format::Template(t) => {
            let mut ctx = data.0.clone();
            ctx.insert("data".to_string(), Value::Object(data.0.clone()));
            let text = t.render(&spec.name, &ctx)?;
            Ok(Zeroizing::new(text.into_bytes()))
        }
        Format::Consul(t) => Ok(super::consul::render(&spec.name, t, data)?),
    }
}

/// `db-password` → `DB_PASSWORD`.
fn env_key(k: &str) -> String {
    k.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TemplateSource;
    use std::time::Duration;

    fn spec(format: Format, field: Option<&str>) -> SecretSpec {
        SecretSpec {
            name: "db".into(),
            path: "database/creds/app".into(),
            kind: SecretKind::Dynamic,
            field: field.map(str::to_string),
            format,
            refresh: Duration::from_secs(300),
            params: None,
            reissue_at: 2.0 / 3.0,
            gateway_only: false,
        }
    }

    fn data() -> SecretData {
        let v: Value = serde_json::json!({"username": "u1", "password": "p'w"});
        SecretData(v.as_object().unwrap().clone())
    }

    #[test]
    fn formats() {
        let d = data();
        assert_eq!(
            &render_file(&spec(Format::Raw, Some("password")), &d).unwrap()[..],
            b"p'w"
        );
        assert!(render_file(&spec(Format::Raw, None), &d).is_err());
        assert_eq!(
            &render_file(&spec(Format::Env, None), &d).unwrap()[..],
            b"PASSWORD='p'\\''w'\nUSERNAME='u1'\n"
        );
        let j: Value =
            serde_json::from_slice(&render_file(&spec(Format::Json, None), &d).unwrap()).unwrap();
        assert_eq!(j["username"], "u1");
        let t = TemplateSource {
            origin: "inline".into(),
            text: "postgres://{{ username }}:{{ data.password }}@db\n".into(),
        };
        assert_eq!(
            &render_file(&spec(Format::Template(t), None), &d).unwrap()[..],
            b"postgres://u1:p'w@db\n"
        );
    }

    #[test]
    fn template_errors_name_secret_and_line() {
        let t = TemplateSource {
            origin: "inline".into(),
            text: "ok\n{{ nope }}\n".into(),
        };
        let e = render_file(&spec(Format::Template(t), None), &data())
            .unwrap_err()
            .to_string();
        assert!(e.contains("secret `db`") && e.contains("line 2"), "{e}");
    }
}
