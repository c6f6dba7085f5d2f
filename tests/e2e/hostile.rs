//! Issue 22, items 2-4: what a hostile or broken neighbour can do to the agent.
//! Vault answers that are not its documented success (a standby's `307`), and
//! files a workload can plant where the agent opens files (FIFOs, symlinks,
//! devices, directories) or a `[state] dir` that is not what it seems. Each
//! test runs the real binary against a real OpenBao.

use std::path::Path;
use std::time::Duration;

use shroud_e2e::proxy::Proxy;
use shroud_e2e::world::*;
use shroud_e2e::*;

const LIMIT: Duration = Duration::from_secs(30);

/// Kills the agent if the test fails before it exited.
struct Running(shroud_e2e::Guarded);

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
            "{KV_SECRET}[lifecycle]\nrevoke_timeout = \"3s\"\n\n[audit]\npath = \"{}\"\n",
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

// 3. Files a workload plants in the shared directory -------------------------

/// Plants at `path` what a hostile workload can: a FIFO, a symlink to a device,
/// a symlink to a file, a directory.
fn plant(path: &Path, what: &str, scratch: &Path) {
    match what {
        "fifo" => {
            nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap()
        }
        "device" => std::os::unix::fs::symlink("/dev/null", path).unwrap(),
        "symlink" => {
            let target = scratch.join(format!("target-{}", rand::random::<u32>()));
            std::fs::write(&target, "1\n").unwrap();
            std::os::unix::fs::symlink(&target, path).unwrap();
        }
        "directory" => std::fs::create_dir(path).unwrap(),
        other => panic!("{other}"),
    }
}

const PLANTS: [&str; 4] = ["fifo", "device", "symlink", "directory"];

/// The example and its class: a FIFO (and a link to a device, a link to
/// a file, a directory) in `.shroud/acks/`. A rotation still completes, and
/// SIGTERM still wipes and revokes every lease and the token in time.
#[test]
fn planted_acks_stall_neither_a_rotation_nor_the_shutdown() {
    let _s = serial();
    let w = World::new(Some(("1m", "5m")));
    w.bao
        .bao(&["kv", "put", "secret/rot", "token=first-value-3e4f5a6b"]);
    let cfg = w.config(
        &w.approle_auth(),
        &format!(
            "{DB_SECRET}[[secret]]\nname = \"rot\"\npath = \"secret/rot\"\nkind = \"kv2\"\nfield = \"token\"\nrefresh = \"300ms\"\n\
             [lifecycle]\nrevoke_timeout = \"3s\"\n"
        ),
    );
    let log = w.path("agent.log");
    let mut agent = Running(spawn_agent(&cfg, &log));
    until(LIMIT, "first render", || w.file("db.env"));
    let user = env_value(&w.file("db.env").unwrap(), "USERNAME");
    let acks = w.out.path().join(".shroud/acks");
    for what in PLANTS {
        plant(&acks.join(format!("0000{what}")), what, w.work.path());
    }
    w.bao
        .bao(&["kv", "put", "secret/rot", "token=second-value-7c8d9e0f"]);
    until(LIMIT, "the rotation past the planted acks", || {
        (w.file("rot").as_deref() == Some("second-value-7c8d9e0f")).then_some(())
    });
    let text = log_of(&log);
    assert!(
        text.contains("is a FIFO, not a regular file"),
        "the planted FIFO is named:\n{text}"
    );
    // Planted again for the shutdown.
    for what in PLANTS {
        let p = acks.join(format!("1111{what}"));
        plant(&p, what, w.work.path());
    }
    let t = std::time::Instant::now();
    sigterm(&agent.0);
    let status = wait_with_deadline(&mut agent.0, LIMIT);
    let took = t.elapsed();
    assert!(status.success(), "{}", log_of(&log));
    // revoke_timeout (3 s) plus start-up slack on a loaded machine.
    assert!(took < Duration::from_secs(15), "{took:?}\n{}", log_of(&log));
    let text = log_of(&log);
    assert!(text.contains("leases and token revoked"), "{text}");
    w.assert_clean(&[user]);
    let left: Vec<_> = std::fs::read_dir(&acks)
        .expect("the acks directory stays")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "planted entries are removed: {left:?}");
}

/// A `.shroud/values` left as a FIFO (a link to a device, a directory) for the
/// next agent: the restarted agent's take-over does not block on it.
#[test]
fn a_planted_values_file_does_not_block_the_agents_start() {
    let _s = serial();
    let w = World::new(None);
    let auth = w.approle_auth();
    let cfg = w.config(
        &auth,
        &format!("{KV_SECRET}[lifecycle]\nrevoke_timeout = \"3s\"\n"),
    );
    let meta = w.out.path().join(".shroud");
    for what in PLANTS {
        std::fs::create_dir_all(&meta).unwrap();
        plant(&meta.join("values"), what, w.work.path());
        let log = w.path(&format!("agent-{what}.log"));
        let mut agent = Running(spawn_agent(&cfg, &log));
        until(LIMIT, "first render", || {
            if let Ok(Some(status)) = agent.0.try_wait() {
                panic!("{what}: the agent exited ({status}):\n{}", log_of(&log));
            }
            w.file("api-key")
        });
        sigterm(&agent.0);
        let status = wait_with_deadline(&mut agent.0, LIMIT);
        assert!(status.success(), "{what}: {}", log_of(&log));
        w.assert_clean(&[]);
        let _ = std::fs::remove_dir(meta.join("values"));
    }
}

/// `exec --secrets-dir` reads the values file and every entry: a planted FIFO
/// there is refused at once with its path named, never waited on.
#[test]
fn exec_refuses_a_planted_values_file_and_skips_planted_entries() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("secrets");
    std::fs::create_dir_all(dir.join(".shroud")).unwrap();
    std::fs::write(dir.join("db"), "hunter2-value-9f8e\n").unwrap();
    for what in PLANTS {
        plant(&dir.join(format!("entry-{what}")), what, d.path());
    }
    let masked = run_with_input(
        shroud().args(["exec", "--secrets-dir"]).arg(&dir).args([
            "--",
            "sh",
            "-c",
            "echo pw=hunter2-value-9f8e",
        ]),
        b"",
        LIMIT,
    );
    assert_eq!(masked.status.code(), Some(0), "{}", masked.err());
    assert!(
        !masked.out().contains("hunter2-value-9f8e"),
        "{}",
        masked.out()
    );

    let values = dir.join(".shroud/values");
    for what in PLANTS {
        plant(&values, what, d.path());
        let f = run_with_input(
            shroud()
                .args(["exec", "--secrets-dir"])
                .arg(&dir)
                .args(["--", "true"]),
            b"",
            LIMIT,
        );
        assert_eq!(f.status.code(), Some(64), "{what}: {}", f.err());
        assert!(
            f.err().contains(&values.display().to_string())
                && f.err().contains("not a regular file"),
            "{what}: {}",
            f.err()
        );
        let _ = std::fs::remove_file(&values);
        let _ = std::fs::remove_dir(&values);
    }
}

// 4. The `[state] dir` ---------------------------------------------------------

fn mode_of(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Runs `shroud agent` with `[state] dir = STATE` and expects it to refuse to
/// start (64) with `want` in its error.
fn agent_refuses_state(w: &World, state: &Path, want: &str) {
    let cfg = w.config(
        &w.approle_auth(),
        &format!(
            "{KV_SECRET}[state]\ndir = \"{}\"\nrequire_tmpfs = false\n",
            state.display()
        ),
    );
    let f = run_with_input(shroud().args(["agent", "--config"]).arg(&cfg), b"", LIMIT);
    assert_eq!(f.status.code(), Some(64), "{}", f.err());
    assert!(f.err().contains(want), "{want:?} not in:\n{}", f.err());
    assert!(w.leftovers().is_empty(), "{:?}", w.leftovers());
}

#[test]
fn a_state_dir_that_is_a_symlink_is_refused_and_its_target_left_alone() {
    let w = World::new(None);
    let target = w.path("someone-elses");
    std::fs::create_dir(&target).unwrap();
    std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let link = w.path("state");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    agent_refuses_state(&w, &link, "is a symlink; it is not followed");
    assert_eq!(mode_of(&target), 0o755, "the symlink's target was chmodded");
}

#[test]
fn a_state_dir_of_another_owner_is_refused_even_to_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test checks the owner rule for an agent running as root: run it as root (scripts/test does)"
    );
    let w = World::new(None);
    let state = w.path("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    nix::unistd::chown(&state, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    agent_refuses_state(
        &w,
        &state,
        "belongs to uid 65534, not to this agent (uid 0)",
    );
    assert_eq!(
        mode_of(&state),
        0o755,
        "nothing changed on a refused directory"
    );
}

/// A FIFO where the state file belongs: reported and ignored (a fresh start),
/// never waited on.
#[test]
fn a_fifo_as_the_state_file_is_ignored_not_waited_on() {
    let _s = serial();
    let w = World::new(None);
    let state = w.path("state");
    std::fs::create_dir(&state).unwrap();
    nix::unistd::mkfifo(
        &state.join("agent-state.json"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let cfg = w.config(
        &w.approle_auth(),
        &format!(
            "{KV_SECRET}[state]\ndir = \"{}\"\nrequire_tmpfs = false\n",
            state.display()
        ),
    );
    let log = w.path("agent.log");
    let mut agent = Running(spawn_agent(&cfg, &log));
    until(LIMIT, "first render past the FIFO", || {
        if let Ok(Some(status)) = agent.0.try_wait() {
            panic!("the agent exited ({status}):\n{}", log_of(&log));
        }
        w.file("api-key")
    });
    let text = log_of(&log);
    assert!(text.contains("is a FIFO, not a regular file"), "{text}");
    sigterm(&agent.0);
    assert!(
        wait_with_deadline(&mut agent.0, LIMIT).success(),
        "{}",
        log_of(&log)
    );
    w.assert_clean(&[]);
}

/// A workload sharing the agent's uid swaps a rendered file for a FIFO: the
/// wipe at shutdown (zero-fill, then unlink) neither blocks on it nor stops
/// before revoking.
#[test]
fn a_rendered_file_swapped_for_a_fifo_does_not_block_the_wipe() {
    let _s = serial();
    let w = World::new(None);
    let cfg = w.config(
        &w.approle_auth(),
        &format!("{KV_SECRET}[lifecycle]\nrevoke_timeout = \"3s\"\n"),
    );
    let log = w.path("agent.log");
    let mut agent = Running(spawn_agent(&cfg, &log));
    until(LIMIT, "first render", || w.file("api-key"));
    let rendered = w.out.path().join("api-key");
    std::fs::remove_file(&rendered).unwrap();
    nix::unistd::mkfifo(&rendered, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
    sigterm(&agent.0);
    let status = wait_with_deadline(&mut agent.0, LIMIT);
    assert!(status.success(), "{}", log_of(&log));
    assert!(
        log_of(&log).contains("leases and token revoked"),
        "{}",
        log_of(&log)
    );
    w.assert_clean(&[]);
}

/// The exit marker is only ever tested for existence, never opened: whatever a
/// workload plants as `.shroud/exited` ends the agent like a real marker, with
/// everything wiped and revoked. (Coverage for the class: this never hung.)
#[test]
fn whatever_is_planted_as_the_exit_marker_ends_the_agent_cleanly() {
    let _s = serial();
    let w = World::new(None);
    let cfg = w.config(
        &w.approle_auth(),
        &format!("{KV_SECRET}[lifecycle]\nrevoke_timeout = \"3s\"\n"),
    );
    for what in PLANTS {
        let log = w.path(&format!("agent-{what}.log"));
        let mut agent = Running(spawn_agent(&cfg, &log));
        until(LIMIT, "first render", || w.file("api-key"));
        plant(&w.out.path().join(".shroud/exited"), what, w.work.path());
        let status = wait_with_deadline(&mut agent.0, LIMIT);
        assert!(status.success(), "{what}: {}", log_of(&log));
        assert!(
            log_of(&log).contains("leases and token revoked"),
            "{what}: {}",
            log_of(&log)
        );
        // The marker is the workload's, left in place as a real one is.
        let marker = w.out.path().join(".shroud/exited");
        let _ = std::fs::remove_file(&marker);
        let _ = std::fs::remove_dir(&marker);
        w.assert_clean(&[]);
    }
}
