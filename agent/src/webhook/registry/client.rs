//! The registry's HTTP API (OCI distribution spec): `GET /v2/<name>/manifests/<ref>`
//! and `GET /v2/<name>/blobs/<digest>`, with the auth challenge answered once per
//! lookup. Blocking (ureq + rustls); the resolver runs it off the async runtime.
//! Every round trip of a session ends by its admission's one deadline, and every
//! hop (the registry, redirects, token realms) passes [`HostPolicy`].

use std::io::Read as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use url::Url;

use super::allow::HostPolicy;
use super::challenge::{self, Challenge};
use super::config::RegistryConfig;
use super::creds;
use super::error::LookupError;
use super::reference::ImageRef;
use super::resolve::{self, DnsDeadline, GuardedResolver};

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
    /// `registry.allowed` or `registry.plain_http` holds an entry that does not parse.
    #[error("registry.allowed / registry.plain_http: {0}")]
    Hosts(String),
}

/// One HTTP client for every registry.
#[derive(Debug)]
pub struct Client {
    agent: ureq::Agent,
    policy: Arc<HostPolicy>,
    plain_http: Vec<String>,
    docker_config: Option<PathBuf>,
    budget: Duration,
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
    /// A client trusting the built-in web roots plus `registry.ca_bundle`,
    /// connecting only where `registry.allowed` admits.
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
        let policy =
            Arc::new(HostPolicy::new(&cfg.allowed, &cfg.plain_http).map_err(ClientError::Hosts)?);
        let agent = ureq::AgentBuilder::new()
            .tls_config(Arc::new(tls))
            // Each request gets what is left of its admission's deadline
            // (`Session::remaining`); this only backs that up. No separate
            // connect timeout: ureq would let it run past the deadline.
            .timeout(cfg.timeout)
            // Redirects are followed by `Session::send`, each hop checked.
            .redirects(0)
            .resolver(GuardedResolver(policy.clone()))
            .user_agent(concat!("shroud-webhook/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Client {
            agent,
            policy,
            plain_http: cfg.plain_http.clone(),
            docker_config: cfg.docker_config.clone(),
            budget: cfg.timeout,
        })
    }

    /// A session for one image, whose every round trip ends by `deadline`:
    /// remembers the authorization the registry asked for.
    pub fn session<'a>(
        &'a self,
        image: &'a ImageRef,
        deadline: Instant,
    ) -> Result<Session<'a>, LookupError> {
        let scheme = if self.plain_http.iter().any(|h| h == image.api_host()) {
            "http"
        } else {
            "https"
        };
        let mut session = Session {
            client: self,
            image,
            base: Url::parse("https://invalid/").expect("a valid URL"),
            auth: None,
            deadline,
        };
        let mut base = Url::parse(&format!("{scheme}://{}/", image.api_host())).map_err(|e| {
            session.not_allowed(format!("{}: not a registry host: {e}", image.api_host()))
        })?;
        base.path_segments_mut()
            .map_err(|()| session.not_allowed("not a registry host".into()))?
            .clear()
            .push("v2")
            .extend(image.repository.split('/'));
        session.base = base;
        Ok(session)
    }
}

/// Requests for one image.
pub struct Session<'a> {
    client: &'a Client,
    image: &'a ImageRef,
    /// `<scheme>://<registry>/v2/<repository>`: credentials go to this origin only.
    base: Url,
    auth: Option<Zeroizing<String>>,
    deadline: Instant,
}

impl std::fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl Session<'_> {
    /// The manifest (or index) `reference` (a tag or digest).
    pub fn manifest(&mut self, reference: &str) -> Result<Document, LookupError> {
        let url = self.under_base(&["manifests", reference]);
        self.get(url, Some(MANIFEST_ACCEPT))
    }

    /// The blob `digest` (an image configuration), checked against its digest.
    pub fn blob(&mut self, digest: &str) -> Result<Document, LookupError> {
        let url = self.under_base(&["blobs", digest]);
        let doc = self.get(url, None)?;
        if digest.starts_with("sha256:") && doc.digest != digest {
            return Err(self.invalid(format!(
                "blob {digest} has content with digest {}",
                doc.digest
            )));
        }
        Ok(doc)
    }

    fn under_base(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("an http(s) URL has path segments")
            .extend(segments);
        url
    }

    fn get(&mut self, url: Url, accept: Option<&str>) -> Result<Document, LookupError> {
        let mut challenged = false;
        loop {
            match self.send(url.clone(), accept)? {
                Answer::Ok(doc) => return Ok(doc),
                Answer::Challenge(header) if !challenged => {
                    challenged = true;
                    self.auth = Some(self.authorize(header.as_deref())?);
                }
                Answer::Challenge(header) => {
                    if let Some(Challenge::Bearer {
                        scope,
                        error: Some(e),
                        ..
                    }) = header.as_deref().and_then(challenge::parse)
                    {
                        if e == "insufficient_scope" {
                            let wanted = scope.unwrap_or_else(|| self.pull_scope());
                            return Err(self.unauthorized(
                                format!("the token does not grant `{wanted}` (insufficient_scope)"),
                                "a second challenge with error=insufficient_scope".into(),
                            ));
                        }
                    }
                    let hint = self.credentials_hint()?;
                    return Err(
                        self.unauthorized(hint, "the authorization was challenged again".into())
                    );
                }
            }
        }
    }

    /// One GET, following redirects, each hop checked as the registry itself
    /// is. The authorization goes to the registry's own origin only (blob
    /// storage is signed by URL), and only the registry's own 401 is answered:
    /// a challenge from a redirect target would send the registry's
    /// credentials to a realm that target names.
    fn send(&self, mut url: Url, accept: Option<&str>) -> Result<Answer, LookupError> {
        for _ in 0..=MAX_REDIRECTS {
            self.client
                .policy
                .check_url(&url)
                .map_err(|r| self.not_allowed(r.to_string()))?;
            let own = url.origin() == self.base.origin();
            let mut req = self
                .client
                .agent
                .get(url.as_str())
                .timeout(self.remaining()?);
            if let Some(a) = accept {
                req = req.set("Accept", a);
            }
            if let Some(auth) = self.auth.as_ref().filter(|_| own) {
                req = req.set("Authorization", auth);
            }
            let _dns = DnsDeadline::set(self.deadline);
            let resp = match req.call() {
                Ok(r) => r,
                Err(ureq::Error::Status(code, r)) => {
                    return match code {
                        401 if own => Ok(Answer::Challenge(
                            r.header("www-authenticate").map(str::to_string),
                        )),
                        401 | 403 => Err(self.unauthorized(
                            if own {
                                self.credentials_hint()?
                            } else {
                                "a redirect target asked for credentials, which go only to the registry and the token service it names".into()
                            },
                            format!("{} answered HTTP {code}", shown(&url)),
                        )),
                        404 => Err(LookupError::NotFound {
                            image: self.image.to_string(),
                            registry: self.registry(),
                        }),
                        status => Err(self.status(format!("{} answered HTTP {status}", shown(&url)))),
                    };
                }
                Err(ureq::Error::Transport(t)) => return Err(self.transport(&url, &t)),
            };
            if (300..400).contains(&resp.status()) {
                let location = resp.header("location").ok_or_else(|| {
                    self.status(format!(
                        "{} answered HTTP {} without Location",
                        shown(&url),
                        resp.status()
                    ))
                })?;
                url = url.join(location).map_err(|e| {
                    self.status(format!("{} redirects to an invalid URL: {e}", shown(&url)))
                })?;
                continue;
            }
            let content_type = resp.header("content-type").map(str::to_string);
            let bytes = self.read(resp, MAX_DOCUMENT, &url)?;
            let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
            return Ok(Answer::Ok(Document {
                bytes,
                content_type,
                digest,
            }));
        }
        Err(self.status(format!("more than {MAX_REDIRECTS} redirects")))
    }

    /// The `Authorization` value answering the registry's own challenge.
    fn authorize(&self, header: Option<&str>) -> Result<Zeroizing<String>, LookupError> {
        let creds = self.credentials()?;
        match header.and_then(challenge::parse) {
            Some(Challenge::Basic) => creds.map(|c| c.basic()).ok_or_else(|| {
                self.unauthorized(
                    format!(
                        "it asks for a password and registry.docker_config has none for {}",
                        self.image.registry
                    ),
                    "Basic challenge without configured credentials".into(),
                )
            }),
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
                ..
            }) => {
                let realm_url = Url::parse(&realm)
                    .map_err(|e| self.status(format!("its token realm is not a URL: {e}")))?;
                self.client
                    .policy
                    .check_url(&realm_url)
                    .map_err(|r| self.not_allowed(format!("token realm: {r}")))?;
                let shown_realm = shown(&realm_url);
                let scope = scope.unwrap_or_else(|| self.pull_scope());
                let mut req = self
                    .client
                    .agent
                    .get(realm_url.as_str())
                    .timeout(self.remaining()?)
                    .query("scope", &scope);
                if let Some(s) = &service {
                    req = req.query("service", s);
                }
                if let Some(c) = &creds {
                    req = req.set("Authorization", &c.basic());
                }
                let _dns = DnsDeadline::set(self.deadline);
                let resp = match req.call() {
                    Ok(r) => r,
                    Err(ureq::Error::Status(code, _)) => {
                        return Err(self.unauthorized(
                            self.credentials_hint()?,
                            format!("its token service {shown_realm} answered HTTP {code}"),
                        ))
                    }
                    Err(ureq::Error::Transport(t)) => {
                        return Err(match self.transport(&realm_url, &t) {
                            LookupError::Unreachable { detail, .. } => LookupError::TokenService {
                                image: self.image.to_string(),
                                registry: self.registry(),
                                realm: shown_realm,
                                detail,
                            },
                            other => other,
                        })
                    }
                };
                if resp.status() != 200 {
                    return Err(self.status(format!(
                        "its token service {shown_realm} answered HTTP {}",
                        resp.status()
                    )));
                }
                let body = Zeroizing::new(self.read(resp, MAX_TOKEN, &realm_url)?);
                #[derive(serde::Deserialize)]
                struct Token {
                    #[serde(default, deserialize_with = "creds::secret")]
                    token: Option<Zeroizing<String>>,
                    #[serde(default, deserialize_with = "creds::secret")]
                    access_token: Option<Zeroizing<String>>,
                }
                let t: Token = serde_json::from_slice(&body).map_err(|_| {
                    self.status(format!(
                        "its token service {shown_realm} did not answer JSON"
                    ))
                })?;
                let token = t.token.or(t.access_token).ok_or_else(|| {
                    self.status(format!("its token service {shown_realm} sent no token"))
                })?;
                Ok(Zeroizing::new(format!("Bearer {}", token.as_str())))
            }
            None => Err(self.unauthorized(
                format!(
                    "it asks for an authentication scheme shroud does not speak ({})",
                    header.map_or("no WWW-Authenticate header", |h| h
                        .split(' ')
                        .next()
                        .unwrap_or(h))
                ),
                "unsupported challenge".into(),
            )),
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

    /// What the operator can change when access is refused.
    fn credentials_hint(&self) -> Result<String, LookupError> {
        Ok(if self.credentials()?.is_some() {
            format!(
                "the credentials for {} in registry.docker_config were refused",
                self.image.registry
            )
        } else {
            format!(
                "no credentials for {} in registry.docker_config",
                self.image.registry
            )
        })
    }

    /// What is left of the admission's deadline for the next round trip.
    fn remaining(&self) -> Result<Duration, LookupError> {
        self.deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| self.timed_out())
    }

    fn read(&self, resp: ureq::Response, limit: u64, url: &Url) -> Result<Vec<u8>, LookupError> {
        let mut bytes = Vec::new();
        if let Err(e) = resp.into_reader().take(limit + 1).read_to_end(&mut bytes) {
            return Err(if Instant::now() >= self.deadline {
                self.timed_out()
            } else {
                self.unreachable(format!("{}: reading the answer: {e}", shown(url)))
            });
        }
        if bytes.len() as u64 > limit {
            return Err(self.status(format!("{}: answer larger than {limit} bytes", shown(url))));
        }
        Ok(bytes)
    }

    /// A transport failure in the pod author's terms: timed out once the
    /// deadline has passed, else unreachable — an address refused after
    /// resolution included, so that internal DNS names are no oracle either.
    fn transport(&self, url: &Url, t: &ureq::Transport) -> LookupError {
        if Instant::now() >= self.deadline {
            return self.timed_out();
        }
        let detail = match resolve::refusal(t) {
            Some(r) => r.to_string(),
            None => {
                let mut d = format!("{}: {}", shown(url), t.kind());
                if let Some(m) = t.message() {
                    d.push_str(&format!(": {m}"));
                }
                if let Some(s) = std::error::Error::source(t) {
                    d.push_str(&format!(": {s}"));
                }
                d
            }
        };
        self.unreachable(detail)
    }

    fn registry(&self) -> String {
        self.image.api_host().to_string()
    }

    fn invalid(&self, reason: String) -> LookupError {
        LookupError::Invalid {
            image: self.image.to_string(),
            reason,
        }
    }

    fn not_allowed(&self, detail: String) -> LookupError {
        LookupError::NotAllowed {
            image: self.image.to_string(),
            registry: self.registry(),
            detail,
        }
    }

    fn unauthorized(&self, hint: String, detail: String) -> LookupError {
        LookupError::Unauthorized {
            image: self.image.to_string(),
            registry: self.registry(),
            hint,
            detail,
        }
    }

    fn unreachable(&self, detail: String) -> LookupError {
        LookupError::Unreachable {
            image: self.image.to_string(),
            registry: self.registry(),
            detail,
        }
    }

    fn status(&self, detail: String) -> LookupError {
        LookupError::Status {
            image: self.image.to_string(),
            registry: self.registry(),
            detail,
        }
    }

    fn timed_out(&self) -> LookupError {
        LookupError::Timeout {
            image: self.image.to_string(),
            registry: self.registry(),
            after: self.client.budget,
        }
    }
}

enum Answer {
    Ok(Document),
    Challenge(Option<String>),
}

/// A URL as logged: origin and path, never the query (blob storage URLs carry
/// signatures there).
fn shown(url: &Url) -> String {
    format!("{}{}", url.origin().ascii_serialization(), url.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_urls_leave_out_queries_and_userinfo() {
        let u = Url::parse("https://u:p@s3.example/b/c?X-Amz-Signature=abc").unwrap();
        assert_eq!(shown(&u), "https://s3.example/b/c");
    }
}
