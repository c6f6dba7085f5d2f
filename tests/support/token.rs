//! A registry token service for tests (the Docker token protocol that
//! distribution's `auth: token` speaks), on 127.0.0.1 over plain HTTP.
//!
//! `GET /token?service=…&scope=repository:<name>:pull` answers
//! `{"token": …, "access_token": …, "expires_in": 300}`: a JWT signed ES256 by
//! the key of a certificate issued by a [`TestCa`], the certificate in the
//! header's `x5c` (distribution 2.8 checks that chain against its
//! `rootcertbundle`, then `iss`, `aud` = its `service`, `exp`/`nbf` with 60 s
//! of leeway, and the `access` claim against the request's resource and action).
//! Every request is recorded, so a test can assert what a client asked for.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::PrivateKeyDer;

use crate::webhook::TestCa;

/// The `service` the registry names and the tokens' audience.
pub const SERVICE: &str = "shroud-test-registry";
/// The tokens' issuer, trusted by the registry.
pub const ISSUER: &str = "shroud-test-token-service";

/// Who may have a token.
#[derive(Clone, Debug)]
pub enum Access {
    /// Anyone, without credentials (public images, as on Docker Hub).
    Anonymous,
    /// Only a client sending HTTP Basic `user`/`password`.
    Basic {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
}

/// What the tokens grant.
#[derive(Clone, Debug)]
pub enum Grant {
    /// What the request's `scope` asks for.
    AsAsked,
    /// Pull access to this repository instead, whatever was asked.
    Repository(String),
}

/// One request the token service answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    /// The `scope` query parameter.
    pub scope: Option<String>,
    /// The `service` query parameter.
    pub service: Option<String>,
    /// The Basic user sent, if any.
    pub user: Option<String>,
    /// The HTTP status answered.
    pub status: u16,
}

/// A running token service; stopped (connections refused) by [`TokenServer::stop`] or drop.
#[derive(Debug)]
pub struct TokenServer {
    /// `http://127.0.0.1:<port>/token`, the registry's `realm`.
    pub realm: String,
    /// The CA certificate (PEM) for the registry's `rootcertbundle`.
    pub root_pem: String,
    seen: Arc<Mutex<Vec<TokenRequest>>>,
    stopping: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Signer {
    key: EcdsaKeyPair,
    x5c: String,
    access: Access,
    grant: Grant,
}

impl TokenServer {
    /// A token service giving tokens to `access`, granting `grant`.
    pub fn start(access: Access, grant: Grant) -> TokenServer {
        let ca = TestCa::new("shroud-test-token-signer-ca");
        let leaf = ca.leaf();
        let pkcs8 = match PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap() {
            PrivateKeyDer::Pkcs8(k) => k,
            other => panic!("rcgen keys are PKCS#8, not {other:?}"),
        };
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8.secret_pkcs8_der(),
            &SystemRandom::new(),
        )
        .expect("rcgen's default key is ECDSA P-256");
        let signer = Signer {
            key,
            x5c: base64::engine::general_purpose::STANDARD.encode(&leaf.der),
            access,
            grant,
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stopping = Arc::new(AtomicBool::new(false));
        let (s, stop) = (seen.clone(), stopping.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(conn) = conn {
                    answer(conn, &signer, &s);
                }
            }
        });
        TokenServer {
            realm: format!("http://{addr}/token"),
            root_pem: ca.pem,
            seen,
            stopping,
            addr,
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:<port>`, for `registry.plain_http` (the realm is plain HTTP).
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The requests answered so far.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.seen.lock().unwrap().clone()
    }

    /// Closes the listening socket: later connections are refused.
    pub fn stop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then ends and drops the listener.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One request per connection (`Connection: close`).
fn answer(conn: TcpStream, signer: &Signer, seen: &Mutex<Vec<TokenRequest>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let target = line.split(' ').nth(1).unwrap_or_default().to_string();
    let mut authorization = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("authorization") {
                authorization = Some(v.trim().to_string());
            }
        }
    }
    let query = |name: &str| {
        let q = target.split_once('?').map_or("", |(_, q)| q);
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == name).then(|| percent_decode(v))
        })
    };
    let (scope, service) = (query("scope"), query("service"));
    let user = authorization.as_deref().and_then(basic_user);
    let (status, body) = match (&signer.access, &authorization) {
        (Access::Basic { user: u, password }, Some(a)) if *a == basic(u, password) => {
            (200, token_body(signer, scope.as_deref(), u))
        }
        (Access::Basic { .. }, _) => (
            401,
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.into(),
        ),
        (Access::Anonymous, _) => (200, token_body(signer, scope.as_deref(), "")),
    };
    seen.lock().unwrap().push(TokenRequest {
        scope,
        service,
        user,
        status,
    });
    let reason = if status == 200 { "OK" } else { "Unauthorized" };
    let mut conn = conn;
    let _ = write!(
        conn,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn token_body(signer: &Signer, scope: Option<&str>, subject: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let access: Vec<serde_json::Value> = match (&signer.grant, scope) {
        (Grant::Repository(name), _) => {
            vec![serde_json::json!({"type": "repository", "name": name, "actions": ["pull"]})]
        }
        (Grant::AsAsked, Some(scope)) => scope
            .split(' ')
            .filter_map(|s| {
                let (kind, rest) = s.split_once(':')?;
                let (name, actions) = rest.rsplit_once(':')?;
                Some(serde_json::json!({"type": kind, "name": name,
                    "actions": actions.split(',').collect::<Vec<_>>()}))
            })
            .collect(),
        (Grant::AsAsked, None) => Vec::new(),
    };
    let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [signer.x5c]});
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": subject, "aud": SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now,
        "jti": format!("{now}-{}", rand::random::<u64>()),
        "access": access,
    });
    let b64 = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    };
    let signing_input = format!("{}.{}", b64(&header), b64(&claims));
    let sig = signer
        .key
        .sign(&SystemRandom::new(), signing_input.as_bytes())
        .unwrap();
    let jwt = format!(
        "{signing_input}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig.as_ref())
    );
    serde_json::json!({"token": jwt, "access_token": jwt, "expires_in": 300}).to_string()
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn basic_user(authorization: &str) -> Option<String> {
    let b64 = authorization.strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let text = String::from_utf8(raw).ok()?;
    Some(text.split_once(':')?.0.to_string())
}

/// A query value as a form encoder writes it (`+` for space, `%XX`).
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}
