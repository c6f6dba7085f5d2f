//! `shroud redact` as a process: real pipes, real timing, real exit codes.

use std::io::{Read as _, Write as _};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use shroud_e2e::*;

const SECRET: &[u8] = b"correct-horse-battery";

#[test]
fn masks_values_from_files_dir_and_values_file_in_every_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let f = secret_file(dir.path(), "pw", b"correct-horse-battery\n");
    let sdir = dir.path().join("secrets");
    std::fs::create_dir_all(sdir.join(".shroud")).unwrap();
    std::fs::write(sdir.join("api"), b"api-token-0987").unwrap();
    std::fs::write(
        sdir.join(".shroud/values"),
        b"shroud-values 1\ngeneration 1\nsecret db cG9zdGdyZXMtcGFzcw==\n",
    )
    .unwrap();
    let input = b"raw correct-horse-battery\n\
        b64 Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5\n\
        url api-token-0987 json \"postgres-pass\"\n\
        inside eHljb3JyZWN0LWhvcnNlLWJhdHRlcnl6\n";
    let done = run_with_input(
        shroud()
            .arg("redact")
            .arg("--secret-file")
            .arg(&f)
            .arg("--secrets-dir")
            .arg(&sdir),
        input,
        Duration::from_secs(10),
    );
    assert!(done.status.success(), "{}", done.err());
    let out = done.out();
    assert_eq!(
        out,
        "raw [REDACTED]\nb64 [REDACTED]\nurl [REDACTED] json \"[REDACTED]\"\ninside eHl[REDACTED]l6\n"
    );
}

#[test]
fn prompt_appears_and_slow_secret_never_does() {
    let dir = tempfile::tempdir().unwrap();
    let f = secret_file(dir.path(), "pw", SECRET);
    let mut child = shroud()
        .args(["redact", "--idle", "300ms", "--secret-file"])
        .arg(&f)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn_guarded();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    // "cor" could start the secret: it is held, then released after the idle time.
    stdin.write_all(b"Password: cor").unwrap();
    let start = Instant::now();
    let mut seen = Vec::new();
    while !contains(&seen, b"Password: cor") {
        let chunk = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("prompt without newline never appeared");
        seen.extend(chunk);
    }
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "held piece released early: {waited:?}"
    );
    // Now the secret, one byte per write, with pauses well under the idle time.
    for b in SECRET {
        stdin.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    stdin.write_all(b"\n").unwrap();
    drop(stdin);
    let status = wait_with_deadline(&mut child, Duration::from_secs(10));
    reader.join().unwrap();
    seen.extend(rx.try_iter().flatten());
    assert!(status.success());
    assert_eq!(String::from_utf8_lossy(&seen), "Password: cor[REDACTED]\n");
}

#[test]
fn binary_and_long_lines_stream_through() {
    let dir = tempfile::tempdir().unwrap();
    let f = secret_file(dir.path(), "pw", SECRET);
    let mut input = Vec::new();
    for i in 0..(8 << 20) {
        input.push((i * 7 % 251) as u8);
    }
    input.extend_from_slice(SECRET);
    input.extend_from_slice(b"\x00\xff\x1b[0m");
    let done = run_with_input(
        shroud().arg("redact").arg("--secret-file").arg(&f),
        &input,
        Duration::from_secs(60),
    );
    assert!(done.status.success());
    assert_eq!(
        done.stdout.len(),
        input.len() - SECRET.len() + b"[REDACTED]".len()
    );
    assert!(done.stdout.ends_with(b"[REDACTED]\x00\xff\x1b[0m"));
    assert_eq!(&done.stdout[..8 << 20], &input[..8 << 20]);
}

#[test]
fn bad_sources_exit_64_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-secret");
    let done = run_with_input(
        shroud().arg("redact").arg("--secret-file").arg(&missing),
        b"",
        Duration::from_secs(10),
    );
    assert_eq!(done.status.code(), Some(64));
    assert!(done.err().contains("no-such-secret"), "{}", done.err());

    let file = secret_file(dir.path(), "plain", b"x");
    let done = run_with_input(
        shroud().arg("redact").arg("--secrets-dir").arg(&file),
        b"",
        Duration::from_secs(10),
    );
    assert_eq!(done.status.code(), Some(64));
    assert!(done.err().contains("not a directory"), "{}", done.err());

    let sdir = dir.path().join("s");
    std::fs::create_dir_all(sdir.join(".shroud")).unwrap();
    std::fs::write(sdir.join(".shroud/values"), b"garbage").unwrap();
    let done = run_with_input(
        shroud().arg("redact").arg("--secrets-dir").arg(&sdir),
        b"",
        Duration::from_secs(10),
    );
    assert_eq!(done.status.code(), Some(64));
    assert!(done.err().contains(".shroud/values"), "{}", done.err());

    let done = run_with_input(
        shroud().args(["redact", "--min-length", "0"]),
        b"",
        Duration::from_secs(10),
    );
    assert_eq!(done.status.code(), Some(64));
    assert!(done.err().contains("--min-length"), "{}", done.err());

    let done = run_with_input(
        shroud().args(["redact", "--piece-length", "7"]),
        b"",
        Duration::from_secs(10),
    );
    assert_eq!(done.status.code(), Some(64));
    assert!(done.err().contains("--piece-length"), "{}", done.err());
    assert!(done.err().contains("at least 8"), "{}", done.err());
}

/// The piece rule through the binary: a value cut short by the program, and its
/// base64 wrapped by coreutils `base64 -w 20` (the wrap view), are masked; a piece
/// shorter than `--piece-length` is not.
#[test]
fn pieces_of_a_value_are_masked_and_the_piece_length_is_a_flag() {
    let dir = tempfile::tempdir().unwrap();
    let value = b"k9Qz2LmV8xTr4NbW7cYp3JsH6gFd1RaE5uKo0iXq";
    let f = secret_file(dir.path(), "key", value);
    let wrapped = std::process::Command::new("base64")
        .args(["-w", "20"])
        .arg(&f)
        .output()
        .expect("coreutils base64 (scripts/test --prereqs)");
    assert!(wrapped.status.success());
    let mut input = b"truncated: k9Qz2LmV8xTr4NbW...\n".to_vec();
    input.extend_from_slice(&wrapped.stdout);
    // A line after it: a stream that ends right after body bytes and a line
    // break holds them (the wrap view waits for the next line), and at the end
    // a held piece of at least the minimum length is masked.
    input.extend_from_slice(b"short: k9Qz2LmV8xT\nend.\n");
    let redact = |extra: &[&str]| {
        let done = run_with_input(
            shroud()
                .arg("redact")
                .arg("--secret-file")
                .arg(&f)
                .args(extra),
            &input,
            Duration::from_secs(10),
        );
        assert!(done.status.success(), "{}", done.err());
        done.out()
    };
    let out = redact(&[]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "truncated: [REDACTED]...");
    // The wrap view joins the lines: the encoding is masked as one run (line
    // breaks inside it included), and fewer than 12 of its characters show.
    let b64 = lines[1..lines.len() - 2].join("\n");
    assert!(b64.contains("[REDACTED]"), "the wrapped lines show: {out}");
    assert!(
        b64.replace("[REDACTED]", "").replace('\n', "").len() < 12,
        "{out}"
    );
    assert_eq!(
        lines[lines.len() - 2],
        "short: k9Qz2LmV8xT",
        "11 bytes stay"
    );
    let out = redact(&["--piece-length", "20"]);
    assert!(out.starts_with("truncated: k9Qz2LmV8xTr4NbW...\n"), "{out}");
}

#[test]
fn short_values_are_reported_by_name_not_value() {
    let dir = tempfile::tempdir().unwrap();
    let f = secret_file(dir.path(), "tiny-secret", b"abc");
    let done = run_with_input(
        shroud().arg("redact").arg("--secret-file").arg(&f),
        b"abc\n",
        Duration::from_secs(10),
    );
    assert!(done.status.success());
    assert_eq!(done.out(), "abc\n");
    assert!(done.err().contains("tiny-secret"), "{}", done.err());
    assert!(!done.err().contains("abc\""), "{}", done.err());
}

/// A value with a piece that looks like ordinary text is warned about at load,
/// by name, never by value; a random token is not.
#[test]
fn values_that_look_like_ordinary_text_are_warned_about_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let words = secret_file(dir.path(), "number-secret", b"4111111111111111");
    let token = secret_file(dir.path(), "token-secret", b"k9Qz2LmV8xTr4NbW7cYp3JsH");
    let done = run_with_input(
        shroud()
            .arg("redact")
            .arg("--secret-file")
            .arg(&words)
            .arg("--secret-file")
            .arg(&token),
        b"x\n",
        Duration::from_secs(10),
    );
    assert!(done.status.success(), "{}", done.err());
    let err = done.err();
    assert!(
        err.contains("number-secret") && err.contains("ordinary text"),
        "{err}"
    );
    assert!(!err.contains("token-secret"), "{err}");
    assert!(!err.contains("41111"), "{err}");
}

/// A line with no newline, far larger than any buffer, streams through in bounded
/// memory: the engine holds back at most one pattern's length.
#[test]
fn a_huge_line_streams_in_bounded_memory() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let f = secret_file(dir.path(), "pw", SECRET);
    // The value engine's bound is what is measured here: a gibibyte through the
    // debug build's detector stage (aho-corasick unoptimised) would take a
    // quarter of an hour; the detectors hold at most `MAX_HOLD` (detect/stage.rs).
    let mut child = shroud()
        .arg("redact")
        .arg("--secret-file")
        .arg(&f)
        .args(["--detect", "none"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn_guarded();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let counter = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0usize;
        let mut tail = Vec::new();
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => return (total, tail),
                Ok(n) => {
                    total += n;
                    tail.extend_from_slice(&buf[..n]);
                    let keep = tail.len().saturating_sub(64);
                    tail.drain(..keep);
                }
            }
        }
    });
    const TOTAL: usize = 1 << 30;
    let block = vec![b'x'; 1 << 20];
    let mut peak_kib = 0u64;
    for i in 0..(TOTAL >> 20) {
        stdin.write_all(&block).unwrap();
        if i % 64 == 0 {
            peak_kib = peak_kib.max(vm_hwm_kib(pid));
        }
    }
    stdin.write_all(SECRET).unwrap();
    peak_kib = peak_kib.max(vm_hwm_kib(pid));
    drop(stdin);
    let status = wait_with_deadline(&mut child, Duration::from_secs(120));
    let (total, tail) = counter.join().unwrap();
    assert!(status.success());
    assert_eq!(total, TOTAL + b"[REDACTED]".len());
    assert!(tail.ends_with(b"x[REDACTED]"));
    assert!(peak_kib > 0, "could not read VmHWM");
    assert!(
        peak_kib < 32 * 1024,
        "peak RSS {peak_kib} KiB for a 1 GiB line"
    );
}

fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
