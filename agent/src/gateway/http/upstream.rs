//! Connections to the upstream: TCP, TLS (rustls, the configured CA or the web
//! roots, ALPN http/1.1), an HTTP/1.1 client handshake. One per client
//! connection, kept while both stay open.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tracing::debug;

use crate::config::UpstreamUrl;

/// The body type of every request and response the gateways send.
pub type Body = BoxBody<Bytes, hyper::Error>;

/// How long connecting (TCP, TLS, handshake) may take: then 504.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the upstream could not be reached (502 or 504 to the client).
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// It did not connect in time.
    #[error("connecting timed out")]
    Timeout,
    /// The TCP connection or the TLS handshake failed.
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    /// The HTTP handshake failed.
    #[error("HTTP handshake: {0}")]
    Handshake(hyper::Error),
    /// The CA file could not be read.
    #[error("{0}")]
    Tls(String),
    /// The upstream's host and port do not make a `Host` header.
    #[error("the upstream {0} cannot be sent as a Host header")]
    Host(String),
}

/// How to reach the upstream.
pub struct Upstream {
    /// Its base URL.
    pub url: UpstreamUrl,
    /// The `Host` header every request gets (rendered once).
    pub host: hyper::header::HeaderValue,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// The upstream at `url`, trusting `ca` (a PEM file) or the web roots.
    pub fn new(url: &UpstreamUrl, ca: Option<&std::path::Path>) -> Result<Upstream, UpstreamError> {
        let tls = if url.tls {
            let roots = match ca {
                Some(path) => {
                    let mut roots = rustls::RootCertStore::empty();
                    for cert in crate::pem::certificates("ca_cert", path)
                        .map_err(|e| UpstreamError::Tls(format!("ca_cert {e}")))?
                    {
                        roots.add(cert).map_err(|e| {
                            UpstreamError::Tls(format!("ca_cert {}: {e}", path.display()))
                        })?;
                    }
                    roots
                }
                None => rustls::RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                },
            };
            let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| UpstreamError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
            cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
            let name = ServerName::try_from(url.host.clone())
                .map_err(|e| UpstreamError::Tls(format!("{}: {e}", url.host)))?;
            Some((tokio_rustls::TlsConnector::from(Arc::new(cfg)), name))
        } else {
            None
        };
        let host = hyper::header::HeaderValue::from_str(&url.authority())
            .map_err(|_| UpstreamError::Host(url.authority()))?;
        Ok(Upstream {
            url: url.clone(),
            host,
            tls,
        })
    }

    /// A new HTTP/1.1 connection (its driver runs on the current runtime).
    pub async fn connect(&self) -> Result<SendRequest<Body>, UpstreamError> {
        tokio::time::timeout(CONNECT_TIMEOUT, self.open())
            .await
            .map_err(|_| UpstreamError::Timeout)?
    }

    async fn open(&self) -> Result<SendRequest<Body>, UpstreamError> {
        let tcp = TcpStream::connect((self.url.host.as_str(), self.url.port))
            .await
            .map_err(UpstreamError::Connect)?;
        tcp.set_nodelay(true).map_err(UpstreamError::Connect)?;
        match &self.tls {
            None => handshake(tcp).await,
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(UpstreamError::Connect)?;
                handshake(tls).await
            }
        }
    }
}

async fn handshake<S>(io: S) -> Result<SendRequest<Body>, UpstreamError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(UpstreamError::Handshake)?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            debug!(error = %e, "upstream connection ended");
        }
    });
    Ok(sender)
}
