//! Gateways (docs/gateway.md): listeners the workload connects to instead of
//! the real service; each logs in upstream with the current credential of a
//! secret the workload never holds. Here: the listeners' lifecycle (bind,
//! accept thread, a thread per connection until its relay starts, stop) and
//! the local password file.
//! The credential handle the engine feeds is in `credential`, each protocol in
//! its own module.

mod conns;
mod credential;
pub mod http;
pub mod postgres;
mod retire;
pub mod stats;
mod stream;
pub mod vault;
mod workers;

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::{error, info, warn};
use zeroize::Zeroizing;

pub use credential::{Credential, Credentials, Document};

use crate::config::{GatewaySpec, Listen, OutputConfig};
use conns::Conns;
use stream::Listener;

/// Stack of a connection's thread (its opening and logins; the relay is a
/// task on the gateway's runtime): shallow frames, nothing near the 2 MiB
/// default.
const THREAD_STACK: usize = 256 * 1024;
/// How long a stop waits for the connections' threads to let go.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Why a gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The listen address could not be bound.
    #[error("gateway {gateway}: cannot listen on {listen}: {source}")]
    Listen {
        /// The gateway.
        gateway: String,
        /// Its `listen`.
        listen: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The socket directory exists and is not the agent's own directory.
    #[error("gateway {gateway}: socket directory {dir}: {problem}")]
    SocketDir {
        /// The gateway.
        gateway: String,
        /// The directory.
        dir: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The local password file could not be written.
    #[error("gateway {gateway}: cannot write the local password file {path}: {source}")]
    PasswordFile {
        /// The gateway.
        gateway: String,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The secret's current value has no `username` and `password`.
    #[error("gateway {gateway}: secret {secret} has no string fields username and password")]
    NoCredential {
        /// The gateway.
        gateway: String,
        /// Its `secret`.
        secret: String,
    },
    /// The upstream's TLS settings cannot be used (kinds http, vault).
    #[error("gateway {gateway}: upstream: {problem}")]
    Upstream {
        /// The gateway.
        gateway: String,
        /// What is wrong.
        problem: String,
    },
    /// The headers cannot be rendered from the secret's value (kind http).
    #[error("gateway {gateway}: {problem}")]
    Headers {
        /// The gateway.
        gateway: String,
        /// What is wrong (names, never a value).
        problem: String,
    },
    /// TLS to the upstream cannot be set up (`ca_file`, the host name).
    #[error("gateway {gateway}: {source}")]
    Tls {
        /// The gateway.
        gateway: String,
        /// What is wrong.
        source: postgres::tls::TlsError,
    },
    /// The accept thread could not be started.
    #[error("gateway {gateway}: cannot start its thread: {source}")]
    Thread {
        /// The gateway.
        gateway: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The running gateways; [`Gateways::stop`] closes them.
#[derive(Debug, Default)]
pub struct Gateways {
    running: Vec<Running>,
    /// The http and vault gateways.
    served: Vec<http::Served>,
}

#[derive(Debug)]
struct Running {
    name: String,
    listener: Arc<Listener>,
    stopping: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    conns: Arc<Conns>,
    /// Files to remove at stop: the password file, the socket.
    files: Vec<PathBuf>,
    /// The socket directory this gateway created.
    dir: Option<PathBuf>,
    /// Where its connections' relays run (kind postgres).
    runtime: Option<workers::Workers>,
}

impl Gateways {
    /// Starts every gateway of `specs` on `credentials` (already fed by the
    /// engine), writing their local password files into `output`. On an error
    /// the ones started are stopped again.
    pub fn start(
        specs: &[GatewaySpec],
        output: &OutputConfig,
        credentials: &Arc<Credentials>,
    ) -> Result<Gateways, GatewayError> {
        let mut all = Gateways::default();
        for spec in specs {
            if let Some(forward) = &spec.forward {
                match http::start(spec, forward, output, credentials) {
                    Ok(s) => all.served.push(s),
                    Err(e) => {
                        all.stop();
                        return Err(e);
                    }
                }
                continue;
            }
            if credentials.current(&spec.secret).is_none() {
                all.stop();
                return Err(GatewayError::NoCredential {
                    gateway: spec.name.clone(),
                    secret: spec.secret.clone(),
                });
            }
            match start_one(spec, output, credentials) {
                Ok(r) => all.running.push(r),
                Err(e) => {
                    all.stop();
                    return Err(e);
                }
            }
        }
        Ok(all)
    }

    /// Stops accepting, closes every open connection, removes the files.
    pub fn stop(&mut self) {
        for s in &mut self.served {
            s.stop();
        }
        self.served.clear();
        for r in &mut self.running {
            r.stopping.store(true, Ordering::SeqCst);
            r.listener.poke();
            if let Some(h) = r.accept.take() {
                let _ = h.join();
            }
            let open = r.conns.close_all(CLOSE_WAIT);
            postgres::runtime::stop(&r.name, r.runtime.take(), &stats::for_gateway(&r.name));
            for f in &r.files {
                let _ = std::fs::remove_file(f);
            }
            if let Some(d) = &r.dir {
                let _ = std::fs::remove_dir(d);
            }
            info!(gateway = %r.name, connections = open, "gateway stopped");
        }
        self.running.clear();
    }
}

impl Drop for Gateways {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Binds `spec.listen`: the TCP address, or the socket `socket_name` in the
/// gateway's private directory (replacing a socket a killed agent left).
/// Returns the listener and the directory when this call created it.
fn bind(
    spec: &GatewaySpec,
    socket_name: &str,
) -> Result<(Listener, Option<PathBuf>), GatewayError> {
    let listen_err = |source| GatewayError::Listen {
        gateway: spec.name.clone(),
        listen: spec.listen.to_string(),
        source,
    };
    match &spec.listen {
        Listen::Tcp(addr) => Ok((
            Listener::Tcp(std::net::TcpListener::bind(addr).map_err(listen_err)?),
            None,
        )),
        Listen::Unix(dir) => {
            let created = socket_dir(spec, dir)?.then(|| dir.clone());
            let path = dir.join(socket_name);
            // A socket left by an agent that was killed.
            if std::fs::symlink_metadata(&path)
                .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
            {
                let _ = std::fs::remove_file(&path);
            }
            let l = std::os::unix::net::UnixListener::bind(&path).map_err(listen_err)?;
            Ok((Listener::Unix(l, path), created))
        }
    }
}

/// A new per-run local secret (not the upstream credential) for the clients,
/// written to `<output>/<password file>`; returns it and the file's path.
fn local_secret(
    spec: &GatewaySpec,
    output: &OutputConfig,
) -> Result<(Zeroizing<String>, PathBuf), GatewayError> {
    let secret = Zeroizing::new(hex::encode(rand::random::<[u8; 32]>()));
    let path = output.dir.join(spec.password_file());
    write_password(&path, &secret, output).map_err(|source| GatewayError::PasswordFile {
        gateway: spec.name.clone(),
        path: path.clone(),
        source,
    })?;
    Ok((secret, path))
}

fn start_one(
    spec: &GatewaySpec,
    output: &OutputConfig,
    credentials: &Arc<Credentials>,
) -> Result<Running, GatewayError> {
    let tls = postgres::tls::setup(&spec.tls, &spec.upstream_host).map_err(|source| {
        GatewayError::Tls {
            gateway: spec.name.clone(),
            source,
        }
    })?;
    let (listener, created_dir) = bind(spec, &format!(".s.PGSQL.{}", spec.upstream_port))?;
    let mut files = Vec::new();
    if let Listener::Unix(_, path) = &listener {
        files.push(path.clone());
    }
    let (password, pw_path) = local_secret(spec, output)?;
    files.push(pw_path);
    let remove_files = |files: &[PathBuf]| {
        for f in files {
            let _ = std::fs::remove_file(f);
        }
    };
    let runtime = postgres::runtime::start(&spec.name).map_err(|source| {
        remove_files(&files);
        GatewayError::Thread {
            gateway: spec.name.clone(),
            source,
        }
    })?;
    let conns = Arc::new(Conns::default());
    let ctx = Arc::new(postgres::Context {
        name: spec.name.clone(),
        secret: spec.secret.clone(),
        upstream: spec.upstream.clone(),
        tls,
        credentials: credentials.clone(),
        password,
        keys: Arc::default(),
        conns: conns.clone(),
        stats: stats::for_gateway(&spec.name),
        max_connections: u64::from(spec.max_connections),
        refusing: Default::default(),
        runtime: runtime.handles()[0].clone(),
    });
    let listener = Arc::new(listener);
    let stopping = Arc::new(AtomicBool::new(false));
    let accept = {
        let (listener, stopping) = (listener.clone(), stopping.clone());
        std::thread::Builder::new()
            .name(format!("gateway-{}", spec.name))
            .spawn(move || accept_loop(&listener, &stopping, &ctx))
    };
    let accept = match accept {
        Ok(h) => h,
        Err(source) => {
            remove_files(&files);
            return Err(GatewayError::Thread {
                gateway: spec.name.clone(),
                source,
            });
        }
    };
    info!(gateway = %spec.name, listen = ?spec.listen, upstream = %spec.upstream, "gateway listening");
    Ok(Running {
        name: spec.name.clone(),
        listener,
        stopping,
        accept: Some(accept),
        conns,
        files,
        dir: created_dir,
        runtime: Some(runtime),
    })
}

fn accept_loop(listener: &Listener, stopping: &AtomicBool, ctx: &Arc<postgres::Context>) {
    loop {
        let conn = listener.accept();
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        match conn {
            Ok(s) => {
                if ctx.stats.open.load(Ordering::SeqCst) >= ctx.max_connections {
                    refuse_over_cap(s, ctx);
                    continue;
                }
                let open = stats::OpenConn::new(&ctx.stats);
                let conn_ctx = ctx.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("gateway-{}-conn", ctx.name))
                    .stack_size(THREAD_STACK)
                    .spawn(move || postgres::serve(s, &conn_ctx, open));
                if let Err(e) = spawned {
                    warn!(gateway = %ctx.name, error = %e, "cannot start a connection's thread; connection dropped");
                }
            }
            Err(e) => {
                // Out of descriptors and the like: do not spin on it.
                error!(gateway = %ctx.name, error = %e, "accept failed");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// How many clients over `max_connections` may be answered at once after
/// their startup packet (as a server does, so that libpq shows the message);
/// beyond that they are told at once from the accept thread.
const REFUSING: u64 = 32;

/// Over `max_connections`: the client gets 53300 (as a full server), on a
/// short-lived thread that first reads its opening (bounded by a short
/// timeout), or at once when too many such threads run already. The accept
/// thread never waits on a client.
fn refuse_over_cap(mut s: stream::Stream, ctx: &Arc<postgres::Context>) {
    ctx.stats.error(stats::ErrorKind::TooManyConnections);
    warn!(gateway = %ctx.name, max_connections = ctx.max_connections, "too many connections; refusing one");
    if ctx.refusing.fetch_add(1, Ordering::SeqCst) < REFUSING {
        let conn_ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("gateway-{}-full", ctx.name))
            .stack_size(THREAD_STACK)
            .spawn(move || {
                postgres::refuse_full(s, &conn_ctx);
                conn_ctx.refusing.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_ok() {
            return;
        }
        ctx.refusing.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    ctx.refusing.fetch_sub(1, Ordering::SeqCst);
    let _ = s.set_write_timeout(Some(Duration::from_millis(100)));
    let _ = s.write_all(&postgres::too_many_connections(ctx));
    s.shutdown();
}

/// Makes `dir` a 0700 directory of the agent's uid; true when it created it.
fn socket_dir(spec: &GatewaySpec, dir: &Path) -> Result<bool, GatewayError> {
    let bad = |problem: String| GatewayError::SocketDir {
        gateway: spec.name.clone(),
        dir: dir.to_path_buf(),
        problem,
    };
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| bad(e.to_string()))?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let m = std::fs::symlink_metadata(dir).map_err(|e| bad(e.to_string()))?;
            if !m.is_dir() {
                return Err(bad("exists and is not a directory".into()));
            }
            if m.uid() != nix::unistd::geteuid().as_raw() {
                return Err(bad(format!("is owned by uid {}, not the agent's", m.uid())));
            }
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| bad(e.to_string()))?;
            Ok(false)
        }
        Err(e) => Err(bad(e.to_string())),
    }
}

/// Writes the local password like a secret file: `[output]` mode and owner.
fn write_password(path: &Path, password: &str, output: &OutputConfig) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(output.mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    if output.uid.is_some() || output.gid.is_some() {
        nix::unistd::fchown(
            std::os::fd::AsRawFd::as_raw_fd(&f),
            output.uid.map(nix::unistd::Uid::from_raw),
            output.gid.map(nix::unistd::Gid::from_raw),
        )?;
    }
    f.set_permissions(std::fs::Permissions::from_mode(output.mode))?;
    f.write_all(password.as_bytes())
}
