//! The http and vault gateways: an HTTP/1.1 listener (hyper on a small tokio
//! runtime of its own) forwarding each request to one upstream with the
//! credential added. The request path rule is in `path`, the credential
//! headers in `headers`, the upstream connections in `upstream`, one request
//! in `forward`; the vault kind's own rules are in `super::vault`.

mod counted;
mod forward;
pub mod headers;
mod login;
pub mod path;
pub mod upstream;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::runtime::Handle;
use tokio::sync::watch;
use tracing::{debug, error, info, warn};
use zeroize::Zeroizing;

use super::stats::{ErrorKind, OpenConn, Stats};
use super::stream::Listener;
use super::vault::leases::Leases;
use super::workers::Workers;
use super::{Credentials, GatewayError};
use crate::config::{ForwardSpec, GatewayKind, GatewaySpec, OutputConfig, PathGlob};
use headers::Renderer;
use upstream::Upstream;

/// Threads of a gateway (each its own runtime): the machine's two cores.
const WORKERS: usize = 2;
/// A client that has not sent its request headers by then is dropped.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client over `max_connections` has to send its request before
/// it is dropped without its 503.
const REFUSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long stopping waits for the leases' revocation.
const REVOKE_WAIT: Duration = Duration::from_secs(5);

/// What every request of one gateway shares.
#[derive(Debug)]
pub struct Context {
    /// The gateway's name (logs, errors).
    pub name: String,
    /// Its kind: http or vault.
    pub kind: GatewayKind,
    /// Kind http: the secret its headers are rendered from (audit records);
    /// empty for vault, whose credential is the agent's token.
    pub secret: String,
    /// Where requests go.
    pub upstream: Upstream,
    /// The local token TCP clients must give.
    pub token: Zeroizing<String>,
    /// The current credentials (secret values, the agent's Vault token).
    pub credentials: Arc<Credentials>,
    /// Kind http: the headers added.
    pub headers: Option<Renderer>,
    /// Kind vault: the paths allowed.
    pub paths: Vec<PathGlob>,
    /// Kind vault: the agent's namespace.
    pub namespace: Option<String>,
    /// Kind vault: the agent's token as a header.
    pub token_header: super::vault::TokenHeader,
    /// Kind vault: the leases obtained through it.
    pub leases: Arc<Leases>,
    /// Its metrics, as every kind's (gateway/stats.rs).
    pub counters: Arc<Stats>,
    /// Client connections open at once; more get 503.
    pub max_connections: u64,
}

/// A running http or vault gateway; [`Served::stop`] ends it.
#[derive(Debug)]
pub struct Served {
    name: String,
    ctx: Arc<Context>,
    workers: Option<Workers>,
    stop: watch::Sender<bool>,
    files: Vec<PathBuf>,
    dir: Option<PathBuf>,
}

enum Bound {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

/// Starts an http or vault gateway.
pub fn start(
    spec: &GatewaySpec,
    forward: &ForwardSpec,
    output: &OutputConfig,
    credentials: &Arc<Credentials>,
) -> Result<Served, GatewayError> {
    let upstream = Upstream::new(&forward.url, forward.ca_cert.as_deref()).map_err(|e| {
        GatewayError::Upstream {
            gateway: spec.name.clone(),
            problem: e.to_string(),
        }
    })?;
    let headers = (spec.kind == GatewayKind::Http).then(|| Renderer::new(&spec.secret, forward));
    if let Some(h) = &headers {
        h.current(credentials).map_err(|e| GatewayError::Headers {
            gateway: spec.name.clone(),
            problem: e.to_string(),
        })?;
    }
    let mut files = Vec::new();
    let (bound, created_dir) = super::bind(spec, &format!("{}.sock", spec.name))?;
    let bound = match bound {
        Listener::Tcp(l) => Bound::Tcp(l),
        Listener::Unix(l, path) => {
            files.push(path);
            Bound::Unix(l)
        }
    };
    let (token, token_path) = super::local_secret(spec, output)?;
    files.push(token_path);
    let cleanup = |files: &[PathBuf]| {
        for f in files {
            let _ = std::fs::remove_file(f);
        }
    };
    let workers = Workers::start(WORKERS, &format!("gateway-{}", spec.name)).map_err(|source| {
        cleanup(&files);
        GatewayError::Thread {
            gateway: spec.name.clone(),
            source,
        }
    })?;
    let leases = match spec.kind {
        GatewayKind::Vault => {
            let (file, adopted) = credentials.leases_of(&spec.name);
            let leases = Leases::new(&spec.name, file);
            leases.adopt(adopted, std::time::Instant::now());
            leases
        }
        _ => Leases::default(),
    };
    let ctx = Arc::new(Context {
        name: spec.name.clone(),
        kind: spec.kind,
        secret: spec.secret.clone(),
        upstream,
        token,
        credentials: credentials.clone(),
        headers,
        paths: forward.paths.clone(),
        namespace: forward.namespace.clone(),
        token_header: Default::default(),
        leases: Arc::new(leases),
        counters: {
            let s = super::stats::for_gateway(&spec.name);
            s.per_request
                .store(true, std::sync::atomic::Ordering::Relaxed);
            s
        },
        max_connections: u64::from(spec.max_connections),
    });
    let (stop, stopped) = watch::channel(false);
    let handles = workers.handles().to_vec();
    let first = handles[0].clone();
    let accepting = {
        let _enter = first.enter();
        match bound {
            Bound::Tcp(l) => l
                .set_nonblocking(true)
                .and_then(|()| tokio::net::TcpListener::from_std(l))
                .map(|l| first.spawn(accept_tcp(l, ctx.clone(), handles, stopped.clone()))),
            Bound::Unix(l) => l
                .set_nonblocking(true)
                .and_then(|()| tokio::net::UnixListener::from_std(l))
                .map(|l| first.spawn(accept_unix(l, ctx.clone(), handles, stopped.clone()))),
        }
    };
    if let Err(e) = accepting {
        cleanup(&files);
        return Err(GatewayError::Listen {
            gateway: spec.name.clone(),
            listen: spec.listen.to_string(),
            source: e,
        });
    }
    if spec.kind == GatewayKind::Vault {
        first.spawn(super::vault::keeper::renew(ctx.clone(), stopped));
    }
    info!(gateway = %spec.name, listen = ?spec.listen, upstream = %forward.url, "gateway listening");
    Ok(Served {
        name: spec.name.clone(),
        ctx,
        workers: Some(workers),
        stop,
        files,
        dir: created_dir,
    })
}

impl Served {
    /// Stops accepting, revokes the leases obtained through it (vault), drops
    /// every connection, removes its files.
    pub fn stop(&mut self) {
        let Some(mut workers) = self.workers.take() else {
            return;
        };
        let _ = self.stop.send(true);
        if self.ctx.kind == GatewayKind::Vault {
            revoke_leases(&self.ctx);
        }
        // Dropping the workers' tasks closes every connection.
        workers.stop();
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir(d);
        }
        info!(gateway = %self.name, "gateway stopped");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Revokes the vault gateway's leases (bounded by `REVOKE_WAIT`) on a runtime
/// of its own, while the workers still serve the open connections.
fn revoke_leases(ctx: &Arc<Context>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            error!(gateway = %ctx.name, error = %e, "cannot revoke the gateway's leases; the agent's token revocation ends them");
            return;
        }
    };
    runtime.block_on(async {
        if tokio::time::timeout(REVOKE_WAIT, super::vault::keeper::revoke_all(ctx))
            .await
            .is_err()
        {
            error!(gateway = %ctx.name, "revoking the gateway's leases timed out; the agent's token revocation ends them");
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
}

/// A client connection accepted, before it is registered with the worker
/// that serves it.
enum Accepted {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

async fn accept_tcp(
    l: tokio::net::TcpListener,
    ctx: Arc<Context>,
    workers: Vec<Handle>,
    mut stop: watch::Receiver<bool>,
) {
    let mut turn = 0;
    loop {
        tokio::select! {
            conn = l.accept() => match conn {
                Ok((s, _)) => {
                    let _ = s.set_nodelay(true);
                    let to_std = |s: tokio::net::TcpStream| s.into_std().map(Accepted::Tcp);
                    hand_over(s, to_std, &workers, &mut turn, &ctx);
                }
                Err(e) => accept_failed(&ctx, &e).await,
            },
            _ = stop.changed() => return,
        }
    }
}

async fn accept_unix(
    l: tokio::net::UnixListener,
    ctx: Arc<Context>,
    workers: Vec<Handle>,
    mut stop: watch::Receiver<bool>,
) {
    let mut turn = 0;
    loop {
        tokio::select! {
            conn = l.accept() => match conn {
                Ok((s, _)) => {
                    let to_std = |s: tokio::net::UnixStream| s.into_std().map(Accepted::Unix);
                    hand_over(s, to_std, &workers, &mut turn, &ctx);
                }
                Err(e) => accept_failed(&ctx, &e).await,
            },
            _ = stop.changed() => return,
        }
    }
}

/// Refuses a new connection over `max_connections` (on this runtime), or
/// hands it to the next worker in turn.
fn hand_over<S>(
    stream: S,
    to_std: impl FnOnce(S) -> std::io::Result<Accepted>,
    workers: &[Handle],
    turn: &mut usize,
    ctx: &Arc<Context>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    if refused(ctx) {
        tokio::spawn(refuse_full(stream, ctx.clone()));
        return;
    }
    match to_std(stream) {
        Ok(s) => admit(s, &workers[*turn % workers.len()], ctx),
        Err(e) => warn!(gateway = %ctx.name, error = %e, "cannot hand a connection over"),
    }
    *turn = turn.wrapping_add(1);
}

async fn accept_failed(ctx: &Context, e: &std::io::Error) {
    // Out of descriptors and the like: do not spin on it.
    warn!(gateway = %ctx.name, error = %e, "accept failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Whether a new client connection is over `max_connections` (counted in
/// `admit`: only the accept task opens, so the check cannot race).
fn refused(ctx: &Context) -> bool {
    if ctx.counters.open.load(std::sync::atomic::Ordering::SeqCst) < ctx.max_connections {
        return false;
    }
    ctx.counters.error(ErrorKind::TooManyConnections);
    warn!(gateway = %ctx.name, max_connections = ctx.max_connections, "too many connections; refusing one");
    true
}

/// Serves a new client connection on `worker`'s runtime, where its socket is
/// registered and its upstream connection will be opened.
fn admit(accepted: Accepted, worker: &Handle, ctx: &Arc<Context>) {
    let open = OpenConn::new(&ctx.counters);
    let ctx = ctx.clone();
    worker.spawn(async move {
        let unregistered = match accepted {
            Accepted::Tcp(s) => match tokio::net::TcpStream::from_std(s) {
                Ok(s) => {
                    serve(s, false, ctx.clone()).await;
                    None
                }
                Err(e) => Some(e),
            },
            Accepted::Unix(s) => match tokio::net::UnixStream::from_std(s) {
                Ok(s) => {
                    serve(s, true, ctx.clone()).await;
                    None
                }
                Err(e) => Some(e),
            },
        };
        if let Some(e) = unregistered {
            warn!(gateway = %ctx.name, error = %e, "cannot register a connection");
        }
        drop(open);
    });
}

/// Over `max_connections`: the client's request is read (bounded) and
/// answered `503 Service Unavailable` with `Retry-After`, then the connection
/// closes, as an overloaded HTTP server answers.
async fn refuse_full<S>(stream: S, ctx: Arc<Context>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let answer_ctx = ctx.clone();
    let service = hyper::service::service_fn(move |_req| {
        let mut r = forward::error_answer(
            &answer_ctx,
            hyper::StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "too many connections (max_connections = {})",
                answer_ctx.max_connections
            ),
        );
        r.headers_mut().insert(
            hyper::header::RETRY_AFTER,
            hyper::header::HeaderValue::from_static("1"),
        );
        async move { Ok::<_, std::convert::Infallible>(r) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(REFUSE_TIMEOUT)
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service);
    if tokio::time::timeout(REFUSE_TIMEOUT, conn).await.is_err() {
        debug!(gateway = %ctx.name, "a refused client sent no request in time");
    }
}

/// One client connection: HTTP/1.1 with keep-alive; its requests reuse one
/// upstream connection while both stay open.
async fn serve<S>(stream: S, local: bool, ctx: Arc<Context>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let conn = Arc::new(forward::Connection::new(ctx.clone(), local));
    let service = hyper::service::service_fn(move |req| {
        let conn = conn.clone();
        async move { Ok::<_, std::convert::Infallible>(conn.handle(req).await) }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .await;
    if let Err(e) = served {
        // hyper has answered garbage with 400 (431, 414) already.
        if e.is_parse() || e.is_parse_too_large() {
            ctx.counters.error(ErrorKind::Protocol);
        }
        debug!(gateway = %ctx.name, error = %e, "client connection ended");
    }
}
