//! A PEM private key in the other standard encoding: PKCS#8 ⇄ PKCS#1 for RSA,
//! PKCS#8 ⇄ SEC1 for EC, byte for byte what `openssl pkey [-traditional]`
//! writes. Programs print a key in whichever form they hold it, so both forms
//! (DER and PEM text) are masked.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use pkcs8::der::asn1::{AnyRef, ObjectIdentifier};
use pkcs8::der::{Decode as _, Encode as _};
use pkcs8::spki::AlgorithmIdentifierRef;
use pkcs8::PrivateKeyInfo;
use sec1::{EcParameters, EcPrivateKey};
use zeroize::Zeroizing;

use super::Named;

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

/// One PEM block: its label and decoded body.
struct Block {
    label: String,
    der: Zeroizing<Vec<u8>>,
}

/// Every well-formed PEM block in `text` (any line endings and indentation).
fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let Some(label_end) = after.find("-----") else {
            break;
        };
        let label = &after[..label_end];
        let body_start = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let Some(body_end) = body_start.find(&end_marker) else {
            break;
        };
        let body: Zeroizing<String> = Zeroizing::new(
            body_start[..body_end]
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect(),
        );
        if let Ok(der) = STANDARD.decode(body.as_bytes()) {
            out.push(Block {
                label: label.to_string(),
                der: Zeroizing::new(der),
            });
        }
        rest = &body_start[body_end + end_marker.len()..];
    }
    out
}

/// PEM text as OpenSSL writes it: 64 columns, `\n`, no final newline.
fn pem(label: &str, der: &[u8]) -> Zeroizing<Vec<u8>> {
    let b64 = Zeroizing::new(STANDARD.encode(der));
    let mut out = Zeroizing::new(format!("-----BEGIN {label}-----\n").into_bytes());
    for line in b64.as_bytes().chunks(64) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(format!("-----END {label}-----").as_bytes());
    out
}

/// (form name, PEM label, DER) of the other encoding of one key block.
fn convert(block: &Block) -> Option<(&'static str, &'static str, Zeroizing<Vec<u8>>)> {
    match block.label.as_str() {
        "PRIVATE KEY" => {
            let info = PrivateKeyInfo::from_der(&block.der).ok()?;
            if info.algorithm.oid == RSA_ENCRYPTION {
                pkcs1::RsaPrivateKey::from_der(info.private_key).ok()?;
                Some((
                    "pkcs1",
                    "RSA PRIVATE KEY",
                    Zeroizing::new(info.private_key.to_vec()),
                ))
            } else if info.algorithm.oid == EC_PUBLIC_KEY {
                let curve = info.algorithm.parameters_oid().ok()?;
                let mut key = EcPrivateKey::from_der(info.private_key).ok()?;
                key.parameters = Some(EcParameters::NamedCurve(curve));
                Some(("sec1", "EC PRIVATE KEY", Zeroizing::new(key.to_der().ok()?)))
            } else {
                None
            }
        }
        "RSA PRIVATE KEY" => {
            pkcs1::RsaPrivateKey::from_der(&block.der).ok()?;
            let algorithm = AlgorithmIdentifierRef {
                oid: RSA_ENCRYPTION,
                parameters: Some(AnyRef::NULL),
            };
            let der = PrivateKeyInfo::new(algorithm, &block.der).to_der().ok()?;
            Some(("pkcs8", "PRIVATE KEY", Zeroizing::new(der)))
        }
        "EC PRIVATE KEY" => {
            let mut key = EcPrivateKey::from_der(&block.der).ok()?;
            let Some(EcParameters::NamedCurve(curve)) = key.parameters else {
                return None;
            };
            key.parameters = None;
            let inner = Zeroizing::new(key.to_der().ok()?);
            let algorithm = AlgorithmIdentifierRef {
                oid: EC_PUBLIC_KEY,
                parameters: Some(AnyRef::from(&curve)),
            };
            let der = PrivateKeyInfo::new(algorithm, &inner).to_der().ok()?;
            Some(("pkcs8", "PRIVATE KEY", Zeroizing::new(der)))
        }
        _ => None,
    }
}

/// For each private key in `value` (PEM), its other encoding as DER
/// (`<form>.der`) and as PEM text (`<form>`); keys after the first are
/// numbered (`key2.<form>`). Anything else contributes nothing.
pub fn other_encodings(value: &[u8]) -> Vec<Named> {
    let Ok(text) = std::str::from_utf8(value) else {
        return Vec::new();
    };
    if !text.contains("-----BEGIN ") {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, (form, label, der)) in blocks(text).iter().filter_map(convert).enumerate() {
        let prefix = if i == 0 {
            String::new()
        } else {
            format!("key{}.", i + 1)
        };
        out.push((format!("{prefix}{form}"), pem(label, &der)));
        out.push((format!("{prefix}{form}.der"), der));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Runs openssl; tests that use it fail (not skip) when it is missing.
    fn openssl(args: &[&str]) -> Vec<u8> {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl is needed for these tests (scripts/test --prereqs)");
        assert!(out.status.success(), "openssl {args:?} failed");
        out.stdout
    }

    fn trimmed(mut v: Vec<u8>) -> Vec<u8> {
        while v.last() == Some(&b'\n') {
            v.pop();
        }
        v
    }

    fn form<'a>(out: &'a [Named], name: &str) -> &'a [u8] {
        &out.iter().find(|(n, _)| n == name).expect(name).1
    }

    fn check_pair(pkcs8_args: &[&str]) {
        let dir = tempfile::tempdir().unwrap();
        let p8 = dir.path().join("k8.pem");
        let p8s = p8.to_str().unwrap();
        let mut args = pkcs8_args.to_vec();
        args.extend(["-out", p8s]);
        openssl(&args);
        let pkcs8_pem = trimmed(std::fs::read(&p8).unwrap());
        let traditional = trimmed(openssl(&["pkey", "-in", p8s, "-traditional"]));
        let (form_name, traditional_label) = if traditional.starts_with(b"-----BEGIN RSA") {
            ("pkcs1", "RSA PRIVATE KEY")
        } else {
            ("sec1", "EC PRIVATE KEY")
        };
        let out = other_encodings(&pkcs8_pem);
        assert_eq!(form(&out, form_name), traditional.as_slice());
        let der = form(&out, &format!("{form_name}.der"));
        assert_eq!(
            pem(traditional_label, der).as_slice(),
            traditional.as_slice()
        );
        // And back: the traditional form gives openssl's PKCS#8 bytes.
        let back = other_encodings(&traditional);
        assert_eq!(form(&back, "pkcs8"), pkcs8_pem.as_slice());
    }

    #[test]
    fn rsa_pkcs8_and_pkcs1_match_openssl_both_ways() {
        check_pair(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
        ]);
    }

    #[test]
    fn ec_pkcs8_and_sec1_match_openssl_both_ways() {
        check_pair(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ]);
        check_pair(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
        ]);
    }

    #[test]
    fn other_values_contribute_nothing() {
        assert!(other_encodings(b"not a key").is_empty());
        assert!(
            other_encodings(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----")
                .is_empty()
        );
        assert!(other_encodings(
            b"-----BEGIN PRIVATE KEY-----\nnot base64 at all!\n-----END PRIVATE KEY-----"
        )
        .is_empty());
        let ed = openssl(&["genpkey", "-algorithm", "ED25519"]);
        assert!(other_encodings(&ed).is_empty(), "Ed25519 has one encoding");
    }
}
