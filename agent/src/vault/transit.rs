//! The transit engine's `sign` and `verify` endpoints, and the key name they
//! take. The input is sent base64-encoded (not prehashed), so every signing key
//! type works (ed25519, ecdsa-p256/p384/p521, rsa-2048/3072/4096).

use base64::Engine as _;
use serde_json::{json, Value};

use super::client::{VaultClient, VaultError};

/// A transit signing key: `[MOUNT/]NAME`, the mount defaulting to `transit`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransitKey {
    /// The engine's mount path (may contain `/`).
    pub mount: String,
    /// The key's name.
    pub name: String,
}

impl TransitKey {
    /// Parses `name` or `mount/name` (the last `/` separates them).
    pub fn parse(s: &str) -> Result<TransitKey, String> {
        let (mount, name) = match s.trim_matches('/').rsplit_once('/') {
            Some((m, n)) => (m, n),
            None => ("transit", s),
        };
        let ok = |part: &str| {
            !part.is_empty()
                && part
                    .split('/')
                    .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
        };
        if !ok(mount) || !ok(name) || name.contains('/') {
            return Err(format!(
                "`{s}` is not a transit key: expected NAME or MOUNT/NAME (letters, digits, `-`, `_`, `.`)"
            ));
        }
        Ok(TransitKey {
            mount: mount.to_string(),
            name: name.to_string(),
        })
    }
}

impl std::fmt::Display for TransitKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.mount, self.name)
    }
}

/// A signature as transit returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// `vault:v<N>:<base64>`.
    pub signature: String,
    /// The key version that made it.
    pub key_version: u64,
}

fn bad(operation: &str, path: &str, detail: &str) -> VaultError {
    VaultError::BadResponse {
        operation: operation.to_string(),
        path: path.to_string(),
        detail: detail.to_string(),
    }
}

/// `<mount>/sign/<name>`: signs `input`.
pub fn sign(c: &VaultClient, key: &TransitKey, input: &[u8]) -> Result<Signature, VaultError> {
    let path = format!("{}/sign/{}", key.mount, key.name);
    let body = json!({ "input": base64::engine::general_purpose::STANDARD.encode(input) });
    let answer = c
        .request("transit_sign", "POST", &path, Some(&body))?
        .ok_or_else(|| bad("transit_sign", &path, "empty answer"))?;
    let data = answer.0.get("data").cloned().unwrap_or(Value::Null);
    let signature = data
        .get("signature")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("transit_sign", &path, "no data.signature in the answer"))?
        .to_string();
    let key_version = data
        .get("key_version")
        .and_then(Value::as_u64)
        .or_else(|| version_of(&signature))
        .ok_or_else(|| bad("transit_sign", &path, "no key version in the answer"))?;
    Ok(Signature {
        signature,
        key_version,
    })
}

/// `<mount>/verify/<name>`: whether `signature` is the key's signature of `input`.
/// A malformed signature is `Ok(false)`, like a wrong one.
pub fn verify(
    c: &VaultClient,
    key: &TransitKey,
    input: &[u8],
    signature: &str,
) -> Result<bool, VaultError> {
    let path = format!("{}/verify/{}", key.mount, key.name);
    let body = json!({
        "input": base64::engine::general_purpose::STANDARD.encode(input),
        "signature": signature,
    });
    match c.request("transit_verify", "POST", &path, Some(&body)) {
        Ok(Some(answer)) => answer
            .0
            .get("data")
            .and_then(|d| d.get("valid"))
            .and_then(Value::as_bool)
            .ok_or_else(|| bad("transit_verify", &path, "no data.valid in the answer")),
        Ok(None) => Err(bad("transit_verify", &path, "empty answer")),
        // Transit answers 400 for a signature it cannot parse.
        Err(VaultError::Status { status: 400, .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The key version in `vault:v<N>:…`.
pub fn version_of(signature: &str) -> Option<u64> {
    signature
        .strip_prefix("vault:v")?
        .split_once(':')?
        .0
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_parse_with_a_default_mount() {
        let k = TransitKey::parse("ci-artifacts").unwrap();
        assert_eq!(
            (k.mount.as_str(), k.name.as_str()),
            ("transit", "ci-artifacts")
        );
        let k = TransitKey::parse("team/transit/audit.v2").unwrap();
        assert_eq!(
            (k.mount.as_str(), k.name.as_str()),
            ("team/transit", "audit.v2")
        );
        assert_eq!(k.to_string(), "team/transit/audit.v2");
        for bad in ["", "/", "a//b", "../x", "x/..", "a b", "k?x=1"] {
            assert!(TransitKey::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn versions_come_from_the_signature_prefix() {
        assert_eq!(version_of("vault:v3:abc"), Some(3));
        assert_eq!(version_of("vault:vx:abc"), None);
        assert_eq!(version_of("abc"), None);
    }
}
