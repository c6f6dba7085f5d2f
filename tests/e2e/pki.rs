//! Certificates and requests with parameters against a real OpenBao: `kind =
//! "pki"` (issue, the directory swapped as one unit, re-issue before expiry,
//! masking, revocation at exit), SSH signing through a `generic` write with
//! `params` and `params_file`, `[auth] method = "cert"` over TLS with the
//! `VAULT_*`/`BAO_*` conventions, and `config validate` naming bad params and
//! certificate paths.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shroud_e2e::openbao::{OpenBao, SHROUD_POLICY};
use shroud_e2e::world::spawn_agent;
use shroud_e2e::*;

/// Certificates of a few seconds are timed; one test at a time keeps a 2-core
/// machine from skewing that.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const API_KEY: &str = "pki-test-api-key-7c6b5a4d3e";

/// What shroud may do besides reading secrets: issue and revoke certificates of
/// role `web`, sign SSH keys with role `app`.
const WRITE_POLICY: &str = r#"
path "pki/issue/web" { capabilities = ["update"] }
path "pki/revoke" { capabilities = ["update"] }
path "ssh/sign/app" { capabilities = ["update"] }
"#;

/// Runs a tool in `dir`; panics with its stderr on failure. Returns stdout.
fn tool(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Everything left in the output directory, `.shroud` and `.shroud/acks` aside.
fn leftovers(dir: &Path) -> Vec<String> {
    let mut left = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            if p.is_dir() {
                stack.push(p);
            }
            if rel != ".shroud" && rel != ".shroud/acks" {
                left.push(rel);
            }
        }
    }
    left
}

/// A token file for a child token with `policy` (revoked by shroud at exit).
fn token_file(bao: &OpenBao, policy: &str, dir: &Path) -> PathBuf {
    let token = bao.bao(&[
        "token",
        "create",
        "-field=token",
        &format!("-policy={policy}"),
    ]);
    let f = dir.join("token");
    std::fs::write(&f, token.trim()).unwrap();
    f
}

/// One consistent view of the certificate directory.
#[derive(Clone, PartialEq)]
struct Issuance {
    crt: String,
    key: String,
    ca: String,
}

/// What the polling reader saw.
#[derive(Default)]
struct Observed {
    /// Each distinct issuance, when first seen, and its serial.
    issuances: Vec<(Instant, Issuance, String)>,
    /// Consistent samples taken.
    samples: u64,
    /// Times `<dir>/tls` could not be opened at all.
    missing: u64,
    /// Samples of a replaced directory caught while being wiped (through an fd
    /// opened before the swap; never reachable by path afterwards).
    retired: u64,
}

/// Checks one issuance with openssl the moment it is first seen (its validity
/// is seconds): the chain verifies against ca.crt and the key belongs to the
/// certificate. Returns the serial.
fn check_issuance(work: &Path, n: usize, i: &Issuance) -> String {
    let dir = work.join(format!("issuance-{n}"));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in [("tls.crt", &i.crt), ("tls.key", &i.key), ("ca.crt", &i.ca)] {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let verified = tool(&dir, "openssl", &["verify", "-CAfile", "ca.crt", "tls.crt"]);
    assert_eq!(verified.trim(), "tls.crt: OK");
    let from_cert = tool(
        &dir,
        "openssl",
        &["x509", "-in", "tls.crt", "-noout", "-pubkey"],
    );
    let from_key = tool(&dir, "openssl", &["pkey", "-in", "tls.key", "-pubout"]);
    assert_eq!(
        from_cert, from_key,
        "issuance {n}: the key does not match the certificate"
    );
    tool(
        &dir,
        "openssl",
        &["x509", "-in", "tls.crt", "-noout", "-serial"],
    )
    .trim()
    .trim_start_matches("serial=")
    .to_string()
}

/// Reads `<dir>/tls/{tls.crt,tls.key,ca.crt}` through one directory descriptor
/// (one instant's view of the name) in a loop until `stop`; `count` follows the
/// number of distinct issuances seen.
fn poll_certificates(
    dir: PathBuf,
    work: PathBuf,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicUsize>,
) -> Observed {
    let mut seen = Observed::default();
    while !stop.load(Ordering::Relaxed) {
        let Ok(d) = std::fs::File::open(dir.join("tls")) else {
            seen.missing += 1;
            continue;
        };
        let fd = std::os::fd::AsRawFd::as_raw_fd(&d);
        let read = |name: &str| std::fs::read_to_string(format!("/proc/self/fd/{fd}/{name}"));
        let (Ok(crt), Ok(key), Ok(ca)) = (read("tls.crt"), read("tls.key"), read("ca.crt")) else {
            seen.retired += 1;
            continue;
        };
        let whole = |s: &str| s.starts_with("-----BEGIN ") && s.trim_end().ends_with("-----");
        if !(whole(&crt) && whole(&key) && whole(&ca)) {
            seen.retired += 1;
            continue;
        }
        seen.samples += 1;
        let now = Instant::now();
        let i = Issuance { crt, key, ca };
        if seen.issuances.last().map(|(_, last, _)| last) != Some(&i) {
            if let Some((_, previous, _)) = seen.issuances.last() {
                // Re-issued before the certificate in use expired.
                let old = work.join("previous.crt");
                std::fs::write(&old, &previous.crt).unwrap();
                let still_valid = Command::new("openssl")
                    .args(["x509", "-checkend", "0", "-noout", "-in"])
                    .arg(&old)
                    .stdout(Stdio::null())
                    .status()
                    .unwrap();
                assert!(
                    still_valid.success(),
                    "the certificate expired before it was replaced"
                );
            }
            let serial = check_issuance(&work, seen.issuances.len(), &i);
            seen.issuances.push((now, i, serial));
            count.store(seen.issuances.len(), Ordering::Relaxed);
        }
        std::thread::yield_now();
    }
    seen
}

/// OpenBao with a PKI role `web` of 12 s max TTL, a token allowed to issue and
/// revoke, a tmpfs output, and a config with one `kind = "pki"` secret `tls`;
/// `tail` follows the `[lifecycle]` header (its keys, then other sections).
struct PkiWorld {
    bao: OpenBao,
    work: tempfile::TempDir,
    out: Tmpfs,
    cfg: PathBuf,
}

impl PkiWorld {
    fn new(tail: &str) -> PkiWorld {
        PkiWorld::with_max_ttl("12s", tail)
    }

    /// As [`PkiWorld::new`], with role `web`'s max TTL `max_ttl`.
    fn with_max_ttl(max_ttl: &str, tail: &str) -> PkiWorld {
        require_tool("openssl", "apt-get install openssl");
        let bao = OpenBao::start();
        let work = tempfile::tempdir().unwrap();
        let out = Tmpfs::new();
        bao.pki_role("web", "example.test", max_ttl);
        bao.policy(
            "pki",
            &format!("{SHROUD_POLICY}{WRITE_POLICY}"),
            work.path(),
        );
        let token = token_file(&bao, "pki", work.path());
        let cfg = work.path().join("shroud.toml");
        std::fs::write(
            &cfg,
            format!(
                "[vault]\naddress = \"{}\"\n[auth]\nmethod = \"token\"\ntoken_file = \"{}\"\n\
                 [output]\ndir = \"{}\"\n\
                 [[secret]]\nname = \"tls\"\npath = \"pki/issue/web\"\nkind = \"pki\"\n\
                 params = {{ common_name = \"app.example.test\", alt_names = [\"www.example.test\"] }}\n\
                 [lifecycle]\n{tail}",
                bao.addr,
                token.display(),
                out.path().display()
            ),
        )
        .unwrap();
        PkiWorld {
            bao,
            work,
            out,
            cfg,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    /// Serials of every certificate the PKI mount has issued (its CA's too).
    fn issued(&self) -> Vec<String> {
        serde_json::from_str(&self.bao.bao(&["list", "-format=json", "pki/certs"])).unwrap()
    }

    /// Whether the certificate with `serial` had expired: Vault and OpenBao
    /// answer a revocation of an expired certificate with 204 and record
    /// nothing (hashicorp/vault#19452), so a retired certificate whose grace ran
    /// to its end (a late agent on a loaded machine) is expired, not revoked.
    fn expired(&self, serial: &str) -> bool {
        let cert = self.bao.certificate(serial);
        let pem = self
            .work
            .path()
            .join(format!("{}.pem", serial.replace(':', "")));
        std::fs::write(&pem, cert["certificate"].as_str().unwrap()).unwrap();
        let status = Command::new("openssl")
            .args(["x509", "-noout", "-checkend", "0", "-in"])
            .arg(&pem)
            .status()
            .unwrap();
        !status.success()
    }

    /// At exit: nothing left on the tmpfs, `serials` revoked, the token gone.
    fn assert_clean(&self, serials: &[&str]) {
        assert_eq!(leftovers(self.out.path()), Vec::<String>::new());
        for s in serials {
            assert!(
                self.bao.revocation_time(s).is_some(),
                "certificate {s} not revoked"
            );
        }
        assert_eq!(
            self.bao.accessors().len(),
            1,
            "only the root token may remain"
        );
    }
}

/// An app that prints the serial it serves and its key (to be masked), touches
/// `started`, on SIGHUP prints the serial again and touches `hup`, and when
/// `stop` exists prints the key again and ends.
/// Each serial line ends in ` .`: a line that ends in hex digits and then
/// pauses is held by the wrap view as a possible start of a wrapped body, and
/// six digits that start a unit of the key's hex forms (about one serial in a
/// few thousand) are masked at the pause (docs/redact.md, "The guarantee").
fn tls_app(started: &Path, hup: &Path, stop: &Path) -> String {
    format!(
        "d=\"$SHROUD_SECRETS_DIR/tls\"\n\
         trap 'echo \"reloaded $(openssl x509 -in \"$d/tls.crt\" -noout -serial) .\"; touch {hup}' HUP\n\
         echo \"start $(openssl x509 -in \"$d/tls.crt\" -noout -serial) .\"\n\
         cat \"$d/tls.key\"\n\
         touch {started}\n\
         while [ ! -e {stop} ]; do sleep 0.05; done\n\
         cat \"$d/tls.key\"\necho end\n",
        hup = hup.display(),
        started = started.display(),
        stop = stop.display()
    )
}

/// The serials the app printed at start and at its reload.
fn printed_serials(stdout: &str) -> (String, String) {
    let after = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{stdout}"))
            // The serial's hex digits: the masked key printed next may take the
            // line break with it (the piece rule covers PEM armor that every key
            // of its type shares; docs/redact.md).
            .chars()
            .take_while(char::is_ascii_hexdigit)
            .collect::<String>()
    };
    (after("start serial="), after("reloaded serial="))
}

/// No line of `keys` in the app's output or shroud's log; the key printed
/// twice, masked twice.
fn assert_keys_masked(stdout: &str, stderr: &str, keys: &[&str]) {
    // Armor lines are public (shared by every key; docs/redact.md): they show.
    assert!(
        stdout
            .lines()
            .filter(|l| l.contains("PRIVATE KEY"))
            .all(|l| l.starts_with("-----BEGIN ") || l.starts_with("-----END ")),
        "{stdout}"
    );
    for key in keys {
        for line in key.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!stdout.contains(line), "key line leaked: {stdout}");
            assert!(!stderr.contains(line), "key line in shroud's log: {stderr}");
        }
    }
    assert_eq!(stdout.matches("[REDACTED]").count(), 2, "{stdout}");
}

#[test]
fn a_certificate_is_swapped_whole_reissued_before_expiry_masked_and_revoked() {
    let _s = serial();
    let w = PkiWorld::new("on_rotate = \"signal:SIGHUP\"\n");
    let (out, work, cfg) = (&w.out, &w.work, &w.cfg);
    let (started, hup, stop) = (
        work.path().join("started"),
        work.path().join("hup"),
        work.path().join("stop"),
    );
    let app = tls_app(&started, &hup, &stop);
    let child = spawn_started(&mut run_script(cfg, &app), &started);
    let halt = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (dir, work) = (out.path().to_path_buf(), work.path().to_path_buf());
        let (halt, count) = (halt.clone(), count.clone());
        std::thread::spawn(move || poll_certificates(dir, work, halt, count))
    };
    until(
        Duration::from_secs(20),
        "the re-issue and the app's reload",
        || hup.exists().then_some(()),
    );
    until(
        Duration::from_secs(5),
        "the reader to see the re-issue",
        || (count.load(Ordering::Relaxed) >= 2).then_some(()),
    );
    halt.store(true, Ordering::Relaxed);
    let seen = reader.join().unwrap();
    std::fs::write(&stop, "").unwrap();
    let done = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&done.stdout);
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stdout}\n{stderr}");

    eprintln!(
        "reader: {} consistent samples, {} of a retired directory being wiped",
        seen.samples, seen.retired
    );
    assert_eq!(
        seen.missing, 0,
        "the directory was absent while being replaced"
    );
    assert!(seen.samples > 100, "too few samples: {}", seen.samples);
    assert_eq!(
        seen.issuances.len(),
        2,
        "one re-issue expected in ~8 s of a 12 s certificate"
    );
    let (t1, first, s1) = &seen.issuances[0];
    let (t2, second, s2) = &seen.issuances[1];
    assert_ne!(s1, s2);
    assert_ne!(first.key, second.key);
    // Default reissue_at 2/3 (less up to 10% jitter) of 12 s: 7.2 to 8 s after
    // issue; the first issuance was seen shortly after it was written.
    let gap = t2.duration_since(*t1);
    assert!(
        gap > Duration::from_secs(6) && gap < Duration::from_secs(10),
        "re-issued after {gap:?}"
    );
    assert_eq!(printed_serials(&stdout), (s1.clone(), s2.clone()));
    assert_keys_masked(&stdout, &stderr, &[&first.key, &second.key]);
    w.assert_clean(&[s1, s2]);
}

#[test]
fn agent_and_exec_hand_over_a_reissued_certificate_and_its_reload() {
    let _s = serial();
    let port = free_port();
    let w = PkiWorld::new(&format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"));
    let dir = w.out.path();
    let log = w.path("agent.log");
    let mut agent = spawn_agent(&w.cfg, &log);
    until(Duration::from_secs(20), "ready", || {
        dir.join(".shroud/ready").exists().then_some(())
    });
    let (started, hup, stop) = (w.path("started"), w.path("hup"), w.path("stop"));
    let exec = spawn_started(
        shroud()
            .args(["exec", "--secrets-dir"])
            .arg(dir)
            .args(["--on-rotate", "signal:SIGHUP", "--", "sh", "-c"])
            .arg(tls_app(&started, &hup, &stop))
            .env("SHROUD_SECRETS_DIR", dir),
        &started,
    );
    let first_key = std::fs::read_to_string(dir.join("tls/tls.key")).unwrap();
    // The expiry gauge follows the certificate: within its 12 s.
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let (status, metrics) = shroud_e2e::http::get(addr, "/metrics");
    assert_eq!(status, 200);
    let left = shroud_e2e::http::sample(&metrics, "shroud_lease_expiry_seconds{secret=\"tls\"}");
    assert!(
        left.is_some_and(|s| s > 0.0 && s <= 12.0),
        "{left:?}\n{metrics}"
    );
    // The re-issued directory reaches exec through `.shroud/values` and its ack;
    // the swap of the directory is what exec's watch reports as a rotation.
    until(
        Duration::from_secs(20),
        "the re-issue and the app's reload",
        || hup.exists().then_some(()),
    );
    let second_key = std::fs::read_to_string(dir.join("tls/tls.key")).unwrap();
    assert_ne!(first_key, second_key);
    std::fs::write(&stop, "").unwrap();
    let done = exec.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&done.stdout);
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stdout}\n{stderr}");
    // exec's exit marker stops the agent, which wipes and revokes.
    let status = wait_with_deadline(&mut agent, Duration::from_secs(10));
    let agent_log = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{agent_log}");
    let (s1, s2) = printed_serials(&stdout);
    assert_ne!(s1, s2);
    assert_keys_masked(
        &stdout,
        &format!("{stderr}{agent_log}"),
        &[&first_key, &second_key],
    );
    // The exit marker is exec's file, left for whoever restarts the agent.
    std::fs::remove_file(dir.join(".shroud/exited")).unwrap();
    // The first certificate was retired by the re-issue: revoked when its
    // grace ended or at shutdown, unless the grace (capped by the certificate's
    // 12 s) ran to its end first, when Vault no longer records a revocation.
    assert!(
        w.bao.revocation_time(&s1).is_some() || w.expired(&s1),
        "retired certificate {s1} neither revoked nor expired\n{agent_log}"
    );
    w.assert_clean(&[&s2]);
}

/// The serial of the certificate in `<dir>/tls.crt`, as openssl prints it.
fn serial_in(dir: &Path) -> String {
    tool(
        dir,
        "openssl",
        &["x509", "-in", "tls.crt", "-noout", "-serial"],
    )
    .trim()
    .trim_start_matches("serial=")
    .to_string()
}

#[test]
fn a_restarted_agent_keeps_a_still_valid_certificate_and_revokes_it_at_exit() {
    use nix::sys::signal::Signal;
    use std::os::unix::fs::MetadataExt as _;

    let _s = serial();
    let state = Tmpfs::new();
    // 60 s: re-issue falls due 36 to 40 s after issue, long after this test.
    let w = PkiWorld::with_max_ttl(
        "60s",
        &format!("[state]\ndir = \"{}\"\n", state.path().display()),
    );
    let log_text =
        |n: usize| std::fs::read_to_string(w.path(&format!("agent-{n}.log"))).unwrap_or_default();
    // Agent `n` (its log `agent-<n>.log`), once it has rendered or adopted.
    let start = |n: usize| {
        let mut agent = spawn_agent(&w.cfg, &w.path(&format!("agent-{n}.log")));
        until(Duration::from_secs(30), "the agent to render", || {
            if let Some(status) = agent.try_wait().unwrap() {
                panic!("the agent exited {status}: {}", log_text(n));
            }
            log_text(n).contains("secrets rendered").then_some(())
        });
        agent
    };
    let tls = w.out.path().join("tls");
    let mut first = start(1);
    let (serial, key, ino) = (
        serial_in(&tls),
        std::fs::read(tls.join("tls.key")).unwrap(),
        std::fs::metadata(&tls).unwrap().ino(),
    );
    let issued = w.issued();
    assert!(
        issued
            .iter()
            .any(|s| s.replace(':', "").eq_ignore_ascii_case(&serial)),
        "{serial} not in {issued:?}"
    );
    shroud_e2e::process::signal(&first, Signal::SIGKILL);
    first.wait().unwrap();

    let mut second = start(2);
    let text = log_text(2);
    assert!(
        text.contains("kept the previous agent's certificate")
            && text.contains("adopted the previous agent's state"),
        "{text}"
    );
    // The same certificate and key, in the same directory, and nothing issued.
    assert_eq!(serial_in(&tls), serial);
    assert_eq!(std::fs::read(tls.join("tls.key")).unwrap(), key);
    assert_eq!(
        std::fs::metadata(&tls).unwrap().ino(),
        ino,
        "the directory was replaced"
    );
    assert_eq!(w.issued(), issued, "a certificate was issued on restart");
    assert!(w.bao.revocation_time(&serial).is_none());

    shroud_e2e::process::signal(&second, Signal::SIGTERM);
    let status = wait_with_deadline(&mut second, Duration::from_secs(20));
    assert!(status.success(), "{status}: {}", log_text(2));
    assert!(
        !tls.exists(),
        "the certificate directory outlived the agent"
    );
    // The adopted serial was revoked as the agent's own; the state is gone.
    w.assert_clean(&[&serial]);
    assert_eq!(w.issued(), issued);
    assert_eq!(std::fs::read_dir(state.path()).unwrap().count(), 0);
    let text = log_text(1) + &log_text(2);
    for line in String::from_utf8_lossy(&key)
        .lines()
        .filter(|l| !l.starts_with("-----"))
    {
        assert!(!text.contains(line), "key line in the log");
    }
}

#[test]
fn revoke_certificates_false_leaves_the_certificate_valid_but_wipes_it() {
    let _s = serial();
    let w = PkiWorld::new("revoke_certificates = false\n");
    let serial_file = w.path("serial");
    let done = run_with_input(
        &mut run_script(
            &w.cfg,
            &format!(
                "openssl x509 -in \"$SHROUD_SECRETS_DIR/tls/tls.crt\" -noout -serial > {}",
                serial_file.display()
            ),
        ),
        b"",
        Duration::from_secs(30),
    );
    assert!(done.status.success(), "{}", done.err());
    let serial = std::fs::read_to_string(&serial_file).unwrap();
    let serial = serial.trim().trim_start_matches("serial=");
    assert_eq!(
        w.bao.revocation_time(serial),
        None,
        "revoked despite the setting"
    );
    assert_eq!(leftovers(w.out.path()), Vec::<String>::new());
    assert_eq!(w.bao.accessors().len(), 1, "only the root token may remain");
}

#[test]
fn ssh_signing_is_a_write_with_params_and_params_file() {
    let _s = serial();
    require_tool("ssh-keygen", "apt-get install openssh-client");
    let bao = OpenBao::start();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let out = Tmpfs::new();
    bao.bao(&["secrets", "enable", "ssh"]);
    bao.bao(&["write", "ssh/config/ca", "generate_signing_key=true"]);
    bao.bao(&[
        "write",
        "ssh/roles/app",
        "key_type=ca",
        "allow_user_certificates=true",
        "allowed_users=app",
        "default_user=app",
        "ttl=1h",
    ]);
    bao.policy("ssh", &format!("{SHROUD_POLICY}{WRITE_POLICY}"), w);
    let token = token_file(&bao, "ssh", w);
    tool(
        w,
        "ssh-keygen",
        &[
            "-q", "-t", "ed25519", "-N", "", "-C", "app@test", "-f", "id",
        ],
    );
    let cfg = w.join("shroud.toml");
    std::fs::write(
        &cfg,
        format!(
            "[vault]\naddress = \"{}\"\n[auth]\nmethod = \"token\"\ntoken_file = \"{}\"\n\
             [output]\ndir = \"{}\"\n\
             [[secret]]\nname = \"id-cert.pub\"\npath = \"ssh/sign/app\"\nfield = \"signed_key\"\n\
             params = {{ valid_principals = \"app\", cert_type = \"user\" }}\n\
             params_file = {{ public_key = \"{}\" }}\n",
            bao.addr,
            token.display(),
            out.path().display(),
            w.join("id.pub").display()
        ),
    )
    .unwrap();
    let copy = w.join("copy-cert.pub");
    let done = run_with_input(
        shroud().arg("run").arg("--config").arg(&cfg).args([
            "--",
            "sh",
            "-c",
            &format!(
                "cp \"$SHROUD_SECRETS_DIR/id-cert.pub\" {}; cat \"$SHROUD_SECRETS_DIR/id-cert.pub\"",
                copy.display()
            ),
        ]),
        b"",
        Duration::from_secs(30),
    );
    assert!(done.status.success(), "{}", done.err());
    assert_eq!(done.out().trim(), "[REDACTED]");
    let listing = tool(w, "ssh-keygen", &["-L", "-f", copy.to_str().unwrap()]);
    assert!(
        listing.contains("ssh-ed25519-cert-v01@openssh.com user certificate"),
        "{listing}"
    );
    let principals = listing
        .split("Principals:")
        .nth(1)
        .and_then(|rest| rest.lines().nth(1))
        .map(str::trim);
    assert_eq!(principals, Some("app"), "{listing}");
    // Signed for our key, by OpenBao's SSH CA.
    let fingerprint = |file: &str| {
        tool(w, "ssh-keygen", &["-l", "-f", file])
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    };
    let ours = fingerprint("id.pub");
    std::fs::write(
        w.join("ca.pub"),
        bao.bao(&["read", "-field=public_key", "ssh/config/ca"]),
    )
    .unwrap();
    let ca = fingerprint("ca.pub");
    assert!(
        listing.contains(&format!("Public key: ED25519-CERT {ours}")),
        "{listing}"
    );
    assert!(
        listing.contains(&format!("Signing CA: RSA {ca}")),
        "{listing}"
    );
    assert_eq!(leftovers(out.path()), Vec::<String>::new());
    assert_eq!(bao.accessors().len(), 1, "only the root token may remain");
}

/// A client CA, and a client certificate and key it signed, made with openssl.
fn client_certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let ca = format!("{name}-ca");
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut args = vec!["req", "-x509"];
    args.extend(ec);
    let (ca_key, ca_crt) = (format!("{ca}.key"), format!("{ca}.crt"));
    let subject = format!("/CN={ca}");
    args.extend([
        "-keyout", &ca_key, "-out", &ca_crt, "-subj", &subject, "-days", "1",
    ]);
    tool(dir, "openssl", &args);
    let (key, csr, crt) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
    );
    let mut args = vec!["req"];
    args.extend(ec);
    let subject = format!("/CN={name}.shroud.test");
    args.extend(["-keyout", &key, "-out", &csr, "-subj", &subject]);
    tool(dir, "openssl", &args);
    std::fs::write(dir.join("ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    tool(
        dir,
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_crt,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "1",
            "-extfile",
            "ext",
        ],
    );
    (dir.join(ca_crt), dir.join(crt), dir.join(key))
}

#[test]
fn cert_login_over_tls_with_the_vault_environment_conventions() {
    let _s = serial();
    require_tool("openssl", "apt-get install openssl");
    let bao = OpenBao::start_tls();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let out = Tmpfs::new();
    bao.bao(&["kv", "put", "secret/app", &format!("api_key={API_KEY}")]);
    bao.policy("shroud", SHROUD_POLICY, w);
    let (client_ca, client_crt, client_key) = client_certificate(w, "app");
    let (_, stranger_crt, stranger_key) = client_certificate(w, "stranger");
    bao.bao(&["auth", "enable", "cert"]);
    bao.bao(&[
        "write",
        "auth/cert/certs/app",
        "display_name=app",
        "token_policies=shroud",
        "token_ttl=1h",
        &format!("certificate=@{}", client_ca.display()),
    ]);
    let server_ca = bao.ca_cert.clone().unwrap();
    let refused = "https://127.0.0.1:1";
    let secret = "[[secret]]\nname = \"api-key\"\npath = \"secret/app\"\nkind = \"kv2\"\nfield = \"api_key\"\n";
    let config = |vault: &str, auth: &str| {
        let p = w.join("shroud.toml");
        std::fs::write(
            &p,
            format!(
                "[vault]\ntimeout = \"2s\"\n{vault}[auth]\nmethod = \"cert\"\nname = \"app\"\n{auth}\
                 [output]\ndir = \"{}\"\n{secret}[lifecycle]\nstartup_timeout = \"1s\"\n",
                out.path().display()
            ),
        )
        .unwrap();
        p
    };
    let run = |cfg: &Path, env: &[(&str, &str)]| {
        let mut cmd = shroud();
        for (k, _) in std::env::vars() {
            if k.starts_with("VAULT_") || k.starts_with("BAO_") || k.starts_with("SHROUD_") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("run")
            .arg("--config")
            .arg(cfg)
            .args([
                "--",
                "sh",
                "-c",
                "cat \"$SHROUD_SECRETS_DIR/api-key\"; echo",
            ])
            .envs(env.iter().copied());
        run_with_input(&mut cmd, b"", Duration::from_secs(30))
    };
    let (ca, crt, key) = (
        server_ca.to_str().unwrap(),
        client_crt.to_str().unwrap(),
        client_key.to_str().unwrap(),
    );
    let from_env = [
        ("VAULT_ADDR", refused),
        ("BAO_ADDR", bao.addr.as_str()),
        ("VAULT_CACERT", ca),
        ("VAULT_CLIENT_CERT", crt),
        ("VAULT_CLIENT_KEY", key),
    ];
    // Everything about Vault from the environment; BAO_ADDR wins over VAULT_ADDR.
    let done = run(&config("", ""), &from_env);
    assert!(done.status.success(), "{}", done.err());
    assert_eq!(done.out(), "[REDACTED]\n");
    assert_eq!(
        bao.accessors().len(),
        1,
        "the cert login's token was not revoked"
    );
    assert_eq!(leftovers(out.path()), Vec::<String>::new());

    // The file wins over the conventions...
    let in_file = config(
        &format!("address = \"{}\"\nca_cert = \"{ca}\"\n", bao.addr),
        &format!("client_cert = \"{crt}\"\nclient_key = \"{key}\"\n"),
    );
    let done = run(
        &in_file,
        &[("BAO_ADDR", refused), ("VAULT_CLIENT_CERT", "/nonexistent")],
    );
    assert!(done.status.success(), "{}", done.err());
    // ...and SHROUD_* wins over the file.
    let done = run(&in_file, &[("SHROUD_VAULT_ADDRESS", refused)]);
    assert_eq!(done.status.code(), Some(1), "{}", done.err());
    assert!(
        done.err().contains("127.0.0.1:1 is unreachable"),
        "{}",
        done.err()
    );

    // A certificate from a CA the cert role does not trust: refused at once.
    let stranger = config(
        &format!("address = \"{}\"\nca_cert = \"{ca}\"\n", bao.addr),
        &format!(
            "client_cert = \"{}\"\nclient_key = \"{}\"\n",
            stranger_crt.display(),
            stranger_key.display()
        ),
    );
    let done = run(&stranger, &[]);
    assert_eq!(done.status.code(), Some(1), "{}", done.err());
    assert!(done.err().contains("cert login failed"), "{}", done.err());
    assert_eq!(bao.accessors().len(), 1);
    assert_eq!(leftovers(out.path()), Vec::<String>::new());
}

#[test]
fn config_validate_names_bad_params_and_certificate_paths() {
    require_tool("openssl", "apt-get install openssl");
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let (_, crt, key) = client_certificate(w, "app");
    std::fs::write(w.join("id.pub"), "ssh-ed25519 AAAA app@test\n").unwrap();
    std::fs::write(w.join("not-pem"), "just text\n").unwrap();
    let head = |auth: &str| {
        format!(
            "[vault]\naddress = \"https://127.0.0.1:8200\"\n[auth]\n{auth}\n[output]\ndir = \"/run/s\"\n"
        )
    };
    let approle = "method = \"approle\"\nrole_id_file = \"/r\"\nsecret_id_file = \"/s\"\n";
    let pki = |extra: &str| {
        format!("[[secret]]\nname = \"tls\"\npath = \"pki/issue/web\"\nkind = \"pki\"\n{extra}")
    };
    let cert_auth = |cert: &Path, key: &Path| {
        format!(
            "method = \"cert\"\nclient_cert = \"{}\"\nclient_key = \"{}\"\n",
            cert.display(),
            key.display()
        )
    };
    let good_secret = pki("params = { common_name = \"a.example.test\", ttl = \"1h\" }\n");
    let cases: Vec<(String, &str)> = vec![
        (
            head(approle) + &pki("params = { ttl = \"1h\" }\n"),
            "[[secret]] #1 (tls) params.common_name: is required",
        ),
        (
            head(approle) + &pki("params = { common_name = \"a\", ttl = \"soon\" }\n"),
            "[[secret]] #1 (tls) params.ttl: must be whole seconds or a duration",
        ),
        (
            head(approle) + &pki("params = { common_name = \"a\", alt_names = { x = 1 } }\n"),
            "[[secret]] #1 (tls) params.alt_names: must be a string, number, boolean or list, not table",
        ),
        (
            head(approle) + &pki("params = { common_name = \"a\" }\nformat = \"json\"\n"),
            "[[secret]] #1 (tls) format: a pki secret is written as a directory",
        ),
        (
            head(approle) + &pki("params = { common_name = \"a\" }\nreissue_at = 1.5\n"),
            "[[secret]] #1 (tls) reissue_at: must be a fraction between 0 and 1",
        ),
        (
            head(approle)
                + "[[secret]]\nname = \"tls\"\npath = \"pki/cert/web\"\nkind = \"pki\"\nparams = { common_name = \"a\" }\n",
            "[[secret]] #1 (tls) path: `pki/cert/web` is not a PKI issue path",
        ),
        (
            head(approle)
                + "[[secret]]\nname = \"kv\"\npath = \"secret/app\"\nkind = \"kv2\"\nparams = { version = 2 }\n",
            "[[secret]] #1 (kv) params: turns the read into a write",
        ),
        (
            head(approle)
                + "[[secret]]\nname = \"ssh\"\npath = \"ssh/sign/app\"\nparams_file = { public_key = \"/nonexistent/id.pub\" }\n",
            "[[secret]] #1 (ssh) params_file.public_key: cannot read /nonexistent/id.pub",
        ),
        (
            head(&cert_auth(&w.join("missing.crt"), &key)) + &good_secret,
            "[auth] client_cert: cannot read",
        ),
        (
            head(&cert_auth(&crt, &w.join("not-pem"))) + &good_secret,
            "[auth] client_key: ",
        ),
        (
            head(&cert_auth(&w.join("not-pem"), &key)) + &good_secret,
            "holds no usable PEM certificate",
        ),
        (
            head("method = \"cert\"\n") + &good_secret,
            "[auth] client_cert: is required",
        ),
        (
            head(&cert_auth(&crt, &key)).replace("https://", "http://") + &good_secret,
            "[vault] address: method = \"cert\" logs in with a TLS client certificate",
        ),
    ];
    for (text, expected) in cases {
        let f = w.join("bad.toml");
        std::fs::write(&f, &text).unwrap();
        let done = run_with_input(
            shroud().args(["config", "validate"]).arg(&f),
            b"",
            Duration::from_secs(10),
        );
        assert_eq!(done.status.code(), Some(64), "{text}\n{}", done.err());
        assert!(
            done.err().contains(expected),
            "expected `{expected}` in:\n{}\nfor:\n{text}",
            done.err()
        );
    }
    // And the good ones pass.
    let good = head(&cert_auth(&crt, &key))
        + &good_secret
        + &format!(
            "[[secret]]\nname = \"ssh\"\npath = \"ssh/sign/app\"\nfield = \"signed_key\"\n\
             params = {{ valid_principals = \"app\" }}\nparams_file = {{ public_key = \"{}\" }}\n",
            w.join("id.pub").display()
        );
    let f = w.join("good.toml");
    std::fs::write(&f, &good).unwrap();
    let done = run_with_input(
        shroud().args(["config", "validate"]).arg(&f),
        b"",
        Duration::from_secs(10),
    );
    assert!(done.status.success(), "{}\n{good}", done.err());
}
