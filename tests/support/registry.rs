//! A real OCI registry for tests: Debian's `docker-registry` (distribution 2.8) on
//! 127.0.0.1, plain, with htpasswd basic auth over TLS, or (restarted on the same
//! storage) with bearer-token auth from a [`TokenServer`], and a client that pushes
//! images through the registry's HTTP API (blobs, Docker v2 / OCI manifests,
//! manifest lists / image indexes) without Docker.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::token::{self, TokenServer};
use crate::webhook::TestCa;

/// Docker v2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A running `docker-registry serve`; killed on drop.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub host: String,
    base: String,
    agent: ureq::Agent,
    auth: Option<String>,
    /// Whether `/v2/` answers 401 (basic or token auth).
    challenges: bool,
    dir: tempfile::TempDir,
}

/// What pushing an image produced.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The manifest's digest.
    pub digest: String,
}

impl Registry {
    /// A registry without authentication over plain HTTP.
    pub fn plain() -> Registry {
        Self::start(None)
    }

    /// A registry over TLS (certificate from `ca`) with htpasswd basic auth
    /// accepting `user`/`password`.
    pub fn tls_basic_auth(ca: &TestCa, user: &str, password: &str) -> Registry {
        Self::start(Some((ca, user, password)))
    }

    fn start(secure: Option<(&TestCa, &str, &str)>) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = crate::free_port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n",
            dir.path().join("data").display()
        );
        let mut tls = rustls::RootCertStore::empty();
        let mut auth = None;
        if let Some((ca, user, password)) = secure {
            let leaf = ca.leaf();
            let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
            std::fs::write(&cert, &leaf.cert_pem).unwrap();
            std::fs::write(&key, &leaf.key_pem).unwrap();
            let htpasswd = dir.path().join("htpasswd");
            htpasswd_file(&htpasswd, user, password);
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\nauth:\n  htpasswd:\n    realm: shroud-test\n    path: {}\n",
                cert.display(),
                key.display(),
                htpasswd.display()
            ));
            tls.add(ca.der.clone()).unwrap();
            auth = Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let scheme = if secure.is_some() { "https" } else { "http" };
        let mut builder = ureq::AgentBuilder::new().timeout(Duration::from_secs(10));
        if secure.is_some() {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let cfg = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(tls)
                .with_no_client_auth();
            builder = builder.tls_config(Arc::new(cfg));
        }
        let mut r = Registry {
            child: spawn(&config_path, dir.path()),
            base: format!("{scheme}://{host}"),
            host,
            agent: builder.build(),
            challenges: auth.is_some(),
            auth,
            dir,
        };
        r.wait_ready();
        r
    }

    /// Restarts this registry, same address and storage, behind bearer-token
    /// auth from `tokens` (`auth: token` with its realm, service, issuer and
    /// CA as `rootcertbundle`). Push images before: this client has no token.
    pub fn restart_with_token_auth(&mut self, tokens: &TokenServer) {
        self.stop();
        let config_path = self.dir.path().join("config.yml");
        let bundle = self.dir.path().join("token-roots.pem");
        std::fs::write(&bundle, &tokens.root_pem).unwrap();
        let mut config = std::fs::read_to_string(&config_path).unwrap();
        assert!(!config.contains("\nauth:"), "the registry already has auth");
        config.push_str(&format!(
            "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
            tokens.realm,
            token::SERVICE,
            token::ISSUER,
            bundle.display()
        ));
        std::fs::write(&config_path, config).unwrap();
        self.child = spawn(&config_path, self.dir.path());
        self.challenges = true;
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        crate::until(
            Duration::from_secs(20),
            "docker-registry to answer /v2/",
            || {
                if let Some(status) = self.child.try_wait().unwrap() {
                    panic!("docker-registry exited with {status}: {}", self.log());
                }
                match self.request("GET", "/v2/").call() {
                    Ok(_) => Some(()),
                    Err(ureq::Error::Status(401, _)) if self.challenges => Some(()),
                    Err(_) => None,
                }
            },
        );
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Stops the registry (later requests cannot connect).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn request(&self, method: &str, path: &str) -> ureq::Request {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let req = self.agent.request(method, &url);
        match &self.auth {
            Some(a) => req.set("Authorization", a),
            None => req,
        }
    }

    /// Uploads a blob (monolithic upload) and returns its digest.
    pub fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = digest(bytes);
        let started = self
            .request("POST", &format!("/v2/{repo}/blobs/uploads/"))
            .call()
            .unwrap_or_else(|e| panic!("starting a blob upload to {repo}: {e}"));
        let location = started.header("location").expect("upload Location");
        let sep = if location.contains('?') { '&' } else { '?' };
        self.request("PUT", &format!("{location}{sep}digest={digest}"))
            .set("Content-Type", "application/octet-stream")
            .send_bytes(bytes)
            .unwrap_or_else(|e| panic!("uploading blob {digest}: {e}"));
        digest
    }

    /// Puts a manifest under `reference` (a tag) and returns its digest.
    pub fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        manifest: &serde_json::Value,
    ) -> Pushed {
        let bytes = serde_json::to_vec(manifest).unwrap();
        self.request("PUT", &format!("/v2/{repo}/manifests/{reference}"))
            .set("Content-Type", media_type)
            .send_bytes(&bytes)
            .unwrap_or_else(|e| match e {
                ureq::Error::Status(c, r) => panic!(
                    "PUT manifest {repo}:{reference}: HTTP {c}: {}",
                    r.into_string().unwrap_or_default()
                ),
                e => panic!("PUT manifest {repo}:{reference}: {e}"),
            });
        Pushed {
            digest: digest(&bytes),
        }
    }

    /// Pushes a one-layer image whose configuration has `entrypoint` and `cmd`
    /// (JSON `null` when `None`), as a Docker v2 (`oci = false`) or OCI manifest.
    pub fn push_image(
        &self,
        repo: &str,
        tag: &str,
        oci: bool,
        arch: &str,
        entrypoint: Option<&[&str]>,
        cmd: Option<&[&str]>,
    ) -> Pushed {
        let layer = format!("layer of {repo}:{tag} for {arch}").into_bytes();
        let layer_digest = self.push_blob(repo, &layer);
        let config = serde_json::json!({
            "architecture": arch, "os": "linux",
            "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Entrypoint": entrypoint, "Cmd": cmd, "WorkingDir": "/"},
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
            "history": [{"created_by": "shroud test"}]
        });
        let config_bytes = serde_json::to_vec(&config).unwrap();
        let config_digest = self.push_blob(repo, &config_bytes);
        let (media, config_media, layer_media) = if oci {
            (
                OCI_MANIFEST,
                "application/vnd.oci.image.config.v1+json",
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        } else {
            (
                DOCKER_MANIFEST,
                "application/vnd.docker.container.image.v1+json",
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
            )
        };
        let manifest = serde_json::json!({
            "schemaVersion": 2, "mediaType": media,
            "config": {"mediaType": config_media, "size": config_bytes.len(), "digest": config_digest},
            "layers": [{"mediaType": layer_media, "size": layer.len(), "digest": layer_digest}]
        });
        self.push_manifest(repo, tag, media, &manifest)
    }

    /// Pushes an index (`oci`) or Docker manifest list over already pushed
    /// manifests, each `(arch, pushed)`, plus an attestation entry without platform.
    pub fn push_index(
        &self,
        repo: &str,
        tag: &str,
        oci: bool,
        entries: &[(&str, &Pushed)],
    ) -> Pushed {
        let (media, child) = if oci {
            (OCI_INDEX, OCI_MANIFEST)
        } else {
            (DOCKER_LIST, DOCKER_MANIFEST)
        };
        let manifests: Vec<serde_json::Value> = entries
            .iter()
            .map(|(arch, p)| {
                let size = self
                    .request("HEAD", &format!("/v2/{repo}/manifests/{}", p.digest))
                    .set("Accept", child)
                    .call()
                    .expect("HEAD of a pushed manifest")
                    .header("content-length")
                    .and_then(|l| l.parse::<u64>().ok())
                    .expect("Content-Length");
                serde_json::json!({"mediaType": child, "size": size, "digest": p.digest,
                    "platform": {"architecture": arch, "os": "linux"}})
            })
            .collect();
        let index =
            serde_json::json!({"schemaVersion": 2, "mediaType": media, "manifests": manifests});
        self.push_manifest(repo, tag, media, &index)
    }
}

/// `docker-registry serve config`, its output appended to `dir/registry.log`.
fn spawn(config: &Path, dir: &Path) -> Child {
    let bin = crate::require_tool("docker-registry", "apt-get install docker-registry");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("registry.log"))
        .unwrap();
    Command::new(bin)
        .arg("serve")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("spawning docker-registry")
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A bcrypt htpasswd file (`htpasswd -B`; distribution accepts only bcrypt).
fn htpasswd_file(path: &Path, user: &str, password: &str) {
    let tool = crate::require_tool("htpasswd", "apt-get install apache2-utils");
    let out = Command::new(tool)
        .args(["-nbB", user, password])
        .output()
        .expect("running htpasswd");
    assert!(
        out.status.success(),
        "htpasswd failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(path, out.stdout).unwrap();
}

/// A Docker config JSON (`.dockerconfigjson`) with `user`/`password` for `host`.
pub fn docker_config(host: &str, user: &str, password: &str) -> String {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    serde_json::json!({"auths": {host: {"auth": auth}}}).to_string()
}
