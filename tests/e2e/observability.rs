//! Observability pieces end to end: metrics scraped over real HTTP on 127.0.0.1
//! while events flow through the global event registry and a real redacting pump;
//! an audit log written by the sink, verified and tampered with through the
//! `shroud audit verify` binary; `shroud scan` over real trees; redacted errors.

use std::os::fd::AsFd as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use shroud_agent::audit::{Audit, AuditTarget, Workload};
use shroud_agent::events::{self, Event, EventSink as _, Outcome, RevokeReason};
use shroud_agent::live::LiveSet;
use shroud_agent::pump::{pump, PumpConfig, StreamCounters};
use shroud_agent::telemetry::{Health, Metrics, Server, Stream};
use shroud_e2e::http::{get, sample};
use shroud_e2e::*;

const SECRET: &[u8] = b"e2e-hunter2-database-pass";

fn run_shroud(args: &[&str]) -> Finished {
    run_with_input(shroud().args(args), b"", Duration::from_secs(60))
}

fn code(f: &Finished) -> i32 {
    f.status.code().expect("exited normally")
}

#[test]
fn metrics_over_http_move_with_events_and_stream_counters() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let metrics = Metrics::new().unwrap();
    events::install(metrics.clone());
    let health = Arc::new(Health::default());
    let server = rt
        .block_on(Server::bind("127.0.0.1:0".parse().unwrap()))
        .unwrap();
    let addr = server.local_addr().unwrap();
    rt.spawn(server.run(metrics.registry(), health.clone()));

    assert_eq!(get(addr, "/healthz").0, 200);
    assert_eq!(get(addr, "/readyz").0, 503);
    let (status, before) = get(addr, "/metrics");
    assert_eq!(status, 200);
    assert_eq!(
        sample(&before, r#"shroud_rotations_total{secret="m_db"}"#),
        None
    );
    let rss = sample(&before, "shroud_process_resident_memory_bytes").unwrap();
    assert!(rss > 1e6, "rss {rss}");

    // A redacting stream with real pipes, its counters attached.
    let counters = Arc::new(StreamCounters::default());
    metrics.attach_stream(Stream::Stderr, counters.clone());
    let mut b = shroud_redactor::SecretSetBuilder::new();
    b.add("m_db", SECRET);
    let live = LiveSet::new(b.build().0);
    let (rd, wr) = nix::unistd::pipe().unwrap();
    let mut input = b"connecting with ".to_vec();
    input.extend_from_slice(SECRET);
    input.extend_from_slice(b" now\n");
    nix::unistd::write(&wr, &input).unwrap();
    drop(wr);
    let devnull = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap();
    pump(
        rd.as_fd(),
        devnull.as_fd(),
        &live,
        &PumpConfig::default(),
        &counters,
    )
    .unwrap();

    let lease = "database/creds/app/m-lease-1234";
    events::emit(Event::Login {
        method: "m-approle",
        outcome: Outcome::Ok,
    });
    for outcome in [Outcome::Ok, Outcome::Ok, Outcome::Error("timeout".into())] {
        events::emit(Event::Renew {
            secret: "m_db",
            path: "database/creds/app",
            lease_id: Some(lease),
            outcome,
        });
    }
    events::emit(Event::LeaseTtl {
        secret: "m_db",
        seconds: 120.0,
    });
    events::emit(Event::Rotate {
        secret: "m_db",
        path: "database/creds/app",
        lease_id: Some(lease),
    });
    events::emit(Event::VaultRequest {
        operation: "m-renew",
        duration: Duration::from_millis(20),
        outcome: Outcome::Ok,
    });
    events::emit(Event::Wipe {
        files: 1,
        duration: Duration::from_micros(250),
    });
    health.set_rendered(true);
    health.set_token_valid(true);

    let (_, after) = get(addr, "/metrics");
    let v = |series: &str| {
        sample(&after, series).unwrap_or_else(|| panic!("{series} missing:\n{after}"))
    };
    assert_eq!(
        v(r#"shroud_auth_attempts_total{method="m-approle",result="ok"}"#),
        1.0
    );
    assert_eq!(
        v(r#"shroud_lease_renewals_total{result="ok",secret="m_db"}"#),
        2.0
    );
    assert_eq!(
        v(r#"shroud_lease_renewals_total{result="error",secret="m_db"}"#),
        1.0
    );
    assert_eq!(v(r#"shroud_rotations_total{secret="m_db"}"#), 1.0);
    let left = v(r#"shroud_lease_expiry_seconds{secret="m_db"}"#);
    assert!(left > 100.0 && left <= 120.0, "lease expiry {left}");
    assert_eq!(
        v(r#"shroud_vault_request_duration_seconds_count{operation="m-renew"}"#),
        1.0
    );
    assert_eq!(
        v(r#"shroud_vault_request_duration_seconds_bucket{operation="m-renew",le="0.01"}"#),
        0.0
    );
    assert_eq!(
        v(r#"shroud_vault_request_duration_seconds_bucket{operation="m-renew",le="0.025"}"#),
        1.0
    );
    assert!(v("shroud_wipe_duration_seconds_count") >= 1.0);
    assert_eq!(
        v(r#"shroud_stream_bytes_total{stream="stderr"}"#),
        input.len() as f64
    );
    assert_eq!(v(r#"shroud_stream_masked_total{stream="stderr"}"#), 1.0);
    assert!(
        !after.contains("m-lease-1234"),
        "a lease id leaked into metrics"
    );
    assert!(
        !contains(after.as_bytes(), SECRET),
        "a secret leaked into metrics"
    );
    assert_eq!(get(addr, "/readyz").0, 200);

    events::emit(Event::Revoke {
        secret: Some("m_db"),
        lease_id: Some(lease),
        reason: RevokeReason::Shutdown,
        outcome: Outcome::Ok,
    });
    health.set_token_valid(false);
    let (_, last) = get(addr, "/metrics");
    assert_eq!(
        sample(
            &last,
            r#"shroud_revocations_total{kind="lease",result="ok"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&last, r#"shroud_lease_expiry_seconds{secret="m_db"}"#),
        None
    );
    let (status, body) = get(addr, "/readyz");
    assert_eq!(
        (status, body.as_str()),
        (503, "not ready: vault token not valid\n")
    );
}

/// Writes a session through the audit sink; returns the file's lines and head.
fn audited_session(path: &Path) -> (Vec<String>, String) {
    let workload = Workload {
        pod: Some("app-5c7d".into()),
        namespace: Some("payments".into()),
        service_account: Some("app".into()),
        hostname: None,
    };
    let audit = Audit::open_as(&AuditTarget::File(path.to_path_buf()), workload).unwrap();
    let lease = Some("database/creds/app/a-lease-9876");
    let (secret, p) = ("db", "database/creds/app");
    let events = [
        Event::Login {
            method: "kubernetes",
            outcome: Outcome::Ok,
        },
        Event::Fetch {
            secret,
            path: p,
            lease_id: lease,
            outcome: Outcome::Ok,
        },
        Event::LeaseTtl {
            secret,
            seconds: 60.0,
        },
        Event::Renew {
            secret,
            path: p,
            lease_id: lease,
            outcome: Outcome::Ok,
        },
        Event::Rotate {
            secret,
            path: p,
            lease_id: lease,
        },
        Event::Revoke {
            secret: Some(secret),
            lease_id: lease,
            reason: RevokeReason::Shutdown,
            outcome: Outcome::Ok,
        },
        Event::Revoke {
            secret: None,
            lease_id: None,
            reason: RevokeReason::Shutdown,
            outcome: Outcome::Ok,
        },
        Event::Wipe {
            files: 2,
            duration: Duration::from_micros(700),
        },
        Event::Exit { code: 0 },
    ];
    for e in &events {
        audit.emit(e);
    }
    let head = audit.finish().hash;
    let text = std::fs::read_to_string(path).unwrap();
    (text.lines().map(str::to_string).collect(), head)
}

fn verify_lines(dir: &Path, name: &str, lines: &[String]) -> Finished {
    let p = dir.join(name);
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&p, text).unwrap();
    run_shroud(&["audit", "verify", p.to_str().unwrap()])
}

#[test]
fn audit_log_verifies_and_each_tampering_fails_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let (lines, head) = audited_session(&path);
    // login, fetch, renew, rotate, revoke lease, revoke token, wipe, exit.
    assert_eq!(lines.len(), 8, "{lines:#?}");
    let text = lines.join("\n");
    assert!(!text.contains("a-lease-9876"), "lease id in the audit log");
    let rec: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(rec["event"], "fetch");
    assert_eq!(rec["secret"], "db");
    assert_eq!(rec["path"], "database/creds/app");
    assert_eq!(rec["workload"]["namespace"], "payments");
    assert_eq!(rec["lease_id_sha256"].as_str().unwrap().len(), 64);

    let ok = run_shroud(&["audit", "verify", path.to_str().unwrap()]);
    assert_eq!(code(&ok), 0, "{}", ok.err());
    assert!(ok.out().contains("8 records"), "{}", ok.out());
    assert!(ok.out().contains(&head), "{}", ok.out());
    let ok = run_shroud(&[
        "audit",
        "verify",
        path.to_str().unwrap(),
        "--expect-head",
        &head,
    ]);
    assert_eq!(code(&ok), 0, "{}", ok.err());

    let expect_broken = |name: &str, lines: &[String], line: u32| {
        let f = verify_lines(dir.path(), name, lines);
        assert_eq!(code(&f), 1, "{name}: {}", f.err());
        assert!(
            f.err().contains(&format!("line {line}:")),
            "{name}: expected line {line}: {}",
            f.err()
        );
    };
    let mut edited = lines.clone();
    edited[2] = edited[2].replace(r#""outcome":"ok""#, r#""outcome":"error""#);
    assert_ne!(edited[2], lines[2]);
    expect_broken("edited", &edited, 3);

    let mut deleted = lines.clone();
    deleted.remove(3);
    expect_broken("deleted", &deleted, 4);

    let mut reordered = lines.clone();
    reordered.swap(4, 5);
    expect_broken("reordered", &reordered, 5);

    let mut inserted = lines.clone();
    inserted.insert(6, lines[1].clone());
    expect_broken("inserted", &inserted, 7);

    // Removing the tail keeps the chain intact; only the logged head reveals it.
    let truncated = &lines[..7];
    let f = verify_lines(dir.path(), "truncated", truncated);
    assert_eq!(code(&f), 0, "{}", f.err());
    let p = dir.path().join("truncated");
    let f = run_shroud(&[
        "audit",
        "verify",
        p.to_str().unwrap(),
        "--expect-head",
        &head,
    ]);
    assert_eq!(code(&f), 1);
    assert!(f.err().contains("removed from the end"), "{}", f.err());

    let missing = run_shroud(&["audit", "verify", "/nonexistent/audit.jsonl"]);
    assert_eq!(code(&missing), 64);
    assert!(missing.err().contains("/nonexistent/audit.jsonl"));
}

fn secrets_dir(root: &Path) -> std::path::PathBuf {
    let s = root.join("secrets");
    std::fs::create_dir(&s).unwrap();
    let mut v = SECRET.to_vec();
    v.push(b'\n');
    std::fs::write(s.join("db_password"), v).unwrap();
    s
}

#[test]
fn scan_finds_base64_secret_in_binary_file_and_passes_clean_tree() {
    let root = tempfile::tempdir().unwrap();
    let secrets = secrets_dir(root.path());
    let tree = root.path().join("artifact");
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::write(tree.join("README"), b"nothing secret here\n").unwrap();
    std::os::unix::fs::symlink("..", tree.join("bin/loop")).unwrap();
    // Clean first. (The secrets dir is outside the scanned tree: a secret
    // source inside one is reported like any file, see scan_evasions.rs.)
    let clean = run_shroud(&[
        "scan",
        "--secrets-dir",
        secrets.to_str().unwrap(),
        tree.to_str().unwrap(),
    ]);
    assert_eq!(code(&clean), 0, "{}{}", clean.out(), clean.err());
    assert!(clean.out().contains("0 occurrences"), "{}", clean.out());

    // A binary with the secret base64-encoded inside a larger blob.
    let mut blob = b"user=app;pass=".to_vec();
    blob.extend_from_slice(SECRET);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&blob);
    let mut bin: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8 | 0x80).collect();
    let at = bin.len();
    bin.extend_from_slice(b64.as_bytes());
    bin.extend((0..4096u32).map(|i| (i * 13 % 251) as u8 | 0x80));
    let bin_path = tree.join("bin/app");
    std::fs::write(&bin_path, &bin).unwrap();

    let dirty = run_shroud(&[
        "scan",
        "--secrets-dir",
        secrets.to_str().unwrap(),
        tree.to_str().unwrap(),
    ]);
    assert_eq!(code(&dirty), 1, "{}{}", dirty.out(), dirty.err());
    let out = dirty.out();
    let finding = out
        .lines()
        .find(|l| l.contains("bin/app:"))
        .unwrap_or_else(|| panic!("no finding for bin/app:\n{out}"));
    let rest = finding
        .strip_prefix(&format!("{}:", bin_path.display()))
        .unwrap();
    let (offset, what) = rest.split_once(": ").unwrap();
    let offset: usize = offset.parse().unwrap();
    assert!(
        (at..at + 28).contains(&offset),
        "offset {offset}, blob at {at}"
    );
    assert_eq!(what, "db_password (base64)");
    assert_eq!(
        out.lines()
            .filter(|l| l.contains(": db_password ("))
            .count(),
        1,
        "{out}"
    );
    assert!(!contains(&dirty.stdout, SECRET) && !contains(&dirty.stderr, SECRET));
    assert!(!out.contains(&b64[4..20]), "encoded value printed");
}

#[test]
fn scan_finds_a_secret_across_a_chunk_boundary_of_a_large_file() {
    let root = tempfile::tempdir().unwrap();
    let secrets = secrets_dir(root.path());
    let big = root.path().join("big.img");
    let mut data = vec![b'.'; 3 << 20];
    let at = (1 << 20) - 7;
    data[at..at + SECRET.len()].copy_from_slice(SECRET);
    std::fs::write(&big, &data).unwrap();
    let f = run_shroud(&[
        "scan",
        "--secret-file",
        secrets.join("db_password").to_str().unwrap(),
        big.to_str().unwrap(),
    ]);
    assert_eq!(code(&f), 1, "{}", f.err());
    assert!(
        f.out()
            .contains(&format!("{}:{at}: db_password (raw)", big.display())),
        "{}",
        f.out()
    );
}

#[test]
fn scan_that_cannot_read_a_file_is_incomplete_not_clean() {
    // Root reads any file, so an unreadable one is made by the kernel instead:
    // /proc/self/mem fails with EIO at offset 0. A gate must not pass a tree it
    // could not read all of, and a secret found elsewhere still wins (exit 1).
    let root = tempfile::tempdir().unwrap();
    let secrets = secrets_dir(root.path());
    let secret_file = secrets.join("db_password");
    let clean = root.path().join("clean.txt");
    std::fs::write(&clean, "nothing here\n").unwrap();
    let scan = |paths: &[&Path]| {
        let mut args = vec!["scan", "--secret-file", secret_file.to_str().unwrap()];
        args.extend(paths.iter().map(|p| p.to_str().unwrap()));
        run_shroud(&args)
    };
    let mem = Path::new("/proc/self/mem");
    let f = scan(&[&clean, mem]);
    assert_eq!(code(&f), 2, "{}", f.err());
    assert!(f.out().contains("1 unreadable"), "{}", f.out());
    assert!(f.err().contains("/proc/self/mem"), "{}", f.err());
    assert_eq!(code(&scan(&[&clean])), 0);
    let leaked = root.path().join("leaked.txt");
    std::fs::write(&leaked, SECRET).unwrap();
    assert_eq!(code(&scan(&[&leaked, mem])), 1);
}

#[test]
fn scan_bad_input_is_a_usage_error_and_errors_are_redacted() {
    let root = tempfile::tempdir().unwrap();
    let secrets = secrets_dir(root.path());
    let s = secrets.to_str().unwrap();
    let missing = run_shroud(&["scan", "--secrets-dir", s, "/nonexistent/tree"]);
    assert_eq!(code(&missing), 64);
    assert!(
        missing.err().contains("/nonexistent/tree"),
        "{}",
        missing.err()
    );
    let no_source = run_shroud(&["scan", root.path().to_str().unwrap()]);
    assert_eq!(code(&no_source), 64);
    assert!(
        no_source.err().contains("--secrets-dir"),
        "{}",
        no_source.err()
    );
    let config = run_shroud(&["scan", "--config", "agent.toml", "--secrets-dir", s, "."]);
    assert_eq!(code(&config), 64);
    assert!(config.err().contains("agent.toml"), "{}", config.err());

    // A path that holds the value itself: the error must not print it.
    let leaky = format!("/nonexistent/{}", String::from_utf8_lossy(SECRET));
    for format in ["text", "json"] {
        let f = run_shroud(&["--log-format", format, "scan", "--secrets-dir", s, &leaky]);
        assert_eq!(code(&f), 64);
        assert!(!contains(&f.stderr, SECRET), "{format}: {}", f.err());
        assert!(
            f.err().contains("/nonexistent/[REDACTED]"),
            "{format}: {}",
            f.err()
        );
    }
}

/// The real global logging set-up (`logging::init` + `set_live`) in a real process:
/// this test re-runs itself as a child that logs the secret through `tracing`.
#[test]
fn log_lines_are_redacted_in_a_real_process() {
    const CHILD: &str = "SHROUD_E2E_LOG_CHILD";
    if let Ok(format) = std::env::var(CHILD) {
        let format = match format.as_str() {
            "json" => shroud_agent::cli::LogFormat::Json,
            _ => shroud_agent::cli::LogFormat::Text,
        };
        shroud_agent::logging::init(format);
        let mut b = shroud_redactor::SecretSetBuilder::new();
        b.add("db", SECRET);
        shroud_agent::logging::set_live(Arc::new(LiveSet::new(b.build().0)));
        let value = String::from_utf8_lossy(SECRET);
        let b64 = base64::engine::general_purpose::STANDARD.encode(SECRET);
        tracing::error!(password = %value, encoded = %b64, "connect failed for postgres://app:{value}@db");
        return;
    }
    for format in ["text", "json"] {
        let exe = std::env::current_exe().unwrap();
        let f = run_with_input(
            std::process::Command::new(exe)
                .args([
                    "--exact",
                    "log_lines_are_redacted_in_a_real_process",
                    "--nocapture",
                ])
                .env(CHILD, format),
            b"",
            Duration::from_secs(60),
        );
        assert!(f.status.success(), "{}", f.err());
        let err = f.err();
        assert!(!contains(&f.stderr, SECRET), "{format}: {err}");
        assert!(
            err.contains("connect failed for postgres://app:[REDACTED]@db"),
            "{format}: {err}"
        );
        assert_eq!(err.matches("[REDACTED]").count(), 3, "{format}: {err}");
        if format == "json" {
            let line = err.lines().find(|l| l.contains("connect failed")).unwrap();
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["password"], "[REDACTED]");
        }
    }
}
