//! Helpers for the webhook tests and benchmark: a throw-away CA issuing serving
//! certificates (rcgen), the `shroud webhook` process, and an HTTPS client that
//! trusts only the test CAs and reports which certificate the server presented.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A certificate authority made for one test.
#[derive(Debug)]
pub struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    /// The CA certificate (DER), to trust in clients.
    pub der: CertificateDer<'static>,
    /// The CA certificate (PEM).
    pub pem: String,
}

/// A serving certificate and key issued by a [`TestCa`].
#[derive(Debug, Clone)]
pub struct Leaf {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// The private key (PEM).
    pub key_pem: String,
    /// The certificate (DER), to compare with what a server presents.
    pub der: CertificateDer<'static>,
}

impl TestCa {
    /// A new CA named `name`.
    pub fn new(name: &str) -> TestCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            der: cert.der().clone(),
            pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A serving certificate for 127.0.0.1 and localhost.
    pub fn leaf(&self) -> Leaf {
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "shroud-webhook");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }
}

/// Writes `contents` to `path` through a temporary file and a rename, as
/// cert-manager and the kubelet do.
pub fn replace_file(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A running `shroud webhook` on 127.0.0.1; killed on drop.
#[derive(Debug)]
pub struct WebhookProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The certificate file it serves.
    pub cert_path: PathBuf,
    /// The key file it serves.
    pub key_path: PathBuf,
    /// Its stderr.
    pub log_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl WebhookProcess {
    /// Starts the binary at `bin` with `leaf` and `config` (TOML) and waits until
    /// `/healthz` answers through TLS trusting `ca`.
    pub fn start(bin: &Path, ca: &TestCa, leaf: &Leaf, config: &str) -> WebhookProcess {
        let client_for = |addr| Client::new(addr, std::slice::from_ref(&ca.der));
        Self::start_with(bin, &leaf.cert_pem, &leaf.key_pem, config, client_for)
    }

    /// Starts the binary with PEM files and a configuration, and waits until
    /// `/healthz` answers through the client `client_for` makes for its address.
    pub fn start_with(
        bin: &Path,
        cert_pem: &str,
        key_pem: &str,
        config: &str,
        client_for: impl Fn(SocketAddr) -> Client,
    ) -> WebhookProcess {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        std::fs::create_dir(&certs).unwrap();
        let cert_path = certs.join("tls.crt");
        let key_path = certs.join("tls.key");
        std::fs::write(&cert_path, cert_pem).unwrap();
        std::fs::write(&key_path, key_pem).unwrap();
        let config_path = dir.path().join("webhook.toml");
        std::fs::write(&config_path, config).unwrap();
        let log_path = dir.path().join("webhook.log");
        let addr: SocketAddr = format!("127.0.0.1:{}", crate::free_port()).parse().unwrap();
        let child = std::process::Command::new(bin)
            .arg("webhook")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--tls-cert")
            .arg(&cert_path)
            .arg("--tls-key")
            .arg(&key_path)
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .expect("spawning shroud webhook");
        let mut p = WebhookProcess {
            child,
            addr,
            cert_path,
            key_path,
            log_path,
            _dir: dir,
        };
        let client = client_for(addr);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = p.child.try_wait().unwrap() {
                panic!("shroud webhook exited with {status}: {}", p.log());
            }
            if let Ok(r) = client.get("/healthz") {
                assert_eq!(r.status, 200);
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "shroud webhook did not answer /healthz within 20s: {}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` and waits (bounded) for the process to exit.
    pub fn stop_with(
        &mut self,
        signal: nix::sys::signal::Signal,
        limit: Duration,
    ) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, signal).unwrap();
        crate::wait_with_deadline(&mut self.child, limit)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its peak resident set size (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/<pid>/status")
    }

    /// Its stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for WebhookProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer and the certificate the server presented.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: Vec<u8>,
    /// The server's leaf certificate.
    pub server_cert: CertificateDer<'static>,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// A TLS connector trusting exactly `roots`.
pub fn connector(roots: &[CertificateDer<'static>]) -> TlsConnector {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    // A resumed session reports the certificate of the session it resumes, which
    // would hide a reload.
    cfg.resumption = rustls::client::Resumption::disabled();
    TlsConnector::from(Arc::new(cfg))
}

/// An HTTP/1.1 connection over TLS; reusable for many requests.
#[derive(Debug)]
pub struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    /// The server's leaf certificate.
    pub server_cert: CertificateDer<'static>,
}

impl Conn {
    /// Connects and completes the TLS handshake.
    /// `server_name` is the name the certificate must be valid for.
    pub async fn open(
        addr: SocketAddr,
        tls: &TlsConnector,
        server_name: &str,
    ) -> std::io::Result<Conn> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from(server_name.to_string()).map_err(std::io::Error::other)?;
        let stream = tls.connect(name, tcp).await?;
        let server_cert = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first().cloned())
            .expect("server presented a certificate")
            .into_owned();
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(std::io::Error::other)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn {
            sender,
            server_cert,
        })
    }

    /// Sends one request and reads the whole answer.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Bytes,
    ) -> std::io::Result<(u16, Bytes)> {
        let req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(body))
            .unwrap();
        self.sender.ready().await.map_err(std::io::Error::other)?;
        let resp = self
            .sender
            .send_request(req)
            .await
            .map_err(std::io::Error::other)?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(std::io::Error::other)?
            .to_bytes();
        Ok((status, body))
    }
}

/// A blocking client for tests: one fresh connection per request.
pub struct Client {
    rt: tokio::runtime::Runtime,
    tls: TlsConnector,
    addr: SocketAddr,
    server_name: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `addr` trusting `roots`.
    pub fn new(addr: SocketAddr, roots: &[CertificateDer<'static>]) -> Client {
        Client {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            tls: connector(roots),
            addr,
            server_name: "localhost".into(),
        }
    }

    /// Verifies the server's certificate for `name` instead of `localhost`.
    pub fn with_server_name(mut self, name: &str) -> Client {
        self.server_name = name.to_string();
        self
    }

    /// Sends a request on a new connection.
    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> std::io::Result<Answer> {
        let body = Bytes::copy_from_slice(body);
        self.rt.block_on(async {
            let mut conn = tokio::time::timeout(
                Duration::from_secs(10),
                Conn::open(self.addr, &self.tls, &self.server_name),
            )
            .await
            .map_err(std::io::Error::other)??;
            let (status, body) = conn.send(method, path, body).await?;
            Ok(Answer {
                status,
                body: body.to_vec(),
                server_cert: conn.server_cert.clone(),
            })
        })
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> std::io::Result<Answer> {
        self.request("GET", path, b"")
    }

    /// `POST /mutate` with `body`.
    pub fn mutate(&self, body: &[u8]) -> Answer {
        self.request("POST", "/mutate", body)
            .expect("POST /mutate over TLS")
    }

    /// `POST /validate` with `body`.
    pub fn validate(&self, body: &[u8]) -> Answer {
        self.request("POST", "/validate", body)
            .expect("POST /validate over TLS")
    }
}

/// The Kubernetes version patched pods are validated against.
pub const K8S_VERSION: &str = "1.33.0";

/// An AdmissionReview as the API server sends it for a pod CREATE.
pub fn admission_review(pod: &serde_json::Value) -> serde_json::Value {
    review_of("CREATE", pod, None, None)
}

/// An AdmissionReview for `operation` of `pod` (UPDATE: with `old`), optionally
/// of a subresource such as `ephemeralcontainers`. Like the API server, it sends
/// the objects with the core/v1 defaults applied ([`crate::apiserver`]).
pub fn review_of(
    operation: &str,
    pod: &serde_json::Value,
    old: Option<&serde_json::Value>,
    sub_resource: Option<&str>,
) -> serde_json::Value {
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let mut request = serde_json::json!({
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
        "requestResource": {"group": "", "version": "v1", "resource": "pods"},
        "name": pod["metadata"]["name"].as_str().unwrap_or(""),
        "namespace": namespace,
        "operation": operation,
        "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller", "uid": "1d9c6b1a-0000-4000-8000-000000000001", "groups": ["system:serviceaccounts", "system:authenticated"]},
        "object": crate::apiserver::defaulted(pod),
        "oldObject": old.map(crate::apiserver::defaulted),
        "dryRun": false,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
    });
    if let Some(sub) = sub_resource {
        request["subResource"] = serde_json::json!(sub);
        request["requestSubResource"] = serde_json::json!(sub);
    }
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": request,
    })
}

/// The patch bytes: the API server decodes Go `[]byte` from a base64 string.
pub fn patch_bytes(patch: &serde_json::Value) -> Vec<u8> {
    use base64::Engine as _;
    match patch {
        serde_json::Value::String(s) => {
            base64::engine::general_purpose::STANDARD.decode(s).unwrap()
        }
        other => panic!("the patch is not a base64 string: {other}"),
    }
}

/// `pod` with the response's patch applied, as the API server does it: to the
/// defaulted pod the webhook was sent, then defaulted again (the containers and
/// volumes the patch added get their defaults before any later admission step).
pub fn apply(pod: &serde_json::Value, response: &serde_json::Value) -> serde_json::Value {
    let raw = patch_bytes(&response["patch"]);
    let patch: json_patch::Patch = serde_json::from_slice(&raw).unwrap();
    let mut doc = crate::apiserver::defaulted(pod);
    json_patch::patch(&mut doc, &patch)
        .unwrap_or_else(|e| panic!("patch does not apply: {e}\n{patch:#?}"));
    crate::apiserver::defaulted(&doc)
}

/// The injected `shroud-agent` container of a patched pod (native sidecar in
/// `initContainers`, classic in `containers`).
pub fn agent_container(pod: &serde_json::Value) -> &serde_json::Value {
    ["initContainers", "containers"]
        .iter()
        .flat_map(|list| pod["spec"][*list].as_array().into_iter().flatten())
        .find(|c| c["name"] == "shroud-agent")
        .unwrap_or_else(|| panic!("no shroud-agent in {pod:#}"))
}

/// Validates a pod against the Kubernetes OpenAPI schema (strict: unknown fields
/// fail) with kubernetes-validate.
pub fn validate(pod: &serde_json::Value) {
    let tool = crate::require_tool(
        "kubernetes-validate",
        "python3 -m pip install 'kubernetes-validate>=1.31'",
    );
    // Admission sees generateName pods before the name is generated; the
    // validator needs one, so do what the API server does.
    let mut pod = pod.clone();
    if pod["metadata"].get("name").is_none() {
        let generated = format!("{}x7k2p", pod["metadata"]["generateName"].as_str().unwrap());
        pod["metadata"]["name"] = serde_json::json!(generated);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pod.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&pod).unwrap()).unwrap();
    let out = std::process::Command::new(tool)
        .args(["--strict", "--kubernetes-version", K8S_VERSION])
        .arg(&file)
        .output()
        .expect("running kubernetes-validate");
    assert!(
        out.status.success(),
        "patched pod does not validate against Kubernetes {K8S_VERSION}:\n{}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        serde_json::to_string_pretty(&pod).unwrap()
    );
}
