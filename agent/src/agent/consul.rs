//! A `[[template]]` at run time: fetching its `secret`/`pkiCert` calls into one
//! secret (each call's whole answer under its index), rendering the template
//! over them as consul-template would, and naming the values to mask (every
//! leaf of every call's data; lease ids and durations are not secrets).

use std::time::SystemTime;

use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

use crate::config::ConsulTemplate;
use crate::ctmpl::{self, Context, SecretCall, SecretFunc};
use crate::template::TemplateError;
use crate::vault::api::{LeaseInfo, SecretData, SecretRead};
use crate::vault::{raw, VaultClient, VaultError};

fn params_body(call: &SecretCall) -> Value {
    Value::Object(
        call.params
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// Fetches every call of `t`. At most one may be leased (the secret's lease is
/// renewed, and the whole template fetched again when it must be replaced);
/// a second one is an error, and the leases just taken are revoked.
///
/// A `pkiCert` whose certificate in `previous` (what is published now) is
/// still good is not issued again, as consul-template reuses the certificate
/// in the template's destination (`dependency/vault_pki.go`, `goodFor`).
///
/// A leased call another template holds now (`held`: its entry, as fetched)
/// is not read again: consul-template watches one dependency per distinct
/// call, so every template reading `database/creds/app` shares one
/// credential and one lease.
pub fn fetch(
    c: &VaultClient,
    t: &ConsulTemplate,
    previous: Option<&SecretData>,
    held: &dyn Fn(&SecretCall) -> Option<Map<String, Value>>,
) -> Result<SecretRead, VaultError> {
    let mut data = Map::new();
    let mut leases: Vec<LeaseInfo> = Vec::new();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for (i, call) in t.calls.iter().enumerate() {
        let path = call.path.trim_matches('/');
        if call.func == SecretFunc::PkiCert {
            if let Some(kept) = previous
                .and_then(|d| entry(d, i))
                .filter(|e| cert_still_good(e, now))
            {
                data.insert(i.to_string(), Value::Object(kept.clone()));
                continue;
            }
        }
        if let Some(shared) = held(call) {
            if let Some(lease) = shared_lease(&shared, now) {
                leases.push(lease);
                data.insert(i.to_string(), Value::Object(shared));
                continue;
            }
        }
        let answer = match (call.func, call.params.is_empty()) {
            (SecretFunc::Secret, true) => raw::get(c, &raw::kv_read_path(c, path)),
            _ => raw::post(c, path, &params_body(call)),
        };
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                revoke(c, &leases);
                return Err(e);
            }
        };
        let lease_id = answer["lease_id"].as_str().unwrap_or("").to_string();
        if !lease_id.is_empty() {
            leases.push(LeaseInfo {
                id: lease_id,
                duration: std::time::Duration::from_secs(
                    answer["lease_duration"].as_u64().unwrap_or(0),
                ),
                renewable: answer["renewable"].as_bool().unwrap_or(false),
            });
        }
        data.insert(
            i.to_string(),
            json!({
                "request_id": answer["request_id"],
                "lease_id": answer["lease_id"],
                "lease_duration": answer["lease_duration"],
                "renewable": answer["renewable"],
                "data": answer["data"],
                "warnings": answer["warnings"],
                // When it was received: a certificate's lifespan starts about then.
                "received": now,
            }),
        );
    }
    if leases.len() > 1 {
        revoke(c, &leases);
        return Err(VaultError::BadResponse {
            operation: "read".into(),
            path: t.calls.iter().map(|c| c.path.as_str()).collect::<Vec<_>>().join(","),
            detail: "a [[template]] may use at most one leased secret (one database credential, say); split it into one template per leased secret".into(),
        });
    }
    Ok(SecretRead {
        data: SecretData(data),
        lease: leases.pop(),
        version: None,
    })
}

/// The lease of another template's entry, its duration counted from now.
fn shared_lease(e: &Map<String, Value>, now: u64) -> Option<LeaseInfo> {
    let id = e
        .get("lease_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())?;
    let duration = e.get("lease_duration").and_then(Value::as_u64).unwrap_or(0);
    let received = e.get("received").and_then(Value::as_u64).unwrap_or(now);
    Some(LeaseInfo {
        id: id.to_string(),
        duration: std::time::Duration::from_secs(
            duration.saturating_sub(now.saturating_sub(received)),
        ),
        renewable: e.get("renewable").and_then(Value::as_bool).unwrap_or(false),
    })
}

/// A plain `[[secret]]`'s current read as a template's entry for `call`, so a
/// template reading the same leased path shares its credential and lease:
/// `remaining` is what is left of the lease now.
pub fn plain_entry(data: &SecretData, lease: &LeaseInfo, remaining: u64) -> Map<String, Value> {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    json!({
        "request_id": "",
        "lease_id": lease.id,
        "lease_duration": remaining,
        "renewable": lease.renewable,
        "data": Value::Object(data.0.clone()),
        "warnings": Value::Null,
        "received": now,
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

/// A template's leased entry as the read of a plain `[[secret]]` of the same
/// path (its data and the shared lease, counted from now).
pub fn shared_read(e: &Map<String, Value>) -> Option<SecretRead> {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let lease = shared_lease(e, now)?;
    let data = e.get("data")?.as_object()?.clone();
    Some(SecretRead {
        data: SecretData(data),
        lease: Some(lease),
        version: None,
    })
}

/// Whether a plain read of `path` (no parameters) is what `call` reads.
pub fn same_read(call: &SecretCall, path: &str) -> bool {
    call.func == SecretFunc::Secret
        && call.params.is_empty()
        && call.path.trim_matches('/') == path.trim_matches('/')
}

/// The entry of call `call` in a template's `data`, when it holds a lease
/// other than `except` (a template's own lease, which it fetches to replace).
pub fn leased_entry(
    t: &ConsulTemplate,
    data: &SecretData,
    call: &SecretCall,
    except: Option<&str>,
) -> Option<Map<String, Value>> {
    let i = t.calls.iter().position(|c| c == call)?;
    let e = entry(data, i)?;
    let id = e.get("lease_id").and_then(Value::as_str)?;
    (!id.is_empty() && Some(id) != except).then(|| e.clone())
}

/// consul-template's `goodFor`: a certificate is kept while 90% of the time it
/// has left is more than 10% of its lifespan (so it is issued again with about
/// a ninth of its life left). The lifespan starts when it was received (Vault
/// backdates `NotBefore` by 30 s; the difference is that small).
fn cert_still_good(e: &Map<String, Value>, now: u64) -> bool {
    let end = e
        .get("data")
        .and_then(|d| d.get("expiration"))
        .and_then(Value::as_u64);
    let start = e.get("received").and_then(Value::as_u64);
    match (start, end) {
        (Some(start), Some(end)) if end > now && end > start => {
            let left = end - now;
            let lifespan = end - start;
            left * 9 / 10 > lifespan / 10
        }
        _ => false,
    }
}

/// When the template must be fetched again for its `pkiCert` certificates,
/// as consul-template's `VaultPKIQuery` sleeps after each look: 90% of the
/// time the earliest one has left (`goodFor`), at least a second. At that
/// point `cert_still_good` finds it due (90% of the tenth left is under a
/// tenth of its lifespan) and it is issued again, about 90% into its life
/// instead of at the next `refresh`. `None`: no `pkiCert` certificate.
pub fn cert_check_in(
    t: &ConsulTemplate,
    data: &SecretData,
    now: u64,
) -> Option<std::time::Duration> {
    t.calls
        .iter()
        .enumerate()
        .filter(|(_, c)| c.func == SecretFunc::PkiCert)
        .filter_map(|(i, _)| {
            let end = entry(data, i)?.get("data")?.get("expiration")?.as_u64()?;
            // Go's integer seconds: (duration * 9) / 10.
            Some(end.saturating_sub(now) * 9 / 10)
        })
        .min()
        .map(|s| std::time::Duration::from_secs(s.max(1)))
}

/// A certificate a `pkiCert` call issued: PKI issues no lease, so it is
/// revoked at exit by serial, as a `kind = "pki"` secret's is.
#[derive(Debug)]
pub struct IssuedByCall {
    pub mount: String,
    pub serial: String,
    /// `expiration`, Unix seconds.
    pub not_after: u64,
}

/// The certificates in `data` (kept ones included: the caller skips the
/// serials it already knows).
pub fn certificates(t: &ConsulTemplate, data: &SecretData) -> Vec<IssuedByCall> {
    t.calls
        .iter()
        .enumerate()
        .filter(|(_, c)| c.func == SecretFunc::PkiCert)
        .filter_map(|(i, c)| {
            let d = entry(data, i)?.get("data")?;
            Some(IssuedByCall {
                mount: crate::vault::pki::mount_of(&c.path).to_string(),
                serial: d.get("serial_number")?.as_str()?.to_string(),
                not_after: d.get("expiration")?.as_u64()?,
            })
        })
        .collect()
}

fn revoke(c: &VaultClient, leases: &[LeaseInfo]) {
    for l in leases {
        if let Err(e) = crate::vault::api::revoke_lease(c, &l.id) {
            tracing::warn!(error = %e, "cannot revoke a lease of a failed template fetch");
        }
    }
}

fn entry(data: &SecretData, i: usize) -> Option<&Map<String, Value>> {
    data.0.get(&i.to_string()).and_then(Value::as_object)
}

fn pem(v: &Value) -> String {
    match v.as_str() {
        Some(s) if !s.is_empty() => format!("{}\n", s.trim_end_matches('\n')),
        _ => String::new(),
    }
}

/// What a call returns in the template.
fn value_of(call: &SecretCall, e: &Map<String, Value>) -> ctmpl::Value {
    let empty = Map::new();
    let data = e.get("data").and_then(Value::as_object).unwrap_or(&empty);
    match call.func {
        SecretFunc::Secret => {
            let warnings: Vec<String> = e
                .get("warnings")
                .and_then(Value::as_array)
                .map(|w| {
                    w.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            ctmpl::Value::secret(
                e.get("request_id").and_then(Value::as_str).unwrap_or(""),
                e.get("lease_id").and_then(Value::as_str).unwrap_or(""),
                e.get("lease_duration").and_then(Value::as_i64).unwrap_or(0),
                e.get("renewable").and_then(Value::as_bool).unwrap_or(false),
                data,
                &warnings,
            )
        }
        SecretFunc::PkiCert => {
            // consul-template re-encodes each PEM block (so each ends in a
            // newline) and collects the CA certificates once each.
            let mut chain: Vec<String> = Vec::new();
            let issuing = pem(&data["issuing_ca"]);
            for c in std::iter::once(issuing.clone())
                .chain(data["ca_chain"].as_array().into_iter().flatten().map(pem))
            {
                if !c.is_empty() && !chain.contains(&c) {
                    chain.push(c);
                }
            }
            ctmpl::Value::Struct(std::rc::Rc::new(ctmpl::Struct {
                type_name: "dependency.PemEncoded",
                fields: vec![
                    ("Cert", ctmpl::Value::Str(pem(&data["certificate"]))),
                    ("Key", ctmpl::Value::Str(pem(&data["private_key"]))),
                    (
                        "CA",
                        ctmpl::Value::Str(chain.first().cloned().unwrap_or_default()),
                    ),
                    (
                        "CAChain",
                        ctmpl::Value::List(chain.into_iter().map(ctmpl::Value::Str).collect()),
                    ),
                ],
            }))
        }
    }
}

/// Renders template `t` of secret `name` over its fetched `data`.
pub fn render(
    name: &str,
    t: &ConsulTemplate,
    data: &SecretData,
) -> Result<Zeroizing<Vec<u8>>, TemplateError> {
    let values: Vec<Option<ctmpl::Value>> = t
        .calls
        .iter()
        .enumerate()
        .map(|(i, call)| entry(data, i).map(|e| value_of(call, e)))
        .collect();
    let lookup = |c: &SecretCall| {
        t.calls
            .iter()
            .position(|x| x == c)
            .and_then(|i| values[i].clone())
    };
    let getenv = |k: &str| std::env::var(k).ok();
    t.template
        .render(
            &lookup,
            Context {
                getenv: &getenv,
                now: SystemTime::now(),
            },
        )
        .map(|s| Zeroizing::new(s.into_bytes()))
        .map_err(|e| TemplateError {
            secret: name.to_string(),
            origin: t.source.origin.clone(),
            line: e.line,
            message: e.message,
        })
}

/// The values to mask: every leaf of each call's data, named
/// `<call index>.<field>`.
pub fn masked(data: &SecretData) -> Vec<(String, Zeroizing<Vec<u8>>)> {
    let mut out = Vec::new();
    for (i, e) in &data.0 {
        if let Some(Value::Object(d)) = e.get("data") {
            for (field, v) in SecretData(d.clone()).leaves() {
                out.push((format!("{i}.{field}"), v));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_is_kept_until_about_a_ninth_of_its_life_is_left() {
        let e = |received: u64, expiration: u64| {
            json!({"received": received, "data": {"expiration": expiration}})
                .as_object()
                .unwrap()
                .clone()
        };
        // Issued at 1000 for 900 s: kept while 90% of what is left (in whole
        // seconds, as Go's integer division) is more than 90 s.
        assert!(cert_still_good(&e(1000, 1900), 1000));
        assert!(cert_still_good(&e(1000, 1900), 1798));
        assert!(!cert_still_good(&e(1000, 1900), 1799));
        assert!(!cert_still_good(&e(1000, 1900), 1900));
        assert!(!cert_still_good(&e(1000, 1900), 5000));
        // Nothing to judge by: issue again.
        let mut no_time = e(1000, 1900);
        no_time.remove("received");
        assert!(!cert_still_good(&no_time, 1000));
    }

    #[test]
    fn a_template_with_a_certificate_is_fetched_again_at_its_good_for_deadline() {
        use crate::config::Format;
        let toml = "[vault]\naddress = \"http://127.0.0.1:8200\"\n[auth]\nmethod = \"token\"\ntoken_file = \"/t\"\n[output]\ndir = \"/tmp/x\"\n[[template]]\nname = \"t\"\ncontents = '{{ with secret \"secret/data/a\" }}{{ .Data.data.a }}{{ end }}{{ with pkiCert \"pki/issue/web\" \"common_name=a.test\" }}{{ .Cert }}{{ end }}'\n";
        let cfg = crate::config::parse("t.toml", toml, std::iter::empty()).unwrap();
        let Format::Consul(t) = &cfg.secrets[0].format else {
            panic!("a template")
        };
        let data = |expiration: u64| {
            SecretData(
                json!({"0": {"data": {"data": {"a": "x"}}},
                       "1": {"received": 1000, "data": {"expiration": expiration}}})
                .as_object()
                .unwrap()
                .clone(),
            )
        };
        // Issued at 1000 for 100 s: looked at again 90 s later, when it is due.
        assert_eq!(
            cert_check_in(t, &data(1100), 1000),
            Some(std::time::Duration::from_secs(90))
        );
        let e = entry(&data(1100), 1).unwrap().clone();
        assert!(!cert_still_good(&e, 1090));
        // Kept at a look before that: the next one is 90% of what is left.
        assert_eq!(
            cert_check_in(t, &data(1100), 1050),
            Some(std::time::Duration::from_secs(45))
        );
        // At least a second; nothing without a certificate.
        assert_eq!(
            cert_check_in(t, &data(1100), 1100),
            Some(std::time::Duration::from_secs(1))
        );
        let mut none = data(1100);
        none.0.remove("1");
        assert_eq!(cert_check_in(t, &none, 1000), None);
    }

    #[test]
    fn a_shared_lease_counts_its_duration_from_when_it_was_received() {
        let e = json!({"lease_id": "database/creds/app/x", "lease_duration": 3600,
                       "renewable": true, "received": 1000})
        .as_object()
        .unwrap()
        .clone();
        let l = shared_lease(&e, 1600).unwrap();
        assert_eq!(l.id, "database/creds/app/x");
        assert_eq!(l.duration, std::time::Duration::from_secs(3000));
        assert!(l.renewable);
        let mut unleased = e.clone();
        unleased.insert("lease_id".into(), json!(""));
        assert!(shared_lease(&unleased, 1600).is_none());
    }
}
