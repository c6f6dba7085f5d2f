//! The Vault endpoints shroud uses, as typed calls on [`VaultClient`]: login,
//! token lookup/renew/revoke-self, secret reads (KV v2 and leased), writes with
//! parameters, and `sys/leases/renew` / `sys/leases/revoke`.

use std::fmt;
use std::time::Duration;

use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

use super::client::{Answer, Token, VaultClient, VaultError};

/// A token and its lifetime as Vault reported it.
#[derive(Debug)]
pub struct TokenInfo {
    /// The token (None from lookup/renew, which do not return it).
    pub token: Option<Token>,
    /// Time to live; zero means it never expires (root tokens).
    pub ttl: Duration,
    /// Whether renew-self may extend it.
    pub renewable: bool,
}

/// A lease on a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct LeaseInfo {
    /// Lease id (sensitive enough to stay out of logs: it allows revocation).
    pub id: String,
    /// Time to live from when it was issued or renewed.
    pub duration: Duration,
    /// Whether `sys/leases/renew` may extend it.
    pub renewable: bool,
}

impl fmt::Debug for LeaseInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaseInfo")
            .field("duration", &self.duration)
            .field("renewable", &self.renewable)
            .finish_non_exhaustive()
    }
}

/// A secret's data (field → JSON value). `Debug` shows field names only.
pub struct SecretData(pub Map<String, Value>);

impl fmt::Debug for SecretData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl SecretData {
    /// Every leaf value as bytes, named `<field>` (nested: `a.b`), for redaction.
    pub fn leaves(&self) -> Vec<(String, Zeroizing<Vec<u8>>)> {
        let mut out = Vec::new();
        for (k, v) in &self.0 {
            leaves_of(k, v, &mut out);
        }
        out
    }
}

fn leaves_of(name: &str, v: &Value, out: &mut Vec<(String, Zeroizing<Vec<u8>>)>) {
    match v {
        Value::String(s) => out.push((name.to_string(), Zeroizing::new(s.as_bytes().to_vec()))),
        Value::Number(n) => {
            out.push((name.to_string(), Zeroizing::new(n.to_string().into_bytes())))
        }
        Value::Object(m) => {
            for (k, v) in m {
                leaves_of(&format!("{name}.{k}"), v, out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                leaves_of(&format!("{name}.{i}"), v, out);
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
}

/// One read of a secret.
#[derive(Debug)]
pub struct SecretRead {
    /// The fields.
    pub data: SecretData,
    /// The lease, when Vault issued one.
    pub lease: Option<LeaseInfo>,
    /// KV v2 version.
    pub version: Option<u64>,
}

pub(super) fn bad(operation: &str, path: &str, detail: &str) -> VaultError {
    VaultError::BadResponse {
        operation: operation.to_string(),
        path: path.to_string(),
        detail: detail.to_string(),
    }
}

pub(super) fn answer(a: Option<Answer>, operation: &str, path: &str) -> Result<Value, VaultError> {
    a.map(|a| a.0)
        .ok_or_else(|| bad(operation, path, "empty answer"))
}

fn secs(v: &Value, key: &str) -> Duration {
    Duration::from_secs(v.get(key).and_then(Value::as_u64).unwrap_or(0))
}

fn token_from_auth(v: &Value, operation: &str, path: &str) -> Result<TokenInfo, VaultError> {
    let auth = v
        .get("auth")
        .filter(|a| !a.is_null())
        .ok_or_else(|| bad(operation, path, "no `auth` in the answer"))?;
    let token = auth
        .get("client_token")
        .and_then(Value::as_str)
        .map(|t| Token(Zeroizing::new(t.to_string())));
    Ok(TokenInfo {
        token,
        ttl: secs(auth, "lease_duration"),
        renewable: auth
            .get("renewable")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// `auth/<mount>/login`.
pub fn login(c: &VaultClient, mount: &str, body: &Value) -> Result<TokenInfo, VaultError> {
    let path = format!("auth/{mount}/login");
    let v = answer(
        c.request("login", "POST", &path, Some(body))?,
        "login",
        &path,
    )?;
    let info = token_from_auth(&v, "login", &path)?;
    if info.token.is_none() {
        return Err(bad("login", &path, "no client_token in the answer"));
    }
    Ok(info)
}

/// `auth/token/lookup-self`.
pub fn lookup_self(c: &VaultClient) -> Result<TokenInfo, VaultError> {
    let path = "auth/token/lookup-self";
    let v = answer(c.request("lookup", "GET", path, None)?, "lookup", path)?;
    let data = v
        .get("data")
        .ok_or_else(|| bad("lookup", path, "no `data` in the answer"))?;
    Ok(TokenInfo {
        token: None,
        ttl: secs(data, "ttl"),
        renewable: data
            .get("renewable")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// `auth/token/renew-self`.
pub fn renew_self(c: &VaultClient) -> Result<TokenInfo, VaultError> {
    let path = "auth/token/renew-self";
    let v = answer(
        c.request("token_renew", "POST", path, Some(&json!({})))?,
        "token_renew",
        path,
    )?;
    let mut info = token_from_auth(&v, "token_renew", path)?;
    info.token = None;
    Ok(info)
}

/// `auth/token/revoke-self`.
pub fn revoke_self(c: &VaultClient) -> Result<(), VaultError> {
    c.request(
        "token_revoke",
        "POST",
        "auth/token/revoke-self",
        Some(&json!({})),
    )?;
    Ok(())
}

/// Reads a secret. `kv2` unwraps KV v2's `data.data` and `data.metadata.version`.
pub fn read(c: &VaultClient, path: &str, kv2: bool) -> Result<SecretRead, VaultError> {
    let v = answer(c.request("read", "GET", path, None)?, "read", path)?;
    secret_from(v, "read", path, kv2)
}

/// Writes `params` to `path` and takes the answer as a secret (`pki/issue`,
/// `ssh/sign`, `transit/decrypt`, `aws/sts`…), leased when Vault says so.
pub fn write(c: &VaultClient, path: &str, params: &Value) -> Result<SecretRead, VaultError> {
    let v = answer(
        c.request("write", "POST", path, Some(params))?,
        "write",
        path,
    )?;
    secret_from(v, "write", path, false)
}

fn secret_from(mut v: Value, op: &str, path: &str, kv2: bool) -> Result<SecretRead, VaultError> {
    let lease_id = v
        .get("lease_id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let lease = (!lease_id.is_empty()).then(|| LeaseInfo {
        id: lease_id,
        duration: secs(&v, "lease_duration"),
        renewable: v.get("renewable").and_then(Value::as_bool).unwrap_or(false),
    });
    let mut data = match v.get_mut("data").map(Value::take) {
        Some(Value::Object(m)) => m,
        _ => return Err(bad(op, path, "no `data` object in the answer")),
    };
    let mut version = None;
    if kv2 {
        version = data
            .get("metadata")
            .and_then(|m| m.get("version"))
            .and_then(Value::as_u64);
        data = match data.remove("data") {
            Some(Value::Object(m)) => m,
            // A deleted or destroyed version answers with `data: null`.
            Some(Value::Null) => return Err(bad(op, path, "the KV v2 secret is deleted")),
            _ => {
                return Err(bad(
                    op,
                    path,
                    "not a KV v2 answer (no data.data); is kind right?",
                ))
            }
        };
    }
    Ok(SecretRead {
        data: SecretData(data),
        lease,
        version,
    })
}

/// `sys/leases/renew`. Returns the lease as extended (check its duration: at the
/// max TTL Vault answers 200 with a shorter duration than asked).
pub fn renew_lease(
    c: &VaultClient,
    id: &str,
    increment: Duration,
) -> Result<LeaseInfo, VaultError> {
    let path = "sys/leases/renew";
    let v = answer(
        c.request(
            "renew",
            "PUT",
            path,
            Some(&json!({ "lease_id": id, "increment": increment.as_secs() })),
        )?,
        "renew",
        path,
    )?;
    Ok(LeaseInfo {
        id: v
            .get("lease_id")
            .and_then(Value::as_str)
            .unwrap_or(id)
            .to_string(),
        duration: secs(&v, "lease_duration"),
        renewable: v.get("renewable").and_then(Value::as_bool).unwrap_or(false),
    })
}

/// `sys/leases/revoke`.
pub fn revoke_lease(c: &VaultClient, id: &str) -> Result<(), VaultError> {
    c.request(
        "revoke",
        "PUT",
        "sys/leases/revoke",
        Some(&json!({ "lease_id": id })),
    )?;
    Ok(())
}
