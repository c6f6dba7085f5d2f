//! TLS to the upstream server (`sslmode`): the SSLRequest, the rustls client
//! configuration for `require` (encrypted, any certificate) and `verify-full`
//! (the certificate chains to `ca_file`, or to the web roots without one, and
//! names the upstream host), and the TLS connection the login and the relay use.
//!
//! The TLS session is tokio-rustls on the gateway's runtime from the handshake
//! on, so that the relay can read and write it at once (a blocking session on
//! one thread could not read while a write waited: a client that pipelines
//! faster than the server answers deadlocked it). The login, which is a
//! strict request–answer exchange, drives it from its own thread through
//! [`Handle::block_on`], each step bounded by the login's timeout.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::runtime::Handle;
use tokio_rustls::client::TlsStream;

use crate::config::UpstreamTls;

/// The SSLRequest code.
const SSL_REQUEST: i32 = 80_877_103;

/// Why TLS to the upstream could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The CA file could not be read or holds no certificate.
    #[error("ca_file {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The upstream's host is not a valid TLS server name.
    #[error("`{0}` is not a valid TLS server name")]
    ServerName(String),
}

/// What a login needs for TLS: the configuration and the name to verify.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The rustls client configuration.
    pub config: Arc<ClientConfig>,
    /// The upstream's host name (or IP address).
    pub name: ServerName<'static>,
}

/// The TLS setup of `mode` for the upstream `host` (None: plain TCP).
pub fn setup(mode: &UpstreamTls, host: &str) -> Result<Option<Upstream>, TlsError> {
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions");
    let config = match mode {
        UpstreamTls::Disable => return Ok(None),
        UpstreamTls::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate))
            .with_no_client_auth(),
        UpstreamTls::VerifyFull { ca_file } => builder
            .with_root_certificates(roots(ca_file.as_deref())?)
            .with_no_client_auth(),
    };
    let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']'))
        .map_err(|_| TlsError::ServerName(host.to_string()))?
        .to_owned();
    Ok(Some(Upstream {
        config: Arc::new(config),
        name,
    }))
}

fn roots(ca_file: Option<&Path>) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    let Some(path) = ca_file else {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(roots);
    };
    let bad = |reason: String| TlsError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| bad(format!("not PEM: {e}")))?;
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("no certificate in the file".into()));
    }
    Ok(roots)
}

/// A connection to the upstream, plain or TLS.
#[derive(Debug)]
pub enum Conn {
    /// Plain TCP (`sslmode = "disable"`).
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<Blocking>),
}

/// A TLS session on the gateway's runtime, read and written from a thread
/// outside it (the login) one bounded step at a time.
#[derive(Debug)]
pub struct Blocking {
    /// The session.
    pub stream: TlsStream<tokio::net::TcpStream>,
    runtime: Handle,
    timeout: Duration,
}

impl Blocking {
    fn run<T>(
        &mut self,
        step: impl AsyncFnOnce(&mut TlsStream<tokio::net::TcpStream>) -> io::Result<T>,
    ) -> io::Result<T> {
        let (runtime, timeout) = (self.runtime.clone(), self.timeout);
        runtime.block_on(async {
            tokio::time::timeout(timeout, step(&mut self.stream))
                .await
                .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
        })
    }
}

impl Conn {
    /// A second handle on the TCP connection underneath (to shut it down
    /// from elsewhere).
    pub fn tcp(&self) -> io::Result<TcpStream> {
        match self {
            Conn::Plain(s) => s.try_clone(),
            Conn::Tls(s) => {
                use std::os::fd::AsFd as _;
                let fd = s.stream.get_ref().0.as_fd().try_clone_to_owned()?;
                Ok(TcpStream::from(fd))
            }
        }
    }
}

impl Conn {
    /// The connection on the gateway's runtime, for the relay (call within
    /// it).
    pub fn into_async(self) -> io::Result<Box<dyn super::relay::Duplex>> {
        Ok(match self {
            Conn::Plain(s) => {
                s.set_nonblocking(true)?;
                Box::new(tokio::net::TcpStream::from_std(s)?)
            }
            Conn::Tls(s) => Box::new(s.stream),
        })
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.run(async |t| t.read(buf).await),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.run(async |t| t.write(buf).await),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.run(async |t| t.flush().await),
        }
    }
}

/// Why the TLS negotiation failed.
#[derive(Debug, thiserror::Error)]
pub enum NegotiateError {
    /// The server answered the SSLRequest with `N`.
    #[error("the upstream does not accept TLS (it answered the SSLRequest with N)")]
    Refused,
    /// The server's answer was neither `S` nor `N`.
    #[error("the upstream answered the SSLRequest with {0:#04x}, not S or N")]
    Garbage(u8),
    /// The handshake failed (an untrusted certificate, a wrong name…).
    #[error("TLS handshake with the upstream failed: {0}")]
    Handshake(io::Error),
    /// The connection failed.
    #[error("connection: {0}")]
    Io(io::Error),
}

/// Sends the SSLRequest on `tcp` and, on `S`, completes the TLS handshake on
/// `runtime` within `timeout`.
pub fn negotiate(
    mut tcp: TcpStream,
    tls: &Upstream,
    runtime: &Handle,
    timeout: Duration,
) -> Result<Conn, NegotiateError> {
    let mut req = 8i32.to_be_bytes().to_vec();
    req.extend_from_slice(&SSL_REQUEST.to_be_bytes());
    tcp.write_all(&req).map_err(NegotiateError::Io)?;
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer).map_err(NegotiateError::Io)?;
    match answer[0] {
        b'S' => {}
        b'N' => return Err(NegotiateError::Refused),
        other => return Err(NegotiateError::Garbage(other)),
    }
    tcp.set_nonblocking(true).map_err(NegotiateError::Io)?;
    let tcp = {
        let _in_runtime = runtime.enter();
        tokio::net::TcpStream::from_std(tcp).map_err(NegotiateError::Io)?
    };
    let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
    let handshake = connector.connect(tls.name.clone(), tcp);
    // The timer is made within the runtime (this thread is outside it).
    let stream = runtime
        .block_on(async { tokio::time::timeout(timeout, handshake).await })
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
        .map_err(NegotiateError::Handshake)?;
    Ok(Conn::Tls(Box::new(Blocking {
        stream,
        runtime: runtime.clone(),
        timeout,
    })))
}

/// `sslmode = "require"`: encrypted, whoever the server is (as libpq's
/// `require` without a root certificate). The handshake's signatures are
/// still checked, so the session keys are the server's.
#[derive(Debug)]
struct AnyCertificate;

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &rustls::crypto::ring::default_provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &rustls::crypto::ring::default_provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
