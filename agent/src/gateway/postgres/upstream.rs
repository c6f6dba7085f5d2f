//! Logging in to the real server with the current credential: SCRAM-SHA-256,
//! md5 or a cleartext password, whichever the server asks for.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::{md5_hash, sasl};
use postgres_protocol::message::{backend, frontend};

use super::tls::{self, Conn, NegotiateError};
use super::wire::{read_frame, Frame, FrameError, ROLE_PLACEHOLDER};
use crate::gateway::Credential;

/// Upper bound of a message during the login.
const MAX_LOGIN_MESSAGE: usize = 1 << 20;

/// Why the upstream login failed. No variant holds the password.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// No address of the upstream accepted a connection.
    #[error("cannot connect to the upstream {upstream}: {source}")]
    Connect {
        /// `host:port`.
        upstream: String,
        /// The last OS error.
        source: io::Error,
    },
    /// The connection failed during the login.
    #[error("the upstream connection failed during the login: {0}")]
    Frame(#[from] FrameError),
    /// The server answered the login with an error.
    #[error("the upstream refused the login: {message} (SQLSTATE {sqlstate})")]
    Refused {
        /// Its SQLSTATE.
        sqlstate: String,
        /// Its message, the role name replaced.
        message: String,
    },
    /// TLS to the server failed (refused, or its certificate not trusted).
    #[error("{0}")]
    Tls(#[from] NegotiateError),
    /// The server asked for something the gateway cannot do.
    #[error("the upstream asked for {0}, which the gateway does not support")]
    Unsupported(String),
    /// The server's SCRAM messages did not verify, or a message was malformed.
    #[error("the upstream's authentication exchange is invalid: {0}")]
    Exchange(io::Error),
}

/// A logged-in upstream connection, its AuthenticationOk consumed.
#[derive(Debug)]
pub struct Upstream {
    /// The connection.
    pub stream: Conn,
    /// The address it reached (CancelRequests go there).
    pub addr: SocketAddr,
}

/// Connects to `upstream` (over TLS when `tls`, its session on the given
/// runtime) and logs in as `cred` with the client's `params` (`user`
/// replaced by the credential's).
pub fn login(
    upstream: &str,
    tls: Option<(&tls::Upstream, &tokio::runtime::Handle)>,
    cred: &Credential,
    params: &[(String, String)],
    timeout: Duration,
) -> Result<Upstream, LoginError> {
    let (stream, addr) = connect(upstream, timeout)?;
    let io = |e: io::Error| LoginError::Frame(FrameError::Io(e));
    stream.set_nodelay(true).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let mut s = match tls {
        Some((t, runtime)) => tls::negotiate(stream, t, runtime, timeout)?,
        None => Conn::Plain(stream),
    };
    let mut buf = BytesMut::new();
    let startup = params
        .iter()
        .filter(|(k, _)| k != "user")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain([("user", cred.username.as_str())]);
    frontend::startup_message(startup, &mut buf).map_err(io)?;
    send(&mut s, &mut buf)?;
    let mut scram: Option<sasl::ScramSha256> = None;
    loop {
        let frame = read_frame(&mut s, MAX_LOGIN_MESSAGE)?;
        match parse(&frame)? {
            backend::Message::AuthenticationOk => break,
            backend::Message::AuthenticationCleartextPassword => {
                frontend::password_message(cred.password.as_bytes(), &mut buf).map_err(io)?;
            }
            backend::Message::AuthenticationMd5Password(body) => {
                let hash = zeroize::Zeroizing::new(md5_hash(
                    cred.username.as_bytes(),
                    cred.password.as_bytes(),
                    body.salt(),
                ));
                frontend::password_message(hash.as_bytes(), &mut buf).map_err(io)?;
            }
            backend::Message::AuthenticationSasl(body) => {
                let mut mechanisms = body.mechanisms();
                let mut scram_offered = false;
                while let Some(m) = mechanisms.next().map_err(LoginError::Exchange)? {
                    scram_offered |= m == sasl::SCRAM_SHA_256;
                }
                if !scram_offered {
                    return Err(LoginError::Unsupported(
                        "a SASL mechanism other than SCRAM-SHA-256".into(),
                    ));
                }
                let client = sasl::ScramSha256::new(
                    cred.password.as_bytes(),
                    sasl::ChannelBinding::unsupported(),
                );
                frontend::sasl_initial_response(sasl::SCRAM_SHA_256, client.message(), &mut buf)
                    .map_err(io)?;
                scram = Some(client);
            }
            backend::Message::AuthenticationSaslContinue(body) => {
                let client = scram
                    .as_mut()
                    .ok_or_else(|| exchange("SASLContinue before SASL"))?;
                client.update(body.data()).map_err(LoginError::Exchange)?;
                frontend::sasl_response(client.message(), &mut buf).map_err(io)?;
            }
            backend::Message::AuthenticationSaslFinal(body) => {
                let client = scram
                    .as_mut()
                    .ok_or_else(|| exchange("SASLFinal before SASL"))?;
                client.finish(body.data()).map_err(LoginError::Exchange)?;
            }
            backend::Message::ErrorResponse(body) => {
                return Err(refused(body.fields(), &cred.username));
            }
            backend::Message::NoticeResponse(_) => {}
            _ => {
                return Err(LoginError::Unsupported(format!(
                    "message type {:?} during the login",
                    frame.tag as char
                )))
            }
        }
        if !buf.is_empty() {
            send(&mut s, &mut buf)?;
        }
    }
    Ok(Upstream { stream: s, addr })
}

/// Sends a CancelRequest for the upstream key `(pid, key)` to `addr`.
pub fn cancel(addr: SocketAddr, pid: i32, key: i32, timeout: Duration) -> io::Result<()> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    let mut buf = BytesMut::new();
    frontend::cancel_request(pid, key, &mut buf);
    s.write_all(&buf)
}

fn connect(upstream: &str, timeout: Duration) -> Result<(TcpStream, SocketAddr), LoginError> {
    let failed = |source| LoginError::Connect {
        upstream: upstream.to_string(),
        source,
    };
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the name resolves to no address");
    for addr in upstream.to_socket_addrs().map_err(failed)? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => return Ok((s, addr)),
            Err(e) => last = e,
        }
    }
    Err(failed(last))
}

fn send(s: &mut impl Write, buf: &mut BytesMut) -> Result<(), LoginError> {
    s.write_all(buf)
        .and_then(|()| s.flush())
        .map_err(|e| LoginError::Frame(FrameError::Io(e)))?;
    buf.clear();
    Ok(())
}

fn parse(frame: &Frame) -> Result<backend::Message, LoginError> {
    let mut bytes = BytesMut::from(frame.to_wire().as_slice());
    backend::Message::parse(&mut bytes)
        .map_err(LoginError::Exchange)?
        .ok_or_else(|| exchange("truncated message"))
}

fn exchange(what: &str) -> LoginError {
    LoginError::Exchange(io::Error::new(io::ErrorKind::InvalidData, what.to_string()))
}

/// The server's error, its role name (the dynamic username) replaced.
fn refused(mut fields: backend::ErrorFields<'_>, username: &str) -> LoginError {
    let (mut sqlstate, mut message) = (String::from("08006"), String::new());
    while let Ok(Some(f)) = fields.next() {
        let value = String::from_utf8_lossy(f.value_bytes());
        match f.type_() {
            b'C' => sqlstate = value.into_owned(),
            b'M' if username.is_empty() => message = value.into_owned(),
            b'M' => message = value.replace(username, ROLE_PLACEHOLDER),
            _ => {}
        }
    }
    LoginError::Refused { sqlstate, message }
}
