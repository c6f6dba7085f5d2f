//! Each gateway's counters (atomics the connections bump), read by the
//! metrics collector at scrape time (telemetry/gateways.rs). Labels are the
//! gateway's configured name and fixed words; never a user, role or value.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Why a connection failed, as the `kind` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Garbage or a malformed message from the client.
    Protocol,
    /// A wrong local password.
    LocalAuth,
    /// The agent held no current credential.
    NoCredential,
    /// The upstream could not be reached, refused the login or failed.
    Upstream,
    /// TLS to the upstream failed.
    Tls,
    /// Over `max_connections`.
    TooManyConnections,
    /// A request outside what the gateway allows (kinds http and vault: a
    /// path outside the base path or the allow list).
    Forbidden,
}

impl ErrorKind {
    /// Every kind, in label order.
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::Protocol,
        ErrorKind::LocalAuth,
        ErrorKind::NoCredential,
        ErrorKind::Upstream,
        ErrorKind::Tls,
        ErrorKind::TooManyConnections,
        ErrorKind::Forbidden,
    ];

    /// The `kind` label.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::Protocol => "protocol",
            ErrorKind::LocalAuth => "local_auth",
            ErrorKind::NoCredential => "no_credential",
            ErrorKind::Upstream => "upstream",
            ErrorKind::Tls => "tls",
            ErrorKind::TooManyConnections => "too_many_connections",
            ErrorKind::Forbidden => "forbidden",
        }
    }
}

/// An upstream login's result, as the `result` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginResult {
    /// Logged in.
    Ok,
    /// The server refused the credential.
    Refused,
    /// The connection, TLS or the exchange failed.
    Error,
}

impl LoginResult {
    /// Every result, in label order.
    pub const ALL: [LoginResult; 3] = [LoginResult::Ok, LoginResult::Refused, LoginResult::Error];

    /// The `result` label.
    pub fn label(self) -> &'static str {
        match self {
            LoginResult::Ok => "ok",
            LoginResult::Refused => "refused",
            LoginResult::Error => "error",
        }
    }
}

/// One gateway's counters. Every kind counts connections, bytes, errors and
/// upstream logins the same way (for http and vault, each request carrying
/// the credential is a login: refused when the upstream answers 401 or 403).
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests answered, refused ones included (kinds http and vault).
    pub requests: AtomicU64,
    /// Whether this gateway answers requests (exports `requests_total`).
    pub per_request: AtomicBool,
    /// Connections open now.
    pub open: AtomicU64,
    /// Connections accepted.
    pub total: AtomicU64,
    /// Bytes copied from clients to the upstream.
    pub to_upstream: AtomicU64,
    /// Bytes copied from the upstream to clients.
    pub to_client: AtomicU64,
    errors: [AtomicU64; ErrorKind::ALL.len()],
    logins: [AtomicU64; LoginResult::ALL.len()],
}

impl Stats {
    /// Counts an error.
    pub fn error(&self, kind: ErrorKind) {
        let i = ErrorKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        self.errors[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an upstream login.
    pub fn login(&self, result: LoginResult) {
        let i = LoginResult::ALL
            .iter()
            .position(|r| *r == result)
            .unwrap_or(0);
        self.logins[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Errors by kind.
    pub fn errors(&self) -> impl Iterator<Item = (ErrorKind, u64)> + '_ {
        ErrorKind::ALL
            .iter()
            .zip(&self.errors)
            .map(|(k, n)| (*k, n.load(Ordering::Relaxed)))
    }

    /// Upstream logins by result.
    pub fn logins(&self) -> impl Iterator<Item = (LoginResult, u64)> + '_ {
        LoginResult::ALL
            .iter()
            .zip(&self.logins)
            .map(|(r, n)| (*r, n.load(Ordering::Relaxed)))
    }
}

/// An open connection: counted while it lives.
#[derive(Debug)]
pub struct OpenConn(Arc<Stats>);

impl OpenConn {
    /// Counts a connection opened on `stats`.
    pub fn new(stats: &Arc<Stats>) -> OpenConn {
        stats.open.fetch_add(1, Ordering::SeqCst);
        stats.total.fetch_add(1, Ordering::Relaxed);
        OpenConn(stats.clone())
    }
}

impl Drop for OpenConn {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

static ALL: Mutex<Vec<(String, Arc<Stats>)>> = Mutex::new(Vec::new());

/// The counters of gateway `name`, kept for the process's life (a gateway
/// started again by name, as after a reload, goes on counting).
pub fn for_gateway(name: &str) -> Arc<Stats> {
    let mut all = ALL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, s)) = all.iter().find(|(n, _)| n == name) {
        return s.clone();
    }
    let s = Arc::new(Stats::default());
    all.push((name.to_string(), s.clone()));
    s
}

/// Every gateway's counters, by name.
pub fn all() -> Vec<(String, Arc<Stats>)> {
    ALL.lock().unwrap_or_else(|e| e.into_inner()).clone()
}
