//! HTTPS server: `POST /mutate`, `POST /validate` (each also at `/restricted`
//! below it, the restricted Pod Security profile), `GET /healthz`, `GET /metrics`.
//! HTTP/2 and HTTP/1.1 over rustls; nothing is served in clear text.
//!
//! Every cost is bounded by `[server]` ([`ServerLimits`]): headers, bodies and
//! idle connections are timed out, HTTP/2 streams per connection are capped,
//! bodies held in memory share one byte budget, and reviews run on blocking
//! threads a few at a time, so the async workers keep answering `/healthz`.
//!
//! A mutation that needs image commands from registries gives its review permit
//! back while it waits for them: the lookup is I/O, bounded by one
//! `registry.timeout` deadline and by the resolver's own cap on registry work in
//! flight (`server.max_concurrent_reviews` lookups at once, of which one registry
//! host or one namespace holds at most its share). It keeps its share of the
//! byte budget, so requests parked on a registry are bounded by
//! `server.max_in_flight_bytes` too, and it has at most `server.max_containers`
//! images to look up.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use super::config::WebhookConfig;
use super::idle::{Activity, Tracked};
use super::metrics::Metrics;
use super::profile::{self, Profile};
use super::registry::Resolver;
use super::review::{self, Endpoint, Prepared};
/// How long open connections may finish their requests after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What the request handlers share.
#[derive(Debug)]
pub struct App {
    /// Configuration and policy.
    pub config: Arc<WebhookConfig>,
    /// The same, as the restricted profile applies it (built once, not per request).
    pub restricted: Arc<WebhookConfig>,
    /// Metrics.
    pub metrics: Metrics,
    /// Image entrypoints from registries.
    pub resolver: Resolver,
    /// One permit per review computed at once.
    reviews: Arc<Semaphore>,
    /// One permit per request body byte held in memory.
    bytes: Arc<Semaphore>,
}

impl App {
    /// The shared state for `config`.
    pub fn new(config: WebhookConfig, metrics: Metrics, resolver: Resolver) -> App {
        let limits = &config.server;
        metrics.set_namespace_cap(limits.max_metric_namespaces);
        App {
            reviews: Arc::new(Semaphore::new(limits.max_concurrent_reviews)),
            bytes: Arc::new(Semaphore::new(limits.max_in_flight_bytes)),
            restricted: Arc::new(profile::restricted(&config)),
            config: Arc::new(config),
            metrics,
            resolver,
        }
    }
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
            let limits = &app.config.server;
            let activity = Activity::default();
            let tcp = Tracked::new(tcp, activity.clone());
            let tls = match tokio::time::timeout(limits.header_timeout, acceptor.accept(tcp)).await
            {
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
            let idle = limits.idle_timeout;
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(64 * 1024);
            builder
                .http2()
                .timer(TokioTimer::new())
                .max_concurrent_streams(limits.max_http2_streams)
                .max_header_list_size(64 * 1024)
                .initial_stream_window_size(256 * 1024)
                .initial_connection_window_size(1024 * 1024)
                .max_pending_accept_reset_streams(Some(limits.max_http2_streams as usize));
            let service = hyper::service::service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(handle(req, &app).await) }
            });
            let conn = builder.serve_connection(TokioIo::new(tls), service);
            tokio::select! {
                r = watcher.watch(conn.into_owned()) => if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                },
                // Dropping the connection closes it; requests on it have been
                // answered or are stalled (a review in progress is I/O-silent for
                // far less than the idle timeout).
                () = activity.idle_for(idle) => tracing::debug!(%peer, "idle connection closed"),
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
    let route = profile::route(&path);
    let response = match (req.method(), &route) {
        (&Method::POST, Some((endpoint, Ok(profile)))) => {
            let config = match profile {
                Profile::Default => app.config.clone(),
                Profile::Restricted => app.restricted.clone(),
            };
            admit(req, app, *endpoint, config).await
        }
        (_, Some((_, Err(unknown)))) => {
            app.metrics.requests.with_label_values(&["invalid"]).inc();
            text(StatusCode::BAD_REQUEST, &format!("{unknown}\n"))
        }
        (&Method::GET, None) if path == "/healthz" => text(StatusCode::OK, "ok\n"),
        (&Method::GET, None) if path == "/metrics" => Response::builder()
            .header("content-type", "text/plain; version=0.0.4")
            .body(Full::new(Bytes::from(app.metrics.render())))
            .expect("static response"),
        (_, Some(_)) => text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
        (_, None) if path == "/healthz" || path == "/metrics" => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: use POST /mutate, POST /validate (or /mutate/restricted, /validate/restricted), GET /healthz or GET /metrics\n",
        ),
    };
    let label = match path.as_str() {
        "/mutate"
        | "/validate"
        | "/mutate/restricted"
        | "/validate/restricted"
        | "/healthz"
        | "/metrics" => path.as_str(),
        _ => "other",
    };
    app.metrics
        .latency
        .with_label_values(&[label])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// Reads the body within the byte budget and the body timeout, then reviews it
/// on a blocking thread (at most `max_concurrent_reviews` at once).
async fn admit(
    req: Request<Incoming>,
    app: &App,
    endpoint: Endpoint,
    config: Arc<WebhookConfig>,
) -> Response<Full<Bytes>> {
    let limits = &config.server;
    let invalid = |status, message: String| {
        app.metrics.requests.with_label_values(&["invalid"]).inc();
        text(status, &message)
    };
    let declared = hyper::body::Body::size_hint(req.body())
        .exact()
        .map_or(limits.max_body_bytes, |n| n as usize);
    if declared > limits.max_body_bytes {
        return invalid(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is larger than {} bytes (server.max_body_bytes)\n",
                limits.max_body_bytes
            ),
        );
    }
    // The budget is reserved before a byte is read, for as long as the body lives.
    let want = u32::try_from(declared.max(1)).unwrap_or(u32::MAX);
    let budget = match tokio::time::timeout(
        limits.body_timeout,
        app.bytes.clone().acquire_many_owned(want),
    )
    .await
    {
        Ok(Ok(permit)) => permit,
        _ => {
            return invalid(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many request bytes in flight; retry\n".into(),
            )
        }
    };
    let read = Limited::new(req.into_body(), limits.max_body_bytes).collect();
    let body = match tokio::time::timeout(limits.body_timeout, read).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) => {
            return invalid(
                StatusCode::BAD_REQUEST,
                format!("cannot read the request body: {e}\n"),
            )
        }
        Err(_) => {
            return invalid(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the body did not arrive within {:?} (server.body_timeout)\n",
                    limits.body_timeout
                ),
            )
        }
    };
    let Ok(turn) = app.reviews.clone().acquire_owned().await else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    };
    let metrics = app.metrics.clone();
    let shared = config.clone();
    let prepared = tokio::task::spawn_blocking(move || {
        let config = shared;
        let _turn = turn;
        review::prepare(&body, endpoint, &config, &metrics)
    })
    .await;
    let answer = match prepared {
        Ok(Ok(Prepared::Lookups { req, lookups })) => {
            let namespace = req.namespace.clone().unwrap_or_default();
            let images = app.resolver.resolve(&namespace, lookups).await;
            let Ok(turn) = app.reviews.clone().acquire_owned().await else {
                return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
            };
            let metrics = app.metrics.clone();
            tokio::task::spawn_blocking(move || {
                let _turn = turn;
                let _budget = budget;
                Ok::<_, review::BadRequest>(review::answer(
                    &req, endpoint, &config, &metrics, &images,
                ))
            })
            .await
        }
        Ok(Ok(Prepared::Done(json))) => Ok(Ok(json)),
        Ok(Err(e)) => Ok(Err(e)),
        Err(e) => Err(e),
    };
    match answer {
        Ok(Ok(json)) => Response::builder()
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(json)))
            .expect("static response"),
        Ok(Err(e)) => invalid(StatusCode::BAD_REQUEST, format!("{e}\n")),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("the review failed: {e}\n"),
        ),
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("static response")
}
