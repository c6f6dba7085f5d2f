//! One audit record and how it is sealed into a line.
//!
//! A line is the record's JSON object with two trailing members: `prev`, the SHA-256
//! (hex) of the previous line's bytes (without its newline; [`GENESIS`] for the
//! first), and `hash`, the SHA-256 of the line up to `prev`'s closing quote
//! followed by `}`. `hash` pinpoints an edited record; `prev` links the records.

use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who the events are about: the Kubernetes downward API's values when set, the
/// host name otherwise.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Workload {
    /// `SHROUD_POD_NAME`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// `SHROUD_POD_NAMESPACE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `SHROUD_SERVICE_ACCOUNT`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// The host name, when no pod name is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

impl Workload {
    /// Reads the identity from the environment.
    pub fn from_env() -> Workload {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let pod = var("SHROUD_POD_NAME");
        let hostname = if pod.is_none() {
            nix::unistd::gethostname()
                .ok()
                .map(|h| h.to_string_lossy().into_owned())
        } else {
            None
        };
        Workload {
            pod,
            namespace: var("SHROUD_POD_NAMESPACE"),
            service_account: var("SHROUD_SERVICE_ACCOUNT"),
            hostname,
        }
    }
}

/// The fields of one record, in the order they are written.
#[derive(Debug, Serialize)]
pub(crate) struct Record<'a> {
    pub seq: u64,
    pub time: String,
    pub event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'a str>,
    /// `revoke` only: why ([`crate::events::RevokeReason`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoke_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'a str>,
    /// `gateway_login`, `gateway_lease`, `gateway_revoke`: the gateway's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_id_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    pub outcome: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `chain_signature`: how many records the signature covers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
    /// `chain_signature`: the hash of the last record covered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// `chain_signature`: whether it is the one written at exit.
    #[serde(rename = "final", skip_serializing_if = "Option::is_none")]
    pub is_final: Option<bool>,
    /// `chain_signature`: the transit key, `MOUNT/NAME`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `chain_signature`: the key version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_version: Option<u64>,
    /// `chain_signature`: `vault:vN:…` over [`super::anchor::head_message`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    pub workload: &'a Workload,
    pub prev: &'a str,
}

impl<'a> Record<'a> {
    /// A record of `event` with every optional member empty.
    pub(crate) fn base(event: &'a str, w: &'a Workload) -> Self {
        Record {
            seq: 0,
            time: String::new(),
            event,
            kind: None,
            revoke_reason: None,
            method: None,
            gateway: None,
            secret: None,
            path: None,
            lease_id_sha256: None,
            files: None,
            duration_ms: None,
            code: None,
            outcome: "ok",
            reason: None,
            records: None,
            head: None,
            is_final: None,
            key: None,
            key_version: None,
            signature: None,
            workload: w,
            prev: GENESIS,
        }
    }
}

/// SHA-256 of `bytes` in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `,"hash":"` + 64 hex digits + `"}`.
pub(crate) const HASH_SUFFIX_LEN: usize = 9 + 64 + 2;

/// The record as one line, without the newline. `record` serializes to a JSON
/// object whose members end with `prev` (audit records, ledger records).
pub(crate) fn seal(record: &impl Serialize) -> String {
    let body = serde_json::to_string(record).expect("a record always serializes");
    let hash = sha256_hex(body.as_bytes());
    let mut line = body;
    line.pop(); // the closing brace
    line.push_str(",\"hash\":\"");
    line.push_str(&hash);
    line.push_str("\"}");
    line
}

/// The body a sealed line's `hash` was computed over, and that hash; None when the
/// line does not end the way [`seal`] ends it.
pub(crate) fn unseal(line: &str) -> Option<(String, &str)> {
    let cut = line.len().checked_sub(HASH_SUFFIX_LEN)?;
    let suffix = line.get(cut..)?;
    let hash = suffix.strip_prefix(",\"hash\":\"")?.strip_suffix("\"}")?;
    if !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((format!("{}}}", &line[..cut]), hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_unseal_agree() {
        let w = Workload {
            hostname: Some("h".into()),
            ..Workload::default()
        };
        let r = Record {
            seq: 3,
            time: "2026-01-01T00:00:00.000Z".into(),
            event: "fetch",
            secret: Some("db"),
            outcome: "ok",
            workload: &w,
            prev: GENESIS,
            ..Record::base("fetch", &w)
        };
        let line = seal(&r);
        assert!(line.starts_with(r#"{"seq":3,"time":"2026-01-01T00:00:00.000Z","event":"fetch","secret":"db","outcome":"ok","workload":{"hostname":"h"},"prev":"000"#), "{line}");
        let (body, hash) = unseal(&line).unwrap();
        assert_eq!(sha256_hex(body.as_bytes()), hash);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["hash"].as_str(), Some(hash));
    }
}
