//! The keys of `[[gateway]]` kinds `http` and `vault` (docs/gateway.md): the
//! upstream base URL, the headers rendered from a secret, the Vault paths
//! allowed.

use std::path::PathBuf;

use super::gateway::GatewayKind;
use super::raw::RawGateway;
use super::{ConfigError, SecretSpec, TemplateSource, VaultConfig};

/// Headers the gateway manages itself or that describe the connection: a
/// template may not set them.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "proxy-authorization",
    "proxy-connection",
];

/// A validated upstream base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    /// `https` (else plain `http`, loopback only).
    pub tls: bool,
    /// The host name or IP (IPv6 without brackets).
    pub host: String,
    /// The port (the scheme's default when the URL has none).
    pub port: u16,
    /// The base path without a trailing `/` (empty for the root).
    pub base_path: String,
}

impl UpstreamUrl {
    /// `host:port` as the `Host` header and the TLS name want it.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.tls { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl std::fmt::Display for UpstreamUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority(), self.base_path)
    }
}

/// What an `http` or `vault` gateway forwards and adds.
#[derive(Debug, Clone)]
pub struct ForwardSpec {
    /// Where requests go.
    pub url: UpstreamUrl,
    /// Kind http: header name (lower case) → template over the secret's fields.
    pub headers: Vec<(String, TemplateSource)>,
    /// Kind http: `Authorization: Basic` from a username and a password template.
    pub basic: Option<(TemplateSource, TemplateSource)>,
    /// CA certificates trusted for the upstream instead of the web roots.
    pub ca_cert: Option<PathBuf>,
    /// Kind vault: the API paths (after `/v1/`) allowed, as policy globs.
    pub paths: Vec<PathGlob>,
    /// Kind vault: the agent's namespace, sent when the client sends none.
    pub namespace: Option<String>,
}

/// The kind-specific keys of an `http` or `vault` gateway, and its secret
/// (empty for `vault`).
pub(super) fn forward(
    kind: GatewayKind,
    g: &mut RawGateway,
    secrets: &[SecretSpec],
    vault: &VaultConfig,
    err: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(ForwardSpec, String), ConfigError> {
    match kind {
        GatewayKind::Vault => vault_gateway(g, vault, err),
        _ => http_gateway(g, secrets, err),
    }
}

/// Refuses the keys of the other kinds on a postgres gateway.
pub(super) fn only_for_http(
    g: &RawGateway,
    err: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    for (key, set) in [
        ("headers", g.headers.is_some()),
        ("basic", g.basic.is_some()),
        ("ca_cert", g.ca_cert.is_some()),
        ("paths", g.paths.is_some()),
    ] {
        if set {
            return Err(err(key, "is not a key of kind postgres".into()));
        }
    }
    Ok(())
}

fn http_gateway(
    g: &mut RawGateway,
    secrets: &[SecretSpec],
    err: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(ForwardSpec, String), ConfigError> {
    if g.paths.is_some() {
        return Err(err("paths", "is a key of kind vault".into()));
    }
    let secret = match g.secret.as_deref() {
        Some(s) if !s.trim().is_empty() => s.to_string(),
        _ => return Err(err("secret", "is required".into())),
    };
    if !secrets.iter().any(|s| s.name == secret) {
        return Err(err(
            "secret",
            format!("`{secret}` is not a [[secret]] name"),
        ));
    }
    let upstream = match g.upstream.as_deref() {
        Some(s) if !s.trim().is_empty() => s.to_string(),
        _ => return Err(err("upstream", "is required".into())),
    };
    let url = upstream_url(&upstream).map_err(|p| err("upstream", p))?;
    let mut headers = Vec::new();
    for (name, text) in g.headers.take().unwrap_or_default() {
        let key = format!("headers.{name}");
        let lower = name.to_ascii_lowercase();
        if hyper::header::HeaderName::from_bytes(lower.as_bytes()).is_err() {
            return Err(err(&key, "is not a header name".into()));
        }
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(err(&key, "is managed by the gateway".into()));
        }
        let t = template(&secret, &key, text, err)?;
        headers.push((lower, t));
    }
    if headers.is_empty() && g.basic.is_none() {
        return Err(err(
            "headers",
            "an http gateway needs `headers` or `basic` (what it adds)".into(),
        ));
    }
    let basic = match g.basic.take() {
        None => None,
        Some(b) => {
            if headers.iter().any(|(n, _)| n == "authorization") {
                return Err(err(
                    "basic",
                    "and headers.Authorization both set Authorization".into(),
                ));
            }
            let part = |k: &str, v: Option<String>| match v {
                Some(v) => template(&secret, &format!("basic.{k}"), v, err),
                None => Err(err(&format!("basic.{k}"), "is required".into())),
            };
            Some((part("username", b.username)?, part("password", b.password)?))
        }
    };
    let spec = ForwardSpec {
        url,
        headers,
        basic,
        ca_cert: g.ca_cert.take().map(PathBuf::from),
        paths: Vec::new(),
        namespace: None,
    };
    Ok((spec, secret))
}

fn vault_gateway(
    g: &mut RawGateway,
    vault: &VaultConfig,
    err: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(ForwardSpec, String), ConfigError> {
    for (key, set) in [
        ("secret", g.secret.is_some()),
        ("upstream", g.upstream.is_some()),
        ("headers", g.headers.is_some()),
        ("basic", g.basic.is_some()),
        ("ca_cert", g.ca_cert.is_some()),
    ] {
        if set {
            return Err(err(
                key,
                "is not a key of kind vault (it uses [vault] and the agent's token)".into(),
            ));
        }
    }
    let url =
        upstream_url(&vault.address).map_err(|p| err("kind", format!("[vault] address: {p}")))?;
    let paths = g
        .paths
        .take()
        .unwrap_or_default()
        .into_iter()
        .map(|p| PathGlob::parse(&p).map_err(|problem| err("paths", problem)))
        .collect::<Result<Vec<_>, _>>()?;
    if paths.is_empty() {
        return Err(err(
            "paths",
            "a vault gateway needs the API paths it allows (e.g. [\"secret/data/app\"])".into(),
        ));
    }
    let spec = ForwardSpec {
        url,
        headers: Vec::new(),
        basic: None,
        ca_cert: vault.ca_cert.clone(),
        paths,
        namespace: vault.namespace.clone(),
    };
    Ok((spec, String::new()))
}

/// A Vault policy path: segments where `+` is any one segment, and a final
/// `*` that matches any rest (a prefix match), as Vault policies write them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathGlob {
    text: String,
    /// Segments before the final `*` part.
    segments: Vec<String>,
    /// The text of the last segment before `*` (the prefix a path's segment
    /// there must start with); None without a final `*`.
    star: Option<String>,
}

impl PathGlob {
    /// Parses `secret/data/app/*`, `database/creds/+`, `sys/leases/renew`.
    pub fn parse(text: &str) -> Result<PathGlob, String> {
        let body = text.trim_start_matches('/');
        if body.is_empty() {
            return Err(format!("`{text}` is empty"));
        }
        let (fixed, star) = match body.strip_suffix('*') {
            Some(before) => (before, true),
            None => (body, false),
        };
        if fixed.contains('*') {
            return Err(format!(
                "`{text}`: `*` may only end a path (as in Vault policies)"
            ));
        }
        let mut segments: Vec<String> = fixed.split('/').map(str::to_string).collect();
        let star = if star { segments.pop() } else { None };
        if segments
            .iter()
            .any(|s| s == "." || s == ".." || (s.contains('+') && s != "+"))
        {
            return Err(format!(
                "`{text}`: `+` stands for a whole segment; no `.` or `..`"
            ));
        }
        Ok(PathGlob {
            text: body.to_string(),
            segments,
            star,
        })
    }

    /// Whether the API path `path` (after `/v1/`, normalised) matches.
    pub fn matches(&self, path: &str) -> bool {
        let mut parts = path.split('/');
        for s in &self.segments {
            match parts.next() {
                Some(p) if s == "+" || p == s => {}
                _ => return false,
            }
        }
        match &self.star {
            None => parts.next().is_none(),
            Some(prefix) => {
                let rest: Vec<&str> = parts.collect();
                rest.first()
                    .is_some_and(|first| first.starts_with(prefix.as_str()))
            }
        }
    }

    /// The literal text before any wildcard (`sys/` and `auth/token/` paths
    /// need a pattern that names them).
    pub fn literal_prefix(&self) -> &str {
        let end = self.text.find(['+', '*']).unwrap_or(self.text.len());
        &self.text[..end]
    }
}

impl std::fmt::Display for PathGlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

fn template(
    secret: &str,
    key: &str,
    text: String,
    err: &dyn Fn(&str, String) -> ConfigError,
) -> Result<TemplateSource, ConfigError> {
    let t = TemplateSource {
        origin: "inline".into(),
        text,
    };
    t.check(secret).map_err(|e| err(key, e.message))?;
    Ok(t)
}

/// Parses `https://host[:port][/base]`; plain `http` only to a loopback host.
fn upstream_url(text: &str) -> Result<UpstreamUrl, String> {
    let u = url::Url::parse(text).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    let tls = match u.scheme() {
        "https" => true,
        "http" => false,
        other => {
            return Err(format!(
                "`{text}`: scheme {other} (https, or http to loopback)"
            ))
        }
    };
    if !u.username().is_empty() || u.password().is_some() {
        return Err(format!(
            "`{}`: credentials belong in the secret, not the URL",
            u.host_str().unwrap_or("")
        ));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(format!("`{text}`: a base URL has no query or fragment"));
    }
    let (host, loopback) = match u.host() {
        Some(url::Host::Domain(d)) => (d.to_string(), d == "localhost"),
        Some(url::Host::Ipv4(ip)) => (ip.to_string(), ip.is_loopback()),
        Some(url::Host::Ipv6(ip)) => (ip.to_string(), ip.is_loopback()),
        None => return Err(format!("`{text}` has no host")),
    };
    if !tls && !loopback {
        return Err(format!(
            "`{text}`: plain http is allowed only to a loopback upstream; use https"
        ));
    }
    let port = u
        .port_or_known_default()
        .ok_or_else(|| format!("`{text}` has no port"))?;
    let base_path = u.path().trim_end_matches('/').to_string();
    Ok(UpstreamUrl {
        tls,
        host,
        port,
        base_path,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    const BASE: &str = r#"
[vault]
address = "http://127.0.0.1:8200"
[auth]
method = "token"
token_file = "/t"
[output]
dir = "/run/secrets"
[[secret]]
name = "api"
path = "secret/api"
kind = "kv2"
"#;

    fn check(gateway: &str) -> Result<crate::config::Config, String> {
        parse(
            "t.toml",
            &format!("{BASE}[[gateway]]\n{gateway}"),
            std::iter::empty(),
        )
        .map_err(|e| e.to_string())
    }

    const HTTP: &str = "name = \"api\"\nkind = \"http\"\nsecret = \"api\"\nlisten = \"127.0.0.1:8080\"\nupstream = \"https://api.example.com/v2/\"\nheaders = { Authorization = \"Bearer {{ token }}\" }\n";
    const VAULT: &str =
        "name = \"v\"\nkind = \"vault\"\nlisten = \"127.0.0.1:8100\"\npaths = [\"secret/data/app/*\"]\n";

    #[test]
    fn policy_globs_match_as_vault_policies_do() {
        let g = |t: &str| super::PathGlob::parse(t).unwrap();
        assert!(g("secret/data/app").matches("secret/data/app"));
        assert!(!g("secret/data/app").matches("secret/data/app/x"));
        assert!(g("secret/data/app/*").matches("secret/data/app/x/y"));
        assert!(g("secret/data/app/*").matches("secret/data/app/"));
        assert!(!g("secret/data/app/*").matches("secret/data/app"));
        assert!(g("secret/data/app*").matches("secret/data/app2/x"));
        assert!(g("secret/data/app*").matches("secret/data/app"));
        assert!(g("database/creds/+").matches("database/creds/ro"));
        assert!(!g("database/creds/+").matches("database/creds/ro/x"));
        assert!(g("+/creds/*").matches("db/creds/a"));
        assert_eq!(g("sys/leases/*").literal_prefix(), "sys/leases/");
        assert_eq!(g("*").literal_prefix(), "");
        assert!(super::PathGlob::parse("a*/b").is_err());
        assert!(super::PathGlob::parse("a/../b").is_err());
    }

    #[test]
    fn http_and_vault_gateways_are_parsed() {
        let c = check(HTTP).unwrap();
        let f = c.gateways[0].forward.as_ref().unwrap();
        assert_eq!(f.url.to_string(), "https://api.example.com/v2");
        assert_eq!(f.url.port, 443);
        assert_eq!(f.headers[0].0, "authorization");
        assert_eq!(c.gateways[0].password_file(), "api.token");
        let c = check(VAULT).unwrap();
        let f = c.gateways[0].forward.as_ref().unwrap();
        assert_eq!(f.url.to_string(), "http://127.0.0.1:8200");
        assert!(c.gateways[0].secret.is_empty());
        let basic = HTTP.replace(
            "headers = { Authorization = \"Bearer {{ token }}\" }",
            "basic = { username = \"{{ user }}\", password = \"{{ pass }}\" }",
        );
        assert!(check(&basic).unwrap().gateways[0]
            .forward
            .as_ref()
            .unwrap()
            .basic
            .is_some());
    }

    #[test]
    fn bad_http_and_vault_gateways_are_refused_by_key() {
        for (bad, key, problem) in [
            (
                HTTP.replace("https://api.example.com/v2/", "http://api.example.com"),
                "(api) upstream",
                "loopback",
            ),
            (
                HTTP.replace("https://api.example.com/v2/", "https://u:p@api.example.com"),
                "(api) upstream",
                "credentials",
            ),
            (HTTP.replace("Authorization", "Host"), "headers.Host", "managed"),
            (HTTP.replace("{{ token }}", "{{ token"), "headers.Authorization", ""),
            (
                HTTP.replace("headers = { Authorization = \"Bearer {{ token }}\" }\n", ""),
                "(api) headers",
                "needs",
            ),
            (format!("{HTTP}paths = [\"a\"]\n"), "(api) paths", "vault"),
            (format!("{VAULT}secret = \"api\"\n"), "(v) secret", "not a key"),
            (VAULT.replace("[\"secret/data/app/*\"]", "[]"), "(v) paths", "needs"),
            (VAULT.replace("app/*", "a*p"), "(v) paths", "*"),
            (
                "name = \"pg\"\nkind = \"postgres\"\nsecret = \"api\"\nlisten = \"127.0.0.1:1\"\nupstream = \"h:1\"\npaths = [\"x\"]\n".to_string(),
                "(pg) paths",
                "postgres",
            ),
        ] {
            let e = check(&bad).unwrap_err();
            assert!(e.contains(key) && e.contains(problem), "{bad}: {e}");
        }
        assert!(
            check(&HTTP.replace("https://api.example.com/v2/", "http://127.0.0.1:9000/")).is_ok()
        );
    }
}
