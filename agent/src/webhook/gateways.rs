//! `shroud.dev/gateway-<name>` annotations → the injected agent's `[[gateway]]`s
//! (docs/webhook.md, docs/gateway.md). The value is the body of a TOML inline
//! table in the agent's own `[[gateway]]` schema, so a key the agent does not
//! know is refused here and every kind is written the same way:
//!
//! ```text
//! shroud.dev/gateway-pg: kind = "postgres", secret = "db", listen = "127.0.0.1:5432", upstream = "db.prod.svc:5432"
//! ```
//!
//! What only makes sense on a single host is refused: a pod's containers share
//! its loopback, so a gateway listens there and nowhere else.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::annotations::{key, AnnotationError, PREFIX};
use crate::config::raw::RawGateway;

/// The annotation's prefix after `shroud.dev/`.
pub(crate) const GATEWAY: &str = "gateway-";

/// One validated `gateway-<name>` annotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayAnnotation {
    /// The full annotation key, for errors.
    pub annotation: String,
    /// The `[[gateway]]` entry, `name` set from the annotation.
    pub raw: RawGateway,
}

const EXAMPLE: &str = "kind = \"postgres\", secret = \"db\", listen = \"127.0.0.1:5432\", upstream = \"db.prod.svc:5432\"";

/// Every `gateway-<name>` of `ours` (keys without the prefix), sorted by name.
pub(crate) fn parse(
    ours: &BTreeMap<&str, &str>,
) -> Result<Vec<GatewayAnnotation>, AnnotationError> {
    let mut out = Vec::new();
    for (k, v) in ours {
        let Some(name) = k.strip_prefix(GATEWAY) else {
            continue;
        };
        let annotation = key(k);
        validate_name(name, &annotation)?;
        let mut raw = parse_value(v, &annotation)?;
        if raw.name.is_some() {
            return Err(AnnotationError::invalid(
                annotation,
                format!(
                    "`name` is the annotation's suffix (`{PREFIX}{GATEWAY}<name>`); leave it out"
                ),
            ));
        }
        check_pod_local(&raw, &annotation)?;
        raw.name = Some(name.to_string());
        out.push(GatewayAnnotation { annotation, raw });
    }
    Ok(out)
}

/// The annotation that declared gateway `name`, from the agent's own error key
/// (`[[gateway]] #N (<name>) <field>`).
pub(crate) fn annotation_of(config_key: &str) -> Option<String> {
    let rest = config_key.strip_prefix("[[gateway]] #")?;
    let (_, rest) = rest.split_once(" (")?;
    let (name, _) = rest.split_once(')')?;
    Some(key(&format!("{GATEWAY}{name}")))
}

/// As the agent checks a `[[gateway]] name`: letters, digits, `-`, `_`.
fn validate_name(name: &str, annotation: &str) -> Result<(), AnnotationError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(AnnotationError::invalid(
            annotation,
            "the gateway name (after `gateway-`) must be 1-63 of [A-Za-z0-9_-]",
        ))
    }
}

/// The value as a TOML inline table (braces optional) of `[[gateway]]` keys.
fn parse_value(value: &str, annotation: &str) -> Result<RawGateway, AnnotationError> {
    let body = value.trim();
    let body = body
        .strip_prefix('{')
        .and_then(|b| b.strip_suffix('}'))
        .unwrap_or(body);
    // One inline table: a newline or a second value cannot smuggle in another
    // table of the agent's configuration.
    let table = format!("{{ {body} }}");
    RawGateway::deserialize(toml::de::ValueDeserializer::new(&table)).map_err(|e| {
        AnnotationError::invalid(
            annotation,
            format!(
                "must be `[[gateway]]` keys as a TOML inline table, e.g. `{EXAMPLE}`: {}",
                e.message().trim()
            ),
        )
    })
}

/// Refuses what would reach past the pod or need files the agent's container
/// does not have.
fn check_pod_local(raw: &RawGateway, annotation: &str) -> Result<(), AnnotationError> {
    let refuse = |reason: &str| Err(AnnotationError::invalid(annotation, reason));
    if raw.allow_remote.is_some() {
        return refuse("`allow_remote` is not available to pods: a gateway listens on the pod's loopback, which its containers share");
    }
    match raw.listen.as_deref().map(str::trim) {
        None | Some("") => return refuse(&format!("`listen` is required, e.g. `{EXAMPLE}`")),
        Some(l) if l.starts_with("unix:") => {
            return refuse("`listen` must be a loopback `IP:PORT` in a pod (a Unix socket directory would be the agent container's alone)")
        }
        Some(_) => {}
    }
    for (field, given) in [
        ("ca_file", raw.ca_file.is_some()),
        ("ca_cert", raw.ca_cert.is_some()),
    ] {
        if given {
            return refuse(&format!("`{field}` names a file the injected agent's container does not have; use a CA the web roots cover (sslmode = \"verify-full\" without ca_file)"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(value: &str) -> Result<Vec<GatewayAnnotation>, AnnotationError> {
        let ours = BTreeMap::from([("gateway-pg", value)]);
        parse(&ours)
    }

    #[test]
    fn a_value_becomes_the_gateway_named_by_the_annotation() {
        let g = one(r#"kind = "postgres", secret = "db", listen = "127.0.0.1:5432", upstream = "db:5432", max_connections = 20"#).unwrap();
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].annotation, "shroud.dev/gateway-pg");
        assert_eq!(g[0].raw.name.as_deref(), Some("pg"));
        assert_eq!(g[0].raw.kind.as_deref(), Some("postgres"));
        assert_eq!(g[0].raw.max_connections, Some(20));
        let braced = one(r#"{ kind = "http", secret = "api", listen = "127.0.0.1:8080", upstream = "https://api.example/v2", headers = { Authorization = "Bearer {{ token }}" } }"#).unwrap();
        assert_eq!(
            braced[0].raw.headers.as_ref().unwrap()["Authorization"],
            "Bearer {{ token }}"
        );
    }

    #[test]
    fn bad_values_are_refused_naming_the_annotation() {
        for bad in [
            "kind=postgres,secret=db",
            r#"kind = "postgres", nope = 1, listen = "127.0.0.1:1""#,
            r#"kind = "postgres", listen = "127.0.0.1:1" }
[vault]
address = "http://evil" "#,
            r#"kind = "postgres" } , x = { a = 1"#,
            r#"name = "other", listen = "127.0.0.1:1""#,
            r#"kind = "postgres", listen = "0.0.0.0:5432", allow_remote = true"#,
            r#"kind = "postgres", listen = "unix:/run/pg""#,
            r#"kind = "postgres", secret = "db""#,
            r#"kind = "http", listen = "127.0.0.1:1", ca_cert = "/etc/ca.pem""#,
        ] {
            let e = one(bad).unwrap_err();
            assert!(
                matches!(&e, AnnotationError::Invalid { key, .. } if key == "shroud.dev/gateway-pg"),
                "{bad}: {e}"
            );
        }
        let ours = BTreeMap::from([("gateway-a.b", r#"listen = "127.0.0.1:1""#)]);
        assert!(parse(&ours).is_err());
    }

    #[test]
    fn the_agents_error_key_leads_back_to_the_annotation() {
        assert_eq!(
            annotation_of("[[gateway]] #2 (pg) secret").as_deref(),
            Some("shroud.dev/gateway-pg")
        );
        assert_eq!(annotation_of("[[secret]] #2 (db) path"), None);
    }
}
