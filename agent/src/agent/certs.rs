//! `kind = "pki"`: one issuance as the files of a Kubernetes TLS secret, and the
//! values that stay masked while it is in use.

use serde_json::Value;
use zeroize::Zeroizing;

use super::render::RenderError;
use crate::vault::api::SecretData;

/// The leaf certificate followed by the issuing chain.
pub const CERT_FILE: &str = "tls.crt";
/// The private key.
pub const KEY_FILE: &str = "tls.key";
/// The top of the issuing chain, for peers that verify against it.
pub const CA_FILE: &str = "ca.crt";

fn pem<'a>(secret: &str, data: &'a SecretData, field: &str) -> Result<&'a str, RenderError> {
    data.0
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| s.contains("-----BEGIN "))
        .ok_or_else(|| RenderError::Pki {
            secret: secret.to_string(),
            problem: format!("no PEM `{field}` in the answer"),
        })
}

fn with_newline(s: &str) -> String {
    let mut s = s.trim_end().to_string();
    s.push('\n');
    s
}

/// The chain Vault returned (`ca_chain`, else `issuing_ca`), leaf excluded.
fn chain<'a>(secret: &str, data: &'a SecretData) -> Result<Vec<&'a str>, RenderError> {
    let listed: Vec<&str> = data
        .0
        .get("ca_chain")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !listed.is_empty() {
        return Ok(listed);
    }
    Ok(vec![pem(secret, data, "issuing_ca")?])
}

/// Files of a directory output: (file name, content).
pub type DirFiles = Vec<(&'static str, Zeroizing<Vec<u8>>)>;

/// `tls.crt` (leaf + chain), `tls.key`, `ca.crt` (the last certificate of the
/// chain: the root when Vault knows it, else the issuing CA).
pub fn files(secret: &str, data: &SecretData) -> Result<DirFiles, RenderError> {
    let leaf = pem(secret, data, "certificate")?;
    let key = pem(secret, data, "private_key")?;
    let chain = chain(secret, data)?;
    let mut crt = with_newline(leaf);
    for c in &chain {
        crt.push_str(&with_newline(c));
    }
    let ca = chain.last().map(|c| with_newline(c)).unwrap_or_default();
    Ok(vec![
        (CERT_FILE, Zeroizing::new(crt.into_bytes())),
        (KEY_FILE, Zeroizing::new(with_newline(key).into_bytes())),
        (CA_FILE, Zeroizing::new(ca.into_bytes())),
    ])
}

/// The private key and the leaf certificate, as whole PEM blocks (the redactor
/// also masks each of their lines). Not the serial, expiry or CA: public, and
/// short numbers that would mask unrelated output.
pub fn masked(data: &SecretData) -> Vec<(String, Zeroizing<Vec<u8>>)> {
    ["private_key", "certificate"]
        .iter()
        .filter_map(|f| {
            let v = data.0.get(*f)?.as_str()?;
            Some((
                f.to_string(),
                Zeroizing::new(v.trim_end().as_bytes().to_vec()),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(v: Value) -> SecretData {
        SecretData(v.as_object().unwrap().clone())
    }

    #[test]
    fn files_and_masked_values() {
        let d = data(serde_json::json!({
            "certificate": "-----BEGIN CERTIFICATE-----\nLEAF\n-----END CERTIFICATE-----",
            "private_key": "-----BEGIN RSA PRIVATE KEY-----\nKEY\n-----END RSA PRIVATE KEY-----",
            "issuing_ca": "-----BEGIN CERTIFICATE-----\nINT\n-----END CERTIFICATE-----",
            "ca_chain": [
                "-----BEGIN CERTIFICATE-----\nINT\n-----END CERTIFICATE-----",
                "-----BEGIN CERTIFICATE-----\nROOT\n-----END CERTIFICATE-----"
            ],
            "serial_number": "1a:2b",
            "expiration": 1_900_000_000u64,
        }));
        let f = files("tls", &d).unwrap();
        let text = |i: usize| String::from_utf8(f[i].1.to_vec()).unwrap();
        assert_eq!(f[0].0, "tls.crt");
        assert!(text(0).starts_with("-----BEGIN CERTIFICATE-----\nLEAF"));
        assert!(text(0).contains("INT") && text(0).ends_with("ROOT\n-----END CERTIFICATE-----\n"));
        assert!(text(1).contains("KEY"));
        assert!(text(2).contains("ROOT") && !text(2).contains("INT"));
        let m: Vec<String> = masked(&d).into_iter().map(|(n, _)| n).collect();
        assert_eq!(m, ["private_key", "certificate"]);
        let e = files("tls", &data(serde_json::json!({"certificate": "x"})))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("secret `tls`") && e.contains("certificate"),
            "{e}"
        );
    }
}
