//! The headers an http gateway adds: rendered from the secret's current value
//! with the project's template engine, once per value (cached until the
//! engine offers a new one).

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use base64::Engine as _;
use hyper::header::{HeaderName, HeaderValue, AUTHORIZATION};
use serde_json::Value;

use crate::config::{ForwardSpec, TemplateSource};
use crate::gateway::{Credentials, Document};

/// Why the headers cannot be made (never holds a value).
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    /// The agent holds no current value of the secret.
    #[error("secret {0} has no current value")]
    NoValue(String),
    /// A template did not render (a field missing, …).
    #[error("header {header}: {message}")]
    Render {
        /// The header.
        header: String,
        /// minijinja's message (names, no values).
        message: String,
    },
    /// A rendered value holds bytes a header may not (a newline, …).
    #[error("header {0}: the rendered value is not a valid header value")]
    BadValue(String),
}

/// The headers of one secret value.
#[derive(Debug)]
pub struct Rendered {
    /// The value they were rendered from (its lease for the audit trail).
    pub from: Arc<Document>,
    /// Name → value (values marked sensitive).
    pub values: Vec<(HeaderName, HeaderValue)>,
}

/// Renders the configured headers, caching them per secret value.
#[derive(Debug)]
pub struct Renderer {
    secret: String,
    headers: Vec<(HeaderName, TemplateSource)>,
    basic: Option<(TemplateSource, TemplateSource)>,
    cache: ArcSwapOption<Rendered>,
}

impl Renderer {
    /// The headers of `spec` over secret `secret`.
    pub fn new(secret: &str, spec: &ForwardSpec) -> Renderer {
        Renderer {
            secret: secret.to_string(),
            headers: spec
                .headers
                .iter()
                // Checked when the configuration was validated.
                .filter_map(|(n, t)| Some((HeaderName::from_bytes(n.as_bytes()).ok()?, t.clone())))
                .collect(),
            basic: spec.basic.clone(),
            cache: ArcSwapOption::empty(),
        }
    }

    /// The names of the headers added (the client's own are removed).
    pub fn names(&self) -> impl Iterator<Item = &HeaderName> {
        self.headers
            .iter()
            .map(|(n, _)| n)
            .chain(self.basic.as_ref().map(|_| &AUTHORIZATION))
    }

    /// The headers for the newest value: new requests use the newest credential.
    pub fn current(&self, credentials: &Credentials) -> Result<Arc<Rendered>, HeaderError> {
        let data = credentials
            .document(&self.secret)
            .ok_or_else(|| HeaderError::NoValue(self.secret.clone()))?;
        if let Some(r) = self.cache.load_full() {
            if Arc::ptr_eq(&r.from, &data) {
                return Ok(r);
            }
        }
        let r = Arc::new(self.render(data)?);
        self.cache.store(Some(r.clone()));
        Ok(r)
    }

    fn render(&self, data: Arc<Document>) -> Result<Rendered, HeaderError> {
        let mut ctx = data.data.0.clone();
        ctx.insert("data".to_string(), Value::Object(data.data.0.clone()));
        let text = |name: &HeaderName, t: &TemplateSource| {
            t.render(&self.secret, &ctx)
                .map(zeroize::Zeroizing::new)
                .map_err(|e| HeaderError::Render {
                    header: name.to_string(),
                    message: e.message,
                })
        };
        let mut values = Vec::with_capacity(self.headers.len() + 1);
        for (name, t) in &self.headers {
            values.push((name.clone(), value(name, text(name, t)?.as_bytes())?));
        }
        if let Some((user, pass)) = &self.basic {
            let mut pair = zeroize::Zeroizing::new(text(&AUTHORIZATION, user)?.to_string());
            pair.push(':');
            pair.push_str(&text(&AUTHORIZATION, pass)?);
            let encoded = zeroize::Zeroizing::new(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair.as_bytes())
            ));
            values.push((AUTHORIZATION, value(&AUTHORIZATION, encoded.as_bytes())?));
        }
        Ok(Rendered { from: data, values })
    }
}

fn value(name: &HeaderName, bytes: &[u8]) -> Result<HeaderValue, HeaderError> {
    let mut v =
        HeaderValue::from_bytes(bytes).map_err(|_| HeaderError::BadValue(name.to_string()))?;
    v.set_sensitive(true);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::api::SecretData;

    fn spec(headers: &[(&str, &str)], basic: Option<(&str, &str)>) -> ForwardSpec {
        let t = |s: &str| TemplateSource {
            origin: "inline".into(),
            text: s.into(),
        };
        ForwardSpec {
            url: crate::config::UpstreamUrl {
                tls: true,
                host: "h".into(),
                port: 443,
                base_path: String::new(),
            },
            headers: headers.iter().map(|(n, v)| (n.to_string(), t(v))).collect(),
            basic: basic.map(|(u, p)| (t(u), t(p))),
            ca_cert: None,
            paths: Vec::new(),
            namespace: None,
        }
    }

    fn offer(c: &Credentials, json: &str) {
        c.offer_document(
            "api",
            &SecretData(serde_json::from_str(json).unwrap()),
            None,
        );
    }

    #[test]
    fn headers_follow_the_newest_value() {
        let c = Credentials::for_secrets(["api".to_string()]).with_documents(["api".to_string()]);
        let r = Renderer::new(
            "api",
            &spec(&[("authorization", "Bearer {{ token }}")], None),
        );
        assert!(matches!(r.current(&c), Err(HeaderError::NoValue(_))));
        offer(&c, r#"{"token":"t1"}"#);
        let first = r.current(&c).unwrap();
        assert_eq!(first.values[0].1, "Bearer t1");
        assert!(Arc::ptr_eq(&first, &r.current(&c).unwrap()));
        offer(&c, r#"{"token":"t2"}"#);
        assert_eq!(r.current(&c).unwrap().values[0].1, "Bearer t2");
        assert!(!format!("{:?}", r.current(&c).unwrap()).contains("t2"));
        offer(&c, r#"{"other":"x"}"#);
        let e = r.current(&c).unwrap_err().to_string();
        assert!(e.contains("authorization"), "{e}");
        offer(&c, r#"{"token":"a\nb"}"#);
        assert!(matches!(r.current(&c), Err(HeaderError::BadValue(_))));
    }

    #[test]
    fn basic_is_base64_of_username_colon_password() {
        let c = Credentials::for_secrets(["api".to_string()]).with_documents(["api".to_string()]);
        let r = Renderer::new("api", &spec(&[], Some(("{{ u }}", "{{ p }}"))));
        offer(&c, r#"{"u":"Aladdin","p":"open sesame"}"#);
        let h = r.current(&c).unwrap();
        assert_eq!(h.values[0].0, AUTHORIZATION);
        assert_eq!(h.values[0].1, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert_eq!(r.names().count(), 1);
    }
}
