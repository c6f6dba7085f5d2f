//! `shroud agent` and `shroud run` against a real OpenBao dev server and a real
//! PostgreSQL 15 cluster: rendering, masking, renewal, rotation before max TTL,
//! outages, clean-up after every way the workload can end, auth methods, errors,
//! and the process memory after a rotation.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use shroud_e2e::openbao::OpenBao;
use shroud_e2e::world::*;
use shroud_e2e::*;

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[test]
fn run_masks_and_cleans_up_however_the_command_ends() {
    let _s = serial();
    let w = World::new(Some(("1m", "5m")));
    let auth = w.approle_auth();
    let cfg = w.config(&auth, &format!("{DB_SECRET}{KV_SECRET}"));
    let port = w.pg().port;
    // The app prints its credentials raw, in base64, inside JSON and in a URL,
    // logs in with them, then ends in one of four ways.
    let app = format!(
        r#". "$SHROUD_SECRETS_DIR/db.env"
echo "user=$USERNAME password=$PASSWORD"
printf '%s' "$PASSWORD" | base64
printf '{{"password":"%s","api":"%s"}}\n' "$PASSWORD" "$(cat "$SHROUD_SECRETS_DIR/api-key")"
echo "postgresql://$USERNAME:$PASSWORD@127.0.0.1:{port}/postgres"
PGPASSWORD="$PASSWORD" psql -X -At -h 127.0.0.1 -p {port} -U "$USERNAME" -d postgres -c 'select 1' >/dev/null && echo login-ok
cp "$SHROUD_SECRETS_DIR/db.env" "{seen}"
"#,
        seen = w.path("seen.env").display()
    );
    let end_file = w.path("end");
    let cases: [(&str, String, i32); 4] = [
        (
            "exit 0",
            format!("date +%s%N > {0}; exit 0", end_file.display()),
            0,
        ),
        (
            "exit 7",
            format!("date +%s%N > {0}; exit 7", end_file.display()),
            7,
        ),
        (
            "SIGKILL",
            format!("date +%s%N > {0}; kill -KILL $$", end_file.display()),
            137,
        ),
        (
            "shroud SIGTERMed",
            format!("touch {0}.started; exec sleep 60", end_file.display()),
            143,
        ),
    ];
    for (what, ending, code) in cases {
        let _ = std::fs::remove_file(&end_file);
        let _ = std::fs::remove_file(w.path("end.started"));
        let mut child = shroud()
            .arg("run")
            .arg("--config")
            .arg(&cfg)
            .arg("--")
            .args(["sh", "-c", &format!("{app}{ending}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn_guarded();
        if what == "shroud SIGTERMed" {
            until(Duration::from_secs(20), "the command to start", || {
                w.path("end.started").exists().then_some(())
            });
            std::fs::write(&end_file, now_ns().to_string()).unwrap();
            sigterm(&child);
        }
        let status = wait_with_deadline(&mut child, Duration::from_secs(30));
        let exited_at = now_ns();
        let ended: u128 = std::fs::read_to_string(&end_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let mut stdout = String::new();
        let mut stderr = String::new();
        use std::io::Read as _;
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert_eq!(
            status.code(),
            Some(code),
            "{what}: exit code; stderr: {stderr}"
        );
        let elapsed = Duration::from_nanos((exited_at - ended) as u64);
        assert!(
            elapsed < Duration::from_secs(1),
            "{what}: shroud took {elapsed:?} to clean up"
        );
        let seen = std::fs::read_to_string(w.path("seen.env")).unwrap();
        let (user, password) = (env_value(&seen, "USERNAME"), env_value(&seen, "PASSWORD"));
        assert!(
            stdout.contains("login-ok"),
            "{what}: the credentials worked: {stdout}"
        );
        assert!(
            !stdout.contains(&password),
            "{what}: password leaked: {stdout}"
        );
        assert!(!stdout.contains(API_KEY), "{what}: api key leaked");
        assert!(!stdout.contains(&user), "{what}: username leaked");
        assert!(
            stdout.matches("[REDACTED]").count() >= 6,
            "{what}: {stdout}"
        );
        assert!(
            !stderr.contains(&password),
            "{what}: password in shroud's log"
        );
        w.assert_clean(&[user]);
    }
}

#[test]
fn dynamic_credentials_are_renewed_then_replaced_before_max_ttl() {
    let _s = serial();
    let w = World::new(Some(("2s", "6s")));
    let auth = w.approle_auth();
    let cfg = w.config(&auth, DB_SECRET);
    let log = w.path("agent.log");
    let mut agent = spawn_agent(&cfg, &log);
    let pg = w.pg();
    let mut users: Vec<String> = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        if let Some(text) = w.file("db.env") {
            let user = env_value(&text, "USERNAME");
            if users.last() != Some(&user) {
                let pw = env_value(&text, "PASSWORD");
                assert!(pg.can_login(&user, &pw), "new credentials {user} log in");
                if let Some(old) = users.last() {
                    let old = old.clone();
                    until(Duration::from_secs(2), "the old role to be revoked", || {
                        (!pg.role_exists(&old)).then_some(())
                    });
                }
                users.push(user);
            }
        }
        assert!(
            agent.try_wait().unwrap().is_none(),
            "agent died: {}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        users.len() >= 2,
        "credentials were replaced: {users:?}\n{text}"
    );
    assert!(text.contains("lease renewed"), "{text}");
    assert!(text.contains("max TTL"), "{text}");
    sigterm(&agent);
    let t = Instant::now();
    let status = wait_with_deadline(&mut agent, Duration::from_secs(10));
    assert!(status.success());
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    w.assert_clean(&users);
}

#[test]
fn survives_a_vault_outage_and_removes_expired_credentials() {
    let _s = serial();
    let w = World::new(Some(("4s", "10m")));
    let auth = w.approle_auth();
    let cfg = w.config(&auth, DB_SECRET);
    let log = w.path("agent.log");
    let mut agent = spawn_agent(&cfg, &log);
    let pg = w.pg();
    let first = until(Duration::from_secs(20), "first render", || w.file("db.env"));
    let (user, pw) = (env_value(&first, "USERNAME"), env_value(&first, "PASSWORD"));
    w.bao.freeze();
    // While Vault is down the last good credentials stay and keep working…
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(w.file("db.env").as_deref(), Some(first.as_str()));
    assert!(pg.can_login(&user, &pw));
    // …until their lease really runs out; then the file goes.
    until(
        Duration::from_secs(10),
        "the expired file to be removed",
        || w.file("db.env").is_none().then_some(()),
    );
    assert!(
        agent.try_wait().unwrap().is_none(),
        "agent must keep running"
    );
    w.bao.thaw();
    let next = until(
        Duration::from_secs(40),
        "new credentials after the outage",
        || {
            w.file("db.env")
                .filter(|t| env_value(t, "USERNAME") != user)
        },
    );
    let (user2, pw2) = (env_value(&next, "USERNAME"), env_value(&next, "PASSWORD"));
    assert!(pg.can_login(&user2, &pw2));
    sigterm(&agent);
    assert!(wait_with_deadline(&mut agent, Duration::from_secs(10)).success());
    // The first lease expired inside Vault; Vault drops its role on its own schedule.
    until(
        Duration::from_secs(10),
        "Vault to expire the first role",
        || (!pg.role_exists(&user)).then_some(()),
    );
    w.assert_clean(&[user, user2]);
}

fn run_cat(w: &World, cfg: &Path) -> Finished {
    run_with_input(
        shroud().arg("run").arg("--config").arg(cfg).args([
            "--",
            "sh",
            "-c",
            "cat \"$SHROUD_SECRETS_DIR/api-key\"; echo",
        ]),
        b"",
        Duration::from_secs(30),
    )
    .also(|f| {
        let _ = w;
        let _ = f;
    })
}

trait Also: Sized {
    fn also(self, f: impl FnOnce(&Self)) -> Self {
        f(&self);
        self
    }
}
impl Also for Finished {}

/// `sub`, `aud` and `iss` claims signed RS256 with `key`, via openssl.
fn jwt(key: &Path, dir: &Path) -> String {
    let script = format!(
        r#"set -e
b64() {{ openssl base64 -A | tr '+/' '-_' | tr -d '='; }}
now=$(date +%s)
h=$(printf '{{"alg":"RS256","typ":"JWT"}}' | b64)
p=$(printf '{{"sub":"system:serviceaccount:default:app","aud":"shroud","iss":"shroud-test","iat":%s,"exp":%s}}' $now $((now+600)) | b64)
s=$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -sign {key} | b64)
printf '%s.%s.%s' "$h" "$p" "$s""#,
        key = key.display()
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_auth_method_logs_in_renders_and_revokes() {
    let _s = serial();
    require_tool("openssl", "apt-get install openssl");
    let w = World::new(None);
    // token: a child token with the shroud policy.
    let token = w.bao.bao(&[
        "token",
        "create",
        "-policy=shroud",
        "-ttl=1h",
        "-field=token",
    ]);
    std::fs::write(w.path("token"), token.trim()).unwrap();
    // jwt and kubernetes: the JWT method with a locally generated RSA key; the
    // kubernetes method is the same JWT method mounted at `kubernetes` (shroud's
    // kubernetes login sends the service-account JWT and role exactly as
    // OpenBao's kubernetes method expects; the token review is what is stood in for).
    let key = w.path("key.pem");
    let pubkey = w.path("pub.pem");
    let st = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .output()
        .unwrap();
    assert!(st.status.success());
    let st = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&pubkey)
        .output()
        .unwrap();
    assert!(st.status.success());
    for mount in ["jwt", "kubernetes"] {
        w.bao
            .bao(&["auth", "enable", &format!("-path={mount}"), "jwt"]);
        w.bao.bao(&[
            "write",
            &format!("auth/{mount}/config"),
            &format!("jwt_validation_pubkeys=@{}", pubkey.display()),
            "bound_issuer=shroud-test",
        ]);
        w.bao.bao(&[
            "write",
            &format!("auth/{mount}/role/app"),
            "role_type=jwt",
            "user_claim=sub",
            "bound_audiences=shroud",
            "token_policies=shroud",
            "token_ttl=1h",
        ]);
    }
    std::fs::write(w.path("sa-token"), jwt(&key, w.work.path())).unwrap();
    let jwt_auth = |method: &str| {
        format!(
            "[auth]\nmethod = \"{method}\"\nrole = \"app\"\njwt_path = \"{}\"\n",
            w.path("sa-token").display()
        )
    };
    let methods = [
        (
            "token",
            format!(
                "[auth]\nmethod = \"token\"\ntoken_file = \"{}\"\n",
                w.path("token").display()
            ),
        ),
        ("approle", w.approle_auth()),
        ("jwt", jwt_auth("jwt")),
        ("kubernetes", jwt_auth("kubernetes")),
    ];
    for (method, auth) in methods {
        let cfg = w.config(&auth, KV_SECRET);
        let done = run_cat(&w, &cfg);
        assert!(done.status.success(), "{method}: {}", done.err());
        assert_eq!(done.out(), "[REDACTED]\n", "{method}");
        assert!(
            done.err().contains(&format!("\"method\":\"{method}\"")),
            "{method}: {}",
            done.err()
        );
        w.assert_clean(&[]);
    }
    assert!(
        !w.bao.token_valid(token.trim()),
        "the token-method token was revoked"
    );
}

#[test]
fn vault_errors_are_named_and_nothing_is_left_behind() {
    let _s = serial();
    let w = World::new(None);
    let auth = w.approle_auth();
    let cases = [
        (
            "unknown path",
            "secret/missing",
            "kv2",
            "nothing found at Vault path secret/data/missing",
        ),
        (
            "denied",
            "database/roles/app",
            "generic",
            "permission denied",
        ),
    ];
    for (what, path, kind, expect) in cases {
        let cfg = w.config(
            &auth,
            &format!("{KV_SECRET}[[secret]]\nname = \"x\"\npath = \"{path}\"\nkind = \"{kind}\"\n"),
        );
        let done = run_cat(&w, &cfg);
        assert_eq!(done.status.code(), Some(1), "{what}: {}", done.err());
        assert!(
            done.err().contains(&format!("secret `x` ({path})")),
            "{what}: {}",
            done.err()
        );
        assert!(done.err().contains(expect), "{what}: {}", done.err());
        w.assert_clean(&[]);
    }
    // A bad AppRole secret_id: the login error names the method.
    std::fs::write(w.path("secret-id"), "00000000-0000-0000-0000-000000000000").unwrap();
    let cfg = w.config(&auth, KV_SECRET);
    let done = run_cat(&w, &cfg);
    assert_eq!(done.status.code(), Some(1));
    assert!(
        done.err().contains("approle login failed"),
        "{}",
        done.err()
    );
}

/// Each path segment reaches Vault as the text that was configured: `%2e%2e` and
/// `\..\` are not turned into `..` on the way (they would read `secret/app`),
/// and a segment with a space or `%` is read from its own key.
#[test]
fn path_segments_reach_vault_as_written() {
    let _s = serial();
    let w = World::new(None);
    let auth = w.approle_auth();
    w.bao.bao(&[
        "kv",
        "put",
        "secret/shop/odd name%",
        "api_key=odd-key-4f2a9c",
    ]);
    let cfg = w.config(
        &auth,
        "[[secret]]\nname = \"api-key\"\npath = \"secret/data/shop/odd name%\"\nkind = \"kv2\"\nfield = \"api_key\"\n",
    );
    let done = run_cat(&w, &cfg);
    assert_eq!(done.status.code(), Some(0), "{}", done.err());
    assert_eq!(done.out().trim(), "[REDACTED]", "{}", done.err());
    for path in [
        "secret/data/shop/%2e%2e/app",
        "secret/data/shop/.%2E/app",
        "secret/data/shop\\..\\app",
    ] {
        let cfg = w.config(
            &auth,
            &format!("[[secret]]\nname = \"api-key\"\npath = '{path}'\nkind = \"kv2\"\nfield = \"api_key\"\n"),
        );
        let done = run_cat(&w, &cfg);
        assert_eq!(done.status.code(), Some(1), "{path}: {}", done.err());
        assert!(
            done.err().contains("nothing found at Vault path"),
            "{path}: {}",
            done.err()
        );
        assert!(!done.out().contains(API_KEY) && !done.err().contains(API_KEY));
        w.assert_clean(&[]);
    }
}

/// Every readable mapping of `pid` (as root, through /proc/PID/mem).
fn process_memory_contains(pid: u32, needle: &[u8]) -> bool {
    use std::os::unix::fs::FileExt as _;
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut buf = Vec::new();
    for line in maps.lines() {
        let mut parts = line.split_whitespace();
        let range = parts.next().unwrap();
        let perms = parts.next().unwrap();
        if !perms.starts_with('r') || line.ends_with("[vvar]") || line.ends_with("[vsyscall]") {
            continue;
        }
        let (a, b) = range.split_once('-').unwrap();
        let (a, b) = (
            u64::from_str_radix(a, 16).unwrap(),
            u64::from_str_radix(b, 16).unwrap(),
        );
        buf.resize((b - a) as usize, 0);
        if mem.read_exact_at(&mut buf, a).is_ok() && contains(&buf, needle) {
            return true;
        }
    }
    false
}

#[test]
fn a_retired_value_is_gone_from_process_memory() {
    let _s = serial();
    let w = World::new(None);
    let auth = w.approle_auth();
    let old = "retired-value-7c1d2e3f4a5b6c7d";
    let new = "current-value-0a9b8c7d6e5f4a3b";
    w.bao
        .bao(&["kv", "put", "secret/mem", &format!("token={old}")]);
    let cfg = w.config(
        &auth,
        "[[secret]]\nname = \"mem\"\npath = \"secret/mem\"\nkind = \"kv2\"\nfield = \"token\"\nrefresh = \"300ms\"\n\
         [redact]\nretain = \"1s\"\n",
    );
    let log = w.path("agent.log");
    let mut agent = spawn_agent(&cfg, &log);
    until(Duration::from_secs(20), "first render", || {
        (w.file("mem").as_deref() == Some(old)).then_some(())
    });
    assert!(
        process_memory_contains(agent.id(), old.as_bytes()),
        "the reader finds live values"
    );
    w.bao
        .bao(&["kv", "put", "secret/mem", &format!("token={new}")]);
    until(Duration::from_secs(10), "rotation", || {
        (w.file("mem").as_deref() == Some(new)).then_some(())
    });
    // Past the retention window the retired value leaves the redaction set too.
    until(
        Duration::from_secs(10),
        "the retired value to leave the values file",
        || {
            let v = std::fs::read(w.out.path().join(".shroud/values")).ok()?;
            (!contains(&v, base64(old.as_bytes()).as_bytes())).then_some(())
        },
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        process_memory_contains(agent.id(), new.as_bytes()),
        "sanity: the current value is found"
    );
    assert!(
        !process_memory_contains(agent.id(), old.as_bytes()),
        "the retired value survives in the agent's memory"
    );
    sigterm(&agent);
    assert!(wait_with_deadline(&mut agent, Duration::from_secs(10)).success());
    w.assert_clean(&[]);
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

#[test]
fn run_rotation_is_masked_before_the_command_sees_it_and_signals_it() {
    let _s = serial();
    let w = World::new(None);
    let auth = w.approle_auth();
    let (v1, v2) = ("first-kv2-value-5e6f7a8b", "second-kv2-value-1a2b3c4d");
    w.bao
        .bao(&["kv", "put", "secret/rot", &format!("token={v1}")]);
    let cfg = w.config(
        &auth,
        "[[secret]]\nname = \"tok\"\npath = \"secret/rot\"\nkind = \"kv2\"\nfield = \"token\"\nrefresh = \"200ms\"\n\
         [lifecycle]\non_rotate = \"signal:SIGHUP\"\n",
    );
    let started = w.path("started");
    let app = format!(
        "trap 'echo \"reloaded: $(cat \"$SHROUD_SECRETS_DIR/tok\")\"; touch {0}.hup' HUP\n\
         echo \"start: $(cat \"$SHROUD_SECRETS_DIR/tok\")\"; touch {0}\n\
         i=0; while [ ! -e {0}.hup ] && [ $i -lt 300 ]; do sleep 0.05; i=$((i+1)); done; echo done",
        started.display()
    );
    let child = spawn_started(&mut run_script(&cfg, &app), &started);
    w.bao
        .bao(&["kv", "put", "secret/rot", &format!("token={v2}")]);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("start: [REDACTED]"), "{stdout}");
    assert!(stdout.contains("reloaded: [REDACTED]"), "{stdout}");
    assert!(!stdout.contains(v1) && !stdout.contains(v2), "{stdout}");
    w.assert_clean(&[]);
}

#[test]
fn agent_and_exec_hand_over_rotations_and_the_exit_marker_stops_the_agent() {
    let _s = serial();
    let w = World::new(None);
    let auth = w.approle_auth();
    let (v1, v2) = ("exec-first-value-9f8e7d6c", "exec-second-value-3c4d5e6f");
    w.bao
        .bao(&["kv", "put", "secret/rot", &format!("token={v1}")]);
    let cfg = w.config(
        &auth,
        "[[secret]]\nname = \"tok\"\npath = \"secret/rot\"\nkind = \"kv2\"\nfield = \"token\"\nrefresh = \"200ms\"\n",
    );
    let log = w.path("agent.log");
    let mut agent = spawn_agent(&cfg, &log);
    let dir = w.out.path();
    until(Duration::from_secs(20), "ready", || {
        dir.join(".shroud/ready").exists().then_some(())
    });
    let started = w.path("started");
    let app = format!(
        "trap 'echo \"reloaded: $(cat \"$SHROUD_SECRETS_DIR/tok\")\"; touch {0}.hup' HUP\n\
         echo \"start: $(cat \"$SHROUD_SECRETS_DIR/tok\")\"; touch {0}\n\
         i=0; while [ ! -e {0}.hup ] && [ $i -lt 300 ]; do sleep 0.05; i=$((i+1)); done; echo done",
        started.display()
    );
    let exec = spawn_started(
        shroud()
            .args(["exec", "--secrets-dir"])
            .arg(dir)
            .args(["--on-rotate", "signal:SIGHUP", "--", "sh", "-c", &app])
            .env("SHROUD_SECRETS_DIR", dir),
        &started,
    );
    w.bao
        .bao(&["kv", "put", "secret/rot", &format!("token={v2}")]);
    let out = exec.wait_with_output().unwrap();
    let exec_done = Instant::now();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("start: [REDACTED]"), "{stdout}");
    assert!(stdout.contains("reloaded: [REDACTED]"), "{stdout}");
    assert!(!stdout.contains(v1) && !stdout.contains(v2), "{stdout}");
    // exec wrote .shroud/exited; the agent wipes, revokes and leaves on its own.
    let status = wait_with_deadline(&mut agent, Duration::from_secs(10));
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert!(
        exec_done.elapsed() < Duration::from_secs(1),
        "{:?}",
        exec_done.elapsed()
    );
    // A restarted agent (a native sidecar is restarted while the pod lives) must
    // not take the old exit marker for a new one: it renders and keeps rotating.
    assert!(dir.join(".shroud/exited").exists());
    let log2 = w.path("agent2.log");
    let mut again = spawn_agent(&cfg, &log2);
    until(Duration::from_secs(20), "ready after a restart", || {
        dir.join(".shroud/ready").exists().then_some(())
    });
    // Between rotations the agent only wakes for its timers (here a kv re-read
    // every 200 ms, a few ms each in a debug build); a watch reacting to its own
    // file activity would show as a whole core.
    let idle = shroud_e2e::process::cpu_used_during(again.id(), Duration::from_secs(1));
    assert!(idle < 0.25, "{idle} s of CPU in 1 s between rotations");
    let v3 = "exec-third-value-0a1b2c3d";
    w.bao
        .bao(&["kv", "put", "secret/rot", &format!("token={v3}")]);
    until(
        Duration::from_secs(20),
        "the restarted agent to rotate",
        || (std::fs::read_to_string(dir.join("tok")).ok()? == v3).then_some(()),
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(again.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = wait_with_deadline(&mut again, Duration::from_secs(10));
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&log2).unwrap()
    );
    w.assert_clean(&[]);
}

#[test]
fn an_exec_killed_outright_holds_back_no_rotation_and_no_shutdown() {
    // SIGKILL (an OOM kill of the app container): exec cannot remove its ack
    // file, but the kernel drops the lock exec holds on it, so the agent knows.
    let _s = serial();
    let w = World::new(None);
    let auth = w.approle_auth();
    let values = [
        "killed-exec-first-1a2b3c",
        "killed-exec-second-4d5e6f",
        "killed-exec-third-7a8b9c",
    ];
    w.bao
        .bao(&["kv", "put", "secret/k", &format!("token={}", values[0])]);
    let cfg = w.config(
        &auth,
        "[[secret]]\nname = \"tok\"\npath = \"secret/k\"\nkind = \"kv2\"\nfield = \"token\"\nrefresh = \"200ms\"\n\
         [lifecycle]\nhandshake_timeout = \"2s\"\nexit_marker_timeout = \"30s\"\n",
    );
    let log = w.path("agent.log");
    let mut agent = spawn_agent(&cfg, &log);
    let dir = w.out.path();
    until(Duration::from_secs(20), "ready", || {
        dir.join(".shroud/ready").exists().then_some(())
    });
    let mut exec = shroud()
        .args(["exec", "--secrets-dir"])
        .arg(dir)
        .args(["--", "sleep", "60"])
        .stdout(Stdio::null())
        .spawn_guarded();
    until(Duration::from_secs(20), "exec's ack", || {
        (!shroud_e2e::process::acks(dir).is_empty()).then_some(())
    });
    exec.kill().unwrap();
    exec.wait().unwrap();
    assert_eq!(
        shroud_e2e::process::acks(dir).len(),
        1,
        "the dead exec's ack is left behind"
    );
    for v in &values[1..] {
        w.bao.bao(&["kv", "put", "secret/k", &format!("token={v}")]);
        until(Duration::from_secs(20), "the rotation", || {
            (w.file("tok")? == *v).then_some(())
        });
    }
    // SIGTERM: no workload is left to wait for (30 s here), so the agent wipes,
    // revokes and leaves at once.
    sigterm(&agent);
    let status = wait_with_deadline(&mut agent, Duration::from_secs(10));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{text}");
    assert!(
        !text.contains("did not acknowledge"),
        "a rotation waited for the dead exec:\n{text}"
    );
    assert!(
        !text.contains("waiting for the workload's exit marker"),
        "the shutdown waited for the dead exec:\n{text}"
    );
    w.assert_clean(&[]);
}

#[test]
fn token_at_max_ttl_means_a_new_login_and_new_leases() {
    let _s = serial();
    let w = World::new(Some(("1m", "5m")));
    let auth = w.approle_auth_ttl("3s", "5s");
    let cfg = w.config(&auth, DB_SECRET);
    let log = w.path("agent.log");
    let mut agent = spawn_agent(&cfg, &log);
    let pg = w.pg();
    let mut users: Vec<String> = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(12) {
        if let Some(text) = w.file("db.env") {
            let user = env_value(&text, "USERNAME");
            if users.last() != Some(&user) {
                assert!(
                    pg.can_login(&user, &env_value(&text, "PASSWORD")),
                    "{user} logs in"
                );
                users.push(user);
            }
        }
        assert!(
            agent.try_wait().unwrap().is_none(),
            "agent died: {}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.matches("logged in to Vault").count() >= 2, "{text}");
    // Leases die with the token that made them: each login brings new credentials.
    assert!(users.len() >= 2, "{users:?}\n{text}");
    sigterm(&agent);
    assert!(wait_with_deadline(&mut agent, Duration::from_secs(10)).success());
    until(Duration::from_secs(10), "expired tokens to be gone", || {
        (w.bao.accessors().len() == 1).then_some(())
    });
    w.assert_clean(&users);
}

#[test]
fn survives_a_vault_restart_without_restarting() {
    let _s = serial();
    let mut w = World::with(OpenBao::start_persistent(), Some(("6s", "10m")));
    let auth = w.approle_auth();
    let cfg = w.config(&auth, DB_SECRET);
    let log = w.path("agent.log");
    let mut agent = spawn_agent(&cfg, &log);
    let first = until(Duration::from_secs(20), "first render", || w.file("db.env"));
    let (user, pw) = (env_value(&first, "USERNAME"), env_value(&first, "PASSWORD"));
    w.bao.stop();
    std::thread::sleep(Duration::from_millis(1500));
    // Vault is gone (connection refused): the credentials stay and keep working.
    assert_eq!(w.file("db.env").as_deref(), Some(first.as_str()));
    assert!(w.pg().can_login(&user, &pw));
    let renewed_before = std::fs::read_to_string(&log)
        .unwrap()
        .matches("lease renewed")
        .count();
    w.bao.restart();
    // Back (after unsealing): the agent goes on by itself, renewing the lease that
    // survived the restart or, if Vault lost it, replacing the credentials.
    let current = until(
        Duration::from_secs(30),
        "renewal or replacement after the restart",
        || {
            let text = std::fs::read_to_string(&log).ok()?;
            let file = w.file("db.env")?;
            let renewed = text.matches("lease renewed").count() > renewed_before;
            (renewed || env_value(&file, "USERNAME") != user).then_some(file)
        },
    );
    assert!(
        agent.try_wait().unwrap().is_none(),
        "agent must keep running"
    );
    let (user2, pw2) = (
        env_value(&current, "USERNAME"),
        env_value(&current, "PASSWORD"),
    );
    assert!(w.pg().can_login(&user2, &pw2));
    sigterm(&agent);
    assert!(wait_with_deadline(&mut agent, Duration::from_secs(10)).success());
    w.assert_clean(&[user, user2]);
}

#[test]
fn shutdown_with_vault_down_still_wipes_at_once_and_gives_up_revoking_in_time() {
    let _s = serial();
    let w = World::new(Some(("1m", "5m")));
    let auth = w.approle_auth();
    let cfg = w.config(
        &auth,
        &format!("{DB_SECRET}{KV_SECRET}[lifecycle]\nrevoke_timeout = \"2s\"\n"),
    );
    let log = w.path("agent.log");
    let mut agent = spawn_agent(&cfg, &log);
    until(Duration::from_secs(20), "first render", || w.file("db.env"));
    w.bao.freeze();
    let t = Instant::now();
    sigterm(&agent);
    until(Duration::from_secs(1), "the files to be wiped", || {
        w.leftovers().is_empty().then_some(())
    });
    let status = wait_with_deadline(&mut agent, Duration::from_secs(15));
    assert!(status.success());
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(6),
        "{took:?}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("cannot revoke"), "{text}");
    assert!(text.contains("unreachable"), "{text}");
    w.bao.thaw();
}

#[test]
fn tls_with_ca_cert_and_server_name() {
    let _s = serial();
    let w = World::with(OpenBao::start_tls(), None);
    let auth = w.approle_auth();
    let ca = w.bao.ca_cert.clone().unwrap();
    let ca_line = format!("ca_cert = \"{}\"\n", ca.display());
    let by_ip = w.bao.addr.clone();
    let by_name = by_ip.replace("127.0.0.1", "localhost");
    let cases = [
        ("CA, address by IP", by_ip.clone(), ca_line.clone(), true),
        (
            "CA, tls_server_name names a certificate SAN",
            by_ip.clone(),
            format!("{ca_line}tls_server_name = \"localhost\"\n"),
            true,
        ),
        (
            "tls_server_name not in the certificate",
            by_ip.clone(),
            format!("{ca_line}tls_server_name = \"wrong.example\"\n"),
            false,
        ),
        (
            "no CA: built-in roots do not know the dev CA",
            by_name,
            String::new(),
            false,
        ),
    ];
    for (what, address, vault, ok) in cases {
        let cfg = w.config_vault(&address, &vault, &auth, KV_SECRET);
        let done = run_cat(&w, &cfg);
        if ok {
            assert!(done.status.success(), "{what}: {}", done.err());
            assert_eq!(done.out(), "[REDACTED]\n", "{what}");
        } else {
            // `wrong.example` does not resolve: getting as far as a certificate
            // error shows the connection went to the address while the name was
            // used to verify the certificate (whose 127.0.0.1 SAN would match).
            assert_eq!(done.status.code(), Some(1), "{what}: {}", done.err());
            assert!(
                done.err().contains("TLS with Vault at"),
                "{what}: {}",
                done.err()
            );
            assert!(done.err().contains("certificate"), "{what}: {}", done.err());
        }
        w.assert_clean(&[]);
    }
}

#[test]
fn agent_sigtermed_waits_for_the_workloads_exit_marker() {
    let _s = serial();
    let w = World::new(None);
    let auth = w.approle_auth();
    let cfg = w.config(
        &auth,
        &format!("{KV_SECRET}[lifecycle]\nexit_marker_timeout = \"20s\"\n"),
    );
    let log = w.path("agent.log");
    let mut agent = spawn_agent(&cfg, &log);
    let dir = w.out.path();
    until(Duration::from_secs(20), "ready", || {
        dir.join(".shroud/ready").exists().then_some(())
    });
    let started = w.path("started");
    let mut exec = shroud()
        .args(["exec", "--secrets-dir"])
        .arg(dir)
        .args([
            "--",
            "sh",
            "-c",
            &format!("touch {}; exec sleep 60", started.display()),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn_guarded();
    until(
        Duration::from_secs(20),
        "exec's ack and the command",
        || {
            let acks = std::fs::read_dir(dir.join(".shroud/acks")).ok()?.count();
            (acks > 0 && started.exists()).then_some(())
        },
    );
    // Pod termination: the sidecar is told first; the workload still runs and
    // still needs its credentials.
    sigterm(&agent);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        agent.try_wait().unwrap().is_none(),
        "agent must wait for the exit marker"
    );
    assert!(
        w.file("api-key").is_some(),
        "files must stay while the workload runs"
    );
    sigterm(&exec);
    let t = Instant::now();
    assert_eq!(
        wait_with_deadline(&mut exec, Duration::from_secs(10)).code(),
        Some(143)
    );
    assert!(wait_with_deadline(&mut agent, Duration::from_secs(10)).success());
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let _ = std::fs::remove_file(dir.join(".shroud/exited"));
    w.assert_clean(&[]);
}

#[test]
fn run_mode_retired_value_is_gone_from_process_memory() {
    let _s = serial();
    let w = World::new(None);
    let auth = w.approle_auth();
    let old = "run-retired-value-1f2e3d4c5b6a7980";
    let new = "run-current-value-0918273645abcdef";
    w.bao
        .bao(&["kv", "put", "secret/mem", &format!("token={old}")]);
    let cfg = w.config(
        &auth,
        "[[secret]]\nname = \"mem\"\npath = \"secret/mem\"\nkind = \"kv2\"\nfield = \"token\"\nrefresh = \"300ms\"\n\
         [redact]\nretain = \"1s\"\n",
    );
    let stop = w.path("stop");
    // The command prints the value (masked on the way out), then keeps writing.
    let app = format!(
        "echo \"value: $(cat \"$SHROUD_SECRETS_DIR/mem\")\"\n\
         i=0; while [ ! -e {0} ] && [ $i -lt 600 ]; do echo tick; sleep 0.05; i=$((i+1)); done",
        stop.display()
    );
    let mut child = shroud()
        .arg("run")
        .arg("--config")
        .arg(&cfg)
        .args(["--tty", "never", "--", "sh", "-c", &app])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn_guarded();
    until(Duration::from_secs(20), "first render", || {
        (w.file("mem").as_deref() == Some(old)).then_some(())
    });
    w.bao
        .bao(&["kv", "put", "secret/mem", &format!("token={new}")]);
    until(Duration::from_secs(10), "rotation", || {
        (w.file("mem").as_deref() == Some(new)).then_some(())
    });
    until(
        Duration::from_secs(10),
        "the retired value to leave the values file",
        || {
            let v = std::fs::read(w.out.path().join(".shroud/values")).ok()?;
            (!contains(&v, base64(old.as_bytes()).as_bytes())).then_some(())
        },
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        process_memory_contains(child.id(), new.as_bytes()),
        "sanity: the current value is found"
    );
    let survived = process_memory_contains(child.id(), old.as_bytes());
    if survived {
        debug_where(child.id(), old.as_bytes());
    }
    std::fs::write(&stop, "").unwrap();
    assert!(wait_with_deadline(&mut child, Duration::from_secs(20)).success());
    assert!(
        !survived,
        "the retired value survives in shroud run's memory"
    );
    w.assert_clean(&[]);
}

fn debug_where(pid: u32, needle: &[u8]) {
    use std::os::unix::fs::FileExt as _;
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    for line in maps.lines() {
        let mut parts = line.split_whitespace();
        let range = parts.next().unwrap();
        let perms = parts.next().unwrap();
        if !perms.starts_with('r') || line.ends_with("[vvar]") || line.ends_with("[vsyscall]") {
            continue;
        }
        let (a, b) = range.split_once('-').unwrap();
        let (a, b) = (
            u64::from_str_radix(a, 16).unwrap(),
            u64::from_str_radix(b, 16).unwrap(),
        );
        let mut buf = vec![0u8; (b - a) as usize];
        if mem.read_exact_at(&mut buf, a).is_err() {
            continue;
        }
        for (i, w) in buf.windows(needle.len()).enumerate() {
            if w == needle {
                let lo = i.saturating_sub(160);
                let hi = (i + needle.len() + 160).min(buf.len());
                eprintln!(
                    "FOUND in {line} at +{i:#x}: {:?}",
                    String::from_utf8_lossy(&buf[lo..hi])
                );
            }
        }
    }
}

/// `shroud exec --on-change NAME=COMMAND` (the injector's
/// `agent-inject-command-<name>`): the command runs, through `/bin/sh -c` with
/// its output masked like the app's, after a rotation that gave the file
/// `NAME` new contents, and not after a rotation of another file.
#[test]
fn an_on_change_command_runs_when_its_file_changes_and_not_for_another_file() {
    let _s = serial();
    let w = World::new(None);
    let auth = w.approle_auth();
    let (a1, a2) = ("hook-a-first-7c6d5e4f", "hook-a-second-1f2e3d4c");
    let (b1, b2) = ("hook-b-first-9a8b7c6d", "hook-b-second-4e5f6a7b");
    w.bao
        .bao(&["kv", "put", "secret/hook-a", &format!("token={a1}")]);
    w.bao
        .bao(&["kv", "put", "secret/hook-b", &format!("token={b1}")]);
    let template = |name: &str| {
        format!(
            "[[template]]\nname = \"{name}\"\nrefresh = \"200ms\"\ncontents = '{{{{ with secret \"secret/data/hook-{name}\" }}}}{{{{ .Data.data.token }}}}{{{{ end }}}}'\n"
        )
    };
    let cfg = w.config(&auth, &format!("{}{}", template("a"), template("b")));
    let log = w.path("agent.log");
    let _agent = spawn_agent(&cfg, &log);
    let dir = w.out.path();
    until(Duration::from_secs(20), "ready", || {
        dir.join(".shroud/ready").exists().then_some(())
    });
    let (ran_a, ran_b, stop) = (w.path("ran-a"), w.path("ran-b"), w.path("stop"));
    let started = w.path("started");
    // b's command signals its parent, shroud exec (PID 1 of an injected app
    // container: `kill -HUP 1`), which forwards the signal to the app.
    let hup = w.path("hup");
    let app = format!(
        "trap 'echo hup >> {2}' HUP; touch {0}; i=0; while [ ! -e {1} ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; echo app-done",
        started.display(),
        stop.display(),
        hup.display()
    );
    let exec = spawn_started(
        shroud()
            .args(["exec", "--secrets-dir"])
            .arg(dir)
            .arg("--on-change")
            .arg(format!(
                "a=echo \"hook a saw: $(cat \"$SHROUD_SECRETS_DIR/a\")\"; echo \"$SHROUD_CHANGED_FILE\" >> {}",
                ran_a.display()
            ))
            .arg("--on-change")
            .arg(format!("b=echo b >> {}; kill -HUP $PPID", ran_b.display()))
            .args(["--", "sh", "-c", &app])
            .env("SHROUD_SECRETS_DIR", dir),
        &started,
    );
    let lines = |p: &Path| {
        std::fs::read_to_string(p)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    // The first render is not a change: the app started after it.
    w.bao
        .bao(&["kv", "put", "secret/hook-b", &format!("token={b2}")]);
    until(
        Duration::from_secs(30),
        "b's command after b rotated",
        || (lines(&ran_b) == 1).then_some(()),
    );
    until(Duration::from_secs(10), "the app to get b's SIGHUP", || {
        (lines(&hup) == 1).then_some(())
    });
    w.bao
        .bao(&["kv", "put", "secret/hook-a", &format!("token={a2}")]);
    until(
        Duration::from_secs(30),
        "a's command after a rotated",
        || (lines(&ran_a) == 1).then_some(()),
    );
    std::fs::write(&stop, "").unwrap();
    let out = exec.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Each ran once: b's rotation did not run a's command, a's did not run b's.
    assert_eq!(std::fs::read_to_string(&ran_a).unwrap(), "a\n");
    assert_eq!(lines(&ran_b), 1, "{stderr}");
    assert_eq!(lines(&hup), 1, "{stderr}");
    assert!(stdout.contains("hook a saw: [REDACTED]"), "{stdout}");
    for v in [a1, a2, b1, b2] {
        assert!(
            !stdout.contains(v) && !stderr.contains(v),
            "{stdout}{stderr}"
        );
    }
}

#[test]
fn on_change_without_a_directory_or_with_a_bad_name_is_a_usage_error() {
    for args in [
        vec!["--on-change", "db=true"],
        vec!["--secrets-dir", "/tmp", "--on-change", "a/b=true"],
        vec![
            "--secrets-dir",
            "/tmp",
            "--on-change",
            "db=true",
            "--on-change-origin",
            "other=x",
        ],
    ] {
        let out = shroud()
            .arg("exec")
            .args(&args)
            .args(["--", "true"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--on-change"), "{args:?}: {err}");
    }
}

/// A `[[template]]` reading `database/creds/app`, as a line `USER PASSWORD`.
fn db_template(name: &str) -> String {
    format!(
        "[[template]]\nname = \"{name}\"\ncontents = '{{{{ with secret \"database/creds/app\" }}}}{{{{ .Data.username }}}} {{{{ .Data.password }}}}{{{{ end }}}}'\n"
    )
}

/// The user a [`db_template`] file names, and its password.
fn template_user(text: &str) -> (String, String) {
    let (u, p) = text.trim().split_once(' ').expect("USER PASSWORD");
    (u.to_string(), p.to_string())
}

/// A plain `[[secret]]` and a `[[template]]` reading the same dynamic path get
/// one credential and one lease, as two templates do (and as Vault Agent's one
/// dependency per path gives): one role in pg_roles, revoked at exit.
#[test]
fn a_plain_secret_and_a_template_of_one_dynamic_path_share_one_credential() {
    let _s = serial();
    let w = World::new(Some(("1m", "5m")));
    let auth = w.approle_auth();
    let cfg = w.config(&auth, &format!("{DB_SECRET}{}", db_template("db.tmpl")));
    let log = w.path("agent.log");
    let mut agent = spawn_agent(&cfg, &log);
    let dir = w.out.path();
    until(Duration::from_secs(20), "ready", || {
        dir.join(".shroud/ready").exists().then_some(())
    });
    let env = w.file("db.env").unwrap();
    let (user, password) = (env_value(&env, "USERNAME"), env_value(&env, "PASSWORD"));
    let (t_user, t_password) = template_user(&w.file("db.tmpl").unwrap());
    assert_eq!((&t_user, &t_password), (&user, &password), "one credential");
    let pg = w.pg();
    assert_eq!(pg.vault_roles(), vec![user.clone()], "one role in pg_roles");
    assert_eq!(w.bao.leases("database/creds/app/").len(), 1, "one lease");
    assert!(pg.can_login(&user, &password));
    sigterm(&agent);
    let status = wait_with_deadline(&mut agent, Duration::from_secs(10));
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    w.assert_clean(&[user]);
}

/// Two templates share one lease; when one of them replaces its credential
/// (near the lease's max TTL), the shared lease is not revoked while the other
/// template's file still names it, and once both moved on it is; at exit
/// every lease is revoked. Retire grace 0: a lease let go is revoked at once.
#[test]
fn a_lease_shared_by_two_templates_survives_the_rotation_of_one() {
    let _s = serial();
    let w = World::new(Some(("2s", "6s")));
    let auth = w.approle_auth();
    let cfg = w.config(
        &auth,
        &format!(
            "{}{}[lifecycle]\nretire_grace = \"0s\"\n",
            db_template("a.tmpl"),
            db_template("b.tmpl")
        ),
    );
    let log = w.path("agent.log");
    let mut agent = spawn_agent(&cfg, &log);
    let pg = w.pg();
    let dir = w.out.path();
    until(Duration::from_secs(20), "ready", || {
        dir.join(".shroud/ready").exists().then_some(())
    });
    let mut users: Vec<String> = Vec::new();
    let mut apart = 0;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        for name in ["a.tmpl", "b.tmpl"] {
            let Some(text) = w.file(name) else { continue };
            let (user, password) = template_user(&text);
            if !users.contains(&user) {
                users.push(user.clone());
            }
            // The credential a file names works while the file names it.
            if !pg.can_login(&user, &password) && w.file(name).as_deref() == Some(text.as_str()) {
                panic!(
                    "{name} names {user}, which no longer logs in (revoked while held)\n{}",
                    std::fs::read_to_string(&log).unwrap()
                );
            }
        }
        if w.file("a.tmpl") != w.file("b.tmpl") {
            apart += 1;
        }
        assert!(
            agent.try_wait().unwrap().is_none(),
            "agent died: {}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        users.len() >= 2,
        "credentials were replaced: {users:?}\n{text}"
    );
    // Both end on one credential again, and the ones let go are revoked.
    until(Duration::from_secs(10), "one credential, one role", || {
        let a = template_user(&w.file("a.tmpl")?).0;
        let b = template_user(&w.file("b.tmpl")?).0;
        (a == b && pg.vault_roles() == vec![a.clone()]).then_some(())
    });
    eprintln!(
        "{} credentials; the files differed in {apart} samples",
        users.len()
    );
    sigterm(&agent);
    let status = wait_with_deadline(&mut agent, Duration::from_secs(10));
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    w.assert_clean(&users);
}
