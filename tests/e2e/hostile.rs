//! Issue 22, items 2-4: what a hostile or broken neighbour can do to the agent.
//! Vault answers that are not its documented success (a standby's `307`), and
//! files a workload can plant where the agent opens files (FIFOs, symlinks,
//! devices, directories) or a `[state] dir` that is not what it seems. Each
//! test runs the real binary against a real OpenBao.

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use shroud_e2e::proxy::Proxy;
use shroud_e2e::world::*;
use shroud_e2e::*;

const LIMIT: Duration = Duration::from_secs(30);

/// Kills the agent if the test fails before it exited.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The audit records of `path` as JSON values.
fn audit_records(path: &Path) -> Vec<serde_json::Value> {
    log_of(path)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A standby's answer: a redirect with an empty body.
const REDIRECT: &str = "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:9/v1/auth/token/revoke-self\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

// 2. A 3xx from Vault is a failure -------------------------------------------

#[test]
fn a_revoke_answered_307_is_a_failure_in_the_log_and_the_audit_trail() {
    let _s = serial();
    let w = World::new(None);
    let proxy = Proxy::start(w.bao.addr.trim_start_matches("http://"));
    let audit = w.path("audit.jsonl");
    let cfg = w.config_vault(
        &format!("http://{}", proxy.host),
        "",
        &w.approle_auth(),
        &format!(
            "{KV_SECRET}[lifecycle]\nrevoke_timeout = \"1s\"\n\n[audit]\npath = \"{}\"\n",
            audit.display()
        ),
    );
    let log = w.path("agent.log");
    let mut agent = Running(spawn_agent(&cfg, &log));
    until(LIMIT, "first render", || w.file("api-key"));
    proxy.answer("revoke-self", REDIRECT);
    sigterm(&agent.0);
    let status = wait_with_deadline(&mut agent.0, LIMIT);
    let text = log_of(&log);
    assert!(status.success(), "{text}");
    assert!(
        !text.contains("leases and token revoked"),
        "a redirect counted as a revocation:\n{text}"
    );
    assert!(text.contains("cannot revoke the Vault token"), "{text}");
    assert!(
        text.contains("Vault answered 307 redirecting to http://127.0.0.1:9"),
        "{text}"
    );
    assert!(text.contains("auth/token/revoke-self"), "{text}");
    let tries = proxy
        .requests()
        .iter()
        .filter(|r| r.contains("revoke-self"))
        .count();
    assert!(tries >= 2, "retried as a failure: {:?}", proxy.requests());
    let revoke = audit_records(&audit)
        .into_iter()
        .rfind(|r| r["event"] == "revoke")
        .expect("a revoke record");
    assert_eq!(revoke["outcome"], "error", "{revoke}");
    assert!(
        revoke["reason"].as_str().unwrap().contains("307"),
        "{revoke}"
    );
    // The token really is alive: the redirect revoked nothing.
    assert_eq!(
        w.bao.accessors().len(),
        2,
        "the agent's token is still there"
    );
    for secret in w.credentials() {
        assert!(!text.contains(&secret), "a credential in the log");
    }
}

#[test]
fn a_one_shot_command_whose_revoke_is_redirected_exits_2() {
    let w = World::new(None);
    let proxy = Proxy::start(w.bao.addr.trim_start_matches("http://"));
    let cfg = w.config_vault(
        &format!("http://{}", proxy.host),
        "",
        &w.approle_auth(),
        &format!("{KV_SECRET}[lifecycle]\nrevoke_timeout = \"1s\"\n"),
    );
    proxy.answer("revoke-self", REDIRECT);
    let clean = w.path("clean.txt");
    std::fs::write(&clean, "nothing to see\n").unwrap();
    let f = run_with_input(
        shroud().arg("scan").arg("--config").arg(&cfg).arg(&clean),
        b"",
        LIMIT,
    );
    assert_eq!(f.status.code(), Some(2), "{}{}", f.out(), f.err());
    assert!(f.err().contains("307"), "{}", f.err());
    assert!(f.err().contains("auth/token/revoke-self"), "{}", f.err());
    assert!(!f.out().contains("clean"), "{}", f.out());
}
