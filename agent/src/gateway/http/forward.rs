//! One request through an http or vault gateway: the client's local token,
//! the path rule, the headers swapped, the upstream's answer streamed back.
//! Errors are plain answers (403, 502, 504) naming the gateway, never a value.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri};
use tokio::sync::Mutex;
use tracing::warn;

use super::counted::{Counted, Direction};
use super::upstream::{Body, UpstreamError};
use super::Context;
use crate::config::GatewayKind;
use crate::gateway::stats::{ErrorKind, LoginResult};
use crate::gateway::vault;

/// How long the upstream may take to answer once the request is sent.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(300);
/// The largest Vault answer read whole (to find its lease).
const MAX_VAULT_ANSWER: usize = 32 << 20;

const X_VAULT_TOKEN: HeaderName = HeaderName::from_static("x-vault-token");
const X_VAULT_NAMESPACE: HeaderName = HeaderName::from_static("x-vault-namespace");
const X_VAULT_WRAP_TTL: HeaderName = HeaderName::from_static("x-vault-wrap-ttl");

/// Headers about one hop, never forwarded (RFC 9110 7.6.1), and the local
/// token's header.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
];

/// One client connection's state: its upstream connection.
#[derive(Debug)]
pub struct Connection {
    ctx: Arc<Context>,
    /// Over the Unix socket: its directory's permissions were the check.
    local: bool,
    upstream: Mutex<Option<SendRequest<Body>>>,
}

impl Connection {
    /// A connection of the gateway `ctx`.
    pub fn new(ctx: Arc<Context>, local: bool) -> Connection {
        Connection {
            ctx,
            local,
            upstream: Mutex::new(None),
        }
    }

    /// Answers one request.
    pub async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let ctx = &self.ctx;
        ctx.counters.requests.fetch_add(1, Ordering::Relaxed);
        if !self.local && !authorized(ctx, req.headers()) {
            warn!(gateway = %ctx.name, "a request without the gateway's local token");
            return match ctx.kind {
                // As Vault answers a missing or bad token.
                GatewayKind::Vault => refuse(
                    ctx,
                    ErrorKind::LocalAuth,
                    StatusCode::FORBIDDEN,
                    "permission denied (give the gateway's local token as the Vault token)",
                ),
                _ => refuse(
                    ctx,
                    ErrorKind::LocalAuth,
                    StatusCode::UNAUTHORIZED,
                    "missing or wrong local token (Proxy-Authorization: Bearer <token file>)",
                ),
            };
        }
        let path = match super::path::normalise(req.uri().path(), &ctx.upstream.url.base_path) {
            Ok(p) => p,
            Err(e) => {
                warn!(gateway = %ctx.name, reason = %e, "request path refused");
                return refuse(
                    ctx,
                    ErrorKind::Forbidden,
                    StatusCode::FORBIDDEN,
                    &e.to_string(),
                );
            }
        };
        // Kind vault: the API path, which a lease obtained is recorded with.
        let mut api_path = String::new();
        if ctx.kind == GatewayKind::Vault {
            let api = path.strip_prefix("/v1/").unwrap_or("");
            api_path = api.trim_end_matches('/').to_string();
            if !vault::policy::allows(&ctx.paths, &api_path) {
                warn!(gateway = %ctx.name, path = %path, "Vault path not allowed");
                return refuse(
                    ctx,
                    ErrorKind::Forbidden,
                    StatusCode::FORBIDDEN,
                    "permission denied",
                );
            }
        }
        let (parts, body) = req.into_parts();
        let target = match parts.uri.query() {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        let Ok(uri) = target.parse::<Uri>() else {
            return refuse(
                ctx,
                ErrorKind::Protocol,
                StatusCode::BAD_REQUEST,
                "bad request target",
            );
        };
        let mut headers = parts.headers;
        if let Err(e) = self.swap_headers(&mut headers) {
            warn!(gateway = %ctx.name, error = %e, "cannot add the credential");
            return refuse(
                ctx,
                ErrorKind::NoCredential,
                StatusCode::BAD_GATEWAY,
                "the gateway holds no usable credential",
            );
        }
        let counted = Counted::new(body, ctx.counters.clone(), Direction::Received);
        let mut out = Request::new(counted.boxed());
        *out.method_mut() = parts.method;
        *out.uri_mut() = uri;
        *out.headers_mut() = headers;
        let answer = match self.send(out).await {
            Ok(a) => {
                ctx.counters.login(login_result(a.status()));
                a
            }
            Err((status, why)) => {
                ctx.counters.login(LoginResult::Error);
                warn!(gateway = %ctx.name, error = %why, "upstream request failed");
                let text = if status == StatusCode::GATEWAY_TIMEOUT {
                    "the upstream did not answer in time"
                } else {
                    "the upstream cannot be reached"
                };
                return refuse(ctx, ErrorKind::Upstream, status, text);
            }
        };
        let (mut parts, body) = answer.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        if ctx.kind == GatewayKind::Vault && is_json(&parts.headers) {
            return self.record_lease(parts, body, &api_path).await;
        }
        let counted = Counted::new(body, ctx.counters.clone(), Direction::Sent);
        Response::from_parts(parts, counted.boxed())
    }

    /// Removes the client's hop-by-hop headers and its versions of the
    /// credential headers, then adds the gateway's.
    fn swap_headers(&self, headers: &mut HeaderMap) -> Result<(), String> {
        let ctx = &self.ctx;
        strip_hop_by_hop(headers);
        headers.insert(header::HOST, ctx.upstream.host.clone());
        match ctx.kind {
            GatewayKind::Vault => {
                headers.remove(X_VAULT_TOKEN);
                // A wrapped answer would hide its lease from the gateway.
                headers.remove(X_VAULT_WRAP_TTL);
                let token = ctx
                    .credentials
                    .token()
                    .ok_or_else(|| "the agent holds no Vault token".to_string())?;
                let mut v = HeaderValue::from_str(&token.0).map_err(|_| "bad token".to_string())?;
                v.set_sensitive(true);
                headers.insert(X_VAULT_TOKEN, v);
                if let Some(ns) = &ctx.namespace {
                    if !headers.contains_key(X_VAULT_NAMESPACE) {
                        let v = HeaderValue::from_str(ns).map_err(|e| e.to_string())?;
                        headers.insert(X_VAULT_NAMESPACE, v);
                    }
                }
            }
            _ => {
                let Some(r) = &ctx.headers else {
                    return Err("no headers configured".into());
                };
                for name in r.names() {
                    headers.remove(name);
                }
                let rendered = r.current(&ctx.credentials).map_err(|e| e.to_string())?;
                for (name, value) in &rendered.values {
                    headers.insert(name.clone(), value.clone());
                }
            }
        }
        Ok(())
    }

    /// Sends on this connection's upstream connection (a new one when there
    /// is none or it closed).
    async fn send(&self, req: Request<Body>) -> Result<Response<Incoming>, (StatusCode, String)> {
        let mut slot = self.upstream.lock().await;
        let reused = match slot.take() {
            Some(mut s) if !s.is_closed() => s.ready().await.ok().map(|()| s),
            _ => None,
        };
        let mut sender = match reused {
            Some(s) => s,
            None => self.ctx.upstream.connect().await.map_err(|e| match e {
                UpstreamError::Timeout => (StatusCode::GATEWAY_TIMEOUT, e.to_string()),
                e => (StatusCode::BAD_GATEWAY, e.to_string()),
            })?,
        };
        let answer = tokio::time::timeout(ANSWER_TIMEOUT, sender.send_request(req)).await;
        match answer {
            Err(_) => Err((StatusCode::GATEWAY_TIMEOUT, "no answer in time".into())),
            Ok(Err(e)) => Err((StatusCode::BAD_GATEWAY, e.to_string())),
            Ok(Ok(r)) => {
                *slot = Some(sender);
                Ok(r)
            }
        }
    }

    /// Reads a Vault answer whole, records its lease (obtained through
    /// `api_path`), passes it on; one holding the agent's token is refused.
    async fn record_lease(
        &self,
        parts: hyper::http::response::Parts,
        body: Incoming,
        api_path: &str,
    ) -> Response<Body> {
        let ctx = &self.ctx;
        let bytes = match Limited::new(body, MAX_VAULT_ANSWER).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                warn!(gateway = %ctx.name, error = %e, "cannot read Vault's answer");
                return refuse(
                    ctx,
                    ErrorKind::Upstream,
                    StatusCode::BAD_GATEWAY,
                    "cannot read the upstream's answer",
                );
            }
        };
        // `auth/token/lookup-self` and the like, if listed, answer with the
        // token the gateway added: the workload never gets it.
        let holds_token = ctx.credentials.token().is_some_and(|t| {
            !t.0.is_empty() && memchr::memmem::find(&bytes, t.0.as_bytes()).is_some()
        });
        if holds_token {
            warn!(gateway = %ctx.name, path = %api_path, "Vault's answer holds the agent's token; refused");
            return refuse(
                ctx,
                ErrorKind::Forbidden,
                StatusCode::FORBIDDEN,
                "permission denied (the answer holds the agent's token)",
            );
        }
        if let Some(g) = vault::leases::granted(&bytes) {
            ctx.leases.record(&g, api_path, Instant::now());
        }
        let mut parts = parts;
        parts.headers.remove(header::CONTENT_LENGTH);
        ctx.counters
            .to_client
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Response::from_parts(parts, full(bytes))
    }
}

/// Whether the client gave the local token: `Proxy-Authorization: Bearer`,
/// or for the vault kind as its `X-Vault-Token` (what every Vault SDK sends).
fn authorized(ctx: &Context, headers: &HeaderMap) -> bool {
    let expected = ctx.token.as_bytes();
    let bearer = headers
        .get(header::PROXY_AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
    if bearer.is_some_and(|b| same(b, expected)) {
        return true;
    }
    ctx.kind == GatewayKind::Vault
        && headers
            .get(X_VAULT_TOKEN)
            .is_some_and(|v| same(v.as_bytes(), expected))
}

/// Equality whose time does not depend on where the inputs differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    let (x, y) = (Sha256::digest(a), Sha256::digest(b));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in HOP_BY_HOP {
        headers.remove(*n);
    }
    for n in &listed {
        headers.remove(n);
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

fn full(bytes: Bytes) -> Body {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

/// An upstream's answer as a login: 401 and 403 refuse the credential.
fn login_result(status: StatusCode) -> LoginResult {
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => LoginResult::Refused,
        _ => LoginResult::Ok,
    }
}

/// An error answer, counted by `kind`: Vault's JSON shape for the vault kind,
/// plain text else.
pub(super) fn refuse(
    ctx: &Context,
    kind: ErrorKind,
    status: StatusCode,
    why: &str,
) -> Response<Body> {
    ctx.counters.error(kind);
    error_answer(ctx, status, why)
}

/// An error answer: Vault's JSON shape for the vault kind, plain text else.
pub(super) fn error_answer(ctx: &Context, status: StatusCode, why: &str) -> Response<Body> {
    let message = format!("gateway {}: {why}", ctx.name);
    if ctx.kind == GatewayKind::Vault {
        return vault::error(status, &message);
    }
    let mut r = Response::new(full(Bytes::from(format!("{message}\n"))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_connection_listed_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, x-private"),
        );
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert(
            header::PROXY_AUTHORIZATION,
            HeaderValue::from_static("Bearer t"),
        );
        h.insert(header::EXPECT, HeaderValue::from_static("100-continue"));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"abc", b"ab"));
    }
}
