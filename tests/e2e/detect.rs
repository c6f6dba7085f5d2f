//! Credentials shroud did not issue (issue 23), end to end through the binary:
//! well-known formats (generated here, valid checksums included) masked through
//! `shroud redact`, `shroud exec` over pipes and under a real terminal, also
//! when a pause splits them; `::add-mask::` (the command and its `set -x`
//! echo); `shroud mask add`; environment variables masked by name.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use shroud_e2e::paced::*;
use shroud_e2e::*;

const LIMIT: Duration = Duration::from_secs(60);
/// Well over the default idle interval (50 ms), so held pieces are flushed.
const PAUSE: Duration = Duration::from_millis(250);

/// One generated credential of every format: (detector, line prefix, the
/// credential as printed, the bytes that must never show).
fn generated() -> Vec<(&'static str, String, String, String)> {
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let entropy = "Q8rT2vW5yZ1bC4dF7gH0jK3mN6pS9u";
    let ghp = format!(
        "ghp_{entropy}{}",
        shroud_redactor::detect::github_checksum(entropy.as_bytes())
    );
    let npm_entropy = "zY9xW8vU7tS6rQ5pO4nM3lK2jI1hG0";
    let npm = format!(
        "npm_{npm_entropy}{}",
        shroud_redactor::detect::github_checksum(npm_entropy.as_bytes())
    );
    let pat = format!(
        "github_pat_11ABCDEFG0{}_{}",
        "a1B2c3D4e5F6",
        "Zq".repeat(29) + "x"
    );
    let jwt = format!(
        "{}.{}.{}",
        b64(r#"{"alg":"RS256","kid":"k1"}"#),
        b64(r#"{"sub":"ci","aud":"vault"}"#),
        "c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"
    );
    let all = vec![
        (
            "github-token",
            "GH_TOKEN=",
            ghp.clone(),
            ghp[4..].to_string(),
        ),
        ("github-token", "token ", pat.clone(), pat[11..].to_string()),
        (
            "gitlab-token",
            "PRIVATE-TOKEN: ",
            "glpat-9xYzAbCdEfGh1234_-ij".into(),
            "9xYzAbCdEfGh1234_-ij".into(),
        ),
        (
            "aws-access-key-id",
            "id=",
            "ASIAQWERTYUIOPASDF23".into(),
            "QWERTYUIOPASDF23".into(),
        ),
        (
            "aws-secret-key",
            "aws_secret_access_key = ",
            "Xk2/9fJq+7LmN0pQrS3tUvWx4yZ5aB6cD7eF8gH9".into(),
            "Xk2/9fJq+7LmN0pQrS3tUvWx4yZ5aB6cD7eF8gH9".into(),
        ),
        (
            "slack-token",
            "SLACK=",
            "xoxb-2048-4096-Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss".into(),
            "2048-4096-Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss".into(),
        ),
        (
            "stripe-key",
            "key: ",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc9Q".into(),
            "4eC39HqLyjWDarjtT1zdp7dc9Q".into(),
        ),
        (
            "google-api-key",
            "key=",
            "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY".into(),
            "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY".into(),
        ),
        (
            "npm-token",
            "//registry.npmjs.org/:_authToken=",
            npm.clone(),
            npm[4..].to_string(),
        ),
        (
            "pypi-token",
            "password = ",
            format!("pypi-AgEIcHlwaS5vcmc{}", "Qm9vdHN0cmFw_-".repeat(5)),
            "Qm9vdHN0cmFw_-Qm9vdHN0cmFw".into(),
        ),
        ("jwt", "id_token: ", jwt.clone(), jwt[3..].to_string()),
        (
            "url-password",
            "DATABASE_URL=postgres://app:",
            "Pg-s3cret-4711@db.internal/app".into(),
            "Pg-s3cret-4711".into(),
        ),
        (
            "authorization",
            "> Authorization: Bearer ",
            "t0k3n-abcdef-0123456789".into(),
            "t0k3n-abcdef-0123456789".into(),
        ),
    ];
    all.into_iter()
        .map(|(n, p, v, s)| (n, p.to_string(), v, s))
        .collect()
}

fn script(dir: &Path, lines: &[PausedLine]) -> std::path::PathBuf {
    let p = dir.join("paced.sh");
    std::fs::write(&p, paced_script(lines, PAUSE)).unwrap();
    p
}

/// Every generated credential, written whole and with a pause at several
/// points inside it, is masked through every path; no secret part shows.
#[test]
fn every_format_is_masked_whole_and_across_a_pause_through_pipe_and_pty() {
    let dir = tempfile::tempdir().unwrap();
    let formats = generated();
    let mut lines = Vec::new();
    let mut expect = Vec::new();
    for (name, prefix, value, secret) in &formats {
        let cuts = [value.len(), 0, 2, value.len() / 2, value.len() - 1];
        for at in cuts {
            lines.push(PausedLine::split(prefix.as_bytes(), value.as_bytes(), at));
            expect.push((*name, secret.clone()));
        }
    }
    let script = script(dir.path(), &lines);
    for via in ALL_VIAS {
        let out = run_paced(via, &[], &script);
        assert_eq!(
            out.len(),
            lines.len(),
            "{via:?}: {:?}",
            out.iter()
                .map(|l| String::from_utf8_lossy(l))
                .collect::<Vec<_>>()
        );
        for (line, (name, secret)) in out.iter().zip(&expect) {
            let text = String::from_utf8_lossy(line);
            assert!(
                text.contains(&format!("[REDACTED:{name}]")),
                "{via:?}: {name} not masked: {text}"
            );
            // The tail of a credential never shows, whatever the pause; at most
            // the part written before a pause that was not yet a credential.
            let tail = &secret[secret.len() - 8..];
            assert!(
                !text.contains(tail),
                "{via:?}: {name} shows its end: {text}"
            );
        }
    }
}

/// `Proxy-Authorization` written in two parts, cut right after `Proxy-` (the
/// `-` looks like the start of `-----BEGIN`) or anywhere before the line
/// ends, is masked through every path.
#[test]
fn proxy_authorization_cut_after_proxy_is_masked() {
    let dir = tempfile::tempdir().unwrap();
    let value = b"Authorization: Basic dDBrM24tYWJjZGVmLTAxMjM0NTY3ODk=";
    let lines: Vec<PausedLine> = [0, 1, 13, 22, value.len()]
        .iter()
        .map(|&at| PausedLine::split(b"> Proxy-", value, at))
        .collect();
    let script = script(dir.path(), &lines);
    for via in ALL_VIAS {
        let out = run_paced(via, &[], &script);
        assert_eq!(out.len(), lines.len(), "{via:?}");
        for line in &out {
            let text = String::from_utf8_lossy(line);
            assert!(
                text.contains("> Proxy-Authorization: Basic [REDACTED:authorization]"),
                "{via:?}: {text}"
            );
            assert!(!text.contains("MTIzNDU2"), "{via:?}: {text}");
        }
    }
}

/// The same generated credentials are not masked with `--detect none`, and
/// `--detect` names only the chosen families.
#[test]
fn detect_selects_the_families() {
    let formats = generated();
    let input: String = formats
        .iter()
        .map(|(_, p, v, _)| format!("{p}{v}\n"))
        .collect();
    let none = run_with_input(
        shroud().args(["redact", "--detect", "none"]),
        input.as_bytes(),
        LIMIT,
    );
    assert!(none.status.success());
    assert_eq!(none.out(), input);
    let jwt_only = run_with_input(
        shroud().args(["redact", "--detect", "jwt"]),
        input.as_bytes(),
        LIMIT,
    );
    assert!(jwt_only.out().contains("[REDACTED:jwt]"));
    assert!(!jwt_only.out().contains("[REDACTED:github-token]"));
    let bad = run_with_input(
        shroud().args(["redact", "--detect", "jwt,nope"]),
        b"",
        LIMIT,
    );
    assert_eq!(bad.status.code(), Some(64), "{}", bad.err());
    assert!(bad.err().contains("nope"), "{}", bad.err());
}

fn exec(script: &str) -> Command {
    let mut cmd = shroud();
    cmd.env_remove("GITHUB_ACTIONS")
        .env("PATH", path_with_shroud())
        .args(["exec", "--tty", "never", "--", "bash", "-c", script]);
    cmd
}

fn path_with_shroud() -> String {
    let bin = shroud_bin();
    format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

const MINTED: &str = "minted-Tok3n-8c1f2e9a";

/// `::add-mask::` as a command line and as `set -x` echoes it (on stderr):
/// the value is masked on both streams from that line on, and outside GitHub
/// Actions the command line itself is dropped.
#[test]
fn add_mask_registers_the_value_before_its_line_is_shown() {
    let script = format!(
        "V={MINTED}; set -x; echo \"::add-mask::$V\"; set +x; echo \"out $V\"; echo \"err $V\" >&2; echo done"
    );
    let done = run_with_input(&mut exec(&script), b"", LIMIT);
    assert!(done.status.success(), "{}", done.err());
    let (out, err) = (done.out(), done.err());
    assert!(
        !out.contains(MINTED) && !err.contains(MINTED),
        "stdout: {out}\nstderr: {err}"
    );
    assert!(
        out.contains("out [REDACTED]") && err.contains("err [REDACTED]"),
        "stdout: {out}\nstderr: {err}"
    );
    assert!(
        err.contains("+ echo ::add-mask::[REDACTED]"),
        "the echo is shown masked: {err}"
    );
    assert!(
        !out.contains("::add-mask::"),
        "the command line is dropped: {out}"
    );
}

/// Inside GitHub Actions the runner gets the command (so later, unwrapped
/// steps mask the value too) and nothing else shows the value.
#[test]
fn add_mask_is_passed_on_to_the_github_runner() {
    let script = format!("echo \"::add-mask::{MINTED}\"; echo \"out {MINTED}\"");
    let done = run_with_input(exec(&script).env("GITHUB_ACTIONS", "true"), b"", LIMIT);
    assert!(done.status.success(), "{}", done.err());
    let out = done.out();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        vec![format!("::add-mask::{MINTED}").as_str(), "out [REDACTED]"],
        "{out}"
    );
}

/// `shroud mask add` returns once the value is masked: every byte written
/// after it, on both streams, is masked.
#[test]
fn mask_add_masks_what_is_written_after_it_returns() {
    let script = format!(
        "printf '%s\\n' {MINTED} | shroud mask add || exit 9; echo \"out {MINTED}\"; echo \"err {MINTED}\" >&2; \
         echo short | shroud mask add; echo \"short rc=$?\""
    );
    let done = run_with_input(&mut exec(&script), b"", LIMIT);
    assert!(done.status.success(), "{}", done.err());
    let (out, err) = (done.out(), done.err());
    assert!(
        out.contains("out [REDACTED]") && err.contains("err [REDACTED]"),
        "stdout: {out}\nstderr: {err}"
    );
    assert!(!out.contains(MINTED) && !err.contains(MINTED));
    assert!(
        out.contains("short rc=64"),
        "a value under the minimum length is refused: {out}"
    );
    assert!(err.contains("minimum length"), "{err}");
}

/// `shroud scan` runs the detectors (default all): a file holding a GitHub
/// token or a PEM private key nobody registered is a finding named by its
/// detector, never showing the value; `--detect none` turns them off, a list
/// selects, and only a list named on the command line scans without values.
#[test]
fn scan_reports_credentials_the_detectors_find() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, ghp, _) = generated()
        .into_iter()
        .find(|g| g.0 == "github-token")
        .unwrap();
    let key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n-----END RSA PRIVATE KEY-----\n";
    std::fs::write(dir.path().join("ci.log"), format!("cloning with {ghp}\n")).unwrap();
    std::fs::write(dir.path().join("id_rsa"), key).unwrap();
    std::fs::write(dir.path().join("clean.txt"), "nothing here\n").unwrap();
    let scan = |extra: &[&str]| {
        run_with_input(
            shroud()
                .env_remove("SHROUD_DETECT")
                .arg("scan")
                .args(extra)
                .arg(dir.path()),
            b"",
            LIMIT,
        )
    };
    let values = tempfile::tempdir().unwrap();
    let other = values.path().join("other-value");
    std::fs::write(&other, "a-value-in-no-file-here").unwrap();
    let with_values = ["--secret-file", other.to_str().unwrap()];
    let done = scan(&with_values);
    assert_eq!(done.status.code(), Some(1), "{}", done.err());
    let out = done.out();
    assert!(out.contains("ci.log:13: github-token (detector)"), "{out}");
    assert!(out.contains("id_rsa:31: private-key (detector)"), "{out}");
    assert!(out.contains("2 detected credentials in 2 files"), "{out}");
    assert!(!out.contains(&ghp[4..]) && !out.contains("MIIEow"), "{out}");
    assert!(!done.err().contains(&ghp[4..]), "{}", done.err());
    let done = scan(&["--detect", "private-key"]);
    assert_eq!(done.status.code(), Some(1), "{}", done.err());
    assert!(!done.out().contains("github-token"), "{}", done.out());
    // Formats only: asked for by name; without a source and without --detect
    // (a job that forgot its values), or with none, there is nothing to look for.
    for args in [&[][..], &["--detect", "none"][..]] {
        let done = scan(args);
        assert_eq!(done.status.code(), Some(64), "{args:?}: {}", done.err());
        assert!(done.err().contains("nothing to look for"), "{}", done.err());
    }
    let mut none = with_values.to_vec();
    none.extend(["--detect", "none"]);
    assert_eq!(scan(&none).status.code(), Some(0));
}

/// Only the command's own uid (or root) may register: a process of another
/// uid cannot reach the socket (its directory is 0700), and when the command
/// opens the directory and the socket to everyone the supervisor still refuses
/// it (`SO_PEERCRED`). Its value stays unmasked.
#[test]
fn another_uid_cannot_register_through_the_mask_socket() {
    require_tool("setpriv", "apt-get install util-linux");
    let nobody = "setpriv --reuid 65534 --regid 65534 --clear-groups";
    let script = format!(
        "printf '%s' {MINTED} | {nobody} shroud mask add 2>/dev/null; echo \"closed rc=$?\"; \
         chmod 0755 \"$(dirname \"$SHROUD_MASK_SOCKET\")\" && chmod 0777 \"$SHROUD_MASK_SOCKET\" || exit 9; \
         printf '%s' {MINTED} | {nobody} shroud mask add; echo \"open rc=$?\"; echo \"after {MINTED}\""
    );
    let done = run_with_input(&mut exec(&script), b"", LIMIT);
    assert!(done.status.success(), "{}", done.err());
    assert_eq!(
        done.out(),
        format!("closed rc=64\nopen rc=64\nafter {MINTED}\n"),
        "{}",
        done.err()
    );
    assert!(
        done.err()
            .contains("uid 65534 may not register values here"),
        "{}",
        done.err()
    );
}

/// Outside a supervisor `shroud mask add` fails with a usage error.
#[test]
fn mask_add_outside_a_supervisor_is_a_usage_error() {
    let done = run_with_input(
        shroud()
            .env_remove("SHROUD_MASK_SOCKET")
            .args(["mask", "add"]),
        b"value-123456\n",
        LIMIT,
    );
    assert_eq!(done.status.code(), Some(64));
    assert!(done.err().contains("SHROUD_MASK_SOCKET"), "{}", done.err());
}

/// The values of variables named like credentials are masked (the URL's
/// password of any variable too); `--mask-env ''` turns it off.
#[test]
fn environment_values_are_masked_by_name() {
    let script =
        "echo \"$DEPLOY_TOKEN $AWS_SECRET_ACCESS_KEY $PLAIN_VALUE\"; echo \"pw $PGPASS_PART\"";
    let env = [
        ("DEPLOY_TOKEN", "deploy-0f9e8d7c6b"),
        ("AWS_SECRET_ACCESS_KEY", "abcdEFGHijklMNOPqrstUVWX"),
        ("PLAIN_VALUE", "not-a-secret-at-all"),
        ("DATABASE_URL", "postgres://app:Pw-77aa88bb@db/app"),
        ("PGPASS_PART", "Pw-77aa88bb"),
    ];
    let done = run_with_input(exec(script).envs(env), b"", LIMIT);
    assert!(done.status.success(), "{}", done.err());
    assert_eq!(
        done.out(),
        "[REDACTED] [REDACTED] not-a-secret-at-all\npw [REDACTED]\n"
    );
    let off = run_with_input(
        exec(script).envs(env).args_before_exec(&["--mask-env", ""]),
        b"",
        LIMIT,
    );
    assert!(off.out().contains("deploy-0f9e8d7c6b"), "{}", off.out());
}

trait ArgsBeforeExec {
    fn args_before_exec(&mut self, args: &[&str]) -> &mut Self;
}

impl ArgsBeforeExec for Command {
    /// Rebuilds the arguments with `args` right after `exec`.
    fn args_before_exec(&mut self, extra: &[&str]) -> &mut Self {
        let old: Vec<std::ffi::OsString> = self.get_args().map(|a| a.to_owned()).collect();
        let mut new = Command::new(self.get_program());
        for (k, v) in self.get_envs() {
            match v {
                Some(v) => new.env(k, v),
                None => new.env_remove(k),
            };
        }
        new.arg(&old[0]).args(extra).args(&old[1..]);
        *self = new;
        self
    }
}

/// Sidecar layout: a value one exec registers reaches, through the agent's
/// next values generation, another exec of the same pod, which masks it.
#[test]
fn a_value_registered_in_one_exec_is_masked_by_the_pods_other_execs() {
    use shroud_e2e::world::*;
    let _s = serial();
    let w = World::new(None);
    w.bao
        .bao(&["kv", "put", "secret/app", "api_key=kv-value-0a1b2c3d4e"]);
    let cfg = w.config(
        &w.approle_auth(),
        "[[secret]]\nname = \"app\"\npath = \"secret/app\"\nkind = \"kv2\"\nfield = \"api_key\"\n",
    );
    let log = w.path("agent.log");
    // Killed and reaped when the test ends, also on failure.
    let _agent = spawn_agent(&cfg, &log);
    let dir = w.out.path().to_path_buf();
    until(Duration::from_secs(30), "the agent's first render", || {
        dir.join(".shroud/ready").exists().then_some(())
    });
    let go = w.path("go");
    let mut a = registering_exec(&dir, &go);
    // The agent publishes the registered value in a new generation.
    let values = until(
        Duration::from_secs(30),
        "the registered value in .shroud/values",
        || {
            let text = std::fs::read_to_string(dir.join(".shroud/values")).ok()?;
            text.contains("mask-add.registered").then_some(text)
        },
    );
    let generation: u64 = values
        .lines()
        .find_map(|l| l.strip_prefix("generation "))
        .unwrap()
        .parse()
        .unwrap();
    // A second exec started now loads it with the rest of the set.
    let second = format!("echo \"second sees {MINTED}\"");
    let done = run_with_input(
        shroud()
            .env("PATH", path_with_shroud())
            .args(["exec", "--tty", "never", "--secrets-dir"])
            .arg(&dir)
            .args(["--", "sh", "-c", &second]),
        b"",
        LIMIT,
    );
    assert!(done.status.success(), "{}", done.err());
    assert_eq!(
        done.out(),
        "second sees [REDACTED]\n",
        "generation {generation}"
    );
    std::fs::write(&go, "").unwrap();
    assert!(wait_with_deadline(&mut a, LIMIT).success());
    // The first exec's file is gone with it.
    let left: Vec<_> = std::fs::read_dir(dir.join(".shroud"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("registered-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// With `[state]`, a value an exec registered survives the pod's processes
/// being killed together (SIGKILL, as the OOM killer does; the exec's file is
/// then stale and wiped): the restarted agent re-publishes it from its state
/// (here in a new generation, since a rendered file went missing while it was
/// down), and an exec started then masks it. The state never holds it in clear.
#[test]
fn a_registered_value_survives_an_agent_restart_with_state() {
    use shroud_e2e::world::*;
    let _s = serial();
    let w = World::new(None);
    let state = Tmpfs::new();
    let state_dir = state.path().join("agent");
    let cfg = w.config(
        &w.approle_auth(),
        &format!("[state]\ndir = \"{}\"\n{KV_SECRET}", state_dir.display()),
    );
    let dir = w.out.path().to_path_buf();
    let first_log = w.path("agent-1.log");
    let mut first = spawn_agent(&cfg, &first_log);
    until(Duration::from_secs(30), "the agent's first render", || {
        dir.join(".shroud/ready").exists().then_some(())
    });
    let go = w.path("go");
    let mut a = registering_exec(&dir, &go);
    let state_file = state_dir.join("agent-state.json");
    until(
        Duration::from_secs(30),
        "the registered value in the agent's state",
        || {
            let text = std::fs::read_to_string(&state_file).ok()?;
            text.contains("mask-add.registered").then_some(())
        },
    );
    // Both killed outright: no exit marker, the exec's file left stale.
    for child in [&mut a, &mut first] {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        wait_with_deadline(child, LIMIT);
    }
    // Its command, orphaned, ends.
    std::fs::write(&go, "").unwrap();
    // Missing while the agent was down: the successor publishes a new generation.
    std::fs::remove_file(dir.join("api-key")).unwrap();
    let second_log = w.path("agent-2.log");
    let _second = spawn_agent(&cfg, &second_log);
    until(Duration::from_secs(30), "the successor's adoption", || {
        let log = std::fs::read_to_string(&second_log).ok()?;
        log.contains("adopted the previous agent's state")
            .then_some(())
    });
    // Read now: the exec below ends the pod (its exit marker), which wipes it.
    let saved = std::fs::read_to_string(&state_file).unwrap();
    assert!(
        saved.contains("mask-add.registered") && !saved.contains(MINTED),
        "the state holds it, never in clear"
    );
    let done = run_with_input(
        shroud()
            .env("PATH", path_with_shroud())
            .args(["exec", "--tty", "never", "--secrets-dir"])
            .arg(&dir)
            .args(["--", "sh", "-c", &format!("echo \"later {MINTED}\"")]),
        b"",
        LIMIT,
    );
    assert!(done.status.success(), "{}", done.err());
    assert_eq!(done.out(), "later [REDACTED]\n");
    for log in [&first_log, &second_log] {
        let text = std::fs::read_to_string(log).unwrap();
        assert!(!text.contains(MINTED), "the value reached the log: {text}");
    }
}

/// `shroud run`: the environment and the detectors by `[redact] env` and
/// `[redact] detect`, and `shroud mask add` inside it.
#[test]
fn run_masks_the_environment_detected_formats_and_registered_values() {
    use shroud_e2e::world::*;
    let _s = serial();
    let w = World::new(None);
    w.bao
        .bao(&["kv", "put", "secret/app", "api_key=kv-value-5e6f7a8b9c"]);
    let secret =
        "[[secret]]\nname = \"app\"\npath = \"secret/app\"\nkind = \"kv2\"\nfield = \"api_key\"\n";
    let aws_id = "AKIAQWERTYUIOPASDF23";
    let script = format!(
        "echo \"env $CI_DEPLOY_TOKEN\"; echo \"id {aws_id}\"; printf '%s' {MINTED} | shroud mask add && echo \"minted {MINTED}\""
    );
    let run = |cfg: &Path| {
        run_with_input(
            run_script(cfg, &script)
                .env("PATH", path_with_shroud())
                .env("CI_DEPLOY_TOKEN", "ci-deploy-77a1b2c3"),
            b"",
            LIMIT,
        )
    };
    let on = run(&w.config(&w.approle_auth(), secret));
    assert!(on.status.success(), "{}", on.err());
    assert_eq!(
        on.out(),
        "env [REDACTED]\nid [REDACTED:aws-access-key-id]\nminted [REDACTED]\n"
    );
    let off = run(&w.config(
        &w.approle_auth(),
        &format!("{secret}[redact]\ndetect = \"none\"\nenv = []\n"),
    ));
    assert!(off.status.success(), "{}", off.err());
    assert_eq!(
        off.out(),
        format!("env ci-deploy-77a1b2c3\nid {aws_id}\nminted [REDACTED]\n")
    );
}

/// Known values win: every generated credential, and a private key, given as
/// secret files, is masked as a value (`[REDACTED]`), not by its detector,
/// through a pipe and across pauses; the same line with an unregistered
/// credential still names its detector.
#[test]
fn a_registered_value_in_a_detectable_format_is_masked_as_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nq83h2Zx9fK0LmN3pQrS7tUvWx4yZ5aB6cD7eF8gH9jK2mN4pR6==\n-----END PRIVATE KEY-----\n";
    let mut args = vec!["redact".to_string()];
    let mut input = String::new();
    let mut expect = String::new();
    for (i, (_, prefix, value, _)) in generated().iter().enumerate() {
        let f = dir.path().join(format!("s{i}"));
        std::fs::write(&f, value).unwrap();
        args.extend(["--secret-file".to_string(), f.display().to_string()]);
        input.push_str(&format!("{prefix}{value}\n"));
        expect.push_str(&format!("{prefix}[REDACTED]\n"));
    }
    let f = dir.path().join("key");
    std::fs::write(&f, key).unwrap();
    args.extend(["--secret-file".to_string(), f.display().to_string()]);
    input.push_str(key);
    expect.push_str("-----BEGIN PRIVATE KEY-----\n[REDACTED]\n-----END PRIVATE KEY-----\n");
    let out = run_with_input(shroud().args(&args), input.as_bytes(), LIMIT);
    assert!(out.status.success(), "{}", out.err());
    assert_eq!(out.out(), expect);
    let other = "AKIAZXCVBNMASDFGHJKL";
    let out = run_with_input(
        shroud().args(&args),
        format!("id={other}\n").as_bytes(),
        LIMIT,
    );
    assert_eq!(out.out(), "id=[REDACTED:aws-access-key-id]\n");
    // Written in two parts with a pause inside the value: the same, through
    // every path.
    let formats = generated();
    let lines: Vec<PausedLine> = formats
        .iter()
        .map(|(_, p, v, _)| PausedLine::split(p.as_bytes(), v.as_bytes(), v.len() / 2))
        .collect();
    let script = script(dir.path(), &lines);
    for via in ALL_VIAS {
        let out = run_paced(via, &args[1..], &script);
        // Under a terminal shroud's own warnings (weak test values) share it.
        let out: Vec<String> = out
            .iter()
            .map(|l| String::from_utf8_lossy(l).trim_end().to_string())
            .filter(|l| !l.contains("secret value is weak"))
            .collect();
        let want: Vec<String> = formats
            .iter()
            .map(|(_, p, _, _)| format!("{p}[REDACTED]"))
            .collect();
        assert_eq!(out, want, "{via:?}");
    }
}

/// An exec on the agent's `dir` that registers [`MINTED`] with `shroud mask
/// add`, then waits (at most a minute) for `go` to appear; exits 9 when the
/// registration fails.
fn registering_exec(dir: &Path, go: &Path) -> Guarded {
    let script = format!(
        "printf '%s' {MINTED} | shroud mask add || exit 9; i=0; while [ ! -e {0} ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done",
        go.display()
    );
    let mut a = shroud();
    a.env("PATH", path_with_shroud())
        .args(["exec", "--tty", "never", "--secrets-dir"])
        .arg(dir)
        .args(["--", "sh", "-c", &script])
        .stdout(std::process::Stdio::null());
    Guarded::new(a.spawn().unwrap())
}
