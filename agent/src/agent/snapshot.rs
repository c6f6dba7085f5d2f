//! A one-shot read of an agent configuration's secret values, for `shroud scan
//! --config`: log in with the configured method, read each secret, keep its leaf
//! values, then revoke every lease obtained and the token the login created. The
//! same Vault client, auth and API calls as the agent; no files are written.
//!
//! `kind = "dynamic"` secrets are not read: every read of a dynamic secret creates
//! new credentials, which cannot occur in any artifact, so reading them would only
//! create (and then revoke) credentials for nothing. The same holds for `pki`
//! certificates and every secret with `params` (a write: each one issues or signs
//! something new). A `generic` secret that comes back with a lease is read and
//! its lease revoked.

use std::time::Instant;

use tracing::{info, warn};
use zeroize::Zeroizing;

use super::handshake::entry_name;
use super::retry::retry;
use crate::config::{AuthMethod, Config, Format, SecretKind};
use crate::vault::api;
use crate::vault::auth::{self, AuthError};
use crate::vault::{VaultClient, VaultError};

/// Why the values could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Vault settings (TLS) are unusable.
    #[error(transparent)]
    Client(VaultError),
    /// Login failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A secret could not be read.
    #[error("secret `{secret}` ({path}): {source}")]
    Fetch {
        /// Secret name.
        secret: String,
        /// Configured path.
        path: String,
        /// The error.
        source: Box<VaultError>,
    },
    /// A lease or the token could not be revoked: credentials may still be alive.
    #[error("could not revoke {what}: {source}")]
    Revoke {
        /// `the lease of secret `x`` or `the Vault token`.
        what: String,
        /// The error.
        source: Box<VaultError>,
    },
}

impl SnapshotError {
    /// True for errors caused by the configuration or its credential files (exit 64).
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            SnapshotError::Client(_)
                | SnapshotError::Auth(AuthError::Credential { .. } | AuthError::Empty { .. })
        )
    }
}

/// The values read: (entry name, value), the names as in `.shroud/values`
/// (`<secret>.<field>`). `Debug` shows names only; values are zeroized on drop.
#[derive(Default)]
pub struct Snapshot {
    /// (name, value) pairs in configuration order.
    pub values: Vec<(String, Zeroizing<Vec<u8>>)>,
    /// Names of the secrets that were not read (dynamic, pki, writes).
    pub skipped: Vec<String>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field(
                "names",
                &self.values.iter().map(|v| &v.0).collect::<Vec<_>>(),
            )
            .field("skipped", &self.skipped)
            .finish()
    }
}

/// Logs in, reads every non-dynamic secret of `cfg`, and revokes what it
/// obtained (leases; the token unless it was given with `method = "token"`)
/// before returning, whether the reads worked or not.
pub fn read_values(cfg: &Config) -> Result<Snapshot, SnapshotError> {
    let mut client = VaultClient::new(&cfg.vault).map_err(SnapshotError::Client)?;
    let mut snapshot = Snapshot::default();
    let mut leases: Vec<(String, String)> = Vec::new();
    let to_read: Vec<_> = cfg
        .secrets
        .iter()
        .filter(|s| {
            // Writes (certificates, signatures) are not repeatable reads either:
            // each one issues something new.
            // A [[template]]'s plain reads are taken below, call by call.
            let dynamic =
                s.kind == SecretKind::Dynamic || s.kind == SecretKind::Pki || s.params.is_some();
            if dynamic {
                snapshot.skipped.push(s.name.clone());
            }
            !dynamic
        })
        .collect();
    if to_read.is_empty() {
        return Ok(snapshot);
    }
    auth::login(&cfg.auth, &mut client)?;
    let mut failure = None;
    for spec in to_read {
        if let Format::Consul(t) = &spec.format {
            if let Err(source) =
                template_values(cfg, &client, &spec.name, t, &mut snapshot, &mut leases)
            {
                failure = Some(SnapshotError::Fetch {
                    secret: spec.name.clone(),
                    path: spec.path.clone(),
                    source: Box::new(source),
                });
                break;
            }
            continue;
        }
        match api::read(&client, &spec.read_path(), spec.kind == SecretKind::Kv2) {
            Ok(read) => {
                if let Some(lease) = read.lease {
                    leases.push((spec.name.clone(), lease.id));
                }
                for (field, value) in read.data.leaves() {
                    let name = entry_name(&spec.name, &field);
                    crate::report::warn_weak_once(&name, &value, cfg.redact.min_length);
                    let derived = crate::derive::derive(&name, &value, cfg.redact.min_length);
                    snapshot.values.push((name, value));
                    snapshot.values.extend(derived);
                }
            }
            Err(source) => {
                failure = Some(SnapshotError::Fetch {
                    secret: spec.name.clone(),
                    path: spec.path.clone(),
                    source: Box::new(source),
                });
                break;
            }
        }
    }
    let revoked = revoke(cfg, &client, &leases);
    client.set_token(None);
    match (failure, revoked) {
        (Some(e), _) | (None, Err(e)) => Err(e),
        (None, Ok(())) => Ok(snapshot),
    }
}

/// The values a `[[template]]` renders from its plain reads (`secret "P"`
/// without parameters), named as the agent names them (`<template>.<call>.<field>`).
/// Calls that issue something new each time (`pkiCert`, writes, `…/creds/…`
/// paths) are skipped and named; a read that turns out leased anyway has its
/// lease revoked with the others.
fn template_values(
    cfg: &Config,
    client: &VaultClient,
    name: &str,
    t: &crate::config::ConsulTemplate,
    snapshot: &mut Snapshot,
    leases: &mut Vec<(String, String)>,
) -> Result<(), VaultError> {
    use crate::ctmpl::SecretFunc;
    for (i, call) in t.calls.iter().enumerate() {
        let path = call.path.trim_matches('/');
        let issues = call.func == SecretFunc::PkiCert
            || !call.params.is_empty()
            || path.split('/').skip(1).any(|s| s == "creds");
        if issues {
            snapshot.skipped.push(format!("{name} ({path})"));
            continue;
        }
        let answer =
            crate::vault::raw::get(client, &crate::vault::raw::kv_read_path(client, path))?;
        if let Some(lease) = answer["lease_id"].as_str().filter(|l| !l.is_empty()) {
            leases.push((name.to_string(), lease.to_string()));
        }
        if let Some(data) = answer["data"].as_object() {
            for (field, value) in crate::vault::api::SecretData(data.clone()).leaves() {
                let entry = entry_name(name, &format!("{i}.{field}"));
                crate::report::warn_weak_once(&entry, &value, cfg.redact.min_length);
                let derived = crate::derive::derive(&entry, &value, cfg.redact.min_length);
                snapshot.values.push((entry, value));
                snapshot.values.extend(derived);
            }
        }
    }
    Ok(())
}

/// Revokes `leases` and (unless the operator gave the token) the token, retrying
/// transient failures until `[lifecycle] revoke_timeout`. Returns the first
/// failure after trying everything.
pub(crate) fn revoke(
    cfg: &Config,
    client: &VaultClient,
    leases: &[(String, String)],
) -> Result<(), SnapshotError> {
    let deadline = Instant::now() + cfg.lifecycle.revoke_timeout;
    let mut first = None;
    for (secret, id) in leases {
        if let Err(e) = retry(deadline, || api::revoke_lease(client, id), |_, _| {}) {
            warn!(secret = %secret, error = %e, "cannot revoke the lease");
            first.get_or_insert(SnapshotError::Revoke {
                what: format!("the lease of secret `{secret}`"),
                source: Box::new(e),
            });
        }
    }
    // A token given by the operator is theirs to keep; a token from a login is ours.
    if cfg.auth.method != AuthMethod::Token {
        if let Err(e) = retry(deadline, || api::revoke_self(client), |_, _| {}) {
            warn!(error = %e, "cannot revoke the Vault token");
            first.get_or_insert(SnapshotError::Revoke {
                what: "the Vault token".to_string(),
                source: Box::new(e),
            });
        }
    }
    if first.is_none() {
        info!(leases = leases.len(), "leases and token revoked");
    }
    first.map_or(Ok(()), Err)
}
