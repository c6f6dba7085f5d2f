//! Secret templates: the one minijinja environment (strict about undefined
//! names, trailing newline kept) used both to check a template when the
//! configuration is validated and to render it with a secret's data. Knows
//! nothing of the configuration file or of Vault, so both can use it.

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

/// A template's text and where it came from (for error messages).
#[derive(Clone, PartialEq, Eq)]
pub struct TemplateSource {
    /// `inline` or the template file path.
    pub origin: String,
    /// The template text (not secret: it refers to fields by name).
    pub text: String,
}

impl std::fmt::Debug for TemplateSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemplateSource")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// A template that did not compile or render. Never holds a value.
#[derive(Debug, thiserror::Error)]
#[error("secret `{secret}`: template {origin} line {line}: {message}")]
pub struct TemplateError {
    /// Secret name.
    pub secret: String,
    /// `inline` or the template file.
    pub origin: String,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// What went wrong (minijinja's message, no values).
    pub message: String,
}

impl TemplateSource {
    /// Compiles the template without rendering it (configuration validation).
    pub fn check(&self, secret: &str) -> Result<(), TemplateError> {
        environment()
            .template_from_str(&self.text)
            .map(|_| ())
            .map_err(|e| self.error(secret, &e))
    }

    /// Renders the template for `secret` over `context`.
    pub fn render(&self, secret: &str, context: &impl Serialize) -> Result<String, TemplateError> {
        let env = environment();
        let template = env
            .template_from_str(&self.text)
            .map_err(|e| self.error(secret, &e))?;
        template.render(context).map_err(|e| self.error(secret, &e))
    }

    fn error(&self, secret: &str, e: &minijinja::Error) -> TemplateError {
        TemplateError {
            secret: secret.to_string(),
            origin: self.origin.clone(),
            line: e.line().unwrap_or(0),
            message: e
                .detail()
                .map(str::to_string)
                .unwrap_or_else(|| e.kind().to_string()),
        }
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_names_origin_and_line() {
        let bad = TemplateSource {
            origin: "t.tmpl".into(),
            text: "a\nb\n{% if %}".into(),
        };
        let e = bad.check("db").unwrap_err().to_string();
        assert!(e.contains("t.tmpl line 3"), "{e}");
        let good = TemplateSource {
            origin: "inline".into(),
            text: "{{ username }}\n".into(),
        };
        assert!(good.check("db").is_ok());
    }
}
