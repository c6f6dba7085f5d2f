//! The HTTP endpoints: `/metrics` (Prometheus text format), `/healthz` (the process
//! answers) and `/readyz` (first render done and token valid). Plain HTTP/1.1,
//! GET and HEAD only, no request bodies read.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::Registry;
use tokio::net::TcpListener;

use super::health::Health;
use super::metrics::encode;

/// A client that has not sent its request headers by then is dropped.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound listener, not yet serving: bind first to learn the port (`:0`) or to
/// fail early on an address in use.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
}

impl Server {
    /// Binds `addr`.
    pub async fn bind(addr: SocketAddr) -> io::Result<Server> {
        Ok(Server {
            listener: TcpListener::bind(addr).await?,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the task is dropped or aborted. Returns only if accepting
    /// fails for a reason other than a transient one.
    pub async fn run(self, registry: Registry, health: Arc<Health>) -> io::Result<()> {
        let state = Arc::new(State { registry, health });
        loop {
            let (stream, _) = match self.listener.accept().await {
                Ok(conn) => conn,
                // Out of descriptors or a connection reset before accept: keep going.
                Err(e) if is_transient(&e) => {
                    tracing::warn!(error = %e, "metrics server: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let state = state.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(state.handle(&req)) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "metrics server: connection ended with an error");
                }
            });
        }
    }
}

/// Binds `addr` and serves `/metrics`, `/healthz` and `/readyz` on it: spawn the
/// returned future on the agent's runtime.
pub async fn serve(addr: SocketAddr, registry: Registry, health: Arc<Health>) -> io::Result<()> {
    Server::bind(addr).await?.run(registry, health).await
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) || matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

struct State {
    registry: Registry,
    health: Arc<Health>,
}

impl State {
    fn handle(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        match req.uri().path() {
            "/metrics" => {
                let mut r = text(StatusCode::OK, encode(&self.registry));
                r.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                r
            }
            "/healthz" => text(StatusCode::OK, "ok\n"),
            "/readyz" => match self.health.not_ready_reason() {
                None => text(StatusCode::OK, "ready\n"),
                Some(why) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: {why}\n"),
                ),
            },
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;
    use crate::events::{Event, EventSink as _, Outcome};
    use crate::telemetry::Metrics;

    async fn get(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).await.unwrap();
        let status = resp[9..12].parse().unwrap();
        let body = resp.split_once("\r\n\r\n").unwrap().1.to_string();
        (status, body)
    }

    fn assert_send<T: Send>(_: &T) {}

    #[tokio::test]
    async fn serve_future_is_send_and_fails_on_a_bound_port() {
        let taken = Server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let fut = serve(
            taken.local_addr().unwrap(),
            Registry::new(),
            Arc::new(Health::default()),
        );
        assert_send(&fut);
        assert!(fut.await.is_err());
    }

    #[tokio::test]
    async fn serves_metrics_health_and_readiness() {
        let metrics = Metrics::new().unwrap();
        let health = Arc::new(Health::default());
        let server = Server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = server.local_addr().unwrap();
        let task = tokio::spawn(server.run(metrics.registry(), health.clone()));

        assert_eq!(get(addr, "GET", "/healthz").await.0, 200);
        let (code, body) = get(addr, "GET", "/readyz").await;
        assert_eq!(
            (code, body.as_str()),
            (503, "not ready: secrets not rendered yet\n")
        );
        health.set_rendered(true);
        health.set_token_valid(true);
        assert_eq!(get(addr, "GET", "/readyz").await.0, 200);

        metrics.emit(&Event::Rotate {
            secret: "api",
            path: "kv/data/api",
            lease_id: None,
        });
        let (code, body) = get(addr, "GET", "/metrics").await;
        assert_eq!(code, 200);
        assert!(
            body.contains("shroud_rotations_total{secret=\"api\"} 1"),
            "{body}"
        );
        metrics.emit(&Event::Login {
            method: "token",
            outcome: Outcome::Ok,
        });
        let (_, body) = get(addr, "GET", "/metrics").await;
        assert!(body.contains("shroud_auth_attempts_total{method=\"token\",result=\"ok\"} 1"));

        assert_eq!(get(addr, "GET", "/nope").await.0, 404);
        assert_eq!(get(addr, "POST", "/metrics").await.0, 405);
        task.abort();
    }
}
