//! Security-relevant events, emitted by the agent and exec and consumed by sinks
//! (metrics, the audit trail, logs). Emitters do not know who listens; sinks are
//! installed once at start-up with [`install`].
//!
//! Events carry secret *names* and Vault *paths* from the configuration and lease
//! ids; never secret values. Sinks must not expose lease ids as-is (the audit sink
//! hashes them; metrics never use them as labels).

use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How an operation ended. Error texts must not contain secret values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It worked.
    Ok,
    /// It failed, with a description.
    Error(String),
    /// Vault refused it (permission denied).
    Denied(String),
}

impl Outcome {
    /// `ok`, `error` or `denied`: a low-cardinality label.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error(_) => "error",
            Outcome::Denied(_) => "denied",
        }
    }
}

/// One event.
#[derive(Clone, Debug)]
pub enum Event<'a> {
    /// A login to Vault (`method`: kubernetes, approle, jwt, token).
    Login {
        /// Auth method.
        method: &'a str,
        /// Result.
        outcome: Outcome,
    },
    /// The Vault token was renewed (renew-self).
    TokenRenew {
        /// Result.
        outcome: Outcome,
    },
    /// A secret was read from Vault.
    Fetch {
        /// Secret name from the config.
        secret: &'a str,
        /// Vault path from the config.
        path: &'a str,
        /// Lease id, when the secret has one.
        lease_id: Option<&'a str>,
        /// Result.
        outcome: Outcome,
    },
    /// A lease renewal.
    Renew {
        /// Secret name.
        secret: &'a str,
        /// Vault path.
        path: &'a str,
        /// Lease id.
        lease_id: Option<&'a str>,
        /// Result.
        outcome: Outcome,
    },
    /// New values of a secret were published (files swapped).
    Rotate {
        /// Secret name.
        secret: &'a str,
        /// Vault path.
        path: &'a str,
        /// Lease id of the new credentials.
        lease_id: Option<&'a str>,
    },
    /// A lease (or, with `secret` None, the token) was revoked.
    Revoke {
        /// Secret name; None for the Vault token.
        secret: Option<&'a str>,
        /// Lease id; None for the token and for a certificate (pki/revoke).
        lease_id: Option<&'a str>,
        /// Why it was revoked.
        reason: RevokeReason,
        /// Result.
        outcome: Outcome,
    },
    /// Rendered files were overwritten and removed.
    Wipe {
        /// How many files.
        files: usize,
        /// How long it took.
        duration: Duration,
    },
    /// Vault denied access to a secret, or a policy denied an action.
    Denial {
        /// Secret name, when about one.
        secret: Option<&'a str>,
        /// Vault path, when about one.
        path: Option<&'a str>,
        /// Why.
        reason: &'a str,
    },
    /// Seconds until a secret's lease expires (sampled after each fetch/renew).
    LeaseTtl {
        /// Secret name.
        secret: &'a str,
        /// Seconds left.
        seconds: f64,
    },
    /// One HTTP request to Vault.
    VaultRequest {
        /// Operation name (login, read, renew, revoke, lookup…).
        operation: &'a str,
        /// Latency.
        duration: Duration,
        /// Result.
        outcome: Outcome,
    },
    /// A publication (new values into `.shroud/values` and the files renamed
    /// into place) ended; a failure leaves the previous values current.
    Publish {
        /// The secret being rotated; None for a whole-set publication.
        secret: Option<&'a str>,
        /// Result.
        outcome: Outcome,
    },
    /// A gateway logged in upstream (docs/gateway.md) with a credential.
    GatewayLogin {
        /// The gateway's name.
        gateway: &'a str,
        /// The secret whose credential it used.
        secret: &'a str,
        /// The lease of that credential.
        lease_id: Option<&'a str>,
        /// Result.
        outcome: Outcome,
    },
    /// The workload obtained a lease through a vault gateway (recorded, kept
    /// in `[state]`, renewed, revoked at exit).
    GatewayLease {
        /// The gateway's name.
        gateway: &'a str,
        /// The API path (after `/v1/`) of the request that created it.
        path: &'a str,
        /// The lease id.
        lease_id: &'a str,
    },
    /// The agent renewed a lease obtained through a vault gateway.
    GatewayRenew {
        /// The gateway's name.
        gateway: &'a str,
        /// The API path it was obtained through.
        path: &'a str,
        /// The lease id.
        lease_id: &'a str,
        /// Result.
        outcome: Outcome,
    },
    /// A lease obtained through a vault gateway was revoked.
    GatewayRevoke {
        /// The gateway's name.
        gateway: &'a str,
        /// The API path it was obtained through.
        path: &'a str,
        /// The lease id.
        lease_id: &'a str,
        /// Why: `shutdown`, or at a restart `stale` (its gateway is gone) or
        /// `rebound` (its path is no longer allowed).
        reason: RevokeReason,
        /// Result.
        outcome: Outcome,
    },
    /// The first complete render is done.
    Ready,
    /// The workload (or shroud) is exiting with this code.
    Exit {
        /// Exit code.
        code: i32,
    },
}

impl Event<'_> {
    /// The event's kind as a stable lowercase name.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Login { .. } => "login",
            Event::TokenRenew { .. } => "token_renew",
            Event::Fetch { .. } => "fetch",
            Event::Renew { .. } => "renew",
            Event::Rotate { .. } => "rotate",
            Event::Revoke { .. } => "revoke",
            Event::Wipe { .. } => "wipe",
            Event::Denial { .. } => "denial",
            Event::LeaseTtl { .. } => "lease_ttl",
            Event::VaultRequest { .. } => "vault_request",
            Event::Publish { .. } => "publish",
            Event::GatewayLogin { .. } => "gateway_login",
            Event::GatewayLease { .. } => "gateway_lease",
            Event::GatewayRenew { .. } => "gateway_renew",
            Event::GatewayRevoke { .. } => "gateway_revoke",
            Event::Ready => "ready",
            Event::Exit { .. } => "exit",
        }
    }
}

/// A consumer of events.
pub trait EventSink: Send + Sync {
    /// Handles one event; must not block for long.
    fn emit(&self, event: &Event<'_>);
}

static SINKS: RwLock<Vec<Arc<dyn EventSink>>> = RwLock::new(Vec::new());

/// Adds a sink for the rest of the process's life.
pub fn install(sink: Arc<dyn EventSink>) {
    SINKS.write().unwrap_or_else(|e| e.into_inner()).push(sink);
}

/// Sends `event` to every installed sink.
pub fn emit(event: Event<'_>) {
    let sinks = SINKS.read().unwrap_or_else(|e| e.into_inner());
    for s in sinks.iter() {
        s.emit(&event);
    }
}

/// Why a lease, certificate or token was revoked (audit member
/// `revoke_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeReason {
    /// Shutdown: the workload is over.
    Shutdown,
    /// Replaced by a rotation and revoked at once (`retire_grace = "0s"`, or
    /// an unused new lease whose publication failed).
    Replaced,
    /// Replaced by a rotation and kept alive for `retire_grace`, now over.
    Retired,
    /// Left by a previous agent: being replaced, or of a secret no longer
    /// configured.
    Stale,
    /// Taken under a configuration that changed (Vault address, namespace,
    /// auth identity, or the secret's path, kind or parameters).
    Rebound,
}

impl RevokeReason {
    /// The stable lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            RevokeReason::Shutdown => "shutdown",
            RevokeReason::Replaced => "replaced",
            RevokeReason::Retired => "retired",
            RevokeReason::Stale => "stale",
            RevokeReason::Rebound => "rebound",
        }
    }
}

/// What a `Revoke` event revoked: `lease` (with a lease id, whether or not
/// its secret is known), `token`, or `certificate` (a secret without a lease:
/// a pki certificate revoked by serial).
pub fn revoked_kind(secret: Option<&str>, lease_id: Option<&str>) -> &'static str {
    match (secret, lease_id) {
        (_, Some(_)) => "lease",
        (None, None) => "token",
        (Some(_), None) => "certificate",
    }
}
