//! The registry's HTTP API (OCI distribution spec): `GET /v2/<name>/manifests/<ref>`
//! and `GET /v2/<name>/blobs/<digest>`, with the auth challenge answered once per
//! lookup. Blocking (ureq + rustls); the resolver runs it off the async runtime
//! under one overall timeout.

use std::io::Read as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use super::challenge::{self, Challenge};
use super::config::RegistryConfig;
use super::creds;
use super::error::LookupError;
use super::reference::{is_loopback_host, ImageRef};

/// Largest manifest or configuration read (the registries' own manifest limit is 4 MiB).
const MAX_DOCUMENT: u64 = 4 * 1024 * 1024;
/// Largest token answer read.
const MAX_TOKEN: u64 = 64 * 1024;
/// Redirects followed (blob storage, mirrors).
const MAX_REDIRECTS: usize = 5;

/// Every manifest form shroud reads.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// The client configuration cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The CA bundle could not be read or holds no usable certificate.
    #[error("registry.ca_bundle {path}: {reason}")]
    CaBundle {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// One HTTP client for every registry.
#[derive(Debug)]
pub struct Client {
    agent: ureq::Agent,
    plain_http: Vec<String>,
    docker_config: Option<PathBuf>,
}

/// A fetched document and its sha256 digest.
#[derive(Debug)]
pub struct Document {
    /// The body.
    pub bytes: Vec<u8>,
    /// `Content-Type`, if sent.
    pub content_type: Option<String>,
    /// `sha256:<hex>` of the body.
    pub digest: String,
}

impl Client {
    /// A client trusting the built-in web roots plus `registry.ca_bundle`.
    pub fn new(cfg: &RegistryConfig) -> Result<Client, ClientError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = &cfg.ca_bundle {
            let bad = |reason: String| ClientError::CaBundle {
                path: path.display().to_string(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
            let mut added = 0;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| bad(format!("not PEM: {e}")))?;
                roots.add(cert).map_err(|e| bad(e.to_string()))?;
                added += 1;
            }
            if added == 0 {
                return Err(bad("no certificate in the file".into()));
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let agent = ureq::AgentBuilder::new()
            .tls_config(Arc::new(tls))
            // A little past the overall bound, so the resolver's timeout is the
            // one that answers, and the blocking thread ends soon after.
            .timeout(cfg.timeout + Duration::from_secs(1))
            .timeout_connect(cfg.timeout.min(Duration::from_secs(2)))
            .redirects(0)
            .user_agent(concat!("shroud-webhook/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Client {
            agent,
            plain_http: cfg.plain_http.clone(),
            docker_config: cfg.docker_config.clone(),
        })
    }

    /// A session for one image: remembers the authorization the registry asked for.
    pub fn session<'a>(&'a self, image: &'a ImageRef) -> Session<'a> {
        let scheme = if self.plain_http.iter().any(|h| h == image.api_host()) {
            "http"
        } else {
            "https"
        };
        Session {
            client: self,
            image,
            base: format!("{scheme}://{}/v2/{}", image.api_host(), image.repository),
            auth: None,
        }
    }
}

/// Requests for one image.
pub struct Session<'a> {
    client: &'a Client,
    image: &'a ImageRef,
    base: String,
    auth: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Session<'_> {
    /// The manifest (or index) `reference` (a tag or digest).
    pub fn manifest(&mut self, reference: &str) -> Result<Document, LookupError> {
        let url = format!("{}/manifests/{reference}", self.base);
        self.get(&url, Some(MANIFEST_ACCEPT))
    }

    /// The blob `digest` (an image configuration), checked against its digest.
    pub fn blob(&mut self, digest: &str) -> Result<Document, LookupError> {
        let url = format!("{}/blobs/{digest}", self.base);
        let doc = self.get(&url, None)?;
        if digest.starts_with("sha256:") && doc.digest != digest {
            return Err(self.invalid(format!(
                "blob {digest} has content with digest {}",
                doc.digest
            )));
        }
        Ok(doc)
    }

    fn get(&mut self, url: &str, accept: Option<&str>) -> Result<Document, LookupError> {
        let mut challenged = false;
        loop {
            match self.send(url, accept)? {
                Answer::Ok(doc) => return Ok(doc),
                Answer::Challenge(header) if !challenged => {
                    challenged = true;
                    self.auth = Some(self.authorize(header.as_deref())?);
                }
                Answer::Challenge(header) => {
                    if let Some(Challenge::Bearer {
                        realm,
                        scope,
                        error: Some(e),
                        ..
                    }) = header.as_deref().and_then(challenge::parse)
                    {
                        if e == "insufficient_scope" {
                            let wanted = scope.unwrap_or_else(|| self.pull_scope());
                            return Err(self.unauthorized(format!(
                                "the token from its token service {realm} does not grant `{wanted}` (insufficient_scope)"
                            )));
                        }
                    }
                    return Err(self.unauthorized(if self.credentials()?.is_some() {
                        "the configured credentials were rejected".into()
                    } else {
                        format!(
                            "no credentials for {} in registry.docker_config",
                            self.image.registry
                        )
                    }));
                }
            }
        }
    }

    /// One GET, following redirects; the authorization goes to the registry's
    /// own host only (blob storage is signed by URL).
    fn send(&self, url: &str, accept: Option<&str>) -> Result<Answer, LookupError> {
        let mut url = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let mut req = self.client.agent.get(&url);
            if let Some(a) = accept {
                req = req.set("Accept", a);
            }
            if let Some(auth) = &self.auth {
                if same_host(&url, &self.base) {
                    req = req.set("Authorization", auth);
                }
            }
            let resp = match req.call() {
                Ok(r) => r,
                Err(ureq::Error::Status(code, r)) => match code {
                    401 => {
                        return Ok(Answer::Challenge(
                            r.header("www-authenticate").map(str::to_string),
                        ))
                    }
                    403 => return Err(self.unauthorized("HTTP 403 Forbidden".into())),
                    404 => {
                        return Err(LookupError::NotFound {
                            image: self.image.to_string(),
                            registry: self.image.api_host().to_string(),
                        })
                    }
                    status => {
                        return Err(LookupError::Status {
                            image: self.image.to_string(),
                            registry: self.image.api_host().to_string(),
                            status,
                        })
                    }
                },
                Err(ureq::Error::Transport(t)) => return Err(self.unreachable(t.to_string())),
            };
            if (300..400).contains(&resp.status()) {
                let location = resp
                    .header("location")
                    .ok_or_else(|| self.invalid("a redirect without Location".into()))?;
                url = resolve_location(&url, location);
                continue;
            }
            let content_type = resp.header("content-type").map(str::to_string);
            let bytes = read_limited(resp, MAX_DOCUMENT).map_err(|e| self.invalid(e))?;
            let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
            return Ok(Answer::Ok(Document {
                bytes,
                content_type,
                digest,
            }));
        }
        Err(self.invalid(format!("more than {MAX_REDIRECTS} redirects")))
    }

    /// The `Authorization` value answering a challenge.
    fn authorize(&self, header: Option<&str>) -> Result<Zeroizing<String>, LookupError> {
        let creds = self.credentials()?;
        match header.and_then(challenge::parse) {
            Some(Challenge::Basic) => creds.map(|c| c.basic()).ok_or_else(|| {
                self.unauthorized(format!(
                    "it asks for a password and registry.docker_config has none for {}",
                    self.image.registry
                ))
            }),
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
                ..
            }) => {
                if !realm_allowed(&realm) {
                    return Err(self.unauthorized(format!(
                        "its token service {realm} is not an https:// URL (plain HTTP only on loopback)"
                    )));
                }
                let scope = scope.unwrap_or_else(|| self.pull_scope());
                let mut req = self.client.agent.get(&realm).query("scope", &scope);
                if let Some(s) = &service {
                    req = req.query("service", s);
                }
                if let Some(c) = &creds {
                    req = req.set("Authorization", &c.basic());
                }
                let resp = req.call().map_err(|e| match e {
                    ureq::Error::Status(code, _) => {
                        self.unauthorized(format!("its token service {realm} answered HTTP {code}"))
                    }
                    ureq::Error::Transport(t) => LookupError::TokenService {
                        image: self.image.to_string(),
                        registry: self.image.api_host().to_string(),
                        realm: realm.clone(),
                        reason: t.to_string(),
                    },
                })?;
                let body =
                    Zeroizing::new(read_limited(resp, MAX_TOKEN).map_err(|e| self.invalid(e))?);
                #[derive(serde::Deserialize)]
                struct Token {
                    #[serde(default, deserialize_with = "creds::secret")]
                    token: Option<Zeroizing<String>>,
                    #[serde(default, deserialize_with = "creds::secret")]
                    access_token: Option<Zeroizing<String>>,
                }
                let t: Token = serde_json::from_slice(&body).map_err(|_| {
                    self.unauthorized(format!("its token service {realm} did not answer JSON"))
                })?;
                let token = t.token.or(t.access_token).ok_or_else(|| {
                    self.unauthorized(format!("its token service {realm} sent no token"))
                })?;
                Ok(Zeroizing::new(format!("Bearer {}", token.as_str())))
            }
            None => Err(self.unauthorized(format!(
                "it asks for an authentication scheme shroud does not speak ({})",
                header.map_or("no WWW-Authenticate header", |h| h
                    .split(' ')
                    .next()
                    .unwrap_or(h))
            ))),
        }
    }

    /// The scope asked for when the challenge names none.
    fn pull_scope(&self) -> String {
        format!("repository:{}:pull", self.image.repository)
    }

    fn credentials(&self) -> Result<Option<creds::Credentials>, LookupError> {
        match &self.client.docker_config {
            Some(path) => Ok(creds::lookup(path, &self.image.registry)?),
            None => Ok(None),
        }
    }

    fn invalid(&self, reason: String) -> LookupError {
        LookupError::Invalid {
            image: self.image.to_string(),
            reason,
        }
    }

    fn unauthorized(&self, reason: String) -> LookupError {
        LookupError::Unauthorized {
            image: self.image.to_string(),
            registry: self.image.api_host().to_string(),
            reason,
        }
    }

    fn unreachable(&self, reason: String) -> LookupError {
        LookupError::Unreachable {
            image: self.image.to_string(),
            registry: self.image.api_host().to_string(),
            reason,
        }
    }
}

enum Answer {
    Ok(Document),
    Challenge(Option<String>),
}

fn read_limited(resp: ureq::Response, limit: u64) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    resp.into_reader()
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading the answer: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(format!("answer larger than {limit} bytes"));
    }
    Ok(bytes)
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    let end = url[after..].find('/').map_or(url.len(), |i| after + i);
    &url[..end]
}

/// Credentials and tokens travel over TLS only, loopback aside (as for
/// registries: `registry.plain_http`). A realm with userinfo is refused: in
/// `http://127.0.0.1:1@elsewhere/` the host is `elsewhere`.
fn realm_allowed(realm: &str) -> bool {
    let host = authority(realm);
    !host.contains('@')
        && (realm.starts_with("https://")
            || (realm.starts_with("http://") && is_loopback_host(host)))
}

/// `host[:port]` of a URL.
fn authority(url: &str) -> &str {
    let o = origin(url);
    o.find("://").map_or(o, |i| &o[i + 3..])
}

fn same_host(a: &str, b: &str) -> bool {
    origin(a).eq_ignore_ascii_case(origin(b))
}

fn resolve_location(current: &str, location: &str) -> String {
    if location.contains("://") {
        location.to_string()
    } else if location.starts_with('/') {
        format!("{}{location}", origin(current))
    } else {
        let dir = current.rsplit_once('/').map_or(current, |(d, _)| d);
        format!("{dir}/{location}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_and_authorization_scope() {
        let u = "https://r.example:5000/v2/a/blobs/sha256:1";
        assert_eq!(origin(u), "https://r.example:5000");
        assert_eq!(resolve_location(u, "/x/y"), "https://r.example:5000/x/y");
        assert_eq!(
            resolve_location(u, "https://s3.example/b?sig=1"),
            "https://s3.example/b?sig=1"
        );
        assert!(same_host(u, "https://R.example:5000/v2/a"));
        assert!(!same_host(u, "https://s3.example/b"));
        assert!(!same_host(u, "http://r.example:5000/v2/a"));
        assert_eq!(
            authority("http://127.0.0.1:5001/token?x=1"),
            "127.0.0.1:5001"
        );
        assert_eq!(authority("https://auth.docker.io"), "auth.docker.io");
    }

    #[test]
    fn token_realms_over_tls_or_loopback_only() {
        assert!(realm_allowed("https://auth.docker.io/token"));
        assert!(realm_allowed("http://127.0.0.1:5001/token"));
        assert!(realm_allowed("http://localhost/token"));
        assert!(!realm_allowed("http://auth.example/token"));
        assert!(!realm_allowed("http://127.0.0.1:5001@auth.example/token"));
        assert!(!realm_allowed("https://user@auth.example/token"));
        assert!(!realm_allowed("ftp://127.0.0.1/token"));
    }
}
