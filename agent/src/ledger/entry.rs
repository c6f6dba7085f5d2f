//! One ledger record and the bytes its signature covers.

use serde::{Deserialize, Serialize};

/// Who signed: the configuration's Vault and login, and the host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// `[vault] address`.
    pub vault: String,
    /// `[auth] method`.
    pub method: String,
    /// `[auth] mount`.
    pub mount: String,
    /// `[auth] role`, when the method has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The host name of the machine that signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl Identity {
    /// The identity of `cfg` on this host.
    pub fn of(cfg: &crate::config::Config) -> Identity {
        Identity {
            vault: cfg.vault.address.clone(),
            method: cfg.auth.method.name().to_string(),
            mount: cfg.auth.mount.clone(),
            role: cfg.auth.role.clone(),
            host: nix::unistd::gethostname()
                .ok()
                .map(|h| h.to_string_lossy().into_owned()),
        }
    }
}

/// A signed artifact.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Entry {
    /// RFC 3339 time of signing (UTC, milliseconds).
    pub time: String,
    /// The artifact's path as given to `scan`.
    pub artifact: String,
    /// SHA-256 of its content, lowercase hex.
    pub sha256: String,
    /// Who signed.
    pub identity: Identity,
    /// The transit key, `MOUNT/NAME`.
    pub key: String,
    /// The key version that signed.
    pub key_version: u64,
    /// Transit's `vault:vN:…` signature of [`signed_message`].
    pub signature: String,
}

/// The record as written: the entry between `seq` and `prev`.
#[derive(Serialize)]
pub(crate) struct Record<'a> {
    seq: u64,
    time: &'a str,
    event: &'static str,
    artifact: &'a str,
    sha256: &'a str,
    identity: &'a Identity,
    key: &'a str,
    key_version: u64,
    signature: &'a str,
    prev: &'a str,
}

impl Entry {
    pub(crate) fn record<'a>(&'a self, seq: u64, prev: &'a str) -> Record<'a> {
        Record {
            seq,
            time: &self.time,
            event: "artifact",
            artifact: &self.artifact,
            sha256: &self.sha256,
            identity: &self.identity,
            key: &self.key,
            key_version: self.key_version,
            signature: &self.signature,
            prev,
        }
    }
}

/// What is signed for an artifact: a domain prefix and the compact JSON of the
/// artifact, its digest, the time and the identity, in that order.
pub fn signed_message(artifact: &str, sha256: &str, time: &str, identity: &Identity) -> Vec<u8> {
    #[derive(Serialize)]
    struct Signed<'a> {
        artifact: &'a str,
        sha256: &'a str,
        time: &'a str,
        identity: &'a Identity,
    }
    let mut out = b"shroud-ledger-v1\n".to_vec();
    out.extend(
        serde_json::to_vec(&Signed {
            artifact,
            sha256,
            time,
            identity,
        })
        .expect("serializes"),
    );
    out
}

impl Entry {
    /// The message this entry's signature must cover.
    pub fn message(&self) -> Vec<u8> {
        signed_message(&self.artifact, &self.sha256, &self.time, &self.identity)
    }
}
