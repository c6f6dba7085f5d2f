//! Faults in the field (issue 17): the failure paths real clusters produce, each
//! against real parts: a command killed by a real-time signal, a tmpfs filled by
//! a real writer, OpenBao restarted with its state lost and set up again with the
//! same AppRole credentials, OpenBao frozen at shutdown, a real pty via `script`,
//! the output directory replaced or deleted under the agent, and exec's retention.
//! The database-app tests keep an app logging in to PostgreSQL with the current
//! file throughout and print every outage it saw.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use shroud_e2e::app::DbApp;
use shroud_e2e::http::{get, sample};
use shroud_e2e::process::*;
use shroud_e2e::world::*;
use shroud_e2e::*;

/// The upper bound for an awaited event. Generous: under `stress-ng --cpu 2`
/// on a shared 2-core machine an OpenBao restart alone took 17 s.
const LIMIT: Duration = Duration::from_secs(60);

/// SIGRTMIN+3 with glibc (whose SIGRTMIN is 34): beyond nix's `Signal` enum.
const RT_SIGNAL: i32 = 37;

fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// [`until`], failing with the agent's log at `log` (what it was doing).
fn until_logged<T>(log: &Path, limit: Duration, what: &str, f: impl FnMut() -> Option<T>) -> T {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| until(limit, what, f))) {
        Ok(v) => v,
        Err(_) => panic!(
            "timed out after {limit:?} waiting for {what}; agent log:\n{}",
            log_of(log)
        ),
    }
}

/// Waits until the log at `path` contains `needle`.
fn await_log(path: &Path, needle: &str, limit: Duration) {
    until(limit, &format!("`{needle}` in the log"), || {
        log_of(path).contains(needle).then_some(())
    });
}

/// Fills the filesystem of `dir` to the last byte with a real writer (`dd`
/// until ENOSPC) into `dir/fill`.
fn fill(dir: &Path) {
    let out = Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", dir.join("fill").display()))
        .args(["bs=64k"])
        .output()
        .expect("running dd");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("No space left"),
        "dd did not fill {}: {err}",
        dir.display()
    );
}

fn free_bytes(dir: &Path) -> u64 {
    let st = nix::sys::statvfs::statvfs(dir).unwrap();
    st.blocks_available() as u64 * st.fragment_size() as u64
}

/// `shroud run --config CFG -- sh -c SCRIPT`, output collected, log to `log`.
fn spawn_run(cfg: &Path, log: &Path, script: &str) -> (Guarded, Collected) {
    let mut child = shroud()
        .arg("run")
        .arg("--config")
        .arg(cfg)
        .args(["--", "sh", "-c", script])
        .env("SHROUD_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn_guarded();
    let (out, _) = Collected::spawn(child.stdout.take().unwrap());
    (child, out)
}

/// A kv2 secret `tok` at `secret/tok`, re-read every 200 ms.
const TOK_SECRET: &str = "[[secret]]\nname = \"tok\"\npath = \"secret/tok\"\nkind = \"kv2\"\nfield = \"token\"\nrefresh = \"200ms\"\n";

/// `tok` = `first-token-value-1111`, an agent rendering [`TOK_SECRET`] (and
/// `extra` config) into `dir`, started and through its first render; returns it
/// and its log.
fn kv_agent(w: &World, dir: &Path, extra: &str) -> (Guarded, PathBuf) {
    w.bao
        .bao(&["kv", "put", "secret/tok", "token=first-token-value-1111"]);
    let cfg = w.config_in(dir, &w.approle_auth(), &format!("{TOK_SECRET}{extra}"));
    let log = w.path("agent.log");
    let agent = spawn_agent(&cfg, &log);
    until(LIMIT, "first render", || {
        std::fs::read_to_string(dir.join("tok")).ok()
    });
    (agent, log)
}

// 1. Wait statuses -----------------------------------------------------------

#[test]
fn a_command_killed_by_a_realtime_signal_ends_exec_with_128_plus_n() {
    let done = run_with_input(
        shroud().args(["exec", "--", "sh", "-c", &format!("kill -{RT_SIGNAL} $$")]),
        b"",
        LIMIT,
    );
    assert_eq!(done.status.code(), Some(128 + RT_SIGNAL), "{}", done.err());
}

#[test]
fn a_command_killed_by_a_realtime_signal_ends_run_clean() {
    let _s = serial();
    let w = World::new(Some(("1m", "5m")));
    let auth = w.approle_auth();
    let cfg = w.config(&auth, &format!("{DB_SECRET}{KV_SECRET}"));
    let log = w.path("run.log");
    let (mut child, _out) = spawn_run(
        &cfg,
        &log,
        &format!("test -s \"$SHROUD_SECRETS_DIR/db.env\" && kill -{RT_SIGNAL} $$"),
    );
    let status = wait_with_deadline(&mut child, LIMIT);
    assert_eq!(status.code(), Some(128 + RT_SIGNAL), "{}", log_of(&log));
    // Wiped and revoked: file, lease, token and database role all gone.
    w.assert_clean(&[]);
}

// 4. One SIGTERM to `run` becomes a SIGKILL after the grace --------------------

#[test]
fn run_kills_a_command_that_ignores_sigterm_after_the_grace() {
    let _s = serial();
    let w = World::new(Some(("1m", "5m")));
    let auth = w.approle_auth();
    let grace = Duration::from_secs(1);
    let cfg = w.config(
        &auth,
        &format!("{DB_SECRET}[lifecycle]\nexit_marker_timeout = \"1s\"\nrevoke_timeout = \"2s\"\n"),
    );
    let log = w.path("run.log");
    let (mut child, out) = spawn_run(
        &cfg,
        &log,
        "trap '' TERM; echo ready; while :; do sleep 0.1; done",
    );
    out.wait_count("ready", 1, LIMIT);
    let t = Instant::now();
    signal(&child, Signal::SIGTERM);
    let status = wait_with_deadline(&mut child, LIMIT);
    let took = t.elapsed();
    println!(
        "SIGTERM to exit: {:.2}s (grace {grace:?})",
        took.as_secs_f64()
    );
    assert_eq!(status.code(), Some(137), "{}", log_of(&log));
    assert!(took >= grace, "killed before the grace: {took:?}");
    assert!(took < grace + Duration::from_secs(2), "{took:?}");
    assert!(log_of(&log).contains("did not stop within the kill grace"));
    w.assert_clean(&[]);
}

// 5. Shutdown is one deadline -------------------------------------------------

/// The shutdown tests' config: three database leases, a 1 s grace, a 2 s
/// `revoke_timeout`, AppRole. With a 5 s `[vault] timeout` and Vault frozen,
/// stop → exit must still fit `revoke_timeout` (agent, no exec listening) or
/// `exit_marker_timeout + revoke_timeout` (run, a command that ignores SIGTERM).
fn three_leases(w: &World) -> String {
    let mut s = String::new();
    for name in ["db1.env", "db2.env", "db3.env"] {
        s.push_str(&DB_SECRET.replace("db.env", name));
    }
    s + "[lifecycle]\nexit_marker_timeout = \"1s\"\nrevoke_timeout = \"2s\"\n" + &w.approle_auth()
}

#[test]
fn agent_shutdown_with_vault_frozen_fits_revoke_timeout() {
    let _s = serial();
    let w = World::new(Some(("1m", "5m")));
    let rest = three_leases(&w);
    let cfg = w.config("", &rest);
    let log = w.path("agent.log");
    let mut agent = shroud()
        .args(["agent", "--config"])
        .arg(&cfg)
        .env("SHROUD_LOG", "info")
        .env("SHROUD_VAULT_TIMEOUT", "5s")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn_guarded();
    until(LIMIT, "first render", || w.file("db3.env"));
    w.bao.freeze();
    let t = Instant::now();
    sigterm(&agent);
    let status = wait_with_deadline(&mut agent, Duration::from_secs(40));
    let took = t.elapsed();
    w.bao.thaw();
    println!(
        "agent: SIGTERM to exit with Vault frozen: {:.2}s (revoke_timeout 2s)",
        took.as_secs_f64()
    );
    assert!(status.success(), "{}", log_of(&log));
    assert!(took < Duration::from_secs(3), "{took:?}\n{}", log_of(&log));
    assert!(w.leftovers().is_empty(), "{:?}", w.leftovers());
}

#[test]
fn run_shutdown_with_vault_frozen_fits_grace_plus_revoke_timeout() {
    let _s = serial();
    let w = World::new(Some(("1m", "5m")));
    let rest = three_leases(&w);
    let cfg = w.config("", &rest);
    let log = w.path("run.log");
    let mut child = shroud()
        .args(["run", "--config"])
        .arg(&cfg)
        .args([
            "--",
            "sh",
            "-c",
            "trap '' TERM; echo ready; while :; do sleep 0.1; done",
        ])
        .env("SHROUD_LOG", "info")
        .env("SHROUD_VAULT_TIMEOUT", "5s")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn_guarded();
    let (out, _) = Collected::spawn(child.stdout.take().unwrap());
    out.wait_count("ready", 1, LIMIT);
    w.bao.freeze();
    let t = Instant::now();
    signal(&child, Signal::SIGTERM);
    let status = wait_with_deadline(&mut child, Duration::from_secs(40));
    let took = t.elapsed();
    w.bao.thaw();
    println!(
        "run: SIGTERM to exit with Vault frozen: {:.2}s (grace 1s + revoke_timeout 2s)",
        took.as_secs_f64()
    );
    assert_eq!(status.code(), Some(137), "{}", log_of(&log));
    assert!(took < Duration::from_secs(4), "{took:?}\n{}", log_of(&log));
    assert!(w.leftovers().is_empty(), "{:?}", w.leftovers());
}

// 3. A token Vault no longer knows is replaced at once ---------------------------

#[test]
fn a_token_vault_lost_is_replaced_at_once_and_the_app_never_fails() {
    let _s = serial();
    // A 40 s lease: the old credential must outlive the server's restart and
    // set-up (12 s under `stress-ng --cpu 2`; with a 10 s lease its file was
    // wiped as expired and the app failed), and the agent notices the loss at
    // its renewal, about 26 s in.
    let mut w = World::new(Some(("40s", "10m")));
    let auth = w.approle_auth();
    let cfg = w.config(&auth, &format!("{DB_SECRET}{KV_SECRET}"));
    let log = w.path("agent.log");
    let mut agent = spawn_agent(&cfg, &log);
    let first = until(LIMIT, "first render", || w.file("db.env"));
    let user = env_value(&first, "USERNAME");
    let app = DbApp::start(w.pg().port, w.out.path().join("db.env"));
    until(LIMIT, "the app's first logins", || {
        (app.logins() >= 3).then_some(())
    });
    // The server restarts with nothing: no token, no lease, no mount. The
    // operator sets it up again with the same AppRole credentials.
    let t = Instant::now();
    w.bao.restart_empty();
    w.set_up_again();
    println!(
        "OpenBao down and empty for {:.2}s",
        t.elapsed().as_secs_f64()
    );
    let replaced = until_logged(&log, LIMIT, "new credentials after the re-login", || {
        let f = w.file("db.env")?;
        (env_value(&f, "USERNAME") != user).then_some(f)
    });
    println!(
        "new credentials {:.2}s after the restart",
        t.elapsed().as_secs_f64()
    );
    let (user2, pw2) = (
        env_value(&replaced, "USERNAME"),
        env_value(&replaced, "PASSWORD"),
    );
    // Two more seconds of logins, now with the new credential.
    std::thread::sleep(Duration::from_secs(2));
    let report = app.stop().print("database app across the Vault restart");
    let text = log_of(&log);
    assert!(
        text.contains("Vault no longer knows shroud's token; logging in again"),
        "{text}"
    );
    assert_eq!(report.failures, 0, "{:?}\n{text}", report.outages);
    assert!(w.pg().can_login(&user2, &pw2));
    assert!(
        agent.try_wait().unwrap().is_none(),
        "the agent must keep running"
    );
    sigterm(&agent);
    assert!(wait_with_deadline(&mut agent, LIMIT).success());
    assert!(
        !w.pg().role_exists(&user2),
        "the new role is revoked at exit"
    );
    // The old role belonged to the lost server's lease: only PostgreSQL's
    // VALID UNTIL ends it.
    assert!(w.leftovers().is_empty(), "{:?}", w.leftovers());
}

// 2. A rotation is a transaction --------------------------------------------------

#[test]
fn a_rotation_into_a_full_tmpfs_keeps_the_old_credential_until_the_new_one_is_in_place() {
    let _s = serial();
    let w = World::new(Some(("20s", "20s")));
    let auth = w.approle_auth();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    // Renewal at a fifth of the lease: the first renewal is capped by the max
    // TTL and the rotation comes with most of the lease still left.
    let cfg = w.config(
        &auth,
        &format!("{DB_SECRET}[lifecycle]\nrenew_threshold = 0.2\n[metrics]\nlisten = \"{addr}\"\n"),
    );
    let log = w.path("agent.log");
    let mut agent = spawn_agent(&cfg, &log);
    let first = until(LIMIT, "first render", || w.file("db.env"));
    let user = env_value(&first, "USERNAME");
    let app = DbApp::start(w.pg().port, w.out.path().join("db.env"));
    fill(w.out.path());
    let full = Instant::now();
    // The rotation fails; without the transaction the app would lose its
    // database here (the old lease revoked under the file that names it).
    until(LIMIT, "the failed publication (or the app failing)", || {
        (log_of(&log).contains("publication failed before the new file was in place")
            || app.failures() > 0)
            .then_some(())
    });
    // Logins right after the failure are the measurement: half a second of them.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        app.failures(),
        0,
        "the app lost its database: {}",
        log_of(&log)
    );
    println!(
        "first failed publication {:.2}s after the tmpfs filled",
        full.elapsed().as_secs_f64()
    );
    // Not ready, counted, and the old credential still current and alive; the
    // unused new lease was given back.
    let (code, body) = get(addr, "/readyz");
    assert_eq!(code, 503, "{body}");
    let metrics = get(addr, "/metrics").1;
    assert!(sample(&metrics, "shroud_publication_failures_total").unwrap_or(0.0) >= 1.0);
    assert_eq!(w.file("db.env").as_deref(), Some(first.as_str()));
    until(Duration::from_secs(5), "only the old lease", || {
        (w.bao.leases("database/creds/app/").len() == 1).then_some(())
    });
    assert!(w.pg().role_exists(&user));
    // Retries go on while the tmpfs stays full.
    let failures_before = log_of(&log).matches("publication failed").count();
    await_log_count(&log, "publication failed", failures_before + 1);
    std::fs::remove_file(w.out.path().join("fill")).unwrap();
    println!("tmpfs full for {:.2}s", full.elapsed().as_secs_f64());
    let replaced = until(LIMIT, "the new credential in place", || {
        let f = w.file("db.env")?;
        (env_value(&f, "USERNAME") != user).then_some(f)
    });
    // Only now does the old lease retire: revoked at the end of its grace
    // (default 30 s), here capped by what is left of the lease.
    until(Duration::from_secs(30), "the old role revoked", || {
        (!w.pg().role_exists(&user)).then_some(())
    });
    until(Duration::from_secs(5), "ready again", || {
        (get(addr, "/readyz").0 == 200).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    let report = app.stop().print("database app across the full tmpfs");
    assert_eq!(report.failures, 0, "{:?}\n{}", report.outages, log_of(&log));
    let user2 = env_value(&replaced, "USERNAME");
    sigterm(&agent);
    assert!(wait_with_deadline(&mut agent, LIMIT).success());
    w.assert_clean(&[user, user2]);
}

fn await_log_count(log: &Path, needle: &str, count: usize) {
    until(LIMIT, &format!("{count}× `{needle}`"), || {
        (log_of(log).matches(needle).count() >= count).then_some(())
    });
}

#[test]
fn kv2_values_that_could_not_be_published_are_published_once_space_returns_and_an_oversized_one_never_sticks(
) {
    let _s = serial();
    let w = World::new(None);
    let (mut agent, log) = kv_agent(&w, w.out.path(), "");
    let values = || std::fs::read(w.out.path().join(".shroud/values")).unwrap_or_default();

    // A change while the tmpfs is full: published once space returns.
    fill(w.out.path());
    w.bao
        .bao(&["kv", "put", "secret/tok", "token=second-token-value-2222"]);
    await_log(
        &log,
        "publication failed before the new file was in place",
        LIMIT,
    );
    assert_eq!(w.file("tok").as_deref(), Some("first-token-value-1111"));
    std::fs::remove_file(w.out.path().join("fill")).unwrap();
    until(
        Duration::from_secs(10),
        "the change published once space returned",
        || (w.file("tok")? == "second-token-value-2222").then_some(()),
    );

    // A value too large for the space left never becomes current or retained.
    fill(w.out.path());
    let fill_file = std::fs::OpenOptions::new()
        .write(true)
        .open(w.out.path().join("fill"))
        .unwrap();
    let len = fill_file.metadata().unwrap().len();
    fill_file.set_len(len.saturating_sub(256 << 10)).unwrap();
    let free = free_bytes(w.out.path());
    let big = "0123456789abcdef".repeat((600 << 10) / 16);
    let big_file = w.path("big");
    std::fs::write(&big_file, &big).unwrap();
    let failures_before = log_of(&log).matches("publication failed").count();
    w.bao.bao(&[
        "kv",
        "put",
        "secret/tok",
        &format!("token=@{}", big_file.display()),
    ]);
    await_log_count(&log, "publication failed", failures_before + 1);
    println!(
        "{} KiB free, value {} KiB: refused",
        free >> 10,
        big.len() >> 10
    );
    w.bao
        .bao(&["kv", "put", "secret/tok", "token=third-token-value-3333"]);
    until(
        Duration::from_secs(10),
        "the next small value published",
        || (w.file("tok")? == "third-token-value-3333").then_some(()),
    );
    let v = values();
    assert!(
        v.len() < 16 << 10,
        "the values file holds {} bytes",
        v.len()
    );
    assert!(
        !contains(&v, b"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"),
        "the big value is in the set"
    );
    drop(fill_file);
    std::fs::remove_file(w.out.path().join("fill")).unwrap();
    sigterm(&agent);
    assert!(wait_with_deadline(&mut agent, LIMIT).success());
    w.assert_clean(&[]);
}

// 7. The output directory is a handle -----------------------------------------------

#[test]
fn an_output_directory_replaced_by_a_symlink_gets_no_secret_and_is_wiped_through_the_handle() {
    let _s = serial();
    let w = World::new(None);
    let dir = w.out.path().join("secrets");
    let (mut agent, log) = kv_agent(&w, &dir, "");
    // Moved aside (still on the tmpfs) and replaced by a symlink to a disk
    // directory.
    let aside = w.out.path().join("aside");
    let disk = w.path("disk");
    std::fs::create_dir(&disk).unwrap();
    std::fs::rename(&dir, &aside).unwrap();
    std::os::unix::fs::symlink(&disk, &dir).unwrap();
    w.bao
        .bao(&["kv", "put", "secret/tok", "token=second-token-value-2222"]);
    // The next refresh either reaches the disk through the symlink or is refused.
    until(
        LIMIT,
        "the publication refused (or written to the disk)",
        || (log_of(&log).contains("was replaced") || !walk(&disk).is_empty()).then_some(()),
    );
    assert!(
        walk(&disk).is_empty(),
        "secrets reached the disk: {:?}",
        walk(&disk)
    );
    sigterm(&agent);
    assert!(wait_with_deadline(&mut agent, LIMIT).success());
    assert!(walk(&disk).is_empty(), "{:?}", walk(&disk));
    // What the agent wrote is wiped where it really is.
    let left: Vec<_> = walk(&aside).into_iter().filter(|p| p.is_file()).collect();
    assert!(left.is_empty(), "left in the moved directory: {left:?}");
}

#[test]
fn a_deleted_output_directory_is_created_again_and_republished() {
    let _s = serial();
    let w = World::new(None);
    let dir = w.out.path().join("secrets");
    let (mut agent, log) = kv_agent(&w, &dir, "");
    std::fs::remove_dir_all(&dir).unwrap();
    let back = std::panic::catch_unwind(|| {
        until(LIMIT, "the directory and its file back", || {
            (std::fs::read_to_string(dir.join("tok")).ok()? == "first-token-value-1111")
                .then_some(())
        })
    });
    // The agent is killed by its guard as the test fails.
    assert!(
        back.is_ok(),
        "the directory did not come back; agent log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(dir.join(".shroud/values").exists());
    sigterm(&agent);
    assert!(wait_with_deadline(&mut agent, LIMIT).success());
    let left: Vec<_> = walk(&dir).into_iter().filter(|p| p.is_file()).collect();
    assert!(left.is_empty(), "{left:?}");
}

// 6. `--tty auto` keeps a non-terminal stdin off the pty ------------------------------

#[test]
fn tty_auto_passes_redirected_stdin_through_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    // A 10,000-byte line, a 0x03 byte (a terminal's Ctrl-C), and no final newline.
    let mut input = vec![b'x'; 10_000];
    input.extend_from_slice(b"\nbefore\x03after");
    let file = dir.path().join("input");
    std::fs::write(&file, &input).unwrap();
    let (mut child, out, t) = under_pty(&format!(
        "exec --tty auto -- sh -c 'test -t 1 && echo out-is-a-tty; test -t 0 || echo in-is-not; wc -c; echo end' < {}",
        file.display()
    ));
    let status = wait_with_deadline(&mut child, LIMIT);
    t.join().unwrap();
    let text = out.text();
    assert_eq!(status.code(), Some(0), "{text:?}");
    assert!(text.contains("out-is-a-tty"), "{text:?}");
    assert!(text.contains("in-is-not"), "{text:?}");
    assert!(text.contains(&format!("{}\r\n", input.len())), "{text:?}");
    assert!(text.contains("end\r\n"), "{text:?}");
    assert!(!text.contains("\r\r\n"), "{text:?}");
}

// 8. exec's retention follows the agent's `retain` ---------------------------------------

#[test]
fn exec_keeps_a_retired_value_masked_for_the_agents_retain_only() {
    let _s = serial();
    let w = World::new(None);
    let retain = Duration::from_secs(2);
    let (mut agent, _log) = kv_agent(&w, w.out.path(), "[redact]\nretain = \"2s\"\n");
    let mut exec = shroud()
        .arg("exec")
        .arg("--secrets-dir")
        .arg(w.out.path())
        .args([
            "--",
            "sh",
            "-c",
            "old=$(cat \"$0/tok\"); while :; do echo \"v=$old\"; sleep 0.05; done",
        ])
        .arg(w.out.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn_guarded();
    let (out, _) = Collected::spawn(exec.stdout.take().unwrap());
    out.wait_count("v=[REDACTED]", 1, LIMIT);
    // Shares no run of piece_length bytes with the first value, so the old value
    // shows whole once it is no longer retained (the piece rule masks shared runs).
    w.bao
        .bao(&["kv", "put", "secret/tok", "token=Zx9q7rWm2Lk8841vTb"]);
    until(LIMIT, "the rotation", || {
        (w.file("tok")? == "Zx9q7rWm2Lk8841vTb").then_some(())
    });
    let rotated = Instant::now();
    out.wait_for(
        "the old value unmasked after the retention window",
        LIMIT,
        |t| t.contains("v=first-token-value-1111"),
    );
    let after = rotated.elapsed();
    println!(
        "retired value masked for {:.2}s after the rotation (retain {retain:?})",
        after.as_secs_f64()
    );
    assert!(after >= retain - Duration::from_millis(300), "{after:?}");
    signal(&exec, Signal::SIGTERM);
    wait_with_deadline(&mut exec, LIMIT);
    sigterm(&agent);
    assert!(wait_with_deadline(&mut agent, LIMIT).success());
}

// 9. A supervisor killed outright takes its command with it ------------------------

/// Whether `pid` has terminated (gone, or a zombie waiting for whoever adopted it).
fn terminated(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

/// Starts `shroud ARGS -- sh -c 'echo $$ > PIDFILE; exec sleep 1000'`, waits for the
/// command's pid, SIGKILLs shroud, and asserts the command ends too.
fn assert_command_dies_with(mut shroud_cmd: Command, dir: &Path) {
    let pidfile = dir.join("command.pid");
    let mut child = shroud_cmd
        .args(["--", "sh", "-c", "echo $$ > \"$0\"; exec sleep 1000"])
        .arg(&pidfile)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn_guarded();
    let pid: i32 = until(LIMIT, "the command's pid", || {
        std::fs::read_to_string(&pidfile).ok()?.trim().parse().ok()
    });
    assert!(!terminated(pid), "the command ended on its own");
    signal(&child, Signal::SIGKILL);
    wait_with_deadline(&mut child, LIMIT);
    wait_until("the command to end with its supervisor", LIMIT, || {
        terminated(pid)
    });
}

#[test]
fn a_killed_exec_takes_its_command_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = shroud();
    cmd.arg("exec");
    assert_command_dies_with(cmd, dir.path());
}

#[test]
fn a_killed_run_takes_its_command_with_it() {
    let _s = serial();
    let w = World::new(None);
    w.bao
        .bao(&["kv", "put", "secret/tok", "token=first-token-value-1111"]);
    let cfg = w.config(&w.approle_auth(), TOK_SECRET);
    let mut cmd = shroud();
    cmd.arg("run").arg("--config").arg(&cfg);
    assert_command_dies_with(cmd, w.work.path());
}

// 10. A replaced credential retires after a grace -----------------------------------

/// A database credential renewed at a fifth of its 30 s lease: the first
/// renewal is capped by the max TTL and the rotation comes about 10 s in, with
/// about 20 s of the old lease left. Returns the agent, its log, the audit
/// trail and the first credential (user, password).
fn rotating_agent(w: &World, grace: &str) -> (Guarded, PathBuf, PathBuf, (String, String)) {
    let auth = w.approle_auth();
    let audit = w.path("audit.jsonl");
    let cfg = w.config(
        &auth,
        &format!(
            "{DB_SECRET}[lifecycle]\nrenew_threshold = 0.2\nretire_grace = \"{grace}\"\n\
             [audit]\npath = \"{}\"\n",
            audit.display()
        ),
    );
    let log = w.path("agent.log");
    let agent = spawn_agent(&cfg, &log);
    let first = until(LIMIT, "first render", || w.file("db.env"));
    let cred = (env_value(&first, "USERNAME"), env_value(&first, "PASSWORD"));
    (agent, log, audit, cred)
}

/// Waits for the rotation away from `user`; returns the new credential and
/// when the rotation was seen.
fn await_rotation(w: &World, user: &str) -> ((String, String), Instant) {
    until(Duration::from_secs(40), "the rotation", || {
        let f = w.file("db.env")?;
        let u = env_value(&f, "USERNAME");
        (u != user).then(|| ((u, env_value(&f, "PASSWORD")), Instant::now()))
    })
}

/// The `revoke_reason` of every lease revocation in the audit trail.
fn lease_revocations(audit: &Path) -> Vec<String> {
    log_of(audit)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["event"] == "revoke" && r["kind"] == "lease")
        .map(|r| r["revoke_reason"].as_str().unwrap_or("-").to_string())
        .collect()
}

#[test]
fn a_rotated_out_credential_still_logs_in_during_the_retire_grace_and_is_revoked_after_it() {
    let _s = serial();
    let w = World::new(Some(("30s", "30s")));
    let (mut agent, log, audit, old) = rotating_agent(&w, "10s");
    // An app logging in throughout with whatever the file says.
    let app = DbApp::start(w.pg().port, w.out.path().join("db.env"));
    let (new, rotated) = await_rotation(&w, &old.0);
    // A reader of the old file a moment ago can still log in.
    assert!(w.pg().can_login(&old.0, &old.1), "{}", log_of(&log));
    assert!(w.pg().can_login(&new.0, &new.1));
    until(
        Duration::from_secs(30),
        "the old role revoked after the grace",
        || (!w.pg().role_exists(&old.0)).then_some(()),
    );
    let gone = rotated.elapsed();
    println!(
        "old role revoked {:.2}s after the rotation was seen (retire_grace 10s)",
        gone.as_secs_f64()
    );
    // Seen late under load shortens it, never lengthens it past the grace.
    assert!(gone >= Duration::from_secs(5), "revoked after {gone:?}");
    assert!(log_of(&log).contains("grace is over; revoking it"));
    until(LIMIT, "the audited retirement", || {
        (lease_revocations(&audit) == ["retired"]).then_some(())
    });
    let report = app.stop().print("database app across the rotation");
    assert_eq!(report.failures, 0, "{:?}\n{}", report.outages, log_of(&log));
    sigterm(&agent);
    assert!(wait_with_deadline(&mut agent, LIMIT).success());
    // Later rotations (the lease is 30 s) retire the same way; what is left
    // at the SIGTERM, current or retiring, is revoked as a shutdown.
    let reasons = lease_revocations(&audit);
    assert!(
        reasons.first().map(String::as_str) == Some("retired")
            && reasons.last().map(String::as_str) == Some("shutdown")
            && reasons.iter().all(|r| r == "retired" || r == "shutdown"),
        "{reasons:?}"
    );
    w.assert_clean(&[old.0, new.0]);
}

#[test]
fn a_zero_retire_grace_revokes_the_old_credential_at_once() {
    let _s = serial();
    let w = World::new(Some(("30s", "30s")));
    let (mut agent, log, audit, old) = rotating_agent(&w, "0s");
    let (new, rotated) = await_rotation(&w, &old.0);
    // At once: well before the ~20 s left of the old lease.
    until(
        Duration::from_secs(10),
        "the old role revoked at once",
        || (!w.pg().role_exists(&old.0)).then_some(()),
    );
    println!(
        "old role gone {:.2}s after the rotation was seen (retire_grace 0s)",
        rotated.elapsed().as_secs_f64()
    );
    // The role is dropped when Vault revokes the lease, a moment before the
    // agent hears back and writes the audit record: await the record.
    until_logged(&log, LIMIT, "the audited retirement", || {
        (lease_revocations(&audit) == ["retired"]).then_some(())
    });
    sigterm(&agent);
    assert!(wait_with_deadline(&mut agent, LIMIT).success());
    w.assert_clean(&[old.0, new.0]);
}

#[test]
fn sigterm_during_the_retire_grace_revokes_the_old_and_new_credentials_at_once() {
    let _s = serial();
    let w = World::new(Some(("30s", "30s")));
    let (mut agent, log, audit, old) = rotating_agent(&w, "1h");
    let (new, _) = await_rotation(&w, &old.0);
    assert!(w.pg().role_exists(&old.0), "in its grace");
    let t = Instant::now();
    sigterm(&agent);
    assert!(
        wait_with_deadline(&mut agent, LIMIT).success(),
        "{}",
        log_of(&log)
    );
    let took = t.elapsed();
    println!(
        "SIGTERM to exit with a lease in its grace: {:.2}s",
        took.as_secs_f64()
    );
    // Both revoked by the agent itself (the old lease would still have had
    // most of its 30 s), not by Vault at their end.
    let mut reasons = lease_revocations(&audit);
    reasons.sort();
    assert_eq!(reasons, ["shutdown", "shutdown"], "{}", log_of(&log));
    w.assert_clean(&[old.0, new.0]);
}
