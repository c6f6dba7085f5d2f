//! What building a set costs: time and memory with many secrets.
//!
//! In-process: the set of `SHROUD_BENCH_SECRETS` (default 10,000) random 16–32
//! byte secrets, with every view on, built on one thread and on the default
//! number (up to two), alternately for `SHROUD_BENCH_ROUNDS` rounds (default 9);
//! medians of wall and CPU milliseconds (user + sys of the whole process, so
//! a second thread's time counts), and the bytes each structure holds.
//!
//! With `SHROUD_BIN` (a release build of `shroud`): `shroud redact` with the
//! same secrets in a values file and 16 MiB of input, peak RSS (VmHWM) and
//! the time to its exit; with `SHROUD_BIN_BASE` as well, that binary (e.g. the
//! main branch's build) alternately with it, so both see the same load.

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{median, secrets, self_cpu_secs, write_values, ALNUM};
use rand::rngs::StdRng;
use rand::SeedableRng;
use shroud_redactor::SecretSetBuilder;

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

fn spread(v: &[f64]) -> String {
    let lo = v.iter().copied().fold(f64::MAX, f64::min);
    let hi = v.iter().copied().fold(0.0, f64::max);
    format!("{lo:.0}-{hi:.0}")
}

/// Wall and CPU milliseconds of one build on `threads` threads (0: the default).
fn timed_build(values: &[Vec<u8>], threads: usize) -> (f64, f64) {
    let mut b = SecretSetBuilder::new();
    for (i, v) in values.iter().enumerate() {
        b.add(format!("s{i}"), v);
    }
    let cpu = self_cpu_secs();
    let t = Instant::now();
    let set = if threads == 0 {
        b.build().0
    } else {
        b.build_on(threads).0
    };
    let wall = t.elapsed().as_secs_f64() * 1e3;
    let cpu = (self_cpu_secs() - cpu) * 1e3;
    drop(set);
    (wall, cpu)
}

/// Peak RSS (VmHWM, KiB) and wall milliseconds of `shroud redact` over `input`.
fn redact_run(bin: &Path, dir: &Path, input: &[u8]) -> (u64, f64) {
    let t = Instant::now();
    let mut child = Command::new(bin)
        .args(["redact", "--secrets-dir"])
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn shroud");
    let pid = child.id();
    // VmHWM only grows: the last reading before the exit is the peak.
    let watch = std::thread::spawn(move || {
        let mut peak = 0u64;
        while let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            let Some(kib) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            else {
                break;
            };
            peak = peak.max(kib);
            std::thread::sleep(Duration::from_millis(1));
        }
        peak
    });
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "shroud redact failed: {status}");
    (watch.join().unwrap(), t.elapsed().as_secs_f64() * 1e3)
}

fn main() {
    let n = env_count("SHROUD_BENCH_SECRETS", 10_000);
    let rounds = env_count("SHROUD_BENCH_ROUNDS", 9);
    let mut rng = StdRng::seed_from_u64(42);
    let values = secrets(n, &mut rng);

    let mut b = SecretSetBuilder::new();
    for (i, v) in values.iter().enumerate() {
        b.add(format!("s{i}"), v);
    }
    let set = b.build().0;
    println!(
        "{n} secrets, {} patterns, every view on; {rounds} rounds, one thread and the default alternately",
        set.pattern_count()
    );
    let mut parts = set.heap_bytes();
    parts.sort_by_key(|p| std::cmp::Reverse(p.1));
    let total: usize = parts.iter().map(|p| p.1).sum();
    println!(
        "  set in memory                   {:6.1} MiB",
        total as f64 / 1048576.0
    );
    for (name, bytes) in parts.iter().filter(|p| p.1 >= 64 << 10) {
        println!("    {name:<29} {:6.1} MiB", *bytes as f64 / 1048576.0);
    }
    drop(set);

    let (mut one, mut dflt) = ((vec![], vec![]), (vec![], vec![]));
    for _ in 0..rounds {
        let (w, c) = timed_build(&values, 1);
        one.0.push(w);
        one.1.push(c);
        let (w, c) = timed_build(&values, 0);
        dflt.0.push(w);
        dflt.1.push(c);
    }
    println!(
        "  build, one thread               {:6.1} ms wall ({}), {:6.1} ms CPU",
        median(&one.0),
        spread(&one.0),
        median(&one.1)
    );
    println!(
        "  build, default threads          {:6.1} ms wall ({}), {:6.1} ms CPU   ({:.2}x the wall time of one)",
        median(&dflt.0),
        spread(&dflt.0),
        median(&dflt.1),
        median(&one.0) / median(&dflt.0)
    );

    let Some(bin) = std::env::var_os("SHROUD_BIN").map(std::path::PathBuf::from) else {
        println!("(set SHROUD_BIN to a release build of shroud for peak RSS; SHROUD_BIN_BASE too for A/B)");
        return;
    };
    let base = std::env::var_os("SHROUD_BIN_BASE").map(std::path::PathBuf::from);
    let tmp = tempfile::tempdir().unwrap();
    write_values(tmp.path(), &values);
    let input: Vec<u8> = (0..16usize << 20)
        .map(|i| if i % 100 == 99 { b'\n' } else { ALNUM[i % 61] })
        .collect();
    let mut runs: Vec<(&Path, Vec<f64>, Vec<f64>)> = vec![(&bin, vec![], vec![])];
    if let Some(base) = &base {
        runs.push((base, vec![], vec![]));
    }
    for _ in 0..rounds.min(5) {
        for (bin, rss, ms) in runs.iter_mut() {
            let (kib, t) = redact_run(bin, tmp.path(), &input);
            rss.push(kib as f64 / 1024.0);
            ms.push(t);
        }
    }
    for (bin, rss, ms) in &runs {
        println!(
            "  shroud redact, 16 MiB in        peak RSS {:5.1} MiB median ({:.1}-{:.1}), {:6.0} ms median   {}",
            median(rss),
            rss.iter().copied().fold(f64::MAX, f64::min),
            rss.iter().copied().fold(0.0, f64::max),
            median(ms),
            bin.display()
        );
    }
}
