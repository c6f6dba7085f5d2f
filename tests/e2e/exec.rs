//! `shroud exec` as a process: real children, real signals, real pseudo-terminals,
//! a real PID namespace and a real tmpfs secrets directory.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use shroud_e2e::process::*;
use shroud_e2e::*;

// Random-looking: a value that reads like words is warned about on stderr, which
// some tests compare byte for byte.
const SECRET: &str = "k7Qp-x9Vw2-Lm4R-t8bNz";
const MASK: &str = "[REDACTED]";
const LIMIT: Duration = Duration::from_secs(20);

/// `shroud exec ARGS -- sh -c SCRIPT`.
fn exec_sh(args: &[&str], script: &str) -> Command {
    let mut c = shroud();
    c.arg("exec").args(args).args(["--", "sh", "-c", script]);
    c
}

fn run(cmd: &mut Command) -> Finished {
    run_with_input(cmd, b"", LIMIT)
}

/// A started shroud with both outputs collected as they arrive.
struct Running {
    child: Guarded,
    out: Collected,
    err: Collected,
    readers: Vec<JoinHandle<()>>,
}

impl Running {
    fn start(cmd: &mut Command) -> Running {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn_guarded();
        let (out, t1) = Collected::spawn(child.stdout.take().unwrap());
        let (err, t2) = Collected::spawn(child.stderr.take().unwrap());
        Running {
            child,
            out,
            err,
            readers: vec![t1, t2],
        }
    }

    fn signal(&self, s: Signal) {
        signal(&self.child, s);
    }

    /// Waits for exit and the end of both streams; returns the exit code.
    fn finish(mut self) -> (Option<i32>, String, String) {
        let status = wait_with_deadline(&mut self.child, LIMIT);
        for t in self.readers.drain(..) {
            t.join().unwrap();
        }
        (status.code(), self.out.text(), self.err.text())
    }
}

#[test]
fn exit_codes_follow_the_command_like_a_shell() {
    for code in [0, 1, 7] {
        let done = run(&mut exec_sh(&[], &format!("exit {code}")));
        assert_eq!(done.status.code(), Some(code), "{}", done.err());
    }
    let done = run(shroud().args(["exec", "--", "no-such-command-xyz"]));
    assert_eq!(done.status.code(), Some(127));
    assert!(done.err().contains("no-such-command-xyz"), "{}", done.err());
    assert!(done.err().contains("not found"), "{}", done.err());

    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let done = run(shroud().arg("exec").arg("--").arg(&script));
    assert_eq!(done.status.code(), Some(126));
    assert!(done.err().contains("not-executable.sh"), "{}", done.err());

    for (signal, n) in [("KILL", 9), ("TERM", 15), ("SEGV", 11)] {
        let done = run(&mut exec_sh(&[], &format!("kill -{signal} $$")));
        assert_eq!(done.status.code(), Some(128 + n), "signal {signal}");
    }
}

#[test]
fn output_is_redacted_on_two_separate_streams() {
    let dir = tempfile::tempdir().unwrap();
    let f = secret_file(dir.path(), "pw", SECRET.as_bytes());
    let done = run(exec_sh(
        &["--secret-file", f.to_str().unwrap()],
        &format!("echo out {SECRET}; echo err {SECRET} >&2; printf 'no newline {SECRET}'"),
    )
    .env("NOT_A_SECRET", "x"));
    assert!(done.status.success(), "{}", done.err());
    assert_eq!(done.out(), format!("out {MASK}\nno newline {MASK}"));
    assert_eq!(done.err(), format!("err {MASK}\n"));
}

#[test]
fn secrets_never_reach_the_command_environment_or_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let f = secret_file(dir.path(), "pw", SECRET.as_bytes());
    // The command dumps its environment and argv raw (hex) so the redactor
    // cannot hide a leak from us.
    let done = run(&mut exec_sh(
        &["--secret-file", f.to_str().unwrap()],
        "cat /proc/$$/environ /proc/$$/cmdline | od -An -tx1",
    ));
    assert!(done.status.success(), "{}", done.err());
    let hex: String = SECRET.bytes().map(|b| format!("{b:02x}")).collect();
    let dump: String = done.out().split_whitespace().collect();
    assert!(
        !dump.contains(&hex),
        "secret found in the command's env/argv"
    );
}

#[test]
fn the_command_starts_with_core_dumps_off() {
    // A shell raises both limits first (the tests run as root), so a 0 seen by
    // the command was set by shroud, not inherited from the test harness.
    let script = format!(
        "ulimit -Hc unlimited && ulimit -Sc unlimited && exec {} exec -- \
         sh -c 'echo soft=$(ulimit -Sc) hard=$(ulimit -Hc)'",
        shroud_bin().display()
    );
    let done = run(Command::new("sh").args(["-c", &script]));
    assert!(done.status.success(), "{}", done.err());
    assert_eq!(done.out().trim(), "soft=0 hard=0", "{}", done.err());
}

const TRAPS: &str = r#"
for s in INT HUP QUIT USR1 USR2 WINCH; do trap "echo got $s" $s; done
trap 'echo got TERM; exit 3' TERM
echo ready
while :; do sleep 0.05; done
"#;

#[test]
fn forwards_every_signal_to_a_trapping_child() {
    let r = Running::start(&mut exec_sh(&[], TRAPS));
    r.out.wait_count("ready", 1, LIMIT);
    for (s, name) in [
        (Signal::SIGINT, "INT"),
        (Signal::SIGHUP, "HUP"),
        (Signal::SIGQUIT, "QUIT"),
        (Signal::SIGUSR1, "USR1"),
        (Signal::SIGUSR2, "USR2"),
        (Signal::SIGWINCH, "WINCH"),
    ] {
        r.signal(s);
        r.out.wait_count(&format!("got {name}\n"), 1, LIMIT);
    }
    r.signal(Signal::SIGTERM);
    let (code, out, err) = r.finish();
    assert_eq!(code, Some(3), "{out}\n{err}");
    for name in ["INT", "HUP", "QUIT", "USR1", "USR2", "WINCH", "TERM"] {
        assert_eq!(out.matches(&format!("got {name}\n")).count(), 1, "{out}");
    }
}

#[test]
fn second_stop_signal_after_the_grace_period_kills() {
    let script = "trap 'echo got TERM' TERM; echo ready; while :; do sleep 0.05; done";
    let grace = Duration::from_millis(1000);
    let r = Running::start(&mut exec_sh(&["--kill-grace", "1s"], script));
    r.out.wait_count("ready", 1, LIMIT);
    let first = Instant::now();
    r.signal(Signal::SIGTERM);
    r.out.wait_count("got TERM", 1, LIMIT);
    // A second one within the grace period is only forwarded.
    r.signal(Signal::SIGTERM);
    r.out.wait_count("got TERM", 2, LIMIT);
    assert!(
        first.elapsed() < grace,
        "test machine too slow for a 1s grace"
    );
    // Let the grace period pass (the behaviour under test is time-based).
    std::thread::sleep(grace.saturating_sub(first.elapsed()) + Duration::from_millis(100));
    r.signal(Signal::SIGTERM);
    let (code, out, _) = r.finish();
    assert_eq!(code, Some(128 + 9), "{out}");
}

#[test]
fn no_output_is_lost_from_the_command_or_a_grandchild() {
    let dir = tempfile::tempdir().unwrap();
    let f = secret_file(dir.path(), "pw", SECRET.as_bytes());
    // 50 MB with the secret in every 1000th line.
    let mut big = Vec::with_capacity(51 << 20);
    let mut i = 0u64;
    while big.len() < 50_000_000 {
        if i % 1000 == 1 {
            writeln!(big, "line {i} has {SECRET} inside").unwrap();
        } else {
            writeln!(big, "line {i} is plain text padding padding padding").unwrap();
        }
        i += 1;
    }
    std::fs::write(dir.path().join("big"), &big).unwrap();
    let tail = format!("grandchild {SECRET} after the parent exited\n");
    std::fs::write(dir.path().join("tail"), &tail).unwrap();
    let script = "cat big; head -c 1000000 big >&2; \
                  (sleep 0.5; cat tail; cat tail >&2) & exit 0";
    // 50 MB through a debug build on a loaded machine: a generous upper bound.
    let done = run_with_input(
        exec_sh(
            &[
                "--drain-timeout",
                "10s",
                "--secret-file",
                f.to_str().unwrap(),
            ],
            script,
        )
        .current_dir(dir.path()),
        b"",
        Duration::from_secs(180),
    );
    assert_eq!(done.status.code(), Some(0), "{}", done.err());
    let big = String::from_utf8(big).unwrap();
    let expected_out = format!("{big}{tail}").replace(SECRET, MASK);
    let expected_err = format!("{}{tail}", &big[..1_000_000]).replace(SECRET, MASK);
    assert_eq!(done.stdout.len(), expected_out.len(), "stdout byte count");
    assert!(
        done.stdout == expected_out.as_bytes(),
        "stdout content differs"
    );
    assert_eq!(done.stderr.len(), expected_err.len(), "stderr byte count");
    assert!(
        done.stderr == expected_err.as_bytes(),
        "stderr content differs"
    );
}

#[test]
fn drain_timeout_bounds_a_grandchild_that_never_closes_output() {
    let start = Instant::now();
    let done = run(&mut exec_sh(
        &["--drain-timeout", "300ms"],
        "echo parent; (echo child; sleep 30) & exit 4",
    ));
    assert_eq!(done.status.code(), Some(4));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert!(done.out().contains("parent\n"), "{}", done.out());
    assert!(done.out().contains("child\n"), "{}", done.out());
}

#[test]
fn as_pid_1_reaps_orphans_and_exits_with_the_command() {
    require_tool("unshare", "apt-get install util-linux");
    let script = r#"
        echo "pid1=$(cat /proc/1/comm)"
        for i in 1 2 3 4 5; do (sleep 0.2 &); done
        (sleep 30 >/dev/null 2>&1 &)
        i=0
        while [ $i -lt 200 ]; do
            sleeps=$(grep -l '^Name:.sleep$' /proc/[0-9]*/status 2>/dev/null | wc -l)
            zombies=$(grep -l '^State:.Z' /proc/[0-9]*/status 2>/dev/null | wc -l)
            if [ "$sleeps" -le 1 ] && [ "$zombies" -eq 0 ]; then echo reaped-all; exit 5; fi
            sleep 0.05; i=$((i+1))
        done
        echo zombies-left; ps -eo pid,stat,comm; exit 9
    "#;
    let start = Instant::now();
    let done = run(Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(shroud_bin())
        .args(["exec", "--", "sh", "-c", script]));
    assert_eq!(
        done.status.code(),
        Some(5),
        "{}\n{}",
        done.out(),
        done.err()
    );
    assert!(done.out().contains("pid1=shroud"), "{}", done.out());
    assert!(done.out().contains("reaped-all"), "{}", done.out());
    // The 30 s orphan did not keep shroud (PID 1) alive.
    assert!(start.elapsed() < Duration::from_secs(15));
}

#[test]
fn tty_mode_gives_the_command_a_terminal_and_still_masks() {
    let dir = tempfile::tempdir().unwrap();
    let f = secret_file(dir.path(), "pw", SECRET.as_bytes());
    let inner = format!(
        "test -t 0 && test -t 1 && test -t 2 && echo is-a-tty; \
         printf 'prompt> '; read answer; echo \"got $answer {SECRET}\"; exit 6"
    );
    let script = dir.path().join("prompt.sh");
    std::fs::write(&script, inner).unwrap();
    let (mut child, out, t) = under_pty(&format!(
        "exec --secret-file {} -- sh {}",
        f.display(),
        script.display()
    ));
    // The prompt has no newline and must appear before we answer it.
    out.wait_for("the prompt", LIMIT, |t| t.contains("prompt> "));
    child.stdin.as_mut().unwrap().write_all(b"hello\n").unwrap();
    out.wait_for("the answer", LIMIT, |t| t.contains("got hello"));
    let status = wait_with_deadline(&mut child, LIMIT);
    t.join().unwrap();
    let text = out.text();
    assert!(text.contains("is-a-tty"), "{text}");
    assert!(text.contains(&format!("got hello {MASK}")), "{text}");
    assert!(!text.contains(SECRET), "{text}");
    assert_eq!(status.code(), Some(6), "{text}");
}

#[test]
fn own_log_lines_end_in_crlf_while_the_terminal_is_raw() {
    // Debug logging writes "command started" and "command exited" while our
    // terminal is raw, interleaved with the command's own (pty-translated) lines.
    let (mut child, out, t) = under_pty_env(
        "exec --tty auto -- sh -c 'echo one; echo two'",
        &[("SHROUD_LOG", "debug"), ("SHROUD_LOG_FORMAT", "text")],
    );
    let status = wait_with_deadline(&mut child, LIMIT);
    t.join().unwrap();
    let text = out.text();
    assert_eq!(status.code(), Some(0), "{text:?}");
    assert!(text.contains("command started"), "{text:?}");
    assert!(text.contains("command exited"), "{text:?}");
    // Our log lines may land between the command's lines (two writers, one tty).
    assert!(text.contains("one\r\n"), "{text:?}");
    assert!(text.contains("two\r\n"), "{text:?}");
    let bare = text
        .match_indices('\n')
        .filter(|(i, _)| *i == 0 || text.as_bytes()[i - 1] != b'\r')
        .count();
    assert_eq!(bare, 0, "lines without \\r: {text:?}");
}

#[test]
fn tty_never_keeps_pipes_under_a_terminal() {
    let (mut child, out, t) = under_pty("exec --tty never -- sh -c 'test -t 1 || echo not-a-tty'");
    wait_with_deadline(&mut child, LIMIT);
    t.join().unwrap();
    assert!(out.text().contains("not-a-tty"), "{}", out.text());
}

const OLD: &str = "old-secret-value-1111";
const NEW: &str = "new-secret-value-22222222";

/// A tmpfs secrets directory with `token` = OLD published as generation 1.
fn secrets_dir() -> Tmpfs {
    let fs = Tmpfs::new();
    std::fs::write(fs.path().join("token"), OLD).unwrap();
    publish_values(fs.path(), 1, &[("token", OLD.as_bytes())]);
    fs
}

/// The agent's side of the handshake: publish the new value (and retire the old),
/// await exec's ack, and only then render the file. Replacing the file first would
/// let the workload print the new value before exec has heard of it.
fn rotate_like_the_agent(dir: &Path) {
    publish_values(
        dir,
        2,
        &[("token", NEW.as_bytes()), ("token.retired", OLD.as_bytes())],
    );
    wait_until("ack of generation 2", LIMIT, || acks(dir) == vec![2]);
    replace_file(&dir.join("token"), NEW.as_bytes());
}

/// The workload: prints the current token and its length in a loop.
fn token_printer(dir: &Path) -> String {
    format!(
        "echo ready; while :; do t=$(cat {0}/token); echo \"token=$t len=${{#t}}\"; sleep 0.02; done",
        dir.display()
    )
}

#[test]
fn rotation_swaps_the_set_acknowledges_and_masks_old_and_new() {
    let fs = secrets_dir();
    let dir = fs.path();
    let r = Running::start(&mut exec_sh(
        &["--secrets-dir", dir.to_str().unwrap()],
        &token_printer(dir),
    ));
    r.out.wait_count(&format!("len={}", OLD.len()), 3, LIMIT);
    assert_eq!(acks(dir), vec![1], "initial generation acknowledged");

    rotate_like_the_agent(dir);
    r.out.wait_count(&format!("len={}", NEW.len()), 5, LIMIT);

    r.signal(Signal::SIGTERM);
    let (code, out, err) = r.finish();
    assert_eq!(code, Some(143), "{err}");
    assert!(!out.contains(OLD) && !out.contains(NEW), "{out}");
    assert!(
        out.contains(&format!("token={MASK} len={}", NEW.len())),
        "{out}"
    );
    assert!(acks(dir).is_empty(), "ack file removed at exit");
    assert_eq!(
        std::fs::read_to_string(dir.join(".shroud/exited")).unwrap(),
        "143\n"
    );
}

#[test]
fn on_rotate_signal_is_delivered_after_a_change() {
    let fs = secrets_dir();
    let dir = fs.path();
    let script = format!("trap 'echo got HUP' HUP; {}", token_printer(dir));
    let r = Running::start(&mut exec_sh(
        &[
            "--secrets-dir",
            dir.to_str().unwrap(),
            "--on-rotate",
            "signal:SIGHUP",
        ],
        &script,
    ));
    r.out.wait_count("token=", 2, LIMIT);
    assert!(!r.out.text().contains("got HUP"));
    rotate_like_the_agent(dir);
    r.out.wait_count("got HUP", 1, LIMIT);
    r.signal(Signal::SIGTERM);
    let (code, out, _) = r.finish();
    assert_eq!(code, Some(143));
    assert!(!out.contains(NEW) && !out.contains(OLD), "{out}");
}

#[test]
fn an_idle_exec_uses_no_cpu_before_or_after_a_rotation() {
    // The watch thread once reacted to the open and read events of its own
    // directory listing and file reads, and spun a whole core for as long as the
    // command ran.
    let fs = secrets_dir();
    let dir = fs.path();
    let r = Running::start(&mut exec_sh(
        &["--secrets-dir", dir.to_str().unwrap()],
        "echo ready; exec sleep 60",
    ));
    r.out.wait_count("ready", 1, LIMIT);
    let pid = r.child.id();
    let idle = cpu_used_during(pid, Duration::from_secs(1));
    rotate_like_the_agent(dir);
    let after_rotation = cpu_used_during(pid, Duration::from_secs(1));
    r.signal(Signal::SIGTERM);
    let (code, _, err) = r.finish();
    assert_eq!(code, Some(143), "{err}");
    assert!(idle < 0.1, "{idle} s of CPU in 1 s idle");
    assert!(
        after_rotation < 0.1,
        "{after_rotation} s of CPU in the second after a rotation"
    );
}

#[test]
fn on_rotate_restart_starts_the_command_again() {
    let fs = secrets_dir();
    let dir = fs.path();
    let script = format!("echo \"start $$\"; {}", token_printer(dir));
    let r = Running::start(&mut exec_sh(
        &[
            "--secrets-dir",
            dir.to_str().unwrap(),
            "--on-rotate",
            "restart",
        ],
        &script,
    ));
    r.out.wait_count("start ", 1, LIMIT);
    rotate_like_the_agent(dir);
    r.out.wait_count("start ", 2, LIMIT);
    r.out.wait_count(&format!("len={}", NEW.len()), 1, LIMIT);
    r.signal(Signal::SIGTERM);
    let (code, out, _) = r.finish();
    assert_eq!(code, Some(143));
    let pids: Vec<&str> = out.lines().filter(|l| l.starts_with("start ")).collect();
    assert_eq!(pids.len(), 2, "{out}");
    assert_ne!(pids[0], pids[1], "a new process");
    assert!(!out.contains(NEW) && !out.contains(OLD), "{out}");
}

#[test]
fn wait_ready_holds_the_command_until_the_agent_is_ready() {
    let fs = Tmpfs::new();
    let dir = fs.path();
    let r = Running::start(&mut exec_sh(
        &["--secrets-dir", dir.to_str().unwrap(), "--wait-ready"],
        "echo started",
    ));
    // Not started while there is no ready marker: exec says it waits once its
    // watches are armed, and the command has not run by then.
    r.err.wait_for("the wait", LIMIT, |t| {
        t.contains("waiting for the agent's ready marker")
    });
    assert_eq!(r.out.text(), "");
    std::fs::create_dir_all(dir.join(".shroud")).unwrap();
    std::fs::write(dir.join(".shroud/ready"), "").unwrap();
    r.out.wait_count("started", 1, LIMIT);
    let (code, _, err) = r.finish();
    assert_eq!(code, Some(0), "{err}");

    let start = Instant::now();
    let empty = tempfile::tempdir().unwrap();
    let done = run(&mut exec_sh(
        &[
            "--secrets-dir",
            empty.path().to_str().unwrap(),
            "--wait-ready",
            "--ready-timeout",
            "300ms",
        ],
        "echo started",
    ));
    assert_ne!(done.status.code(), Some(0));
    assert!(done.err().contains(".shroud/ready"), "{}", done.err());
    assert!(!done.out().contains("started"));
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn wait_ready_waits_for_a_missing_directory_to_appear() {
    let base = tempfile::tempdir().unwrap();
    // Several levels are missing: the nearest existing ancestor is watched, then
    // the next one, then the directory itself. They are created in one quick
    // burst, as `mkdir -p` does, so a level made before its parent's watch is
    // armed must be found by looking again, not by an event; a few rounds make
    // that race likely to show.
    for round in 0..5 {
        let dir = base.path().join(format!("r{round}/volume/mount/secrets"));
        let r = Running::start(&mut exec_sh(
            &["--secrets-dir", dir.to_str().unwrap(), "--wait-ready"],
            "echo started",
        ));
        r.err.wait_for("the wait", LIMIT, |t| {
            t.contains("waiting for the secrets directory to appear")
        });
        std::fs::create_dir_all(dir.join(".shroud")).unwrap();
        assert_eq!(r.out.text(), "", "started before the ready marker");
        std::fs::write(dir.join(".shroud/ready"), "").unwrap();
        r.out.wait_count("started", 1, LIMIT);
        let (code, _, err) = r.finish();
        assert_eq!(code, Some(0), "{err}");
        assert!(dir.join(".shroud/exited").exists());
    }

    // Never appears: the ready timeout (exit 1), not a usage error.
    let missing = base.path().join("never/secrets");
    let done = run(&mut exec_sh(
        &[
            "--secrets-dir",
            missing.to_str().unwrap(),
            "--wait-ready",
            "--ready-timeout",
            "300ms",
        ],
        "echo started",
    ));
    assert_eq!(done.status.code(), Some(1), "{}", done.err());
    assert!(done.err().contains(".shroud/ready"), "{}", done.err());
    assert!(!done.out().contains("started"));

    // A file in the way can never become the directory: a usage error.
    let file = tempfile::NamedTempFile::new().unwrap();
    let done = run(&mut exec_sh(
        &[
            "--secrets-dir",
            file.path().join("secrets").to_str().unwrap(),
            "--wait-ready",
        ],
        "echo started",
    ));
    assert_eq!(done.status.code(), Some(64), "{}", done.err());
    assert!(done.err().contains("not a directory"), "{}", done.err());

    // Without --wait-ready a missing directory stays a usage error.
    let done = run(&mut exec_sh(
        &["--secrets-dir", missing.to_str().unwrap()],
        "echo started",
    ));
    assert_eq!(done.status.code(), Some(64), "{}", done.err());
    assert!(done.err().contains("--secrets-dir"), "{}", done.err());
}

#[test]
fn exit_marker_holds_the_exit_code() {
    let fs = Tmpfs::new();
    let done = run(&mut exec_sh(
        &["--secrets-dir", fs.path().to_str().unwrap()],
        "exit 7",
    ));
    assert_eq!(done.status.code(), Some(7));
    assert_eq!(
        std::fs::read_to_string(fs.path().join(".shroud/exited")).unwrap(),
        "7\n"
    );
}

#[test]
fn bad_input_is_a_usage_error() {
    let done = run(shroud().args(["exec", "--"]));
    assert_eq!(done.status.code(), Some(64), "{}", done.err());
    let done = run(shroud().args(["exec"]));
    assert_eq!(done.status.code(), Some(64), "{}", done.err());

    let done = run(&mut exec_sh(&["--on-rotate", "signal:SIGNOPE"], "true"));
    assert_eq!(done.status.code(), Some(64));
    assert!(done.err().contains("--on-rotate"), "{}", done.err());
    assert!(done.err().contains("SIGNOPE"), "{}", done.err());

    let done = run(&mut exec_sh(&["--on-rotate", "reboot"], "true"));
    assert_eq!(done.status.code(), Some(64));

    let done = run(&mut exec_sh(
        &["--secrets-dir", "/nonexistent/secrets"],
        "true",
    ));
    assert_eq!(done.status.code(), Some(64));
    assert!(
        done.err().contains("/nonexistent/secrets"),
        "{}",
        done.err()
    );

    let file = tempfile::NamedTempFile::new().unwrap();
    let done = run(&mut exec_sh(
        &["--secrets-dir", file.path().to_str().unwrap()],
        "true",
    ));
    assert_eq!(done.status.code(), Some(64), "{}", done.err());
    assert!(done.err().contains("--secrets-dir"), "{}", done.err());
}

/// Counts every SIGINT delivery separately (a shell's trap would fold two that
/// arrive close together into one): SIGINT is blocked and taken one at a time
/// with `sigwaitinfo`, each printed with its number and sender; SIGTERM ends it.
const SIGINT_COUNTER: &str = r#"
import os, signal
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
print("ready ppid=%d" % os.getppid(), flush=True)
n = 0
while True:
    info = signal.sigwaitinfo({signal.SIGINT, signal.SIGTERM})
    if info.si_signo == signal.SIGTERM:
        break
    n += 1
    sender = "kernel" if info.si_code == 0x80 else "pid-%d" % info.si_pid
    print("INT %d from %s" % (n, sender), flush=True)
print("total %d" % n, flush=True)
"#;

#[test]
fn a_terminal_ctrl_c_reaches_the_command_exactly_once() {
    const CTRL_CS: usize = 5;
    require_tool("python3", "apt-get install python3");
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("count-int.py");
    std::fs::write(&script, SIGINT_COUNTER).unwrap();
    // auto: the command has its own terminal (ours is raw, the byte is passed on);
    // never: it shares our terminal and process group (the kernel delivers it to
    // shroud and the command, and shroud must not forward its copy).
    for tty in ["auto", "never"] {
        let (mut child, out, t) =
            under_pty(&format!("exec --tty {tty} -- python3 {}", script.display()));
        out.wait_count("ready", 1, LIMIT);
        let shroud_pid: i32 = {
            let text = out.text();
            let at = text.find("ready ppid=").unwrap() + "ready ppid=".len();
            text[at..]
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        // Separate Ctrl-Cs, each sent once the previous one has arrived, so a
        // duplicate is a separate delivery and counted. A duplicate can still fold
        // into its original when both are pending before the child runs, which is
        // why there are several.
        for k in 1..=CTRL_CS {
            child.stdin.as_mut().unwrap().write_all(b"\x03").unwrap();
            child.stdin.as_mut().unwrap().flush().unwrap();
            out.wait_count("INT ", k, LIMIT);
        }
        // shroud handles its signals in order: a forwarded copy of the last
        // Ctrl-C would be sent before this SIGTERM is passed on, and is taken
        // first (lower signal number).
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(shroud_pid), Signal::SIGTERM).unwrap();
        let status = wait_with_deadline(&mut child, LIMIT);
        t.join().unwrap();
        let text = out.text();
        assert_eq!(text.matches("INT ").count(), CTRL_CS, "--tty {tty}: {text}");
        assert_eq!(
            text.matches("from kernel").count(),
            CTRL_CS,
            "--tty {tty}: {text}"
        );
        assert!(
            text.contains(&format!("total {CTRL_CS}")),
            "--tty {tty}: {text}"
        );
        assert_eq!(status.code(), Some(0), "--tty {tty}: {text}");
    }
}

#[test]
fn kubernetes_data_symlink_swap_is_picked_up() {
    let fs = Tmpfs::new();
    let dir = fs.path();
    let link =
        |target: &str, name: &str| std::os::unix::fs::symlink(target, dir.join(name)).unwrap();
    // The layout of a Kubernetes secret volume.
    std::fs::create_dir(dir.join("..2026_01")).unwrap();
    std::fs::write(dir.join("..2026_01/token"), OLD).unwrap();
    link("..2026_01", "..data");
    link("..data/token", "token");
    // The workload keeps the value it read at start and prints it, with the new
    // one, after the rotation: the old value must stay masked although it is gone
    // from the directory (no agent keeps it in a values file here).
    let script = format!(
        "old=$(cat {0}/token); trap 'echo \"token=$(cat {0}/token) old=$old\"' HUP; \
         echo ready; while :; do sleep 0.05; done",
        dir.display()
    );
    let r = Running::start(&mut exec_sh(
        &[
            "--secrets-dir",
            dir.to_str().unwrap(),
            "--on-rotate",
            "signal:HUP",
        ],
        &script,
    ));
    r.out.wait_count("ready", 1, LIMIT);
    // The kubelet's update: a new timestamped directory, then an atomic swap of
    // the `..data` symlink.
    std::fs::create_dir(dir.join("..2026_02")).unwrap();
    std::fs::write(dir.join("..2026_02/token"), NEW).unwrap();
    link("..2026_02", "..data_tmp");
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    r.out.wait_count("token=", 1, LIMIT);
    r.signal(Signal::SIGTERM);
    let (code, out, _) = r.finish();
    assert_eq!(code, Some(143));
    assert!(out.contains(&format!("token={MASK} old={MASK}")), "{out}");
    assert!(!out.contains(NEW) && !out.contains(OLD), "{out}");
}

#[test]
fn tty_always_keeps_piped_stdin_off_the_pty() {
    let dir = tempfile::tempdir().unwrap();
    let f = secret_file(dir.path(), "pw", SECRET.as_bytes());
    let done = run_with_input(
        &mut exec_sh(
            &["--tty", "always", "--secret-file", f.to_str().unwrap()],
            "test -t 1 && echo out-is-a-tty; test -t 0 || echo in-is-a-pipe; \
             read x; echo \"got $x\"; cat; echo cat-done",
        ),
        format!("line one {SECRET}\nline two\n").as_bytes(),
        LIMIT,
    );
    assert_eq!(done.status.code(), Some(0), "{}", done.err());
    // stdin is the pipe itself (nothing echoed, its end is the pipe's end);
    // output is on the pty, whose \n → \r\n translation is off because no
    // terminal of ours is raw (the tty rule, docs/exec.md).
    assert_eq!(
        done.out(),
        format!("out-is-a-tty\nin-is-a-pipe\ngot line one {MASK}\nline two\ncat-done\n")
    );
}

#[test]
fn exit_marker_is_written_when_the_command_cannot_start() {
    let fs = Tmpfs::new();
    let done = run(shroud()
        .args(["exec", "--secrets-dir", fs.path().to_str().unwrap()])
        .args(["--", "no-such-command-xyz"]));
    assert_eq!(done.status.code(), Some(127));
    assert_eq!(
        std::fs::read_to_string(fs.path().join(".shroud/exited")).unwrap(),
        "127\n"
    );
}

#[test]
fn no_output_is_lost_through_a_pty_when_the_command_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let f = secret_file(dir.path(), "pw", SECRET.as_bytes());
    let mut text = String::new();
    for i in 0..100_000 {
        text.push_str(&format!(
            "pty line {i} {}\n",
            if i % 977 == 5 { SECRET } else { "plain" }
        ));
    }
    std::fs::write(dir.path().join("text"), &text).unwrap();
    let done = run(shroud()
        .args([
            "exec",
            "--tty",
            "always",
            "--secret-file",
            f.to_str().unwrap(),
            "--",
            "cat",
        ])
        .arg(dir.path().join("text")));
    assert_eq!(done.status.code(), Some(0), "{}", done.err());
    // stdin is not a terminal: the pty does not translate \n (the tty rule).
    let expected = text.replace(SECRET, MASK);
    assert_eq!(
        done.stdout.len(),
        expected.len(),
        "byte count through the pty"
    );
    assert!(done.stdout == expected.as_bytes());
}
