//! `shroud exec` overhead, printed (not asserted): the time added to start a
//! trivial command, and the throughput of a child writing 1 GiB through it
//! compared with the child writing to a pipe directly.
//!
//! Run with `scripts/bench-exec` (builds the release binary first). The binary is
//! `$SHROUD_BIN`, else `$CARGO_TARGET_DIR/release/shroud`.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const STARTS: usize = 200;
const CHUNK: usize = 64 << 20;
const REPEATS: usize = 16; // 16 × 64 MiB = 1 GiB

fn shroud_bin() -> PathBuf {
    if let Ok(p) = std::env::var("SHROUD_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("release/shroud");
    assert!(
        bin.exists(),
        "{} missing: run `cargo build --release -p shroud-agent` (scripts/bench-exec does)",
        bin.display()
    );
    bin
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time_starts(mut make: impl FnMut() -> Command) -> Duration {
    let mut times = Vec::with_capacity(STARTS);
    for _ in 0..STARTS {
        let mut cmd = make();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let t = Instant::now();
        let status = cmd.status().expect("spawn");
        times.push(t.elapsed());
        assert!(status.success());
    }
    median(times)
}

/// Best of three runs of [`time_once`]: the machine is shared, so the fastest run
/// is the one least disturbed by others.
fn time_throughput(mut make: impl FnMut() -> Command) -> (u64, f64) {
    (0..3)
        .map(|_| time_once(make()))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .expect("three runs")
}

/// Runs `cmd`, reads its stdout to the end, returns (bytes, seconds).
fn time_once(mut cmd: Command) -> (u64, f64) {
    let t = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = out.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    assert!(child.wait().unwrap().success());
    (total, t.elapsed().as_secs_f64())
}

fn writer(file: &Path) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        format!("for i in $(seq {REPEATS}); do cat {}; done", file.display()),
    ]
}

fn main() {
    let bin = shroud_bin();
    let dir = tempfile::tempdir_in("/dev/shm").unwrap();

    let direct = time_starts(|| Command::new("true"));
    let wrapped = time_starts(|| {
        let mut c = Command::new(&bin);
        c.args(["exec", "--", "true"]);
        c
    });
    println!("start `true` ({STARTS} runs, median):");
    println!(
        "  directly            {:>8.2} ms",
        direct.as_secs_f64() * 1e3
    );
    println!(
        "  under shroud exec   {:>8.2} ms",
        wrapped.as_secs_f64() * 1e3
    );
    println!(
        "  added               {:>8.2} ms",
        (wrapped.as_secs_f64() - direct.as_secs_f64()) * 1e3
    );

    // Log-like text with no secret in it: the common case, every byte scanned.
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut i = 0u64;
    while chunk.len() < CHUNK {
        chunk.extend_from_slice(
            format!("2026-01-01T00:00:{:02}Z INFO request id={i:08x} path=/api/v1/items status=200 bytes=1234\n", i % 60)
                .as_bytes(),
        );
        i += 1;
    }
    chunk.truncate(CHUNK);
    let data = dir.path().join("chunk");
    std::fs::write(&data, &chunk).unwrap();
    let one = dir.path().join("one-secret");
    std::fs::write(&one, "correct-horse-battery-staple").unwrap();
    let many = dir.path().join("secrets");
    std::fs::create_dir(&many).unwrap();
    for n in 0..100 {
        std::fs::write(
            many.join(format!("s{n}")),
            format!("secret-value-{n:04}-{:016x}", n * 7919),
        )
        .unwrap();
    }

    let argv = writer(&data);
    let gib = |(bytes, secs): (u64, f64)| bytes as f64 / secs / 1e9;
    let direct = time_throughput(|| {
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        c
    });
    assert_eq!(direct.0, (CHUNK * REPEATS) as u64);
    let through = |extra: &[&str]| {
        let r = time_throughput(|| {
            let mut c = Command::new(&bin);
            c.arg("exec").args(extra).arg("--").args(&argv);
            c
        });
        assert_eq!(r.0, (CHUNK * REPEATS) as u64, "bytes through shroud");
        r
    };
    let one = through(&["--secret-file", one.to_str().unwrap()]);
    let many = through(&["--secrets-dir", many.to_str().unwrap()]);
    println!("1 GiB written by `cat` to a pipe (best of 3):");
    println!(
        "  directly                        {:>6.2} GB/s",
        gib(direct)
    );
    println!("  shroud exec, 1 secret           {:>6.2} GB/s", gib(one));
    println!("  shroud exec, 100 secrets        {:>6.2} GB/s", gib(many));
}
