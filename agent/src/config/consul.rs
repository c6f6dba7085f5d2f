//! `[[template]]`: a Consul Template template, as Vault Agent's `template`
//! stanza holds it. Validation parses it (Go syntax, known functions), finds
//! its `secret`/`pkiCert` calls (string literals only) and turns it into one
//! secret whose reads are those calls and whose file is the rendered text.

use std::sync::Arc;

use super::raw::RawTemplate;
use super::{ConfigError, Format, SecretKind, SecretSpec, TemplateSource};
use crate::ctmpl::{Options, SecretCall, Template};

/// A parsed `[[template]]`.
#[derive(Clone)]
pub struct ConsulTemplate {
    /// The text and where it came from.
    pub source: TemplateSource,
    /// Delimiters and `error_on_missing_key`.
    pub options: Options,
    /// The parsed template.
    pub template: Arc<Template>,
    /// Its distinct Vault calls, in order of first use.
    pub calls: Vec<SecretCall>,
}

impl PartialEq for ConsulTemplate {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source && self.options == other.options
    }
}

impl Eq for ConsulTemplate {}

impl std::fmt::Debug for ConsulTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsulTemplate")
            .field("origin", &self.source.origin)
            .field("calls", &self.calls.len())
            .finish_non_exhaustive()
    }
}

/// Validates `[[template]]` number `n`.
pub(super) fn template(origin: &str, n: usize, t: RawTemplate) -> Result<SecretSpec, ConfigError> {
    let err = |key: String, problem: String| ConfigError::Invalid {
        origin: origin.to_string(),
        key,
        problem,
    };
    let name = match t.name.as_deref() {
        Some(s) if !s.trim().is_empty() => s.to_string(),
        _ => return Err(err(format!("[[template]] #{n} name"), "is required".into())),
    };
    let key = |k: &str| format!("[[template]] #{n} ({name}) {k}");
    if !crate::contract::valid_name(&name) || name.starts_with('.') {
        return Err(err(
            key("name"),
            "must match [A-Za-z0-9._-]+ and not start with a dot".into(),
        ));
    }
    let source = match (t.contents, t.source) {
        (Some(_), Some(_)) => {
            return Err(err(
                key("contents"),
                "give contents or source, not both".into(),
            ))
        }
        (Some(text), None) => TemplateSource {
            origin: "inline".into(),
            text,
        },
        (None, Some(file)) => TemplateSource {
            text: std::fs::read_to_string(&file)
                .map_err(|e| err(key("source"), format!("cannot read {file}: {e}")))?,
            origin: file,
        },
        (None, None) => return Err(err(key("contents"), "give contents or source".into())),
    };
    let options = Options {
        left: t.left_delimiter.unwrap_or_else(|| "{{".into()),
        right: t.right_delimiter.unwrap_or_else(|| "}}".into()),
        missing_key_error: t.error_on_missing_key.unwrap_or(false),
    };
    let at = |e: crate::ctmpl::ParseError| {
        err(
            key(if t_is_inline(&source) {
                "contents"
            } else {
                "source"
            }),
            format!("template {} line {}: {}", source.origin, e.line, e.message),
        )
    };
    let template = Template::parse(&source.text, &options).map_err(at)?;
    let calls = template.calls().map_err(at)?;
    if calls.is_empty() {
        return Err(err(
            key(if t_is_inline(&source) {
                "contents"
            } else {
                "source"
            }),
            "calls neither secret nor pkiCert: nothing to fetch".into(),
        ));
    }
    for c in &calls {
        if crate::vault::path::encode(c.path.trim_matches('/')).is_err() {
            return Err(err(
                key("contents"),
                format!(
                    "path {:?} must not have empty, `.` or `..` segments",
                    c.path
                ),
            ));
        }
    }
    let refresh = t.refresh.as_deref().unwrap_or("5m");
    let refresh = humantime::parse_duration(refresh)
        .map_err(|e| err(key("refresh"), format!("invalid duration `{refresh}`: {e}")))?;
    Ok(SecretSpec {
        path: calls
            .iter()
            .map(|c| c.path.trim_matches('/'))
            .collect::<Vec<_>>()
            .join(","),
        name,
        kind: SecretKind::Generic,
        field: None,
        format: Format::Consul(ConsulTemplate {
            source,
            options,
            template: Arc::new(template),
            calls,
        }),
        refresh,
        params: None,
        reissue_at: 2.0 / 3.0,
        gateway_only: false,
    })
}

fn t_is_inline(s: &TemplateSource) -> bool {
    s.origin == "inline"
}

#[cfg(test)]
mod tests {
    use crate::config::{parse, Format};

    const HEAD: &str = "[vault]\naddress = \"http://127.0.0.1:8200\"\n[auth]\nmethod = \"token\"\ntoken_file = \"/t\"\n[output]\ndir = \"/run/s\"\n";

    fn load(extra: &str) -> Result<crate::config::Config, String> {
        parse("t.toml", &format!("{HEAD}{extra}"), std::iter::empty()).map_err(|e| e.to_string())
    }

    #[test]
    fn a_template_is_a_secret_of_its_calls() {
        let c = load("[[template]]\nname = \"app.env\"\ncontents = '''\n{{ with secret \"secret/data/app\" }}U={{ .Data.data.u }}{{ end }}\n{{ with secret \"database/creds/app\" }}{{ .Data.password }}{{ end }}\n'''\n").unwrap();
        let s = &c.secrets[0];
        assert_eq!(s.name, "app.env");
        assert_eq!(s.path, "secret/data/app,database/creds/app");
        match &s.format {
            Format::Consul(t) => assert_eq!(t.calls.len(), 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_the_template_and_line() {
        let e =
            load("[[template]]\nname = \"x\"\ncontents = \"a\\n{{ secret (env \\\"P\\\") }}\"\n")
                .unwrap_err();
        assert!(e.contains("[[template]] #1 (x) contents: template inline line 2: secret: every argument must be a string literal"), "{e}");
        let e = load("[[template]]\nname = \"x\"\ncontents = \"{{ nope }}\"\n").unwrap_err();
        assert!(
            e.contains("function \\\"nope\\\" not defined")
                || e.contains("function \"nope\" not defined"),
            "{e}"
        );
        let e = load("[[template]]\nname = \"x\"\ncontents = \"plain\"\n").unwrap_err();
        assert!(e.contains("nothing to fetch"), "{e}");
        let e =
            load("[[template]]\nname = \"x\"\nsource = \"/nonexistent/t.ctmpl\"\n").unwrap_err();
        assert!(
            e.contains("(x) source: cannot read /nonexistent/t.ctmpl"),
            "{e}"
        );
    }
}
