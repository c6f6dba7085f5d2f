//! One request through an http or vault gateway: the client's local token,
//! the path rule, the headers swapped, the upstream's answer streamed back.
//! Errors are plain answers (403, 502, 504) naming the gateway, never a value.

use std::borrow::Cow;
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
use super::login::{Answered, Logins, Used};
use super::upstream::{Body, UpstreamError};
use super::Context;
use crate::config::GatewayKind;
use crate::gateway::stats::ErrorKind;
use crate::gateway::vault;

/// How long the upstream may take to answer once the request is sent.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(300);
/// The largest Vault answer read whole (to find its lease).
const MAX_VAULT_ANSWER: usize = 32 << 20;

const X_VAULT_TOKEN: HeaderName = HeaderName::from_static("x-vault-token");
const X_VAULT_NAMESPACE: HeaderName = HeaderName::from_static("x-vault-namespace");
const X_VAULT_WRAP_TTL: HeaderName = HeaderName::from_static("x-vault-wrap-ttl");

/// One client connection's state: its upstream connection.
#[derive(Debug)]
pub struct Connection {
    ctx: Arc<Context>,
    /// Over the Unix socket: its directory's permissions were the check.
    local: bool,
    upstream: Mutex<Slot>,
}

/// The upstream side of one client connection.
#[derive(Debug, Default)]
struct Slot {
    sender: Option<SendRequest<Body>>,
    /// Upstream connections opened so far (the current one's number).
    opened: u64,
    logins: Logins,
}

impl Connection {
    /// A connection of the gateway `ctx`.
    pub fn new(ctx: Arc<Context>, local: bool) -> Connection {
        Connection {
            ctx,
            local,
            upstream: Mutex::new(Slot::default()),
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
        let rewritten = match super::path::normalise(req.uri().path(), &ctx.upstream.url.base_path)
        {
            Ok(Cow::Borrowed(_)) => None,
            Ok(Cow::Owned(p)) => Some(p),
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
        let path = rewritten.as_deref().unwrap_or(req.uri().path());
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
        let Some(uri) = upstream_target(parts.uri, rewritten) else {
            return refuse(
                ctx,
                ErrorKind::Protocol,
                StatusCode::BAD_REQUEST,
                "bad request target",
            );
        };
        let mut headers = parts.headers;
        let used = match self.swap_headers(&mut headers) {
            Ok(used) => used,
            Err(e) => {
                warn!(gateway = %ctx.name, error = %e, "cannot add the credential");
                return refuse(
                    ctx,
                    ErrorKind::NoCredential,
                    StatusCode::BAD_GATEWAY,
                    "the gateway holds no usable credential",
                );
            }
        };
        let counted = Counted::new(body, ctx.counters.clone(), Direction::Received);
        let mut out = Request::new(counted.boxed());
        *out.method_mut() = parts.method;
        *out.uri_mut() = uri;
        *out.headers_mut() = headers;
        let answer = match self.send(out, &used).await {
            Ok(a) => a,
            Err((status, why)) => {
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
    fn swap_headers(&self, headers: &mut HeaderMap) -> Result<Used, String> {
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
                let v = ctx
                    .token_header
                    .of(&token)
                    .map_err(|_| "bad token".to_string())?;
                headers.insert(X_VAULT_TOKEN, v);
                if let Some(ns) = &ctx.namespace {
                    if !headers.contains_key(X_VAULT_NAMESPACE) {
                        let v = HeaderValue::from_str(ns).map_err(|e| e.to_string())?;
                        headers.insert(X_VAULT_NAMESPACE, v);
                    }
                }
                Ok(Used::Token(token))
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
                Ok(Used::Document(rendered.from.clone()))
            }
        }
    }

    /// Sends on this connection's upstream connection (a new one when there
    /// is none or it closed), and counts (audits) it as a login with `used`.
    async fn send(
        &self,
        req: Request<Body>,
        used: &Used,
    ) -> Result<Response<Incoming>, (StatusCode, String)> {
        let mut slot = self.upstream.lock().await;
        let slot = &mut *slot;
        let sent = self.send_on(slot, req).await;
        let answered = match &sent {
            Ok(a) => Answered::Status(a.status()),
            Err((_, why)) => Answered::Failed(why.clone()),
        };
        slot.logins.record(&self.ctx, slot.opened, used, &answered);
        sent
    }

    async fn send_on(
        &self,
        slot: &mut Slot,
        req: Request<Body>,
    ) -> Result<Response<Incoming>, (StatusCode, String)> {
        let reused = match slot.sender.take() {
            Some(mut s) if !s.is_closed() => s.ready().await.ok().map(|()| s),
            _ => None,
        };
        let mut sender = match reused {
            Some(s) => s,
            None => {
                let s = self.ctx.upstream.connect().await.map_err(|e| match e {
                    UpstreamError::Timeout => (StatusCode::GATEWAY_TIMEOUT, e.to_string()),
                    e => (StatusCode::BAD_GATEWAY, e.to_string()),
                })?;
                slot.opened += 1;
                s
            }
        };
        let answer = tokio::time::timeout(ANSWER_TIMEOUT, sender.send_request(req)).await;
        match answer {
            Err(_) => Err((StatusCode::GATEWAY_TIMEOUT, "no answer in time".into())),
            Ok(Err(e)) => Err((StatusCode::BAD_GATEWAY, e.to_string())),
            Ok(Ok(r)) => {
                slot.sender = Some(sender);
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

/// Equality whose time does not depend on where the inputs differ. Only a
/// length difference returns early, and the token's length is public (64 hex
/// digits): a per-request hash of both sides, as before, cost more than the
/// rest of the check.
fn same(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

/// Headers about one hop, never forwarded (RFC 9110 7.6.1), and the local
/// token's header.
static HOP_BY_HOP: [HeaderName; 10] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::EXPECT,
];

/// Removes the hop-by-hop headers and those `Connection` lists. One pass over
/// the message's few headers finds which are there, so the common message
/// (none, or `Connection: keep-alive`) costs no removal by name.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let mut present = 0u16;
    for name in headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|h| h == name) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    // Bit 0 is `Connection`: the names it lists go too (not its own options).
    let listed: Vec<HeaderName> = if present & 1 == 0 {
        Vec::new()
    } else {
        headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|n| !n.eq_ignore_ascii_case("keep-alive") && !n.eq_ignore_ascii_case("close"))
            .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
            .collect()
    };
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
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

/// What is sent upstream as the request target: the client's own when its
/// path needed no normalising (origin form: a path and query, parsed once),
/// else the normalised path with the client's query.
fn upstream_target(client: Uri, normalised: Option<String>) -> Option<Uri> {
    if normalised.is_none() && client.scheme().is_none() && client.authority().is_none() {
        return Some(client);
    }
    let path = normalised.as_deref().unwrap_or(client.path());
    let target = match client.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    target.parse().ok()
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
        // Only `Connection: keep-alive` (the common answer): it goes, the rest stays.
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.keys().collect::<Vec<_>>(), vec![header::CONTENT_TYPE]);
    }

    #[test]
    fn the_target_sent_is_origin_form_with_the_clients_query() {
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert_eq!(
            upstream_target(uri("/a/b?x=1"), None),
            Some(uri("/a/b?x=1"))
        );
        assert_eq!(
            upstream_target(uri("/a//b?x=1"), Some("/a/b".into())),
            Some(uri("/a/b?x=1"))
        );
        // An absolute-form target loses its scheme and authority.
        let sent = upstream_target(uri("http://elsewhere/a?q"), None).unwrap();
        assert_eq!((sent.authority(), sent.to_string()), (None, "/a?q".into()));
    }
}
