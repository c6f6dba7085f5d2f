//! The vault gateway's leases across agent restarts (`[state]`), against a
//! real OpenBao and PostgreSQL with the real `bao` CLI as the workload's
//! client: a lease obtained through the gateway survives a SIGKILL of the
//! agent, is adopted and renewed by the restarted agent and revoked (its role
//! dropped) at its exit; a restart whose configuration no longer has the
//! gateway, or no longer allows the path, revokes what it no longer owns; a
//! lease that is not renewable is never renewed. The audit trail records each
//! lease obtained and each revocation by path and lease hash.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};
use shroud_e2e::openbao::SHROUD_POLICY;
use shroud_e2e::world::*;
use shroud_e2e::*;

const STATE_FILE: &str = "gateway-leases.json";

/// A started agent (the shared guard: SIGKILLed and reaped if the test ends
/// with it running) and its log.
struct Started {
    agent: Agent,
    log: PathBuf,
}

impl Started {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for `needle` in the log; panics with the log if the agent exits.
    fn await_log(&mut self, needle: &str, count: usize, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        while self.log().matches(needle).count() < count {
            if let Ok(Some(status)) = self.agent.0.try_wait() {
                panic!("the agent exited ({status:?}):\n{}", self.log());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out after {limit:?} waiting for {count} × `{needle}`:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill(self) {
        self.agent.kill();
    }

    fn stop(self) -> String {
        let Started { agent, log } = self;
        let status = agent.stop_within(Duration::from_secs(30));
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(status.success(), "agent: {status:?}\n{log}");
        log
    }
}

struct Setup {
    w: World,
    state: Tmpfs,
    audit: PathBuf,
    runs: usize,
}

/// `[[gateway]] kind = "vault"` named `name` on a Unix socket in the work
/// directory, allowing `paths`.
fn gateway(w: &World, name: &str, paths: &str) -> String {
    format!(
        "[[gateway]]\nname = \"{name}\"\nkind = \"vault\"\nlisten = \"unix:{}\"\npaths = [{paths}]\n",
        w.path(&format!("{name}-sock")).display()
    )
}

impl Setup {
    /// OpenBao, PostgreSQL (database role TTL `db_ttl`, max 2 min) and the
    /// agent's AppRole; the config is written by [`Setup::start`].
    fn new(db_ttl: &str) -> Setup {
        require_tool("bao", "scripts/test --prereqs (OpenBao from PyPI in .venv)");
        let w = World::new(Some((db_ttl, "2m")));
        let audit = w.path("audit.jsonl");
        Setup {
            w,
            state: Tmpfs::new(),
            audit,
            runs: 0,
        }
    }

    /// Starts an agent with `[state]`, `[audit]`, the KV secret and
    /// `gateways`; returns once it is ready.
    fn start(&mut self, gateways: &str) -> Started {
        let auth = self.w.approle_auth();
        let rest = format!(
            "[state]\ndir = \"{}\"\n[audit]\npath = \"{}\"\n{KV_SECRET}{gateways}",
            self.state.path().display(),
            self.audit.display()
        );
        let cfg = self.w.config(&auth, &rest);
        self.runs += 1;
        let log = self.w.path(&format!("agent-{}.log", self.runs));
        let mut agent = Started {
            agent: Agent(spawn_agent(&cfg, &log)),
            log,
        };
        agent.await_log("gateway listening", 1, Duration::from_secs(60));
        agent
    }

    /// `bao ARGS` through gateway `name`'s socket, with no token at all.
    fn bao(&self, name: &str, args: &[&str]) -> Value {
        let sock = self
            .w
            .path(&format!("{name}-sock"))
            .join(format!("{name}.sock"));
        let mut c = Command::new("bao");
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("VAULT_ADDR", format!("unix://{}", sock.display()))
            .env("HOME", self.w.work.path())
            .args(args);
        let f = run_with_input(&mut c, b"", Duration::from_secs(60));
        assert!(f.status.success(), "bao {args:?} failed: {}", f.err());
        serde_json::from_str(&f.out()).unwrap_or_else(|e| panic!("{e}: {}", f.out()))
    }

    /// A database credential through gateway `name`: (lease id, role).
    fn db_creds(&self, name: &str) -> (String, String) {
        let creds = self.bao(name, &["read", "-format=json", "database/creds/app"]);
        let lease = creds["lease_id"].as_str().unwrap().to_string();
        let user = creds["data"]["username"].as_str().unwrap().to_string();
        assert!(self.w.bao.lease_exists(&lease), "{lease}");
        assert!(self.w.pg().role_exists(&user), "role {user}");
        (lease, user)
    }

    /// What is left of lease `id` (looked up as root).
    fn ttl(&self, id: &str) -> Duration {
        let out = self.w.bao.bao(&[
            "write",
            "-format=json",
            "sys/leases/lookup",
            &format!("lease_id={id}"),
        ]);
        let v: Value = serde_json::from_str(&out).unwrap();
        Duration::from_secs(v["data"]["ttl"].as_u64().unwrap())
    }

    fn saved(&self) -> String {
        std::fs::read_to_string(self.state.path().join(STATE_FILE)).unwrap_or_default()
    }

    /// The audit records of event `event`.
    fn audited(&self, event: &str) -> Vec<Value> {
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|r| r["event"] == event)
            .collect()
    }
}

fn sha256(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn dir_is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

#[test]
fn a_lease_obtained_through_the_gateway_survives_a_sigkill_and_ends_at_exit() {
    let _serial = serial();
    // Long enough for the successor to start before the lease ends.
    let mut s = Setup::new("15s");
    let gw = gateway(&s.w, "vault", r#""secret/data/app", "database/creds/+""#);
    let first = s.start(&gw);
    let (lease, user) = s.db_creds("vault");
    assert!(s.saved().contains(&lease), "not in [state]: {}", s.saved());
    let password = s.bao("vault", &["read", "-format=json", "database/creds/app"]);
    let (lease2, user2) = (
        password["lease_id"].as_str().unwrap().to_string(),
        password["data"]["username"].as_str().unwrap().to_string(),
    );
    let password = password["data"]["password"].as_str().unwrap().to_string();

    // Killed outright: nothing is revoked, and nothing renews them now.
    first.kill();
    let ends = std::time::Instant::now() + s.ttl(&lease).max(s.ttl(&lease2));

    // The successor (ready once the gateway listens) adopts both and renews
    // them past the end they had.
    let second = s.start(&gw);
    until(
        Duration::from_secs(60),
        "the end the leases had when the agent was killed",
        || (std::time::Instant::now() > ends + Duration::from_secs(1)).then_some(()),
    );
    assert!(s.w.bao.lease_exists(&lease), "the lease ran out");
    assert!(s.w.bao.lease_exists(&lease2), "the lease ran out");
    let log = second.log();
    assert_eq!(
        log.matches("adopted a lease the previous agent obtained through the gateway")
            .count(),
        2,
        "{log}"
    );
    assert!(
        log.matches("renewed a lease obtained through the gateway")
            .count()
            >= 2,
        "{log}"
    );
    let log = second.log();
    assert!(
        !log.contains("cannot renew a lease obtained through the gateway"),
        "{log}"
    );

    // At exit both are revoked, their roles dropped, nothing is left.
    let log = second.stop();
    assert!(!s.w.bao.lease_exists(&lease), "the lease is still alive");
    assert!(!s.w.pg().role_exists(&user) && !s.w.pg().role_exists(&user2));
    s.w.assert_clean(&[user, user2]);
    assert!(dir_is_empty(s.state.path()), "[state] left behind");
    assert!(!log.contains(API_KEY) && !log.contains(&password));

    // The trail: each lease obtained, and revoked at shutdown, by path and
    // lease hash; never the lease id or the credential.
    let trail = std::fs::read_to_string(&s.audit).unwrap();
    assert!(!trail.contains(&lease) && !trail.contains(&password));
    let obtained = s.audited("gateway_lease");
    assert_eq!(obtained.len(), 2, "{trail}");
    assert!(obtained.iter().all(|r| r["gateway"] == "vault"
        && r["path"] == "database/creds/app"
        && r["outcome"] == "ok"));
    assert_eq!(obtained[0]["lease_id_sha256"], sha256(&lease).as_str());
    let revoked = s.audited("gateway_revoke");
    for l in [&lease, &lease2] {
        assert!(
            revoked
                .iter()
                .any(|r| r["lease_id_sha256"] == sha256(l).as_str()
                    && r["revoke_reason"] == "shutdown"
                    && r["outcome"] == "ok"),
            "{trail}"
        );
    }
}

#[test]
fn a_restart_without_the_gateway_or_its_path_revokes_what_it_no_longer_owns() {
    let _serial = serial();
    let mut s = Setup::new("1h");
    let db = r#""database/creds/+""#;
    let before = format!(
        "{}{}{}",
        gateway(&s.w, "vault", db),
        gateway(&s.w, "other", db),
        gateway(&s.w, "keep", db),
    );
    let first = s.start(&before);
    let (unlisted, unlisted_user) = s.db_creds("vault");
    let (orphan, orphan_user) = s.db_creds("other");
    let (kept, kept_user) = s.db_creds("keep");
    first.kill();

    // `other` is gone, `vault` no longer allows the database path, `keep`
    // allows it under another glob.
    let after = format!(
        "{}{}",
        gateway(&s.w, "vault", r#""secret/data/app""#),
        gateway(&s.w, "keep", r#""database/creds/app""#),
    );
    // Ready once the gateways listen: the previous leases are settled by then.
    let second = s.start(&after);
    assert!(
        !s.w.bao.lease_exists(&orphan),
        "the removed gateway's lease is alive"
    );
    assert!(
        !s.w.bao.lease_exists(&unlisted),
        "a lease of a path no longer allowed is alive"
    );
    assert!(!s.w.pg().role_exists(&orphan_user) && !s.w.pg().role_exists(&unlisted_user));
    assert!(s.w.bao.lease_exists(&kept), "the owned lease was revoked");
    assert!(s.w.pg().role_exists(&kept_user));
    assert!(
        s.w.file("other.token").is_none(),
        "the removed gateway's token file is left"
    );
    let log = second.log();
    assert!(
        log.contains("is no longer configured; revoking it")
            && log.contains("no longer allows the path"),
        "{log}"
    );
    let revoked = s.audited("gateway_revoke");
    assert!(
        revoked
            .iter()
            .any(|r| r["lease_id_sha256"] == sha256(&orphan).as_str()
                && r["revoke_reason"] == "stale"
                && r["gateway"] == "other"
                && r["outcome"] == "ok"),
        "{revoked:?}"
    );
    assert!(
        revoked
            .iter()
            .any(|r| r["lease_id_sha256"] == sha256(&unlisted).as_str()
                && r["revoke_reason"] == "rebound"
                && r["outcome"] == "ok"),
        "{revoked:?}"
    );
    let saved = s.saved();
    assert!(
        saved.contains(&kept) && !saved.contains(&orphan) && !saved.contains(&unlisted),
        "{saved}"
    );
    second.stop();
    assert!(
        !s.w.bao.lease_exists(&kept),
        "the owned lease outlived the agent"
    );
    // The removed gateway's local token file (left by the killed agent) went
    // at the restart too.
    s.w.assert_clean(&[kept_user, orphan_user, unlisted_user]);
}

#[test]
fn a_lease_that_is_not_renewable_is_never_renewed() {
    let _serial = serial();
    let mut s = Setup::new("1h");
    // A PKI role whose certificates come with a lease Vault will not renew.
    let bao = &s.w.bao;
    bao.bao(&["secrets", "enable", "pki"]);
    bao.bao(&[
        "write",
        "pki/root/generate/internal",
        "common_name=shroud-test-root",
        "ttl=100h",
        "key_type=ec",
    ]);
    bao.bao(&[
        "write",
        "pki/roles/web",
        "allowed_domains=example.test",
        "allow_subdomains=true",
        "key_type=ec",
        "max_ttl=1h",
        "generate_lease=true",
    ]);
    s.w.bao.policy(
        "shroud",
        &format!("{SHROUD_POLICY}path \"pki/issue/web\" {{ capabilities = [\"update\"] }}\n"),
        s.w.work.path(),
    );
    let gw = gateway(&s.w, "vault", r#""pki/issue/web""#);
    let agent = s.start(&gw);
    let cert = s.bao(
        "vault",
        &[
            "write",
            "-format=json",
            "pki/issue/web",
            "common_name=a.example.test",
            "ttl=6s",
        ],
    );
    let lease = cert["lease_id"].as_str().unwrap().to_string();
    assert_eq!(cert["renewable"], false, "{cert}");
    // Past two thirds of its TTL, and past its end: never renewed, never
    // tried (renewing it would fail and be logged).
    until(Duration::from_secs(60), "the lease to run out", || {
        (!s.w.bao.lease_exists(&lease)).then_some(())
    });
    let log = agent.log();
    assert!(log.contains(r#""renewable":false"#), "{log}");
    assert!(
        !log.contains("renewed a lease obtained through the gateway")
            && !log.contains("cannot renew a lease obtained through the gateway"),
        "{log}"
    );
    agent.stop();
}

#[test]
fn an_answer_holding_the_agents_token_never_reaches_the_workload() {
    let _serial = serial();
    let mut s = Setup::new("1h");
    // Listed on purpose: lookup-self answers with the token it was sent.
    let gw = gateway(&s.w, "vault", r#""auth/token/lookup-self""#);
    let agent = s.start(&gw);
    let state = std::fs::read_to_string(s.state.path().join("agent-state.json")).unwrap();
    let state: Value = serde_json::from_str(&state).unwrap();
    let token = state["state"]["token"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let sock = s.w.path("vault-sock").join("vault.sock");
    let mut c = Command::new("bao");
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("VAULT_ADDR", format!("unix://{}", sock.display()))
        .env("HOME", s.w.work.path())
        .args(["token", "lookup", "-format=json"]);
    let f = run_with_input(&mut c, b"", Duration::from_secs(60));
    assert!(!f.status.success(), "{}", f.out());
    assert!(
        f.err().contains("Code: 403") && f.err().contains("holds the agent's token"),
        "{}",
        f.err()
    );
    assert!(!f.out().contains(&token) && !f.err().contains(&token));
    let log = agent.stop();
    assert!(!log.contains(&token));
}
