//! `[[gateway]] kind = "vault"` against a real OpenBao and PostgreSQL, with the
//! real `bao` CLI as the workload's Vault client and no token of its own: a KV
//! read and a dynamic database credential through the gateway, denied paths
//! answered 403 in Vault's JSON shape, the credential's lease renewed while
//! the agent runs, and revoked (its role dropped) when the agent exits; the
//! audit trail has the gateway's upstream logins and each renewal.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use shroud_e2e::world::*;
use shroud_e2e::*;

struct Setup {
    w: World,
    agent: Option<Agent>,
    tcp: u16,
    sock_dir: PathBuf,
}

/// An agent (reading the kv2 key for itself) with two vault gateways that
/// allow the KV secret and the database role: `vault` on TCP, `vsock` on a
/// Unix socket directory.
fn setup() -> Setup {
    let bao_bin = require_tool("bao", "scripts/test --prereqs (OpenBao from PyPI in .venv)");
    assert!(bao_bin.exists());
    let w = World::new(Some(("6s", "2m")));
    let auth = w.approle_auth();
    let tcp = free_port();
    let sock_dir = w.path("vaultsock");
    let paths = r#"paths = ["secret/data/app", "database/creds/+"]"#;
    let gateways = format!(
        "
[[gateway]]
name = \"vault\"
kind = \"vault\"
listen = \"127.0.0.1:{tcp}\"
{paths}

[[gateway]]
name = \"vsock\"
kind = \"vault\"
listen = \"unix:{sock}\"
{paths}
",
        sock = sock_dir.display(),
    );
    let cfg = w.config(
        &auth,
        &format!(
            "[audit]\npath = \"{}\"\n{KV_SECRET}{gateways}",
            w.path("audit.jsonl").display()
        ),
    );
    let mut agent = Agent(spawn_agent(&cfg, &w.path("agent.log")));
    until(Duration::from_secs(30), "the gateways' token files", || {
        if let Ok(Some(status)) = agent.0.try_wait() {
            let log = std::fs::read_to_string(w.path("agent.log")).unwrap_or_default();
            panic!("the agent exited ({status:?}):\n{log}");
        }
        w.file("vsock.token").map(drop)
    });
    Setup {
        w,
        agent: Some(agent),
        tcp,
        sock_dir,
    }
}

impl Setup {
    fn log(&self) -> String {
        std::fs::read_to_string(self.w.path("agent.log")).unwrap_or_default()
    }

    /// `bao ARGS` with only PATH, VAULT_ADDR and (when given) VAULT_TOKEN in
    /// its environment: no token of its own.
    fn bao(&self, addr: &str, token: Option<&str>, args: &[&str]) -> Finished {
        let mut c = Command::new("bao");
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("VAULT_ADDR", addr)
            .env("HOME", self.w.work.path())
            .args(args);
        if let Some(t) = token {
            c.env("VAULT_TOKEN", t);
        }
        run_with_input(&mut c, b"", Duration::from_secs(60))
    }

    /// The audit records of event `event`.
    fn audited(&self, event: &str) -> Vec<Value> {
        std::fs::read_to_string(self.w.path("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|r| r["event"] == event)
            .collect()
    }

    fn unix(&self) -> String {
        format!("unix://{}", self.sock_dir.join("vsock.sock").display())
    }

    fn tcp(&self) -> String {
        format!("http://127.0.0.1:{}", self.tcp)
    }
}

fn json(f: &Finished) -> Value {
    assert!(f.status.success(), "bao failed: {}", f.err());
    serde_json::from_str(&f.out()).unwrap_or_else(|e| panic!("{e}: {}", f.out()))
}

#[test]
fn a_workload_without_a_token_reads_and_its_leases_end_with_the_agent() {
    let _serial = serial();
    let mut s = setup();
    // A KV read over the Unix socket, with no token at all.
    let kv = json(&s.bao(
        &s.unix(),
        None,
        &["read", "-format=json", "secret/data/app"],
    ));
    assert_eq!(kv["data"]["data"]["api_key"], API_KEY);
    // A token the client sends itself is dropped, not used.
    let kv = json(&s.bao(
        &s.unix(),
        Some("not-a-token"),
        &["read", "-format=json", "secret/data/app"],
    ));
    assert_eq!(kv["data"]["data"]["api_key"], API_KEY);

    // Over TCP, the gateway's local token (as VAULT_TOKEN) is the ticket.
    let local = s.w.file("vault.token").unwrap();
    let creds = json(&s.bao(
        &s.tcp(),
        Some(&local),
        &["read", "-format=json", "database/creds/app"],
    ));
    let lease = creds["lease_id"].as_str().unwrap().to_string();
    let user = creds["data"]["username"].as_str().unwrap().to_string();
    assert!(lease.starts_with("database/creds/app/"), "{lease}");
    assert!(s.w.pg().role_exists(&user), "role {user}");
    assert!(s.w.bao.lease_exists(&lease));

    // Denied: paths not listed, sys/ and auth/token/, TCP without the token.
    for (addr, token, args) in [
        (s.unix(), None, vec!["read", "secret/data/other"]),
        (s.unix(), None, vec!["token", "lookup"]),
        (
            s.unix(),
            None,
            vec!["write", "sys/leases/lookup", &format!("lease_id={lease}")],
        ),
        (s.unix(), None, vec!["read", "secret/data/app/../other"]),
        (s.tcp(), None, vec!["read", "secret/data/app"]),
        (s.tcp(), Some("guess"), vec!["read", "secret/data/app"]),
    ] {
        let f = s.bao(&addr, token, &args);
        assert!(!f.status.success(), "{args:?} was allowed: {}", f.out());
        let err = f.err();
        assert!(
            err.contains("Code: 403") && err.contains("permission denied"),
            "{args:?}: {err}"
        );
    }
    // Vault's own error shape, from the gateway.
    let mut c = Command::new("curl");
    c.args(["-sS", "--unix-socket"])
        .arg(s.sock_dir.join("vsock.sock"))
        .arg("http://vault/v1/sys/mounts");
    let f = run_with_input(&mut c, b"", Duration::from_secs(30));
    let body: Value = serde_json::from_str(&f.out()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"errors": ["gateway vsock: permission denied"]})
    );

    // Renewed while the agent runs: a second renewal comes after the first
    // 6 s TTL would have ended, and the lease is still there.
    until(
        Duration::from_secs(40),
        "the gateway to renew the lease twice",
        || {
            (s.log()
                .matches("renewed a lease obtained through the gateway")
                .count()
                >= 2)
                .then_some(())
        },
    );
    assert!(s.w.bao.lease_exists(&lease), "the lease ran out");

    // At exit: the lease revoked, the role dropped, nothing left.
    let status = s.agent.take().unwrap().stop();
    assert!(status.success(), "agent: {status:?}\n{}", s.log());
    assert!(!s.w.bao.lease_exists(&lease), "the lease is still alive");
    assert!(!s.w.pg().role_exists(&user), "role {user} still exists");
    s.w.assert_clean(&[user]);
    assert!(!s.sock_dir.exists());
    let log = s.log();
    assert!(
        log.contains("revoked a lease obtained through the gateway"),
        "{log}"
    );
    assert!(!log.contains(API_KEY));

    // The audit trail: each client connection's upstream login with the
    // agent's token (no secret, no lease), each renewal and the revocation by
    // the lease's hash; never the lease id, a value or the token.
    let hash = sha256_hex(lease.as_bytes());
    // Three bao runs reached Vault (two over the socket, one over TCP), each
    // on a connection of its own: one record each, whatever its requests.
    let logins = s.audited("gateway_login");
    let ok = |gateway: &str| {
        logins
            .iter()
            .filter(|r| r["gateway"] == gateway && r["outcome"] == "ok")
            .count()
    };
    assert_eq!(
        (ok("vsock"), ok("vault"), logins.len()),
        (2, 1, 3),
        "{logins:?}"
    );
    for l in &logins {
        assert!(
            l.get("secret").is_none() && l.get("lease_id_sha256").is_none(),
            "{l}"
        );
    }
    let renewals = s.audited("gateway_renew");
    assert!(renewals.len() >= 2, "{renewals:?}");
    for r in &renewals {
        assert_eq!(
            (&r["gateway"], &r["path"], &r["outcome"]),
            (&"vault".into(), &"database/creds/app".into(), &"ok".into()),
            "{r}"
        );
        assert_eq!(r["lease_id_sha256"], hash.as_str(), "{r}");
    }
    let revoked = s.audited("gateway_revoke");
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert_eq!(revoked[0]["lease_id_sha256"], hash.as_str());
    let trail = std::fs::read_to_string(s.w.path("audit.jsonl")).unwrap();
    for secret in [lease.as_str(), API_KEY, local.as_str()] {
        assert!(!trail.contains(secret), "the audit trail holds a secret");
    }
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(data))
}

/// Garbage to a vault gateway gets a protocol-correct `400 Bad Request` (what
/// a Vault server's HTTP stack answers), and the gateway keeps serving.
#[test]
fn garbage_gets_400_and_the_gateway_keeps_serving() {
    use std::io::{Read as _, Write as _};
    let _serial = serial();
    let mut s = setup();
    let mut c = std::net::TcpStream::connect(("127.0.0.1", s.tcp)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    c.write_all(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = c.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer:?}");
    let local = s.w.file("vault.token").unwrap();
    let kv = json(&s.bao(
        &s.tcp(),
        Some(&local),
        &["read", "-format=json", "secret/data/app"],
    ));
    assert_eq!(kv["data"]["data"]["api_key"], API_KEY);
    let status = s.agent.take().unwrap().stop();
    assert!(status.success(), "agent: {status:?}\n{}", s.log());
}
