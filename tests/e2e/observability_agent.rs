//! Observability of a real `shroud agent` / `shroud run` against real OpenBao and
//! PostgreSQL: `/metrics`, `/healthz`, `/readyz` scraped over HTTP while leases
//! are renewed, rotated and revoked; the audit trail of a full `shroud run`
//! session verified and tampered with; `shroud scan --config` reading the values
//! from Vault and leaving nothing alive; no secret, lease id or token in any
//! scrape, audit record or debug log line.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shroud_e2e::http::get;
use shroud_e2e::world::*;
use shroud_e2e::*;

/// One sample of a scrape: metric name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text format (enough of it for shroud's output).
fn samples(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or(f64::NAN),
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => {
                let body = rest.strip_suffix('}').unwrap();
                let labels = body
                    .split("\",")
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once("=\"").unwrap();
                        (k.to_string(), v.trim_end_matches('"').to_string())
                    })
                    .collect();
                (n.to_string(), labels)
            }
            None => (series.to_string(), BTreeMap::new()),
        };
        out.push(Sample {
            name,
            labels,
            value,
        });
    }
    out
}

/// The value of `name` whose labels include all of `labels`, summed over the
/// other labels; None when no such series exists.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<f64> = samples(text)
        .into_iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .collect();
    (!matching.is_empty()).then(|| matching.iter().sum())
}

fn scrape(addr: SocketAddr) -> String {
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    body
}

/// Polls /metrics until `name{labels}` reaches at least `min`; returns the scrape.
fn await_metric(
    addr: SocketAddr,
    name: &str,
    labels: &[(&str, &str)],
    min: f64,
    limit: Duration,
) -> String {
    let mut last = String::new();
    let deadline = Instant::now() + limit;
    loop {
        last = match std::panic::catch_unwind(|| scrape(addr)) {
            Ok(t) => t,
            Err(_) => last,
        };
        if value(&last, name, labels).is_some_and(|v| v >= min) {
            return last;
        }
        assert!(
            Instant::now() < deadline,
            "waited {limit:?} for {name}{labels:?} >= {min}; last scrape:\n{last}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// True when `text` holds something shaped like a Vault/OpenBao service token
/// (`s.`, `hvs.`, `b.` … followed by a long random part).
fn has_token_shape(text: &str) -> bool {
    let bytes = text.as_bytes();
    for prefix in ["s.", "hvs.", "hvb.", "b."] {
        for (i, _) in text.match_indices(prefix) {
            let before_ok = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
            let run = bytes[i + prefix.len()..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric())
                .count();
            if before_ok && run >= 20 {
                return true;
            }
        }
    }
    false
}

/// Asserts none of `needles` (nor a token-shaped string) occurs in `text`.
fn assert_free_of(what: &str, text: &str, needles: &[String]) {
    for n in needles.iter().filter(|n| !n.is_empty()) {
        assert!(!text.contains(n.as_str()), "{what} contains `{n}`:\n{text}");
    }
    assert!(!has_token_shape(text), "{what} contains a token:\n{text}");
}

/// The 64-hex head hash after `audit_head` in a log (text or JSON lines).
fn logged_head(log: &str) -> String {
    let at = log
        .rfind("audit_head")
        .unwrap_or_else(|| panic!("no audit_head logged:\n{log}"));
    log[at..]
        .split(|c: char| !c.is_ascii_hexdigit())
        .find(|w| w.len() == 64)
        .unwrap_or_else(|| panic!("no hash after audit_head:\n{log}"))
        .to_string()
}

fn sha256_hex(data: &str) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum (coreutils)");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(data.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn agent_metrics_and_probes_follow_renewal_rotation_and_revocation() {
    let _s = serial();
    let w = World::new(Some(("2s", "6s")));
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let audit = w.path("audit.jsonl");
    let cfg = w.config(
        &w.approle_auth(),
        &format!(
            "{DB_SECRET}{KV_SECRET}\n[metrics]\nlisten = \"{addr}\"\n\n[audit]\npath = \"{}\"\n",
            audit.display()
        ),
    );
    let log = w.path("agent.log");
    // Vault frozen: the agent cannot log in, so the first render cannot happen.
    w.bao.freeze();
    let mut agent = shroud()
        .args(["agent", "--config"])
        .arg(&cfg)
        .env("SHROUD_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn_guarded();
    let (status, body) = until(Duration::from_secs(10), "the metrics server", || {
        std::panic::catch_unwind(|| get(addr, "/readyz")).ok()
    });
    assert_eq!(
        (status, body.as_str()),
        (503, "not ready: secrets not rendered yet\n")
    );
    assert_eq!(get(addr, "/healthz"), (200, "ok\n".to_string()));
    let early = scrape(addr);
    assert_eq!(value(&early, "shroud_secret_fetches_total", &[]), None);
    w.bao.thaw();
    until(Duration::from_secs(20), "/readyz 200", || {
        (get(addr, "/readyz").0 == 200).then_some(())
    });
    assert_eq!(get(addr, "/readyz"), (200, "ready\n".to_string()));

    let text = scrape(addr);
    assert!(
        value(
            &text,
            "shroud_auth_attempts_total",
            &[("method", "approle"), ("result", "ok")]
        )
        .is_some_and(|v| v >= 1.0),
        "{text}"
    );
    for secret in ["db.env", "api-key"] {
        assert!(
            value(
                &text,
                "shroud_secret_fetches_total",
                &[("secret", secret), ("result", "ok")]
            )
            .is_some_and(|v| v >= 1.0),
            "{secret}: {text}"
        );
    }
    let expiry = value(
        &text,
        "shroud_lease_expiry_seconds",
        &[("secret", "db.env")],
    )
    .unwrap_or_else(|| panic!("no expiry gauge for db.env:\n{text}"));
    assert!((0.0..=6.0).contains(&expiry), "expiry {expiry}");
    // kv2 has no lease: no expiry series for it.
    assert_eq!(
        value(
            &text,
            "shroud_lease_expiry_seconds",
            &[("secret", "api-key")]
        ),
        None
    );
    assert!(
        value(
            &text,
            "shroud_vault_request_duration_seconds_count",
            &[("operation", "read")]
        )
        .is_some_and(|v| v >= 2.0),
        "{text}"
    );
    assert!(value(&text, "shroud_process_resident_memory_bytes", &[]).is_some_and(|v| v > 0.0));

    let first = std::fs::read_to_string(w.out.path().join("db.env")).unwrap();
    let (user1, pass1) = (env_value(&first, "USERNAME"), env_value(&first, "PASSWORD"));
    let lease1 = w.bao.leases("database/creds/app/");
    assert_eq!(lease1.len(), 1, "{lease1:?}");

    // Renewal (TTL 2s), then rotation at the max TTL (6s), which revokes the old lease.
    await_metric(
        addr,
        "shroud_lease_renewals_total",
        &[("secret", "db.env"), ("result", "ok")],
        1.0,
        Duration::from_secs(10),
    );
    await_metric(
        addr,
        "shroud_rotations_total",
        &[("secret", "db.env")],
        1.0,
        Duration::from_secs(15),
    );
    let text = await_metric(
        addr,
        "shroud_revocations_total",
        &[("kind", "lease"), ("result", "ok")],
        1.0,
        Duration::from_secs(10),
    );
    assert!(
        !w.pg().role_exists(&user1),
        "the rotated-out role was dropped"
    );
    let second = std::fs::read_to_string(w.out.path().join("db.env")).unwrap();
    let (user2, pass2) = (
        env_value(&second, "USERNAME"),
        env_value(&second, "PASSWORD"),
    );
    assert_ne!(user1, user2);
    let expiry = value(
        &text,
        "shroud_lease_expiry_seconds",
        &[("secret", "db.env")],
    )
    .unwrap();
    assert!(expiry > 0.0, "the new lease's expiry: {expiry}");
    // Labels: secret names and fixed words only.
    for s in samples(&text) {
        for (k, v) in &s.labels {
            if k == "secret" {
                assert!(["db.env", "api-key"].contains(&v.as_str()), "{s:?}");
            }
        }
    }
    let mut secrets = w.credentials();
    secrets.extend([user1.clone(), pass1.clone(), user2.clone(), pass2.clone()]);
    secrets.extend(lease1.iter().cloned());
    secrets.extend(w.bao.leases("database/creds/app/"));
    secrets.push("database/creds/app/".to_string());
    assert_free_of("the scrape", &text, &secrets);

    shroud_e2e::process::signal(&agent, nix::sys::signal::Signal::SIGTERM);
    let status = wait_with_deadline(&mut agent, Duration::from_secs(15));
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{log_text}");
    w.assert_clean(&[]);

    // Revocation at shutdown is in the audit trail (the process, and its
    // endpoint, are gone): the leases and then the token, all ok.
    let recs = records(&audit);
    let revokes: Vec<_> = recs.iter().filter(|r| r["event"] == "revoke").collect();
    assert!(
        revokes.iter().filter(|r| r["kind"] == "lease").count() >= 2,
        "{revokes:?}"
    );
    for kind in ["renew", "rotate"] {
        let r = recs
            .iter()
            .find(|r| r["event"] == kind)
            .unwrap_or_else(|| panic!("no {kind} record: {recs:?}"));
        assert_eq!(r["secret"], "db.env");
        assert_eq!(r["lease_id_sha256"].as_str().unwrap().len(), 64, "{r}");
    }
    let last_revoke = revokes.last().unwrap();
    assert_eq!(last_revoke["kind"], "token");
    assert!(revokes.iter().all(|r| r["outcome"] == "ok"), "{revokes:?}");
    let verify = run_with_input(
        shroud().args(["audit", "verify"]).arg(&audit),
        b"",
        Duration::from_secs(10),
    );
    assert!(verify.status.success(), "{}", verify.err());
    assert!(
        verify.out().contains(&logged_head(&log_text)),
        "{}",
        verify.out()
    );
    // The debug log of the whole run holds no value, lease id or token; the HTTP
    // library did print the token header, masked.
    assert!(
        log_text.contains("X-Vault-Token: [REDACTED]"),
        "the header dump was expected at debug level"
    );
    assert_free_of("the agent's debug log", &log_text, &secrets);
    assert_free_of(
        "the audit log",
        &std::fs::read_to_string(&audit).unwrap(),
        &secrets,
    );
}

#[test]
fn run_session_audit_log_verifies_and_every_tampering_is_caught() {
    let _s = serial();
    let w = World::new(Some(("1m", "5m")));
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let audit = w.path("audit.jsonl");
    let cfg = w.config(
        &w.approle_auth(),
        &format!(
            "{DB_SECRET}{KV_SECRET}\n[metrics]\nlisten = \"{addr}\"\n\n[audit]\npath = \"{}\"\n",
            audit.display()
        ),
    );
    let (seen, leases, go) = (w.path("seen.env"), w.path("leases.json"), w.path("go"));
    // The command prints its credentials (masked by shroud), records the lease
    // ids Vault holds for it, then waits until the test has scraped the metrics.
    let app = format!(
        r#". "$SHROUD_SECRETS_DIR/db.env"
cp "$SHROUD_SECRETS_DIR/db.env" "{seen}"
BAO_ADDR="{bao}" BAO_TOKEN="{root}" bao list -format=json sys/leases/lookup/database/creds/app/ > "{leases}"
echo "user=$USERNAME password=$PASSWORD api=$(cat "$SHROUD_SECRETS_DIR/api-key")"
while [ ! -e "{go}" ]; do sleep 0.05; done
exit 3
"#,
        seen = seen.display(),
        bao = w.bao.addr,
        root = w.bao.root_token,
        leases = leases.display(),
        go = go.display(),
    );
    let mut child = shroud()
        .args(["run", "--config"])
        .arg(&cfg)
        .args(["--", "sh", "-c", &app])
        .env("SHROUD_LOG", "debug")
        .env("SHROUD_POD_NAME", "app-7f9c")
        .env("SHROUD_POD_NAMESPACE", "payments")
        .env("SHROUD_SERVICE_ACCOUNT", "app")
        .env_remove("VAULT_ADDR")
        .env_remove("VAULT_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn_guarded();
    let (stdout, out_t) = shroud_e2e::process::Collected::spawn(child.stdout.take().unwrap());
    let (stderr, err_t) = shroud_e2e::process::Collected::spawn(child.stderr.take().unwrap());
    // The workload's output passed the redactor: the stream counters are exported.
    let text = await_metric(
        addr,
        "shroud_stream_masked_total",
        &[("stream", "stdout")],
        3.0,
        Duration::from_secs(20),
    );
    assert!(
        value(&text, "shroud_stream_bytes_total", &[("stream", "stdout")])
            .is_some_and(|v| v > 20.0),
        "{text}"
    );
    assert_eq!(get(addr, "/readyz").0, 200);
    std::fs::write(&go, b"").unwrap();
    let status = wait_with_deadline(&mut child, Duration::from_secs(30));
    out_t.join().unwrap();
    err_t.join().unwrap();
    let (stdout, stderr) = (stdout.text(), stderr.text());
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(stdout.contains("password=[REDACTED]"), "{stdout}");
    assert!(
        stderr.contains("command started"),
        "debug lines are on: {stderr}"
    );
    w.assert_clean(&[]);

    let env = std::fs::read_to_string(&seen).unwrap();
    let (user, password) = (env_value(&env, "USERNAME"), env_value(&env, "PASSWORD"));
    let ids: Vec<String> =
        serde_json::from_str::<Vec<String>>(&std::fs::read_to_string(&leases).unwrap())
            .unwrap()
            .into_iter()
            .map(|id| format!("database/creds/app/{id}"))
            .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let mut secrets = w.credentials();
    secrets.extend([user, password, ids[0].clone()]);
    secrets.push("database/creds/app/".to_string());
    assert_free_of("shroud's stdout", &stdout, &secrets);
    assert_free_of("shroud's debug log", &stderr, &secrets);
    let audit_text = std::fs::read_to_string(&audit).unwrap();
    assert_free_of("the audit log", &audit_text, &secrets);

    // The trail verifies and its head is the one logged at exit.
    let lines: Vec<String> = audit_text.lines().map(str::to_string).collect();
    let verify = run_with_input(
        shroud().args(["audit", "verify"]).arg(&audit),
        b"",
        Duration::from_secs(10),
    );
    assert_eq!(verify.status.code(), Some(0), "{}", verify.err());
    let head = logged_head(&stderr);
    assert_eq!(
        verify.out().trim(),
        format!(
            "{}: intact, {} records, head {head}",
            audit.display(),
            lines.len()
        )
    );

    // Every kind of event of the session, with hashed lease ids and the identity.
    let recs = records(&audit);
    let kinds: Vec<&str> = recs.iter().map(|r| r["event"].as_str().unwrap()).collect();
    for k in ["login", "fetch", "ready", "revoke", "wipe", "exit"] {
        assert!(kinds.contains(&k), "no {k} event in {kinds:?}");
    }
    assert_eq!(kinds.first(), Some(&"login"));
    assert_eq!(kinds.last(), Some(&"exit"));
    let lease_hash = sha256_hex(&ids[0]);
    let db_fetch = recs
        .iter()
        .find(|r| r["event"] == "fetch" && r["secret"] == "db.env")
        .unwrap();
    assert_eq!(db_fetch["path"], "database/creds/app");
    assert_eq!(db_fetch["outcome"], "ok");
    assert_eq!(db_fetch["lease_id_sha256"], lease_hash.as_str());
    assert_eq!(db_fetch["workload"]["pod"], "app-7f9c");
    assert_eq!(db_fetch["workload"]["namespace"], "payments");
    assert_eq!(db_fetch["workload"]["service_account"], "app");
    let kv_fetch = recs
        .iter()
        .find(|r| r["event"] == "fetch" && r["secret"] == "api-key")
        .unwrap();
    assert!(kv_fetch.get("lease_id_sha256").is_none(), "{kv_fetch}");
    let lease_revoke = recs
        .iter()
        .find(|r| r["event"] == "revoke" && r["kind"] == "lease")
        .unwrap();
    assert_eq!(lease_revoke["secret"], "db.env");
    assert_eq!(lease_revoke["lease_id_sha256"], lease_hash.as_str());
    assert_eq!(lease_revoke["outcome"], "ok");
    assert!(recs
        .iter()
        .any(|r| r["event"] == "revoke" && r["kind"] == "token" && r["outcome"] == "ok"));
    let wipe = recs.iter().find(|r| r["event"] == "wipe").unwrap();
    assert!(wipe["files"].as_u64().unwrap() >= 2, "{wipe}");
    assert_eq!(recs.last().unwrap()["code"], 3);

    // Tampering with the real log: each kind is reported at its line.
    assert!(lines.len() >= 7, "{lines:#?}");
    let dir = w.path("tampered");
    std::fs::create_dir(&dir).unwrap();
    let expect_broken = |name: &str, lines: &[String], line: usize, reason: &str| {
        let p = dir.join(name);
        std::fs::write(
            &p,
            lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
        )
        .unwrap();
        let f = run_with_input(
            shroud().args(["audit", "verify"]).arg(&p),
            b"",
            Duration::from_secs(10),
        );
        assert_eq!(f.status.code(), Some(1), "{name}: {}", f.err());
        let err = f.err();
        assert!(
            err.contains(&format!("line {line}: ")) && err.contains(reason),
            "{name}: expected line {line} ({reason}): {err}"
        );
    };
    let fetch_at = kinds.iter().position(|k| *k == "fetch").unwrap();
    let mut edited = lines.clone();
    edited[fetch_at] = edited[fetch_at].replace(r#""outcome":"ok""#, r#""outcome":"denied""#);
    assert_ne!(edited[fetch_at], lines[fetch_at]);
    expect_broken("edited", &edited, fetch_at + 1, "edited");

    let mut deleted = lines.clone();
    deleted.remove(2);
    expect_broken("deleted", &deleted, 3, "seq is");

    let mut reordered = lines.clone();
    reordered.swap(3, 4);
    expect_broken("reordered", &reordered, 4, "seq is");

    let mut inserted = lines.clone();
    inserted.insert(5, lines[1].clone());
    expect_broken("inserted", &inserted, 6, "seq is");

    // A removed tail leaves a valid chain: the logged head catches it.
    let p = dir.join("truncated");
    let kept: String = lines[..lines.len() - 1]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&p, kept).unwrap();
    let f = run_with_input(
        shroud()
            .args(["audit", "verify"])
            .arg(&p)
            .args(["--expect-head", &head]),
        b"",
        Duration::from_secs(10),
    );
    assert_eq!(f.status.code(), Some(1), "{}", f.err());
    assert!(f.err().contains("removed from the end"), "{}", f.err());
}

#[test]
fn scan_with_config_reads_values_from_vault_and_leaves_nothing_alive() {
    let _s = serial();
    let w = World::new(Some(("1m", "5m")));
    // A generic read of the database role is leased: scan must revoke it.
    let generic =
        "[[secret]]\nname = \"db-generic\"\npath = \"database/creds/app\"\nformat = \"env\"\n";
    let cfg = w.config(
        &w.approle_auth(),
        &format!("{KV_SECRET}{DB_SECRET}{generic}"),
    );
    let root = w.path("artifacts");
    let (dirty, clean) = (root.join("dirty"), root.join("clean"));
    std::fs::create_dir_all(dirty.join("bin")).unwrap();
    std::fs::create_dir_all(&clean).unwrap();
    std::fs::write(clean.join("README"), b"nothing secret here\n").unwrap();
    std::fs::write(dirty.join("README"), b"nothing secret here\n").unwrap();
    // A binary holding the kv2 value base64-encoded inside a larger blob.
    let blob = format!("config:api_key={API_KEY};region=eu");
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &blob);
    let mut bin: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8 | 0x80).collect();
    let at = bin.len();
    bin.extend_from_slice(b64.as_bytes());
    bin.extend((0..3000u32).map(|i| (i * 13 % 251) as u8 | 0x80));
    let bin_path = dirty.join("bin/app");
    std::fs::write(&bin_path, &bin).unwrap();

    let scan = |path: &Path| {
        let f = run_with_input(
            shroud()
                .args(["scan", "--config"])
                .arg(&cfg)
                .arg(path)
                .env("SHROUD_LOG", "debug"),
            b"",
            Duration::from_secs(60),
        );
        // Nothing the scan obtained outlives it.
        w.assert_clean(&[]);
        let mut secrets = w.credentials();
        secrets.push(b64[8..30].to_string());
        assert_free_of("scan's stdout", &f.out(), &secrets);
        assert_free_of("scan's stderr", &f.err(), &secrets);
        f
    };
    let found = scan(&dirty);
    assert_eq!(
        found.status.code(),
        Some(1),
        "{}{}",
        found.out(),
        found.err()
    );
    let out = found.out();
    let finding = out
        .lines()
        .find(|l| l.starts_with(&format!("{}:", bin_path.display())))
        .unwrap_or_else(|| panic!("no finding in bin/app:\n{out}"));
    let rest = finding
        .strip_prefix(&format!("{}:", bin_path.display()))
        .unwrap();
    let (offset, what) = rest.split_once(": ").unwrap();
    let offset: usize = offset.parse().unwrap();
    assert!(
        (at..at + b64.len()).contains(&offset),
        "offset {offset}, blob at {at}"
    );
    assert_eq!(what, "api-key.api_key (base64)");
    let findings = out
        .lines()
        .filter(|l| l.starts_with(dirty.to_str().unwrap()));
    assert_eq!(findings.count(), 1, "{out}");
    // The generic read came with a lease, revoked with the token before scanning.
    assert!(
        found.err().contains("leases and token revoked") && found.err().contains("\"leases\":1"),
        "{}",
        found.err()
    );
    assert!(
        found.err().contains("`db.env` is dynamic"),
        "{}",
        found.err()
    );

    let passed = scan(&clean);
    assert_eq!(
        passed.status.code(),
        Some(0),
        "{}{}",
        passed.out(),
        passed.err()
    );
    assert!(passed.out().contains("0 occurrences"), "{}", passed.out());

    // A config that cannot log in: nothing scanned, not "found", clear message.
    std::fs::write(w.path("secret-id"), "not-a-secret-id").unwrap();
    let denied = run_with_input(
        shroud().args(["scan", "--config"]).arg(&cfg).arg(&clean),
        b"",
        Duration::from_secs(60),
    );
    assert_eq!(denied.status.code(), Some(2), "{}", denied.err());
    assert!(
        denied.err().contains("approle login failed"),
        "{}",
        denied.err()
    );
    let missing = run_with_input(
        shroud()
            .args(["scan", "--config"])
            .arg(w.path("nope.toml"))
            .arg(&clean),
        b"",
        Duration::from_secs(10),
    );
    assert_eq!(missing.status.code(), Some(64), "{}", missing.err());
}

/// A `kB` field of `/proc/<pid>/status`, in bytes.
fn status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in\n{status}"));
    let kib: u64 = line.trim().trim_end_matches("kB").trim().parse().unwrap();
    kib * 1024
}

/// Whether `pid`'s effective capabilities hold CAP_IPC_LOCK (bit 14).
fn has_ipc_lock(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap();
    u64::from_str_radix(hex.trim(), 16).unwrap() & (1 << 14) != 0
}

/// The memory-lock figures of one running shroud, from /proc and /metrics.
struct Locked {
    vm_lck: u64,
    vm_rss: u64,
    metric_all: f64,
    metric_bytes: f64,
    metric_unlocked: f64,
    ipc_lock: bool,
}

impl Locked {
    fn read(pid: u32, addr: SocketAddr) -> Locked {
        assert_eq!(
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .unwrap()
                .trim(),
            "shroud",
            "setpriv and prlimit exec shroud in place"
        );
        let text = scrape(addr);
        Locked {
            vm_lck: status_bytes(pid, "VmLck"),
            vm_rss: status_bytes(pid, "VmRSS"),
            metric_all: value(&text, "shroud_memory_locked", &[]).expect("shroud_memory_locked"),
            metric_bytes: value(&text, "shroud_memory_locked_bytes", &[])
                .expect("shroud_memory_locked_bytes"),
            metric_unlocked: value(&text, "shroud_memory_unlocked_bytes_total", &[])
                .expect("shroud_memory_unlocked_bytes_total"),
            ipc_lock: has_ipc_lock(pid),
        }
    }
}

/// Runs `shroud agent` (as root, under `prefix`) with RLIMIT_MEMLOCK `limit`
/// until it has rendered the kv secret; returns its lock figures and its log.
fn agent_under_memlock(prefix: &[&str], limit: u64) -> (Locked, String) {
    let prlimit = require_tool("prlimit", "apt-get install util-linux");
    let w = World::new(None);
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let cfg = w.config(
        &w.approle_auth(),
        &format!("{KV_SECRET}\n[metrics]\nlisten = \"{addr}\"\n"),
    );
    let log = w.path("agent.log");
    let mut cmd = match prefix.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(require_tool(first, "apt-get install util-linux"));
            c.args(rest).arg(&prlimit);
            c
        }
        None => Command::new(&prlimit),
    };
    let mut agent = cmd
        .arg(format!("--memlock={limit}:{limit}"))
        .arg(shroud_bin())
        .args(["agent", "--log-format", "text", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn_guarded();
    until(Duration::from_secs(20), "/readyz 200", || {
        std::panic::catch_unwind(|| get(addr, "/readyz"))
            .ok()
            .filter(|(status, _)| *status == 200)
    });
    // The secret is served: rendered from Vault into the tmpfs.
    assert_eq!(
        std::fs::read_to_string(w.out.path().join("api-key")).unwrap(),
        API_KEY
    );
    let locked = Locked::read(agent.id(), addr);
    shroud_e2e::process::signal(&agent, nix::sys::signal::Signal::SIGTERM);
    let status = wait_with_deadline(&mut agent, Duration::from_secs(20));
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{log}");
    assert!(!w.out.path().join("api-key").exists(), "{log}");
    (locked, log)
}

/// Root without IPC_LOCK (Pod Security "restricted" drops it) and with a
/// limited RLIMIT_MEMLOCK: the agent locks a heap arena as large as the limit,
/// no more, says so in a log line and the metrics, and still serves the secret.
#[test]
fn agent_without_ipc_lock_locks_what_the_memlock_limit_allows() {
    let _s = serial();
    const LIMIT: u64 = 512 * 1024;
    let (locked, log) = agent_under_memlock(
        &[
            "setpriv",
            "--inh-caps=-ipc_lock",
            "--bounding-set=-ipc_lock",
        ],
        LIMIT,
    );
    assert!(!locked.ipc_lock, "setpriv dropped IPC_LOCK");
    assert!(
        locked.vm_lck > 0 && locked.vm_lck <= LIMIT,
        "VmLck {} with a limit of {LIMIT}\n{log}",
        locked.vm_lck
    );
    assert_eq!(locked.metric_bytes, locked.vm_lck as f64, "{log}");
    assert_eq!(locked.metric_all, 0.0, "{log}");
    assert!(log.contains("memory partly locked"), "{log}");
    assert!(
        log.contains(&format!("memlock_limit_bytes={LIMIT}")),
        "{log}"
    );
    assert!(
        log.contains(&format!("locked_arena_bytes={LIMIT}")),
        "{log}"
    );
}

/// With IPC_LOCK the same limit does not bind: everything is locked
/// (`mlockall`), far more than the limit, and every resident page with it.
#[test]
fn agent_with_ipc_lock_locks_everything() {
    let _s = serial();
    const LIMIT: u64 = 512 * 1024;
    let (locked, log) = agent_under_memlock(&[], LIMIT);
    assert!(locked.ipc_lock, "the test runs as root with IPC_LOCK");
    assert_eq!(locked.metric_all, 1.0, "{log}");
    assert_eq!(locked.metric_unlocked, 0.0, "{log}");
    assert!(
        locked.vm_lck > LIMIT && locked.vm_lck >= locked.vm_rss,
        "VmLck {} VmRSS {}\n{log}",
        locked.vm_lck,
        locked.vm_rss
    );
    assert!(!log.contains("memory partly locked"), "{log}");
    assert!(!log.contains("memory not locked"), "{log}");
}

/// `shroud exec` (which holds the redaction set) as an unprivileged user under
/// a 64 KiB limit locks a 64 KiB arena and still masks; with no memlock budget
/// at all it runs unlocked and says so.
#[test]
fn exec_locks_what_the_memlock_limit_allows() {
    use std::os::unix::fs::PermissionsExt as _;
    let setpriv = shroud_e2e::require_tool("setpriv", "apt-get install util-linux");
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let secret = secret_file(dir.path(), "token", b"unlocked-memory-secret-77\n");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let go = dir.path().join("go");
    let run = |limit: u64| {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let _ = std::fs::remove_file(&go);
        let mut child = Command::new(&setpriv)
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
            ])
            .arg("prlimit")
            .arg(format!("--memlock={limit}:{limit}"))
            .arg(shroud_bin())
            .args([
                "exec",
                "--tty",
                "never",
                "--log-format",
                "text",
                "--secret-file",
            ])
            .arg(&secret)
            .args(["--metrics-listen", &addr.to_string(), "--", "sh", "-c"])
            .arg(format!(
                "cat {}; while [ ! -e {} ]; do sleep 0.05; done",
                secret.display(),
                go.display()
            ))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn_guarded();
        until(Duration::from_secs(20), "the metrics server", || {
            std::panic::catch_unwind(|| scrape(addr)).ok()
        });
        let locked = Locked::read(child.id(), addr);
        std::fs::write(&go, b"").unwrap();
        let status = wait_with_deadline(&mut child, Duration::from_secs(20));
        let mut out = String::new();
        std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert!(status.success(), "{err}");
        assert!(!out.contains("unlocked-memory-secret-77"), "{out}");
        assert!(out.contains("[REDACTED]"), "{out}");
        assert!(
            err.contains(&format!("memlock_limit_bytes={limit}")),
            "{err}"
        );
        assert_eq!(locked.metric_all, 0.0, "{err}");
        assert_eq!(locked.metric_bytes, locked.vm_lck as f64, "{err}");
        (locked, err)
    };
    let (partial, err) = run(65536);
    assert_eq!(partial.vm_lck, 65536, "{err}");
    assert!(err.contains("memory partly locked"), "{err}");
    // 64 KiB is less than exec's heap (its output buffers alone): what did not
    // fit is counted.
    assert!(partial.metric_unlocked > 0.0, "{err}");
    let (none, err) = run(0);
    assert_eq!(none.vm_lck, 0, "{err}");
    assert_eq!(
        none.metric_unlocked, 0.0,
        "no arena, nothing counted: {err}"
    );
    assert!(err.contains("memory not locked"), "{err}");
}

#[test]
fn exec_serves_its_stream_counters() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path(), "token", b"exec-metrics-secret-4242\n");
    let go = dir.path().join("go");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = shroud()
        .args(["exec", "--tty", "never", "--secret-file"])
        .arg(&secret)
        .args(["--metrics-listen", &addr.to_string(), "--", "sh", "-c"])
        .arg(format!(
            "echo exec-metrics-secret-4242; echo exec-metrics-secret-4242 >&2; \
             while [ ! -e {} ]; do sleep 0.05; done",
            go.display()
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn_guarded();
    // The two streams are pumped by separate threads: await each.
    await_metric(
        addr,
        "shroud_stream_masked_total",
        &[("stream", "stderr")],
        1.0,
        Duration::from_secs(20),
    );
    let text = await_metric(
        addr,
        "shroud_stream_masked_total",
        &[("stream", "stdout")],
        1.0,
        Duration::from_secs(20),
    );
    assert_eq!(
        value(&text, "shroud_stream_masked_total", &[("stream", "stderr")]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "shroud_stream_masked_total", &[("stream", "stdout")]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "shroud_stream_bytes_total", &[("stream", "stdout")]),
        Some(25.0)
    );
    assert_eq!(get(addr, "/readyz").0, 200);
    assert_free_of("exec's scrape", &text, &["exec-metrics-secret-4242".into()]);
    std::fs::write(&go, b"").unwrap();
    let status = wait_with_deadline(&mut child, Duration::from_secs(20));
    assert!(status.success());

    let bad = run_with_input(
        shroud().args(["exec", "--secret-file"]).arg(&secret).args([
            "--metrics-listen",
            "localhost",
            "--",
            "true",
        ]),
        b"",
        Duration::from_secs(10),
    );
    assert_eq!(bad.status.code(), Some(64), "{}", bad.err());
    assert!(bad.err().contains("--metrics-listen"), "{}", bad.err());
}

#[test]
fn a_denied_read_is_audited_with_the_exit_of_a_failed_start() {
    let _s = serial();
    let w = World::new(Some(("1m", "5m")));
    let audit = w.path("audit.jsonl");
    // The policy allows secret/data/*, not other/.
    let denied = "[[secret]]\nname = \"other\"\npath = \"other/app\"\nkind = \"kv2\"\n";
    let cfg = w.config(
        &w.approle_auth(),
        &format!(
            "{DB_SECRET}{denied}\n[audit]\npath = \"{}\"\n",
            audit.display()
        ),
    );
    let f = run_with_input(
        shroud().args(["agent", "--config"]).arg(&cfg),
        b"",
        Duration::from_secs(30),
    );
    assert_eq!(f.status.code(), Some(1), "{}", f.err());
    assert!(f.err().contains("permission denied"), "{}", f.err());
    w.assert_clean(&[]);
    let recs = records(&audit);
    let kinds: Vec<&str> = recs.iter().map(|r| r["event"].as_str().unwrap()).collect();
    let denial = recs.iter().find(|r| r["event"] == "denial").unwrap();
    assert_eq!(denial["secret"], "other");
    assert_eq!(denial["path"], "other/app");
    assert_eq!(denial["outcome"], "denied");
    assert!(
        denial["reason"]
            .as_str()
            .unwrap()
            .contains("permission denied"),
        "{denial}"
    );
    let fetch = recs
        .iter()
        .find(|r| r["event"] == "fetch" && r["secret"] == "other")
        .unwrap();
    assert_eq!(fetch["outcome"], "denied");
    // What was obtained before the refusal is revoked, and the exit recorded.
    assert!(recs
        .iter()
        .any(|r| r["event"] == "revoke" && r["kind"] == "lease" && r["outcome"] == "ok"));
    assert_eq!(kinds.last(), Some(&"exit"), "{kinds:?}");
    assert_eq!(recs.last().unwrap()["code"], 1);
    let verify = run_with_input(
        shroud().args(["audit", "verify"]).arg(&audit),
        b"",
        Duration::from_secs(10),
    );
    assert_eq!(verify.status.code(), Some(0), "{}", verify.err());
    assert!(
        verify.out().contains(&logged_head(&f.err())),
        "{}",
        verify.out()
    );
}

/// Renders the Helm chart with `values` (tests/helm/render.py, Helm's engine).
fn render_chart(values: &serde_json::Value) -> Vec<serde_json::Value> {
    let python = require_tool("python3", "apt-get install python3");
    let root = workspace();
    let out = Command::new(python)
        .arg(root.join("tests/helm/render.py"))
        .arg(root.join("helm/shroud"))
        .arg(values.to_string())
        .output()
        .expect("running tests/helm/render.py");
    assert!(
        out.status.success(),
        "rendering the chart failed (scripts/test installs helm-python-sdk):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs `promtool <verb> rules FILE`, failing with its output and `context`.
fn run_promtool(tool: &Path, verb: &str, file: &Path, context: &str) {
    let out = Command::new(tool)
        .args([verb, "rules"])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool {verb} rules:\n{}{}\n{context}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `# TYPE` lines of a scrape: metric family → type.
fn families(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect()
}

/// Every `shroud_…` metric name in a PromQL expression, histogram suffixes kept.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("shroud_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// A promtool input series: the real sample's name and labels, plus the target
/// labels the chart's PodMonitor adds, with `values` in promtool's notation.
fn series(s: &Sample, set: &[(&str, &str)], container: &str, values: String) -> serde_json::Value {
    let mut labels = s.labels.clone();
    for (k, v) in set {
        labels.insert(k.to_string(), v.to_string());
    }
    labels.insert("namespace".into(), "shop".into());
    labels.insert("pod".into(), "web-7d4b9c-x7k2p".into());
    labels.insert("workload".into(), "web-7d4b9c".into());
    labels.insert("container".into(), container.into());
    let body: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    serde_json::json!({"series": format!("{}{{{}}}", s.name, body.join(", ")), "values": values})
}

/// The alert as promtool should report it: the rule's labels, the `by` labels,
/// and its annotations with `$labels.x` filled in.
fn expected_alert(rule: &serde_json::Value, by: &[(&str, &str)]) -> serde_json::Value {
    let mut labels = serde_json::Map::new();
    for (k, v) in rule["labels"].as_object().unwrap() {
        labels.insert(k.clone(), v.clone());
    }
    for (k, v) in by {
        labels.insert(k.to_string(), serde_json::json!(v));
    }
    let mut annotations = serde_json::Map::new();
    for (k, v) in rule["annotations"].as_object().unwrap() {
        let mut text = v.as_str().unwrap().to_string();
        for (name, value) in by {
            text = text.replace(&format!("{{{{ $labels.{name} }}}}"), value);
        }
        annotations.insert(k.clone(), serde_json::json!(text));
    }
    serde_json::json!({"exp_labels": labels, "exp_annotations": annotations})
}

/// The chart's agent alert rules and Grafana dashboard against what a real
/// `shroud run` exports (OpenBao, PostgreSQL, a 2 s lease rotated at its 6 s max
/// TTL, a workload printing its password): every metric they name is one the
/// agent serves; the rules pass `promtool check rules`, and `promtool test rules`
/// with input series carrying the scraped series' names and labels: quiet when
/// healthy, each alert firing on its failure.
#[test]
fn chart_alert_rules_and_dashboard_fit_the_real_agents_metrics() {
    let promtool = require_tool("promtool", "apt-get install prometheus");
    let _s = serial();
    let w = World::new(Some(("2s", "6s")));
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let cfg = w.config(
        &w.approle_auth(),
        &format!("{DB_SECRET}{KV_SECRET}\n[metrics]\nlisten = \"{addr}\"\n"),
    );
    let go = w.path("go");
    let app = format!(
        r#". "$SHROUD_SECRETS_DIR/db.env"; echo "password=$PASSWORD"; while [ ! -e "{}" ]; do sleep 0.05; done"#,
        go.display()
    );
    let mut child = shroud()
        .args(["run", "--config"])
        .arg(&cfg)
        .args(["--", "sh", "-c", &app])
        .env_remove("VAULT_ADDR")
        .env_remove("VAULT_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn_guarded();
    // Wait until every kind of event has happened once: the counters are
    // monotonic, so the last scrape holds every series.
    for (name, labels) in [
        ("shroud_stream_masked_total", &[("stream", "stdout")][..]),
        (
            "shroud_lease_renewals_total",
            &[("secret", "db.env"), ("result", "ok")],
        ),
        ("shroud_rotations_total", &[("secret", "db.env")]),
        ("shroud_revocations_total", &[("kind", "lease")]),
    ] {
        await_metric(addr, name, labels, 1.0, Duration::from_secs(30));
    }
    let scraped = scrape(addr);
    std::fs::write(&go, b"").unwrap();
    assert_eq!(
        wait_with_deadline(&mut child, Duration::from_secs(30)).code(),
        Some(0)
    );
    let real = families(&scraped);
    let exported = samples(&scraped);

    let objects = render_chart(&serde_json::json!({"metrics": {
        "prometheusRule": {"enabled": true, "leaseExpiryThresholdSeconds": 60},
        "podMonitor": {"enabled": true}, "dashboard": {"enabled": true}}}));
    let rule = objects
        .iter()
        .find(|o| o["kind"] == "PrometheusRule")
        .expect("a PrometheusRule");
    let groups = rule["spec"]["groups"].as_array().unwrap();
    let agents = groups
        .iter()
        .find(|g| g["name"] == "shroud-agents")
        .expect("the agents' group");
    let dashboard = objects
        .iter()
        .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["labels"]["grafana_dashboard"] == "1")
        .expect("the dashboard ConfigMap with label grafana_dashboard: \"1\"");
    let dashboard: serde_json::Value =
        serde_json::from_str(dashboard["data"]["shroud.json"].as_str().unwrap()).unwrap();

    // Every metric the agents' rules and the dashboard query is one the agent serves.
    let mut queries: Vec<String> = agents["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["expr"].as_str().unwrap().to_string())
        .collect();
    for p in dashboard["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            queries.push(t["expr"].as_str().unwrap().to_string());
        }
    }
    for v in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["query"]["query"].as_str() {
            queries.push(q.to_string());
        }
    }
    assert!(queries.len() >= 15, "{queries:?}");
    for q in &queries {
        for name in metric_names(q) {
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    name.strip_suffix(s)
                        .filter(|f| real.get(*f).is_some_and(|t| t == "histogram"))
                })
                .unwrap_or(&name);
            assert!(
                real.contains_key(family),
                "`{name}` in `{q}` is not exported by the agent; it exports {:?}",
                real.keys()
            );
        }
    }

    // promtool: the rules load …
    let dir = tempfile::tempdir().unwrap();
    let rules_file = dir.path().join("rules.json");
    std::fs::write(
        &rules_file,
        serde_json::json!({"groups": groups}).to_string(),
    )
    .unwrap();
    run_promtool(&promtool, "check", &rules_file, "");

    // … and fire exactly when they should, on the real series.
    let one = |name: &str, labels: &[(&str, &str)]| -> &Sample {
        exported
            .iter()
            .find(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .unwrap_or_else(|| panic!("the agent exports no {name}{labels:?}:\n{scraped}"))
    };
    let renewals = one(
        "shroud_lease_renewals_total",
        &[("secret", "db.env"), ("result", "ok")],
    );
    let fetches = one(
        "shroud_secret_fetches_total",
        &[("secret", "db.env"), ("result", "ok")],
    );
    let logins = one("shroud_auth_attempts_total", &[("result", "ok")]);
    let expiry = one("shroud_lease_expiry_seconds", &[("secret", "db.env")]);
    let denials = one("shroud_denials_total", &[]);
    let masked = one("shroud_stream_masked_total", &[("stream", "stdout")]);
    let flat = |s: &Sample| format!("{}+0x30", s.value);
    let rising = |s: &Sample| format!("{}+1x30", s.value);
    let agent = "shroud-agent";
    let healthy = vec![
        series(renewals, &[], agent, flat(renewals)),
        series(fetches, &[], agent, flat(fetches)),
        series(logins, &[], agent, flat(logins)),
        // Renewed in time: back up to the TTL before it gets low.
        series(expiry, &[], agent, "300 250 200 150 300 250 200 150 300 250 200 150 300 250 200 150 300 250 200 150 300 250 200 150 300 250 200 150 300 250 200".into()),
        series(denials, &[], agent, flat(denials)),
        series(masked, &[], "web", flat(masked)),
    ];
    let failing = vec![
        series(renewals, &[], agent, flat(renewals)),
        series(renewals, &[("result", "error")], agent, "0+1x30".into()),
        series(fetches, &[("result", "error")], agent, "0+1x30".into()),
        series(logins, &[], agent, rising(logins)),
        series(expiry, &[], agent, "1800-70x30".into()),
        series(denials, &[], agent, rising(denials)),
        series(masked, &[], "web", rising(masked)),
    ];
    let rules = agents["rules"].as_array().unwrap();
    let rule = |name: &str| {
        rules
            .iter()
            .find(|r| r["alert"] == name)
            .unwrap_or_else(|| panic!("no alert {name}"))
    };
    let pod = [("namespace", "shop"), ("pod", "web-7d4b9c-x7k2p")];
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, &'static str)> {
        pod.iter().chain(extra).copied().collect()
    };
    let fires: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("ShroudLeaseRenewalsFailing", with(&[("secret", "db.env")])),
        ("ShroudLeaseCloseToExpiry", with(&[("secret", "db.env")])),
        ("ShroudVaultDenials", with(&[])),
        ("ShroudRotationsFailing", with(&[("secret", "db.env")])),
        ("ShroudUnexpectedLogins", with(&[])),
        ("ShroudSecretInOutput", with(&[("container", "web")])),
    ];
    assert_eq!(fires.len(), rules.len(), "every agent alert is tested");
    let quiet: Vec<serde_json::Value> = fires
        .iter()
        .map(|(name, _)| serde_json::json!({"eval_time": "30m", "alertname": name, "exp_alerts": []}))
        .collect();
    let loud: Vec<serde_json::Value> = fires
        .iter()
        .map(|(name, by)| {
            serde_json::json!({"eval_time": "30m", "alertname": name,
                "exp_alerts": [expected_alert(rule(name), by)]})
        })
        .collect();
    let tests = serde_json::json!({
        "rule_files": ["rules.json"],
        "evaluation_interval": "1m",
        "tests": [
            {"name": "healthy agent", "interval": "1m", "input_series": healthy, "alert_rule_test": quiet},
            {"name": "failing agent", "interval": "1m", "input_series": failing, "alert_rule_test": loud},
        ]
    });
    let tests_file = dir.path().join("tests.json");
    std::fs::write(&tests_file, serde_json::to_string_pretty(&tests).unwrap()).unwrap();
    run_promtool(
        &promtool,
        "test",
        &tests_file,
        &serde_json::to_string_pretty(&tests).unwrap(),
    );
}
