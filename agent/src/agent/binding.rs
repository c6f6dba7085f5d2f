//! What a `[state]` was made for, and what of it a restarted agent may adopt
//! under its current configuration. The token is adopted only under the same
//! Vault address, namespace and auth identity (method, mount, role, credential
//! files); a secret only under the same name, Vault path, kind and parameters.
//! Anything else was obtained for a configuration that is gone: it is revoked
//! and obtained anew (`engine::adopt`). Pure: no Vault, no files but the
//! public client certificate that identifies a cert login.

use std::fmt;
use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::state::{Binding, Saved, SavedSecret};
use crate::config::{AuthMethod, Config, SecretSpec};

/// What changed between the state's binding and the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The state predates bindings (layout version 1).
    Unbound,
    /// `[vault] address`.
    Address,
    /// `[vault] namespace`.
    Namespace,
    /// `[auth] method`.
    Method,
    /// `[auth] mount`.
    Mount,
    /// `[auth] role` or `name`.
    Role,
    /// The credential files (`role_id_file`, `secret_id_file`, `jwt_path`,
    /// `token_file`, `client_cert`, `client_key`) or the client certificate.
    Credentials,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Change::Unbound => "the state records no configuration (layout version 1)",
            Change::Address => "[vault] address changed",
            Change::Namespace => "[vault] namespace changed",
            Change::Method => "[auth] method changed",
            Change::Mount => "[auth] mount changed",
            Change::Role => "[auth] role changed",
            Change::Credentials => "[auth] credential files changed",
        })
    }
}

/// Feeds `label`, then `value` (or a marker for none), each NUL-terminated, so
/// that no two different inputs hash alike.
fn feed(h: &mut Sha256, label: &str, value: Option<&[u8]>) {
    h.update(label.as_bytes());
    h.update([0]);
    match value {
        Some(v) => {
            h.update([1]);
            h.update(v);
        }
        None => h.update([2]),
    }
    h.update([0]);
}

fn path_bytes(p: &Path) -> &[u8] {
    std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str())
}

/// The binding of the configuration `cfg`: what its state is made for.
pub fn of(cfg: &Config) -> Binding {
    let a = &cfg.auth;
    let mut h = Sha256::new();
    let file = |h: &mut Sha256, label: &str, p: Option<&Path>| feed(h, label, p.map(path_bytes));
    match a.method {
        AuthMethod::Kubernetes | AuthMethod::Jwt => file(&mut h, "jwt_path", Some(&a.jwt_path)),
        AuthMethod::AppRole => {
            file(&mut h, "role_id_file", a.role_id_file.as_deref());
            file(&mut h, "secret_id_file", a.secret_id_file.as_deref());
        }
        AuthMethod::Token => file(&mut h, "token_file", a.token_file.as_deref()),
        AuthMethod::Cert => {
            file(&mut h, "client_cert", a.client_cert.as_deref());
            file(&mut h, "client_key", a.client_key.as_deref());
            // The certificate is the identity (public); the key is never read here.
            let cert = a.client_cert.as_deref().and_then(|p| std::fs::read(p).ok());
            feed(&mut h, "client_cert_content", cert.as_deref());
        }
    }
    let role = match a.method {
        AuthMethod::Cert => a.cert_role.clone(),
        AuthMethod::Kubernetes | AuthMethod::Jwt => a.role.clone(),
        AuthMethod::AppRole | AuthMethod::Token => None,
    };
    Binding {
        namespace: cfg.vault.namespace.clone(),
        method: a.method.name().to_string(),
        mount: a.mount.clone(),
        role,
        credentials_sha256: hex::encode(h.finalize()),
    }
}

/// SHA-256 (hex) of a secret's request parameters, keys sorted; None without.
pub fn params_sha256(spec: &SecretSpec) -> Option<String> {
    let params = spec.params.as_ref()?;
    let body = params.body();
    let mut h = Sha256::new();
    if let Some(map) = body.as_object() {
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort();
        for k in keys {
            feed(&mut h, k, Some(map[k].to_string().as_bytes()));
        }
    }
    Some(hex::encode(h.finalize()))
}

/// Whether the token of `saved` may be adopted under `cfg` (whose binding is
/// `current`); else the first thing that changed.
pub fn token_matches(saved: &Saved, cfg: &Config, current: &Binding) -> Result<(), Change> {
    let Some(b) = &saved.binding else {
        return Err(Change::Unbound);
    };
    if saved.vault != cfg.vault.address {
        return Err(Change::Address);
    }
    if b.namespace != current.namespace {
        return Err(Change::Namespace);
    }
    if b.method != current.method {
        return Err(Change::Method);
    }
    if b.mount != current.mount {
        return Err(Change::Mount);
    }
    if b.role != current.role {
        return Err(Change::Role);
    }
    if b.credentials_sha256 != current.credentials_sha256 {
        return Err(Change::Credentials);
    }
    Ok(())
}

/// Whether the saved secret `ss` was obtained for `spec`: same name, path,
/// kind and parameters.
pub fn secret_matches(ss: &SavedSecret, spec: &SecretSpec) -> bool {
    ss.name == spec.name
        && ss.path == spec.path
        && ss.kind.as_deref() == Some(spec.kind.name())
        && ss.params_sha256 == params_sha256(spec)
}

/// The saved form of `spec`'s identity: (kind, params hash).
pub fn secret_identity(spec: &SecretSpec) -> (Option<String>, Option<String>) {
    (Some(spec.kind.name().to_string()), params_sha256(spec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    const BASE: &str = "[vault]\naddress = \"http://127.0.0.1:8200\"\n\
        [auth]\nmethod = \"approle\"\nrole_id_file = \"/run/role-id\"\nsecret_id_file = \"/run/secret-id\"\n\
        [output]\ndir = \"/run/out\"\nrequire_tmpfs = false\n\
        [[secret]]\nname = \"db\"\npath = \"database/creds/app\"\nkind = \"dynamic\"\n";

    fn cfg(text: &str) -> Config {
        parse("t.toml", text, std::iter::empty()).unwrap()
    }

    fn saved_for(c: &Config) -> Saved {
        Saved {
            vault: c.vault.address.clone(),
            binding: Some(of(c)),
            token: None,
            generation: 1,
            secrets: c
                .secrets
                .iter()
                .map(|s| {
                    let (kind, params_sha256) = secret_identity(s);
                    SavedSecret {
                        name: s.name.clone(),
                        path: s.path.clone(),
                        kind,
                        params_sha256,
                        data: Default::default(),
                        lease: None,
                    }
                })
                .collect(),
            revoke: Vec::new(),
            certificates: Vec::new(),
            retiring: Vec::new(),
            registered: Vec::new(),
            gateways: Default::default(),
        }
    }

    #[test]
    fn the_same_configuration_adopts_everything() {
        let c = cfg(BASE);
        let saved = saved_for(&c);
        assert_eq!(token_matches(&saved, &c, &of(&c)), Ok(()));
        assert!(secret_matches(&saved.secrets[0], &c.secrets[0]));
        // Written again in another order, or with a trailing slash: the same.
        let again = cfg(&BASE.replace("127.0.0.1:8200\"", "127.0.0.1:8200/\""));
        assert_eq!(token_matches(&saved, &again, &of(&again)), Ok(()));
    }

    #[test]
    fn each_changed_auth_field_is_named() {
        let saved = saved_for(&cfg(BASE));
        let check = |text: &str, change: Change| {
            let c = cfg(text);
            assert_eq!(token_matches(&saved, &c, &of(&c)), Err(change), "{text}");
        };
        check(&BASE.replace(":8200", ":8201"), Change::Address);
        check(
            &BASE.replace("[auth]", "namespace = \"team-b\"\n[auth]"),
            Change::Namespace,
        );
        check(
            &BASE.replace("[auth]\n", "[auth]\nmount = \"approle2\"\n"),
            Change::Mount,
        );
        check(
            &BASE.replace("/run/role-id", "/run/other-role-id"),
            Change::Credentials,
        );
        check(
            &BASE.replace(
                "method = \"approle\"\nrole_id_file = \"/run/role-id\"\nsecret_id_file = \"/run/secret-id\"",
                "method = \"token\"\ntoken_file = \"/run/token\"",
            ),
            Change::Method,
        );
        let jwt = |role: &str| {
            BASE.replace(
                "method = \"approle\"\nrole_id_file = \"/run/role-id\"\nsecret_id_file = \"/run/secret-id\"",
                &format!("method = \"jwt\"\nrole = \"{role}\"\njwt_path = \"/run/jwt\""),
            )
        };
        let jwt_saved = saved_for(&cfg(&jwt("app")));
        let other = cfg(&jwt("admin"));
        assert_eq!(
            token_matches(&jwt_saved, &other, &of(&other)),
            Err(Change::Role)
        );
        let mut v1 = saved;
        v1.binding = None;
        let c = cfg(BASE);
        assert_eq!(token_matches(&v1, &c, &of(&c)), Err(Change::Unbound));
    }

    #[test]
    fn a_secret_is_matched_by_path_kind_and_parameters_and_never_shows_them() {
        let with = |extra: &str| cfg(&format!("{BASE}{extra}"));
        let base = with("");
        let saved = saved_for(&base);
        let ss = &saved.secrets[0];
        let path = cfg(&BASE.replace("database/creds/app", "database/creds/other"));
        assert!(!secret_matches(ss, &path.secrets[0]));
        let kind = cfg(&BASE.replace("\"dynamic\"", "\"generic\""));
        assert!(!secret_matches(ss, &kind.secrets[0]));
        let p1 = with("params = { ttl = \"1h\", note = \"s3cr3t-param-value\" }\n");
        assert!(!secret_matches(ss, &p1.secrets[0]), "parameters added");
        let saved_p = saved_for(&p1);
        let sp = &saved_p.secrets[0];
        assert!(secret_matches(sp, &p1.secrets[0]));
        let p2 = with("params = { note = \"s3cr3t-param-value\", ttl = \"1h\" }\n");
        assert!(
            secret_matches(sp, &p2.secrets[0]),
            "key order is not a change"
        );
        let p3 = with("params = { ttl = \"2h\", note = \"s3cr3t-param-value\" }\n");
        assert!(!secret_matches(sp, &p3.secrets[0]));
        let hash = sp.params_sha256.as_deref().unwrap();
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains("s3cr3t"));
        // A v1 secret records no kind: never matched.
        let mut old = saved_for(&base);
        old.secrets[0].kind = None;
        assert!(!secret_matches(&old.secrets[0], &base.secrets[0]));
    }

    #[test]
    fn the_binding_holds_no_credential() {
        let c = cfg(BASE);
        let b = of(&c);
        let json = serde_json::to_string(&b).unwrap();
        assert!(!json.contains("/run/role-id"), "{json}");
        assert_eq!(b.method, "approle");
        assert_eq!(b.mount, "approle");
        assert_eq!(b.credentials_sha256.len(), 64);
    }
}
