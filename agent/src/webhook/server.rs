//! HTTPS server: `POST /mutate`, `GET /healthz`, `GET /metrics`. HTTP/2 and
//! HTTP/1.1 over rustls; nothing is served in clear text.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::config::WebhookConfig;
use super::metrics::Metrics;
use super::registry::{Resolved, Resolver};
use super::review;

/// Largest AdmissionReview accepted (the API server's own request limit is 3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections may finish their requests after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What the request handlers share.
#[derive(Debug)]
pub struct App {
    /// Configuration and policy.
    pub config: WebhookConfig,
    /// Metrics.
    pub metrics: Metrics,
    /// Image entrypoints from registries.
    pub resolver: Resolver,
}

/// Accepts connections until `shutdown` resolves, then lets open connections
/// finish their requests (keep-alive connections are closed after the current one)
/// for up to [`DRAIN_TIMEOUT`].
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let service = hyper::service::service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(handle(req, &app).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {DRAIN_TIMEOUT:?}; closing them");
    }
}

async fn handle(req: Request<Incoming>, app: &App) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let path = req.uri().path().to_string();
    let response = match (req.method(), path.as_str()) {
        (&Method::POST, "/mutate") => mutate(req, app).await,
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/metrics") => Response::builder()
            .header("content-type", "text/plain; version=0.0.4")
            .body(Full::new(Bytes::from(app.metrics.render())))
            .expect("static response"),
        (_, "/mutate" | "/healthz" | "/metrics") => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: use POST /mutate, GET /healthz or GET /metrics\n",
        ),
    };
    let label = match path.as_str() {
        "/mutate" | "/healthz" | "/metrics" => path.as_str(),
        _ => "other",
    };
    app.metrics
        .latency
        .with_label_values(&[label])
        .observe(started.elapsed().as_secs_f64());
    response
}

async fn mutate(req: Request<Incoming>, app: &App) -> Response<Full<Bytes>> {
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            app.metrics.requests.with_label_values(&["invalid"]).inc();
            return text(
                StatusCode::BAD_REQUEST,
                &format!("cannot read the request body: {e}\n"),
            );
        }
    };
    let answer = match review::parse(&body) {
        Ok(req) => {
            let lookups = review::image_lookups(&req, &app.config);
            let images = if lookups.is_empty() {
                Resolved::new()
            } else {
                app.resolver.resolve(lookups).await
            };
            Ok(review::answer(&req, &app.config, &app.metrics, &images))
        }
        Err(e) => Err(e),
    };
    match answer {
        Ok(answer) => match serde_json::to_vec(&answer) {
            Ok(json) => Response::builder()
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(json)))
                .expect("static response"),
            Err(e) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("cannot encode the response: {e}\n"),
            ),
        },
        Err(e) => {
            app.metrics.requests.with_label_values(&["invalid"]).inc();
            text(StatusCode::BAD_REQUEST, &format!("{e}\n"))
        }
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("static response")
}
