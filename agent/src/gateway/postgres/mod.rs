//! The PostgreSQL gateway: one connection from the client's first packet to
//! the end of the relay. Wire framing in `wire`, the opening packet in
//! `startup`, the client's login to the gateway in `local_auth`, the login
//! upstream in `upstream`, cancel keys in `cancel`, the copy in `relay`.
//!
//! The opening and both logins run on a thread of the connection's own
//! (bounded by their timeouts); the relay then runs as a task on the
//! gateway's runtime and the thread ends, so an open connection costs no
//! thread (docs/gateway.md, "The relay").

pub mod cancel;
mod local_auth;
mod relay;
pub mod runtime;
mod startup;
pub mod tls;
mod upstream;
mod wire;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info, warn};
use zeroize::Zeroizing;

use self::cancel::{CancelKeys, Target};
use self::local_auth::Verdict;
use self::startup::{Opening, Startup, StartupError};
use self::upstream::LoginError;
use self::wire::{fatal, read_frame, FrameError};
use super::conns::Conns;
use super::stats::{ErrorKind, LoginResult, OpenConn, Stats};
use super::stream::Stream;
use super::Credentials;
use crate::events::{self, Event, Outcome};

/// How long a client may take to open and log in.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the upstream may take to accept and log in.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound of a server message before ReadyForQuery.
const MAX_STARTUP_MESSAGE: usize = 1 << 20;

/// What every connection of one gateway shares.
#[derive(Debug)]
pub struct Context {
    /// The gateway's name, for logs.
    pub name: String,
    /// The secret whose credential it logs in with.
    pub secret: String,
    /// The real server, `host:port`.
    pub upstream: String,
    /// TLS to it, when `sslmode` asks for it.
    pub tls: Option<tls::Upstream>,
    /// The current credentials.
    pub credentials: Arc<Credentials>,
    /// The local password TCP clients must give.
    pub password: Zeroizing<String>,
    /// The cancel keys handed out.
    pub keys: Arc<CancelKeys>,
    /// Open connections, shut down at stop.
    pub conns: Arc<Conns>,
    /// Its counters (metrics).
    pub stats: Arc<Stats>,
    /// Client connections open at once; more get 53300.
    pub max_connections: u64,
    /// Clients over the cap being answered now.
    pub refusing: std::sync::atomic::AtomicU64,
    /// The runtime the relays (and the TLS sessions) run on.
    pub runtime: tokio::runtime::Handle,
}

/// How long a client over the cap may take to send its startup packet.
const REFUSE_TIMEOUT: Duration = Duration::from_secs(5);

/// SQLSTATE too_many_connections.
const TOO_MANY_CONNECTIONS: &str = "53300";

/// The FATAL 53300 a client over `max_connections` gets.
pub fn too_many_connections(ctx: &Context) -> Vec<u8> {
    let msg = format!(
        "sorry, too many clients already (gateway {}: max_connections {})",
        ctx.name, ctx.max_connections
    );
    fatal(TOO_MANY_CONNECTIONS, &msg)
}

/// A client over the cap: its SSL/GSS requests answered and its startup read
/// (a cancel is still forwarded), then 53300, as a full server does.
pub fn refuse_full(mut client: Stream, ctx: &Context) {
    if client.set_read_timeout(Some(REFUSE_TIMEOUT)).is_err()
        || client.set_write_timeout(Some(REFUSE_TIMEOUT)).is_err()
    {
        return;
    }
    if opening(&mut client, ctx).is_some() {
        let _ = client.write_all(&too_many_connections(ctx));
    }
}

/// Serves one client connection: the opening and the logins here, then the
/// relay on the runtime until the connection ends (`open` counts it until
/// then).
pub fn serve(mut client: Stream, ctx: &Arc<Context>, open: OpenConn) {
    let Some(_client_guard) = ctx.conns.register(&client) else {
        return;
    };
    if client.set_read_timeout(Some(STARTUP_TIMEOUT)).is_err()
        || client.set_write_timeout(Some(STARTUP_TIMEOUT)).is_err()
    {
        return;
    }
    let Some(startup) = opening(&mut client, ctx) else {
        return;
    };
    let newer = startup.minor > 0 || !startup.options.is_empty();
    if newer
        && client
            .write_all(&wire::negotiate_protocol_version(&startup.options))
            .is_err()
    {
        return;
    }
    if !client.is_unix() {
        match local_auth::check(&mut client, ctx.password.as_bytes()) {
            Ok(Verdict::Accepted) => {}
            Ok(Verdict::Gone) => return,
            Ok(Verdict::Refused) => {
                ctx.stats.error(ErrorKind::LocalAuth);
                warn!(gateway = %ctx.name, "a client gave a wrong local password");
                let msg = format!(
                    "password authentication failed for the gateway {}",
                    ctx.name
                );
                let _ = client.write_all(&fatal(wire::INVALID_PASSWORD, &msg));
                return;
            }
            Err(e) => return refuse(&mut client, &e.to_string(), ctx),
        }
    }
    let Some(cred) = ctx.credentials.current(&ctx.secret) else {
        ctx.stats.error(ErrorKind::NoCredential);
        warn!(gateway = %ctx.name, secret = %ctx.secret, "no current credential with username and password");
        let msg = format!(
            "the gateway {} holds no current database credential",
            ctx.name
        );
        let _ = client.write_all(&fatal(wire::CONNECTION_FAILURE, &msg));
        return;
    };
    let mut params = startup.params;
    // The server's default database is the user's name; the client's user
    // name, not the gateway's role, is the one the client meant.
    if !params.iter().any(|(k, _)| k == "database") {
        if let Some(user) = startup_user(&params) {
            params.push(("database".into(), user));
        }
    }
    let (up, cred) = match login(ctx, cred, &params) {
        Ok(done) => done,
        Err(e) => {
            ctx.stats.error(match e {
                LoginError::Tls(_) => ErrorKind::Tls,
                _ => ErrorKind::Upstream,
            });
            warn!(gateway = %ctx.name, error = %e, "upstream login failed");
            let (code, msg) = match &e {
                LoginError::Refused { sqlstate, message } => (sqlstate.as_str(), message.clone()),
                _ => (
                    wire::CONNECTION_FAILURE,
                    format!("gateway {}: {e}", ctx.name),
                ),
            };
            let _ = client.write_all(&fatal(code, &msg));
            return;
        }
    };
    let lease_id = cred.lease_id.clone();
    let role = Zeroizing::new(cred.username.clone());
    drop(cred);
    debug!(gateway = %ctx.name, "upstream login done");
    let upstream_addr = up.addr;
    let mut upstream = up.stream;
    // The TCP connection underneath, to shut it down from elsewhere.
    let Ok(tcp) = upstream.tcp().map(Stream::Tcp) else {
        return;
    };
    let Some(_upstream_guard) = ctx.conns.register(&tcp) else {
        return;
    };
    // A credential without a lease never retires.
    let tracked = lease_id.and_then(|l| ctx.credentials.leases.track(&l, &tcp));
    let retired = tracked
        .as_ref()
        .map_or_else(Arc::default, |t| t.retired().clone());
    let Ok(issued) = ready(&mut client, &mut upstream, upstream_addr, &role, ctx) else {
        return;
    };
    drop(tcp);
    let ctx = ctx.clone();
    ctx.runtime.clone().spawn(async move {
        if let (Ok(client), Ok(upstream)) =
            (relay::client_on_runtime(client), upstream.into_async())
        {
            relay::relay(client, upstream, &retired, &ctx.stats).await;
        }
        // The connection is over only now: its count, its cancel key, its
        // lease's tracking and its registrations go with it (the count
        // first: a stop that saw the registrations go finds it at zero).
        drop((open, issued, tracked, _upstream_guard, _client_guard));
    });
}

/// Logs in upstream with `cred`; when the server refuses it and the credential
/// changed meanwhile (a rotation during the handshake, the old role already
/// dropped), once more with the newest. Returns the credential that worked.
fn login(
    ctx: &Context,
    cred: Arc<super::Credential>,
    params: &[(String, String)],
) -> Result<(upstream::Upstream, Arc<super::Credential>), LoginError> {
    let tls = ctx.tls.as_ref();
    let attempt = |cred: &super::Credential| {
        let r = upstream::login(
            &ctx.upstream,
            tls.map(|t| (t, &ctx.runtime)),
            cred,
            params,
            UPSTREAM_TIMEOUT,
        );
        record_login(ctx, cred, &r);
        r
    };
    match attempt(&cred) {
        Ok(up) => Ok((up, cred)),
        Err(LoginError::Refused { sqlstate, message }) if sqlstate.starts_with("28") => {
            match ctx.credentials.current(&ctx.secret) {
                Some(newer) if !Arc::ptr_eq(&newer, &cred) => {
                    info!(gateway = %ctx.name, "the credential changed during the login; trying the newest");
                    drop(cred);
                    let up = attempt(&newer)?;
                    Ok((up, newer))
                }
                _ => Err(LoginError::Refused { sqlstate, message }),
            }
        }
        Err(e) => Err(e),
    }
}

/// Counts an upstream login and records it in the audit trail with its lease.
fn record_login(
    ctx: &Context,
    cred: &super::Credential,
    result: &Result<upstream::Upstream, LoginError>,
) {
    let (counted, outcome) = match result {
        Ok(_) => (LoginResult::Ok, Outcome::Ok),
        Err(e @ LoginError::Refused { .. }) => {
            (LoginResult::Refused, Outcome::Denied(e.to_string()))
        }
        Err(e) => (LoginResult::Error, Outcome::Error(e.to_string())),
    };
    ctx.stats.login(counted);
    events::emit(Event::GatewayLogin {
        gateway: &ctx.name,
        secret: &ctx.secret,
        lease_id: cred.lease_id.as_deref(),
        outcome,
    });
}

/// The client's user name as it gave it.
fn startup_user(params: &[(String, String)]) -> Option<String> {
    params
        .iter()
        .find(|(k, _)| k == "user")
        .map(|(_, v)| v.clone())
}

/// Reads the client's opening: answers SSL/GSS requests 'N', forwards a
/// cancel; the startup message when there is one.
fn opening(client: &mut Stream, ctx: &Context) -> Option<Startup> {
    // At most an SSLRequest and a GSSENCRequest before the startup.
    for _ in 0..3 {
        match startup::read_opening(client) {
            Ok(Opening::Ssl | Opening::GssEnc) => client.write_all(b"N").ok()?,
            Ok(Opening::Cancel { pid, key }) => {
                forward_cancel(ctx, pid, key);
                return None;
            }
            Ok(Opening::Startup(s)) => return Some(s),
            Err(StartupError::Frame(FrameError::Io(_))) => return None,
            Err(e) => {
                refuse(client, &e.to_string(), ctx);
                return None;
            }
        }
    }
    refuse(client, "too many negotiation requests", ctx);
    None
}

fn forward_cancel(ctx: &Context, pid: i32, key: i32) {
    match ctx.keys.target(pid, key) {
        Some(t) => {
            info!(gateway = %ctx.name, "forwarding a cancel request");
            if let Err(e) = upstream::cancel(t.addr, t.pid, t.key, UPSTREAM_TIMEOUT) {
                warn!(gateway = %ctx.name, error = %e, "cannot forward a cancel request");
            }
        }
        // As a server does: no answer to a key it does not know.
        None => debug!(gateway = %ctx.name, "cancel request with an unknown key"),
    }
}

/// A protocol violation: the client is told why, then closed.
fn refuse(client: &mut Stream, why: &str, ctx: &Context) {
    ctx.stats.error(ErrorKind::Protocol);
    debug!(reason = why, "protocol violation from a client");
    let _ = client.write_all(&fatal(wire::PROTOCOL_VIOLATION, why));
}

/// AuthenticationOk to the client, then the server's messages up to
/// ReadyForQuery with the cancel key replaced by one of the gateway's, and
/// the gateway's `role` name replaced in an error or notice (the server may
/// still refuse the session, e.g. `role "v-…" is not permitted to log in`).
fn ready(
    client: &mut Stream,
    upstream: &mut impl std::io::Read,
    addr: std::net::SocketAddr,
    role: &str,
    ctx: &Context,
) -> Result<Option<cancel::Issued>, ()> {
    let mut out = wire::authentication(0);
    let mut issued = None;
    loop {
        let frame = match read_frame(upstream, MAX_STARTUP_MESSAGE) {
            Ok(f) => f,
            Err(e) => {
                warn!(gateway = %ctx.name, error = %e, "upstream failed after the login");
                let msg = format!("gateway {}: the upstream failed after the login", ctx.name);
                let _ = client.write_all(&fatal(wire::CONNECTION_FAILURE, &msg));
                return Err(());
            }
        };
        match frame.tag {
            b'K' if frame.body.len() == 8 => {
                let b = &frame.body;
                let i = ctx.keys.issue(Target {
                    addr,
                    pid: i32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                    key: i32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                });
                out.extend_from_slice(&wire::backend_key_data(i.key.0, i.key.1));
                issued = Some(i);
            }
            b'E' => {
                out.extend_from_slice(&wire::without_role(&frame, role).to_wire());
                let _ = client.write_all(&out);
                return Err(());
            }
            b'N' => out.extend_from_slice(&wire::without_role(&frame, role).to_wire()),
            b'Z' => {
                out.extend_from_slice(&frame.to_wire());
                return client.write_all(&out).map(|()| issued).map_err(drop);
            }
            _ => out.extend_from_slice(&frame.to_wire()),
        }
    }
}
