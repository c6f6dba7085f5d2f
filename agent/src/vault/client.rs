//! A small blocking Vault/OpenBao HTTP client (ureq + rustls): one JSON request per
//! call, the token kept in a zeroizing buffer, every request timed and reported as
//! an event. No connection pooling: an idle pooled connection would keep the last
//! response, secrets included, in its read buffer for as long as it stays idle.

use std::fmt;
use std::io::Read as _;
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use zeroize::Zeroizing;

use crate::config::VaultConfig;
use crate::events::{self, Event, Outcome};
use crate::pem::{self, Identity};

/// Why a Vault request failed. Messages carry Vault's error strings and paths,
/// never request or response bodies.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// No connection or no answer (Vault down, DNS, TLS, timeout).
    #[error("Vault at {address} is unreachable ({operation} {path}): {detail}")]
    Unreachable {
        /// Base address.
        address: String,
        /// Operation name.
        operation: String,
        /// API path.
        path: String,
        /// The transport error.
        detail: String,
    },
    /// 403: the token's policies do not allow this.
    #[error("permission denied by Vault ({operation} {path}): {detail}")]
    Denied {
        /// Operation name.
        operation: String,
        /// API path.
        path: String,
        /// Vault's error strings.
        detail: String,
    },
    /// 404: nothing at this path.
    #[error("nothing found at Vault path {path} ({operation})")]
    NotFound {
        /// Operation name.
        operation: String,
        /// API path.
        path: String,
    },
    /// Any other error status.
    #[error("Vault answered {status} ({operation} {path}): {detail}")]
    Status {
        /// Operation name.
        operation: String,
        /// API path.
        path: String,
        /// HTTP status.
        status: u16,
        /// Vault's error strings.
        detail: String,
    },
    /// A 3xx: an HA standby that cannot forward, or a load balancer. Never
    /// followed (the token would go wherever it points) and never a success.
    #[error("Vault answered {status} redirecting to {location} ({operation} {path}); redirects are not followed: point [vault] address at the active node or at a load balancer that forwards")]
    Redirect {
        /// Operation name.
        operation: String,
        /// API path.
        path: String,
        /// HTTP status.
        status: u16,
        /// Scheme and host of the `Location` header (no user info, path or query).
        location: String,
    },
    /// The answer was not what the API documents.
    #[error("unexpected answer from Vault ({operation} {path}): {detail}")]
    BadResponse {
        /// Operation name.
        operation: String,
        /// API path.
        path: String,
        /// What was wrong.
        detail: String,
    },
    /// The path cannot be sent as it is (an empty, `.` or `..` segment).
    #[error("{0} ({1})")]
    BadPath(super::path::BadPath, String),
    /// The TLS settings could not be loaded.
    #[error("TLS setup: {0}")]
    Tls(String),
    /// The TLS handshake failed (the server's certificate did not verify).
    #[error("TLS with Vault at {0}")]
    Handshake(String),
}

impl VaultError {
    /// True when retrying later may help.
    pub fn is_transient(&self) -> bool {
        match self {
            // A standby may become active, a load balancer may route elsewhere.
            VaultError::Unreachable { .. } | VaultError::Redirect { .. } => true,
            VaultError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// True when the token itself may be what Vault rejected: 403, or an
    /// "invalid token" / "bad token" answer. Whether the token is really gone is
    /// for a lookup to tell (a 403 is also a policy's answer).
    pub fn may_be_token_loss(&self) -> bool {
        match self {
            VaultError::Denied { .. } => true,
            VaultError::Status { detail, .. } | VaultError::BadResponse { detail, .. } => {
                let d = detail.to_ascii_lowercase();
                d.contains("invalid token") || d.contains("bad token")
            }
            _ => false,
        }
    }

    /// The event outcome for this error.
    pub fn outcome(&self) -> Outcome {
        match self {
            VaultError::Denied { .. } => Outcome::Denied(self.to_string()),
            _ => Outcome::Error(self.to_string()),
        }
    }
}

/// A Vault token. `Debug` hides it.
#[derive(Clone)]
pub struct Token(pub Zeroizing<String>);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(..)")
    }
}

/// A JSON answer from Vault. Holds secrets: `Debug` hides the body, and the
/// parsed value's strings are zeroed when freed by the zero-on-free allocator.
pub struct Answer(pub Value);

impl fmt::Debug for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Answer(..)")
    }
}

/// The client.
pub struct VaultClient {
    agent: ureq::Agent,
    /// The settings it was built from, for a client with a login identity.
    cfg: VaultConfig,
    /// Base URL used for requests (host replaced by `tls_server_name` when set).
    base: String,
    /// The configured address, for messages.
    address: String,
    namespace: Option<String>,
    token: Option<Token>,
    /// Every request ends by then (shutdown): its timeout is what is left.
    deadline: Option<Instant>,
    /// `[vault] timeout`.
    timeout: Duration,
}

impl fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultClient")
            .field("address", &self.address)
            .field("has_token", &self.token.is_some())
            .finish()
    }
}

/// Sends requests for `tls_server_name` to the configured address's host, so the
/// certificate is checked against the name while the connection goes to the address.
struct SniResolver {
    name: String,
    target_host: String,
}

impl ureq::Resolver for SniResolver {
    fn resolve(&self, netloc: &str) -> std::io::Result<Vec<SocketAddr>> {
        let (host, port) = netloc.rsplit_once(':').unwrap_or((netloc, "443"));
        let host = if host == self.name {
            self.target_host.as_str()
        } else {
            host
        };
        format!("{host}:{port}")
            .to_socket_addrs()
            .map(|a| a.collect())
    }
}

impl VaultClient {
    /// Builds a client from `[vault]`.
    pub fn new(cfg: &VaultConfig) -> Result<Self, VaultError> {
        Self::build(cfg, None)
    }

    /// A client with the same settings that presents `identity` as its TLS client
    /// certificate (cert login); it holds no token.
    pub fn with_identity(&self, identity: &Identity) -> Result<Self, VaultError> {
        Self::build(&self.cfg, Some(identity))
    }

    fn build(cfg: &VaultConfig, identity: Option<&Identity>) -> Result<Self, VaultError> {
        let mut builder = ureq::AgentBuilder::new()
            .timeout(cfg.timeout)
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            .redirects(0);
        if let Some(tls) =
            pem::client_config(cfg.ca_cert.as_deref(), identity).map_err(VaultError::Tls)?
        {
            builder = builder.tls_config(Arc::new(tls));
        }
        let mut base = cfg.address.clone();
        if let Some(name) = &cfg.tls_server_name {
            let (scheme, rest) = cfg.address.split_once("://").unwrap_or(("https", ""));
            let (hostport, tail) = rest.split_once('/').unwrap_or((rest, ""));
            let (host, port) = match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), format!(":{p}")),
                None => (hostport.to_string(), String::new()),
            };
            base = format!(
                "{scheme}://{name}{port}{}{tail}",
                if tail.is_empty() { "" } else { "/" }
            );
            builder = builder.resolver(SniResolver {
                name: name.clone(),
                target_host: host,
            });
        }
        Ok(VaultClient {
            agent: builder.build(),
            cfg: cfg.clone(),
            base,
            address: cfg.address.clone(),
            namespace: cfg.namespace.clone(),
            token: None,
            deadline: None,
            timeout: cfg.timeout,
        })
    }

    /// Uses `token` for the following requests.
    pub fn set_token(&mut self, token: Option<Token>) {
        if let Some(t) = &token {
            // HTTP libraries log request headers at debug level.
            crate::logging::add_credential(t.0.as_bytes());
        }
        self.token = token;
    }

    /// From now on every request gets at most the time left until `deadline`
    /// as its timeout, and none is sent once it has passed (shutdown: the whole
    /// revocation fits `revoke_timeout` however many calls it makes).
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// The token in use.
    pub fn token(&self) -> Option<&Token> {
        self.token.as_ref()
    }

    /// One request. `operation` names it in events and errors; `path` is the API
    /// path after `/v1/`. Returns None for 204 No Content.
    pub fn request(
        &self,
        operation: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Answer>, VaultError> {
        let start = Instant::now();
        let result = self.send(operation, method, path, body);
        let outcome = match &result {
            Ok(_) => Outcome::Ok,
            Err(e) => e.outcome(),
        };
        events::emit(Event::VaultRequest {
            operation,
            duration: start.elapsed(),
            outcome,
        });
        result
    }

    fn send(
        &self,
        operation: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Answer>, VaultError> {
        let encoded =
            super::path::encode(path).map_err(|e| VaultError::BadPath(e, operation.to_string()))?;
        let url = format!("{}/v1/{encoded}", self.base);
        let mut req = self.agent.request(method, &url);
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(VaultError::Unreachable {
                    address: self.address.clone(),
                    operation: operation.to_string(),
                    path: path.to_string(),
                    detail: "the shutdown deadline has passed".to_string(),
                });
            }
            req = req.timeout(left.min(self.timeout));
        }
        if let Some(t) = &self.token {
            req = req.set("X-Vault-Token", &t.0);
        }
        if let Some(ns) = &self.namespace {
            req = req.set("X-Vault-Namespace", ns);
        }
        let sent = match body {
            Some(b) => {
                let bytes = Zeroizing::new(serde_json::to_vec(b).unwrap_or_default());
                req.set("Content-Type", "application/json")
                    .send_bytes(&bytes)
            }
            None => req.call(),
        };
        let ctx = |detail: String| (operation.to_string(), path.to_string(), detail);
        let response = match sent {
            Ok(r) => r,
            Err(ureq::Error::Status(status, r)) => {
                let detail = error_strings(r);
                let (operation, path, detail) = ctx(detail);
                return Err(match status {
                    403 => VaultError::Denied {
                        operation,
                        path,
                        detail,
                    },
                    404 => VaultError::NotFound { operation, path },
                    _ => VaultError::Status {
                        operation,
                        path,
                        status,
                        detail,
                    },
                });
            }
            Err(ureq::Error::Transport(t)) => {
                // A certificate that does not verify will not verify on a retry.
                if let Some(tls) = rustls_error(&t) {
                    return Err(VaultError::Handshake(format!(
                        "{} ({operation} {path}): {tls}",
                        self.address
                    )));
                }
                let (operation, path, detail) = ctx(t.to_string());
                return Err(VaultError::Unreachable {
                    address: self.address.clone(),
                    operation,
                    path,
                    detail,
                });
            }
        };
        // Vault documents 200 (with a body) and 204 as its only successes; ureq
        // hands back everything below 400, redirects included (not followed).
        match response.status() {
            200 => {}
            204 => return Ok(None),
            status @ 300..=399 => {
                let location = response
                    .header("Location")
                    .map_or_else(|| "nowhere (no Location)".to_string(), location_origin);
                let (operation, path, _) = ctx(String::new());
                return Err(VaultError::Redirect {
                    operation,
                    path,
                    status,
                    location,
                });
            }
            status => {
                let (operation, path, detail) = ctx(format!(
                    "{} is not a documented success (200 or 204)",
                    status
                ));
                return Err(VaultError::Status {
                    operation,
                    path,
                    status,
                    detail,
                });
            }
        }
        let mut buf = Zeroizing::new(Vec::with_capacity(4096));
        response
            .into_reader()
            .take(16 << 20)
            .read_to_end(&mut buf)
            .map_err(|e| {
                let (operation, path, detail) = ctx(e.to_string());
                VaultError::Unreachable {
                    address: self.address.clone(),
                    operation,
                    path,
                    detail,
                }
            })?;
        if buf.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let value: Value = serde_json::from_slice(&buf).map_err(|_| {
            let (operation, path, detail) = ctx("the body is not JSON".to_string());
            VaultError::BadResponse {
                operation,
                path,
                detail,
            }
        })?;
        Ok(Some(Answer(value)))
    }
}

/// `scheme://host[:port]` of a redirect's `Location`: enough to name the
/// standby or balancer, without any user info, path or query it carries.
fn location_origin(location: &str) -> String {
    let (scheme, rest) = match location.split_once("://") {
        Some((s, r)) if s.bytes().all(|b| b.is_ascii_alphanumeric()) => (s, r),
        _ => return "a relative location".to_string(),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let clean = |t: &str| {
        t.chars()
            .filter(|c| c.is_ascii_graphic())
            .collect::<String>()
    };
    format!("{}://{}", clean(scheme), clean(host))
}

/// The rustls error under a transport error, if the TLS handshake failed.
fn rustls_error(t: &ureq::Transport) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(t);
    while let Some(c) = cause {
        if let Some(e) = c.downcast_ref::<rustls::Error>() {
            return Some(e.to_string());
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            if let Some(e) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return Some(e.to_string());
            }
        }
        cause = c.source();
    }
    None
}

/// Vault's `{"errors": [...]}` joined; never anything else from the body.
fn error_strings(r: ureq::Response) -> String {
    let mut buf = Zeroizing::new(Vec::new());
    let _ = r.into_reader().take(64 << 10).read_to_end(&mut buf);
    let errors: Vec<String> = serde_json::from_slice::<Value>(&buf)
        .ok()
        .and_then(|v| v.get("errors").cloned())
        .and_then(|e| serde_json::from_value(e).ok())
        .unwrap_or_default();
    if errors.is_empty() {
        "no error message".to_string()
    } else {
        errors.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::net::TcpListener;

    use super::*;

    /// A client of a server on 127.0.0.1 that answers every request with
    /// `response`, holding a token.
    fn client_answered(response: &'static str) -> VaultClient {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(response.as_bytes());
            }
        });
        let mut c = VaultClient::new(&VaultConfig {
            address: format!("http://{addr}"),
            ca_cert: None,
            tls_server_name: None,
            namespace: None,
            timeout: Duration::from_secs(10),
        })
        .unwrap();
        c.set_token(Some(Token(Zeroizing::new("s.unit-test-token-x1".into()))));
        c
    }

    #[test]
    fn only_200_and_204_are_successes() {
        let redirect = client_answered(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: https://standby:8200/v1/sys/leases/revoke\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        let e = redirect
            .request("lease_revoke", "PUT", "sys/leases/revoke", None)
            .unwrap_err();
        assert!(matches!(e, VaultError::Redirect { status: 307, .. }), "{e}");
        assert!(e.is_transient());
        let text = e.to_string();
        assert!(
            text.contains("307 redirecting to https://standby:8200")
                && text.contains("lease_revoke sys/leases/revoke")
                && !text.contains("unit-test-token"),
            "{text}"
        );
        let accepted = client_answered(
            "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        );
        let e = accepted
            .request("token_revoke", "POST", "auth/token/revoke-self", None)
            .unwrap_err();
        assert!(matches!(e, VaultError::Status { status: 202, .. }), "{e}");
        assert!(e.to_string().contains("not a documented success"), "{e}");
        let no_content = client_answered("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        assert!(no_content
            .request("token_revoke", "POST", "auth/token/revoke-self", None)
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_redirect_is_named_by_its_origin_only() {
        assert_eq!(
            location_origin("https://u:pw@standby.example:8200/v1/sys/leases/revoke?token=x"),
            "https://standby.example:8200"
        );
        assert_eq!(
            location_origin("/v1/auth/token/revoke-self"),
            "a relative location"
        );
    }
}
