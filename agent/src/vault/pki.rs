//! The PKI secrets engine: issuing a certificate (`<mount>/issue/<role>`, a write
//! with parameters) and revoking one by serial (`<mount>/revoke`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::api::{self, SecretRead};
use super::client::{VaultClient, VaultError};

/// The mount of an issue path: `pki/issue/web` → `pki`, `a/b/issue/r` → `a/b`.
pub fn mount_of(issue_path: &str) -> &str {
    issue_path
        .trim_matches('/')
        .rsplitn(3, '/')
        .nth(2)
        .unwrap_or("pki")
}

/// Issues a certificate. The answer's data holds `certificate`, `issuing_ca`,
/// `ca_chain`, `private_key`, `serial_number` and `expiration`; the ones shroud
/// needs are checked here.
pub fn issue(c: &VaultClient, path: &str, params: &Value) -> Result<SecretRead, VaultError> {
    let read = api::write(c, path, params)?;
    for field in ["certificate", "private_key", "serial_number"] {
        if read.data.0.get(field).and_then(Value::as_str).is_none() {
            return Err(api::bad(
                "write",
                path,
                &format!("no `{field}` in the PKI answer; is kind right?"),
            ));
        }
    }
    if expiration(&read).is_none() {
        return Err(api::bad("write", path, "no `expiration` in the PKI answer"));
    }
    Ok(read)
}

/// The serial number of an issued certificate.
pub fn serial(read: &SecretRead) -> Option<&str> {
    read.data.0.get("serial_number").and_then(Value::as_str)
}

/// When an issued certificate stops being valid (`expiration`, Unix seconds).
pub fn expiration(read: &SecretRead) -> Option<SystemTime> {
    read.data
        .0
        .get("expiration")
        .and_then(Value::as_u64)
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

/// `<mount>/revoke` for `serial`.
pub fn revoke(c: &VaultClient, mount: &str, serial: &str) -> Result<(), VaultError> {
    c.request(
        "pki_revoke",
        "POST",
        &format!("{mount}/revoke"),
        Some(&json!({ "serial_number": serial })),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts() {
        assert_eq!(mount_of("pki/issue/web"), "pki");
        assert_eq!(mount_of("/team/pki/issue/web/"), "team/pki");
    }
}
