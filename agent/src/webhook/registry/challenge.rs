//! `WWW-Authenticate` challenges of a registry (RFC 7235 syntax): `Basic` (e.g.
//! distribution with htpasswd) or `Bearer` with the token service's `realm`,
//! `service` and `scope` (Docker Hub, GHCR, Harbor, distribution with token auth).

use std::collections::BTreeMap;

/// A parsed challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// Send `Authorization: Basic` with the configured credentials.
    Basic,
    /// Get a token from `realm` and send `Authorization: Bearer`.
    Bearer {
        /// The token endpoint.
        realm: String,
        /// `service` query parameter, if given.
        service: Option<String>,
        /// `scope` query parameter, if given.
        scope: Option<String>,
        /// Why a token that was sent is not enough (RFC 6750 `error`, e.g.
        /// `insufficient_scope`), if said.
        error: Option<String>,
    },
}

/// Parses one challenge header; `None` for a scheme shroud does not speak.
pub fn parse(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = params(rest);
    Some(Challenge::Bearer {
        realm: params.remove("realm")?,
        service: params.remove("service"),
        scope: params.remove("scope"),
        error: params.remove("error"),
    })
}

/// `k="v", k2=v2` with quoted strings that may hold commas and `\"`.
fn params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',') {
                value.push(c);
            }
        }
        out.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_bearer() {
        let c = parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/nginx:pull".into()),
                error: None,
            })
        );
    }

    #[test]
    fn quoted_commas_unquoted_values_and_other_schemes() {
        let c = parse(r#"bearer realm=https://t.example/token, scope="repository:a/b:pull,push""#);
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://t.example/token".into(),
                service: None,
                scope: Some("repository:a/b:pull,push".into()),
                error: None,
            })
        );
        assert_eq!(
            parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        // distribution's answer to a token without the access it needs.
        let c = parse(
            r#"Bearer realm="http://127.0.0.1:1/token",service="reg",scope="repository:a/b:pull",error="insufficient_scope""#,
        );
        assert!(
            matches!(c, Some(Challenge::Bearer { error: Some(e), .. }) if e == "insufficient_scope")
        );
        assert_eq!(parse("Negotiate"), None);
        assert_eq!(parse(r#"Bearer service="x""#), None);
    }
}
