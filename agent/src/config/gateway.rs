//! `[[gateway]]` entries: listeners the workload connects to instead of the real
//! service, logging in upstream with a secret it never holds (docs/gateway.md).

use std::net::SocketAddr;
use std::path::PathBuf;

use super::raw::RawGateway;
use super::{ConfigError, SecretKind, SecretSpec, VaultConfig};

pub use super::gateway_forward::{ForwardSpec, PathGlob, UpstreamUrl};

/// The protocols a gateway speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayKind {
    /// The PostgreSQL wire protocol.
    Postgres,
    /// HTTP to one upstream base URL, adding headers rendered from a secret.
    Http,
    /// The Vault/OpenBao API, adding the agent's own token.
    Vault,
}

/// Where a gateway listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A TCP address; clients give the per-run local password.
    Tcp(SocketAddr),
    /// A directory the gateway creates (0700) holding the socket
    /// `.s.PGSQL.<upstream port>`; the directory's permissions are the check.
    Unix(PathBuf),
}

impl std::fmt::Display for Listen {
    /// As the config writes it: `IP:PORT` or `unix:/dir`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Tcp(a) => write!(f, "{a}"),
            Listen::Unix(d) => write!(f, "unix:{}", d.display()),
        }
    }
}

/// TLS to the upstream (`sslmode`, libpq's names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamTls {
    /// Plain TCP.
    Disable,
    /// Encrypted; the certificate is not checked.
    Require,
    /// Encrypted; the certificate chains to `ca_file` (the web roots without
    /// one) and names the upstream host.
    VerifyFull {
        /// The CA certificates (PEM).
        ca_file: Option<PathBuf>,
    },
}

/// One validated `[[gateway]]`.
#[derive(Debug, Clone)]
pub struct GatewaySpec {
    /// Its name: in logs and the local password file `<name>.password`.
    pub name: String,
    /// The protocol.
    pub kind: GatewayKind,
    /// The `[[secret]]` whose `username` and `password` it logs in with.
    pub secret: String,
    /// Where the workload connects.
    pub listen: Listen,
    /// The real server, `host:port`.
    pub upstream: String,
    /// The upstream's port (names the Unix socket).
    pub upstream_port: u16,
    /// Kinds http and vault: the upstream URL, headers, allowed paths.
    pub forward: Option<ForwardSpec>,
    /// The upstream's host (the TLS server name).
    pub upstream_host: String,
    /// TLS to the upstream.
    pub tls: UpstreamTls,
    /// Client connections open at once; more get 53300.
    pub max_connections: u32,
}

/// `max_connections` when not given (PostgreSQL's own default is 100).
pub const DEFAULT_MAX_CONNECTIONS: u32 = 256;

impl GatewaySpec {
    /// The local password file's name in the output directory.
    pub fn password_file(&self) -> String {
        match self.kind {
            GatewayKind::Postgres => format!("{}.password", self.name),
            GatewayKind::Http | GatewayKind::Vault => format!("{}.token", self.name),
        }
    }
}

/// Validates every `[[gateway]]` against the secrets.
pub fn gateways(
    origin: &str,
    raw: Vec<RawGateway>,
    secrets: &[SecretSpec],
    vault: &VaultConfig,
) -> Result<Vec<GatewaySpec>, ConfigError> {
    let mut out: Vec<GatewaySpec> = Vec::with_capacity(raw.len());
    for (i, g) in raw.into_iter().enumerate() {
        let spec = gateway(origin, i + 1, g, secrets, vault)?;
        let err = |key: &str, problem: String| ConfigError::Invalid {
            origin: origin.to_string(),
            key: format!("[[gateway]] #{} ({}) {key}", i + 1, spec.name),
            problem,
        };
        if out.iter().any(|o| o.name == spec.name) {
            return Err(err("name", "is used by another gateway".into()));
        }
        if out.iter().any(|o| o.listen == spec.listen) {
            return Err(err("listen", "is used by another gateway".into()));
        }
        if secrets.iter().any(|s| s.name == spec.password_file()) {
            return Err(err(
                "name",
                format!(
                    "its password file `{}` is a secret's file name",
                    spec.password_file()
                ),
            ));
        }
        out.push(spec);
    }
    if let Some(s) = secrets
        .iter()
        .find(|s| s.gateway_only && !out.iter().any(|g| g.secret == s.name))
    {
        return Err(ConfigError::Invalid {
            origin: origin.to_string(),
            key: format!("[[secret]] ({}) gateway_only", s.name),
            problem: "no [[gateway]] uses this secret, so nothing would".into(),
        });
    }
    Ok(out)
}

fn gateway(
    origin: &str,
    n: usize,
    mut g: RawGateway,
    secrets: &[SecretSpec],
    vault: &VaultConfig,
) -> Result<GatewaySpec, ConfigError> {
    let label = match &g.name {
        Some(name) => format!("[[gateway]] #{n} ({name})"),
        None => format!("[[gateway]] #{n}"),
    };
    let err = |key: &str, problem: String| ConfigError::Invalid {
        origin: origin.to_string(),
        key: format!("{label} {key}"),
        problem,
    };
    let required = |key: &str, v: &Option<String>| match v.as_deref() {
        Some(s) if !s.trim().is_empty() => Ok(s.to_string()),
        _ => Err(err(key, "is required".into())),
    };
    let name = required("name", &g.name)?;
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(err(
            "name",
            format!("`{name}` may hold only letters, digits, `-` and `_`"),
        ));
    }
    let kind = match required("kind", &g.kind)?.as_str() {
        "postgres" => GatewayKind::Postgres,
        "http" => GatewayKind::Http,
        "vault" => GatewayKind::Vault,
        other => {
            return Err(err(
                "kind",
                format!("`{other}` is not a gateway kind (postgres, http, vault)"),
            ))
        }
    };
    let listen = listen(&g, &err)?;
    if kind != GatewayKind::Postgres {
        let (forward, secret) =
            super::gateway_forward::forward(kind, &mut g, secrets, vault, &err)?;
        for (key, given) in [
            ("sslmode", g.sslmode.is_some()),
            ("ca_file", g.ca_file.is_some()),
        ] {
            if given {
                return Err(err(
                    key,
                    "is only for kind postgres (kinds http and vault take `ca_cert`)".into(),
                ));
            }
        }
        let max_connections = max_connections(&g, &err)?;
        return Ok(GatewaySpec {
            name,
            kind,
            secret,
            listen,
            upstream: forward.url.to_string(),
            upstream_port: forward.url.port,
            upstream_host: forward.url.host.clone(),
            forward: Some(forward),
            tls: UpstreamTls::Disable,
            max_connections,
        });
    }
    super::gateway_forward::only_for_http(&g, &err)?;
    let secret = required("secret", &g.secret)?;
    match secrets.iter().find(|s| s.name == secret) {
        None => return Err(err("secret", format!("`{secret}` is not a [[secret]] name"))),
        Some(s) if s.kind != SecretKind::Dynamic => {
            return Err(err(
                "secret",
                format!(
                    "`{secret}` is of kind {}; a postgres gateway needs a dynamic secret with username and password",
                    s.kind.name()
                ),
            ))
        }
        Some(_) => {}
    }
    let upstream = required("upstream", &g.upstream)?;
    let (upstream_host, upstream_port) = upstream
        .rsplit_once(':')
        .filter(|(host, _)| !host.is_empty())
        .and_then(|(host, port)| Some((host.to_string(), port.parse::<u16>().ok()?)))
        .filter(|(_, p)| *p != 0)
        .ok_or_else(|| err("upstream", format!("`{upstream}` is not host:port")))?;
    let ca_file = g.ca_file.as_deref().map(PathBuf::from);
    let tls = match g.sslmode.as_deref().unwrap_or("disable") {
        "disable" => UpstreamTls::Disable,
        "require" => UpstreamTls::Require,
        "verify-full" => UpstreamTls::VerifyFull {
            ca_file: ca_file.clone(),
        },
        other => {
            return Err(err(
                "sslmode",
                format!("`{other}` is not one of disable, require, verify-full"),
            ))
        }
    };
    if ca_file.is_some() && !matches!(tls, UpstreamTls::VerifyFull { .. }) {
        return Err(err(
            "ca_file",
            "is only used with sslmode = \"verify-full\"".into(),
        ));
    }
    if ca_file.as_ref().is_some_and(|f| !f.is_absolute()) {
        return Err(err("ca_file", "must be an absolute path".into()));
    }
    let max_connections = max_connections(&g, &err)?;
    Ok(GatewaySpec {
        name,
        kind,
        secret,
        listen,
        upstream,
        upstream_port,
        forward: None,
        upstream_host,
        tls,
        max_connections,
    })
}

/// `max_connections`: client connections open at once.
fn max_connections(
    g: &RawGateway,
    err: &dyn Fn(&str, String) -> ConfigError,
) -> Result<u32, ConfigError> {
    let max_connections = g.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
    if !(1..=65_536).contains(&max_connections) {
        return Err(err(
            "max_connections",
            format!("{max_connections} is not between 1 and 65536"),
        ));
    }
    Ok(max_connections)
}

/// `listen`: loopback TCP (unless `allow_remote`) or `unix:/absolute/dir`.
fn listen(
    g: &RawGateway,
    err: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Listen, ConfigError> {
    let listen_text = match g.listen.as_deref() {
        Some(s) if !s.trim().is_empty() => s.to_string(),
        _ => return Err(err("listen", "is required".into())),
    };
    let listen = match listen_text.strip_prefix("unix:") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if !dir.is_absolute() {
                return Err(err(
                    "listen",
                    format!("`{listen_text}`: the socket directory must be absolute"),
                ));
            }
            Listen::Unix(dir)
        }
        None => {
            let addr: SocketAddr = listen_text.parse().map_err(|_| {
                err(
                    "listen",
                    format!("`{listen_text}` is neither IP:PORT nor unix:/directory"),
                )
            })?;
            if !addr.ip().is_loopback() && g.allow_remote != Some(true) {
                return Err(err(
                    "listen",
                    format!("`{listen_text}` is not a loopback address; set allow_remote = true to listen there"),
                ));
            }
            Listen::Tcp(addr)
        }
    };
    Ok(listen)
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
name = "db"
path = "database/creds/app"
kind = "dynamic"
format = "json"
[[secret]]
name = "kv"
path = "secret/app"
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

    const OK: &str =
        "name = \"pg\"\nkind = \"postgres\"\nsecret = \"db\"\nlisten = \"127.0.0.1:6432\"\nupstream = \"db.internal:5432\"\n";

    #[test]
    fn a_gateway_is_parsed() {
        let c = check(OK).unwrap();
        let g = &c.gateways[0];
        assert_eq!(
            g.listen,
            super::Listen::Tcp("127.0.0.1:6432".parse().unwrap())
        );
        assert_eq!(
            (g.upstream.as_str(), g.upstream_port),
            ("db.internal:5432", 5432)
        );
        assert_eq!(g.password_file(), "pg.password");
        let c = check(&OK.replace("127.0.0.1:6432", "unix:/run/pg")).unwrap();
        assert_eq!(c.gateways[0].listen, super::Listen::Unix("/run/pg".into()));
    }

    #[test]
    fn bad_gateways_are_refused_by_key() {
        for (bad, key, problem) in [
            (
                OK.replace("127.0.0.1:6432", "0.0.0.0:6432"),
                "(pg) listen",
                "allow_remote",
            ),
            (
                OK.replace("127.0.0.1:6432", "unix:run/pg"),
                "(pg) listen",
                "absolute",
            ),
            (
                OK.replace("127.0.0.1:6432", "localhost"),
                "(pg) listen",
                "IP:PORT",
            ),
            (
                OK.replace("\"postgres\"", "\"mysql\""),
                "(pg) kind",
                "mysql",
            ),
            (OK.replace("\"db\"", "\"kv\""), "(pg) secret", "kv2"),
            (
                OK.replace("\"db\"", "\"nope\""),
                "(pg) secret",
                "not a [[secret]]",
            ),
            (
                OK.replace("db.internal:5432", "db.internal"),
                "(pg) upstream",
                "host:port",
            ),
            (OK.replace("\"pg\"", "\"a/b\""), "(a/b) name", "letters"),
            (OK.replace("name = \"pg\"\n", ""), "#1 name", "required"),
            (format!("{OK}color = 1\n"), "color", "unknown"),
            (
                format!("{OK}max_connections = 0\n"),
                "(pg) max_connections",
                "between",
            ),
            (
                format!("{OK}sslmode = \"prefer\"\n"),
                "(pg) sslmode",
                "prefer",
            ),
            (
                format!("{OK}ca_file = \"/ca.pem\"\n"),
                "(pg) ca_file",
                "verify-full",
            ),
            (
                format!("{OK}sslmode = \"verify-full\"\nca_file = \"ca.pem\"\n"),
                "(pg) ca_file",
                "absolute",
            ),
        ] {
            let e = check(&bad).unwrap_err();
            assert!(e.contains(key) && e.contains(problem), "{bad}: {e}");
        }
        assert!(check(&format!(
            "{}allow_remote = true\n",
            OK.replace("127.0.0.1:6432", "0.0.0.0:6432")
        ))
        .is_ok());
        let twice = format!("{OK}[[gateway]]\n{}", OK.replace("6432", "6433"));
        assert!(check(&twice).unwrap_err().contains("#2 (pg) name"));
    }

    #[test]
    fn gateway_only_secrets_are_validated() {
        let only = "[[secret]]\nname = \"gdb\"\npath = \"database/creds/app\"\nkind = \"dynamic\"\ngateway_only = true\n";
        let with = |secret: &str, gateway: &str| {
            parse(
                "t.toml",
                &format!("{BASE}{secret}{gateway}"),
                std::iter::empty(),
            )
            .map_err(|e| e.to_string())
        };
        let used = format!("[[gateway]]\n{}", OK.replace("\"db\"", "\"gdb\""));
        let c = with(only, &used).unwrap();
        assert!(c.secrets.iter().any(|s| s.name == "gdb" && s.gateway_only));
        assert!(c.secrets.iter().any(|s| s.name == "db" && !s.gateway_only));
        for (secret, gateway, key, problem) in [
            (
                only.to_string(),
                String::new(),
                "(gdb) gateway_only",
                "no [[gateway]]",
            ),
            (
                only.replace("dynamic", "kv2"),
                used.clone(),
                "(gdb) gateway_only",
                "dynamic",
            ),
            (
                format!("{only}format = \"json\"\n"),
                used.clone(),
                "(gdb) gateway_only",
                "no file",
            ),
        ] {
            let e = with(&secret, &gateway).unwrap_err();
            assert!(e.contains(key) && e.contains(problem), "{secret}: {e}");
        }
    }
}
