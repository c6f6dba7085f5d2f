//! Redaction throughput, latency and memory, printed as figures (not asserted).
//!
//! In-process: the streaming engine with 10, 1,000 and 10,000 secrets (each with
//! all its encodings) against aho-corasick, over a log-like corpus, and beside it
//! the same engine with whole patterns only (what the piece rule costs).
//! Through a pipe (when `SHROUD_BIN` names a release build of `shroud`; see
//! `scripts/bench`): `cat` vs `shroud redact` moving the same bytes from the same
//! producer, run alternately several rounds (a single pair says little on a
//! shared machine: `cat` alone swings 3x within minutes), reported as medians and
//! the ratio of the medians, with `shroud redact` holding no secret run in the
//! same rounds as the baseline the targets are stated against; shroud's start with no input (loading and building
//! the set); p50/p99 line latency at 10,000 lines/s, and peak RSS.
//!
//! Then (issue 23; `SHROUD_BENCH_DETECT=0` leaves it out) the cost of the
//! credential detectors and environment patterns: `shroud redact` with them on
//! against `--detect none --mask-env ''`, interleaved.
//!
//! Run: `scripts/bench` (or `cargo bench -p shroud-redactor --bench throughput`).
//! `SHROUD_BENCH_SECRETS` (comma-separated set sizes; empty: the detector
//! section only), `SHROUD_BENCH_ROUNDS`
//! (default 5) and `SHROUD_BENCH_PIPE_MIB` (MiB per pipe run, default 1024) narrow
//! or widen a run.

mod common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aho_corasick::{AhoCorasick, MatchKind};
use common::{median, secrets, self_cpu_secs, write_values, ALNUM};
use nix::sys::resource::{getrusage, UsageWho};
use nix::time::{clock_gettime, ClockId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shroud_redactor::{Redactor, SecretSet, SecretSetBuilder, DEFAULT_MASK};

const CORPUS_BYTES: usize = 64 << 20;
/// Bytes pushed through the pipe per run, in MiB (`SHROUD_BENCH_PIPE_MIB`).
const PIPE_MIB: usize = 1024;

fn build(values: &[Vec<u8>]) -> Arc<SecretSet> {
    build_with(values, SecretSetBuilder::new())
}

/// The ANSI view off: what the view costs.
fn build_no_view(values: &[Vec<u8>]) -> Arc<SecretSet> {
    build_with(values, SecretSetBuilder::new().ansi_view(false))
}

/// `corpus` with a colour code pair around a word of every fourth line, as a
/// coloured log looks (the ANSI view decodes every buffer that holds one).
fn coloured(corpus: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(corpus.len() + corpus.len() / 8);
    for (i, line) in corpus.split_inclusive(|&b| b == b'\n').enumerate() {
        match line.iter().position(|&b| b == b' ') {
            Some(sp) if i % 4 == 0 => {
                out.extend_from_slice(b"\x1b[32m");
                out.extend_from_slice(&line[..sp]);
                out.extend_from_slice(b"\x1b[0m");
                out.extend_from_slice(&line[sp..]);
            }
            _ => out.extend_from_slice(line),
        }
    }
    out
}

/// `corpus` with the space before each line break dropped: lines that end in
/// a word, as most real logs' do, so that every line break sits between two
/// runs of base64 bytes and the wrap view has to look at it.
fn word_ended(corpus: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(corpus.len());
    for line in corpus.split_inclusive(|&b| b == b'\n') {
        match line {
            [head @ .., b' ', b'\n'] => {
                out.extend_from_slice(head);
                out.push(b'\n');
            }
            _ => out.extend_from_slice(line),
        }
    }
    out
}

/// What each decoded view costs on the ordinary corpus: the engine with every
/// view on against the engine with that one off (and with all off), best of two
/// alternating runs each.
fn view_costs(values: &[Vec<u8>], all_on: &Arc<SecretSet>, corpus: &[u8]) {
    let names: Vec<&str> = SecretSetBuilder::view_names().collect();
    let mut all_off = SecretSetBuilder::new();
    for name in &names {
        all_off = all_off.view(name, false);
    }
    let mut variants = vec![("all views off".to_string(), build_with(values, all_off))];
    for name in &names {
        let off = SecretSetBuilder::new().view(name, false);
        variants.push((format!("{name} off"), build_with(values, off)));
    }
    let mut on = 0f64;
    let mut best = vec![0f64; variants.len()];
    for _ in 0..2 {
        on = on.max(engine_in_process(all_on, corpus).0);
        for (b, (_, set)) in best.iter_mut().zip(&variants) {
            *b = b.max(engine_in_process(set, corpus).0);
        }
    }
    println!("  every view on                   {on:6.2} GB/s");
    for (b, (label, _)) in best.iter().zip(&variants) {
        println!(
            "  {label:<31} {b:6.2} GB/s   (every view on costs {:.2}x of this)",
            b / on
        );
    }
}

/// Whole patterns only: the engine before the piece rule, for what the rule costs.
fn build_whole(values: &[Vec<u8>]) -> Arc<SecretSet> {
    build_with(values, SecretSetBuilder::new().piece_length(1 << 20))
}

fn build_with(values: &[Vec<u8>], mut b: SecretSetBuilder) -> Arc<SecretSet> {
    for (i, v) in values.iter().enumerate() {
        b.add(format!("s{i}"), v);
    }
    Arc::new(b.build().0)
}

/// Log lines of 60–200 bytes; about one in 500 carries a secret in some encoding.
fn corpus(patterns: &[Vec<u8>], rng: &mut StdRng) -> Vec<u8> {
    let words: &[&[u8]] = &[
        b"GET",
        b"POST",
        b"/api/v1/items",
        b"status=200",
        b"latency_ms=",
        b"user=alice",
        b"INFO",
        b"WARN",
        b"request",
        b"completed",
        b"connection",
        b"pool",
        b"{\"k\":\"v\"}",
    ];
    let mut out = Vec::with_capacity(CORPUS_BYTES + 512);
    let mut n = 0u64;
    while out.len() < CORPUS_BYTES {
        n += 1;
        out.extend_from_slice(
            format!(
                "2026-11-28T12:{:02}:{:02}.{:06}Z ",
                n % 60,
                n % 59,
                n % 999_983
            )
            .as_bytes(),
        );
        let target = rng.gen_range(60..200);
        let start = out.len();
        while out.len() - start < target {
            out.extend_from_slice(words[rng.gen_range(0..words.len())]);
            out.push(b' ');
            out.extend((0..rng.gen_range(0..12)).map(|_| ALNUM[rng.gen_range(0..ALNUM.len())]));
            out.push(b' ');
        }
        if rng.gen_range(0..500) == 0 && !patterns.is_empty() {
            out.extend_from_slice(&patterns[rng.gen_range(0..patterns.len())]);
        }
        out.push(b'\n');
    }
    out
}

fn gbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e9
}

/// CPU time (user + system) of the calling thread. The in-process figures are
/// bytes per second of it, not of the wall clock: on a shared machine the wall
/// clock of a 20 ms run mostly measures the other processes. Read from
/// `CLOCK_THREAD_CPUTIME_ID` (nanoseconds), not `getrusage`, which counts in
/// scheduler ticks (4 ms here: a tenth of a 64 MiB run at 1.5 GB/s, so its
/// figures fell on a few steps such as 1.40, 1.53, 1.68 GB/s).
struct CpuTimer(Duration);

impl CpuTimer {
    fn start() -> Self {
        CpuTimer(thread_cpu())
    }

    fn elapsed(&self) -> Duration {
        thread_cpu().saturating_sub(self.0)
    }
}

fn thread_cpu() -> Duration {
    let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).expect("clock_gettime");
    Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32)
}

fn engine_in_process(set: &Arc<SecretSet>, corpus: &[u8]) -> (f64, usize) {
    let mut best = f64::MAX;
    let mut out_len = 0;
    for _ in 0..3 {
        let mut r = Redactor::new(set.clone());
        let mut out = Vec::with_capacity(256 * 1024);
        let t = CpuTimer::start();
        out_len = 0;
        for chunk in corpus.chunks(128 * 1024) {
            r.write(chunk, &mut out);
            out_len += out.len();
            out.clear();
        }
        r.finish(&mut out);
        out_len += out.len();
        best = best.min(t.elapsed().as_secs_f64());
    }
    (gbps(corpus.len(), Duration::from_secs_f64(best)), out_len)
}

fn aho_in_process(patterns: &[Vec<u8>], corpus: &[u8]) -> (f64, f64) {
    let ll = AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(patterns)
        .unwrap();
    let mut best = f64::MAX;
    for _ in 0..2 {
        let mut out = Vec::with_capacity(corpus.len() + 1024);
        let t = CpuTimer::start();
        ll.replace_all_with_bytes(corpus, &mut out, |_, _, dst| {
            dst.extend_from_slice(DEFAULT_MASK);
            true
        });
        best = best.min(t.elapsed().as_secs_f64());
    }
    // The stream API supports only standard match semantics.
    let std_ac = AhoCorasick::builder()
        .match_kind(MatchKind::Standard)
        .build(patterns)
        .unwrap();
    let t = CpuTimer::start();
    let mut sink = std::io::sink();
    std_ac
        .try_stream_replace_all(corpus, &mut sink, &vec![DEFAULT_MASK; patterns.len()])
        .unwrap();
    let stream = t.elapsed();
    (
        gbps(corpus.len(), Duration::from_secs_f64(best)),
        gbps(corpus.len(), stream),
    )
}

/// CPU seconds (user + system) of all waited-for children so far.
fn children_cpu() -> f64 {
    let u = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    secs(u.user_time()) + secs(u.system_time())
}

/// What one pipe run measured.
struct Run {
    gbps: f64,
    /// The child's CPU seconds (user + system), from its rusage.
    cpu: f64,
    peak_rss_kib: u64,
}

/// One run: pushes `total` bytes of `corpus` into `cmd`'s stdin, stdout to
/// /dev/null.
fn pipe_run(cmd: &mut Command, corpus: &[u8], total: usize) -> Run {
    let cpu_before = children_cpu();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    let rss = watch_rss(child.id());
    let mut stdin = child.stdin.take().unwrap();
    let t = Instant::now();
    let mut sent = 0;
    while sent < total {
        let n = corpus.len().min(total - sent);
        stdin.write_all(&corpus[..n]).unwrap();
        sent += n;
    }
    drop(stdin);
    let status = child.wait().unwrap();
    let elapsed = t.elapsed();
    assert!(status.success(), "child failed: {status}");
    Run {
        gbps: gbps(total, elapsed),
        cpu: children_cpu() - cpu_before,
        peak_rss_kib: rss.join().unwrap(),
    }
}

/// Figures of several interleaved runs of a baseline and a contender: GB/s and
/// CPU seconds per run, and for the contender also wall seconds per run and per
/// start with no input.
struct Interleaved {
    base: Vec<f64>,
    base_cpu: Vec<f64>,
    other: Vec<f64>,
    other_cpu: Vec<f64>,
    other_secs: Vec<f64>,
    other_start_secs: Vec<f64>,
    /// GB/s of the third command (shroud with no secrets), when given.
    none: Vec<f64>,
    peak_rss_kib: u64,
}

/// Seconds from spawning `cmd` with empty input to its exit: loading and building
/// the secret set, the fixed cost inside every pipe run.
fn start_with_no_input(cmd: &mut Command) -> f64 {
    let t = Instant::now();
    let status = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("spawn");
    assert!(status.success(), "child failed: {status}");
    t.elapsed().as_secs_f64()
}

/// Runs `base` and `other` alternately (ABAB…) `rounds` times on the same corpus,
/// so that both see the same drift in background load; a single pair means
/// nothing on a shared machine, the ratio of the medians does.
fn interleaved(
    base: &mut Command,
    mut none: Option<&mut Command>,
    other: &mut Command,
    corpus: &[u8],
    total: usize,
    rounds: usize,
) -> Interleaved {
    let mut r = Interleaved {
        base: Vec::new(),
        base_cpu: Vec::new(),
        other: Vec::new(),
        other_cpu: Vec::new(),
        other_secs: Vec::new(),
        other_start_secs: Vec::new(),
        none: Vec::new(),
        peak_rss_kib: 0,
    };
    for _ in 0..rounds {
        let b = pipe_run(base, corpus, total);
        r.base.push(b.gbps);
        r.base_cpu.push(b.cpu);
        if let Some(none) = none.as_deref_mut() {
            r.none.push(pipe_run(none, corpus, total).gbps);
        }
        let o = pipe_run(other, corpus, total);
        r.other.push(o.gbps);
        r.other_cpu.push(o.cpu);
        r.other_secs.push(total as f64 / o.gbps / 1e9);
        r.peak_rss_kib = r.peak_rss_kib.max(o.peak_rss_kib);
        r.other_start_secs.push(start_with_no_input(other));
    }
    r
}

fn spread(v: &[f64]) -> String {
    let lo = v.iter().copied().fold(f64::MAX, f64::min);
    let hi = v.iter().copied().fold(0.0, f64::max);
    format!("{lo:.2}-{hi:.2}")
}

/// Samples the child's VmHWM until it exits. (`wait4`'s ru_maxrss would include
/// the memory the child shared with this large parent between fork and exec.)
fn watch_rss(pid: u32) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        loop {
            let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
                return peak;
            };
            let Some(kb) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            else {
                return peak;
            };
            peak = peak.max(kb);
            std::thread::sleep(Duration::from_millis(2));
        }
    })
}

fn latency(bin: &Path, dir: &Path) -> (f64, f64) {
    let mut child = Command::new(bin)
        .args(["redact", "--secrets-dir"])
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    const LINES: usize = 20_000;
    let start = Instant::now();
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut got = Vec::with_capacity(LINES);
        let mut line = String::new();
        while r.read_line(&mut line).unwrap() > 0 {
            got.push(start.elapsed());
            line.clear();
        }
        got
    });
    let mut sent = Vec::with_capacity(LINES);
    for i in 0..LINES {
        let due = Duration::from_micros(100 * i as u64);
        // Sleep, not spin: on a 2-core machine a spinning writer would take a core
        // from the process being measured.
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        sent.push(start.elapsed());
        stdin
            .write_all(
                format!("2026-11-28T12:00:00Z INFO line {i} status=200 latency_ms=3\n").as_bytes(),
            )
            .unwrap();
    }
    drop(stdin);
    let got = reader.join().unwrap();
    child.wait().unwrap();
    assert_eq!(got.len(), LINES);
    let mut lat: Vec<f64> = sent
        .iter()
        .zip(&got)
        .map(|(s, g)| (g.saturating_sub(*s)).as_secs_f64() * 1e6)
        .collect();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (lat[LINES / 2], lat[LINES * 99 / 100])
}

/// A positive count from the environment, or `default`.
fn env_count(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .unwrap_or_else(|| panic!("{name}: expected a positive count, got {v:?}")),
        Err(_) => default,
    }
}

/// The detector stage alone over `text` in 128 KiB writes: GB/s of CPU time.
fn detect_in_process(set: &Arc<shroud_redactor::detect::DetectorSet>, text: &[u8]) -> f64 {
    use shroud_redactor::detect::{Detect, Passed};
    let mut stage = Detect::new(Arc::clone(set));
    let mut out = Vec::with_capacity(1 << 20);
    let t = CpuTimer::start();
    let mut kept = 0usize;
    for chunk in text.chunks(128 * 1024) {
        match stage.write(chunk, &mut out) {
            Passed::Input(r) => kept += r.len(),
            Passed::Out => kept += out.len(),
            Passed::OutThen(r) => kept += out.len() + r.len(),
        }
        out.clear();
    }
    stage.finish(&mut out);
    std::hint::black_box(kept);
    gbps(text.len(), t.elapsed())
}

/// This repository's `.rs` and `.md` files, repeated to `len` bytes: text
/// with the punctuation, URLs and identifiers of source code, where the
/// detectors' prefilter sees more candidates than in log lines.
fn source_text(len: usize) -> Vec<u8> {
    fn walk(dir: &Path, out: &mut Vec<u8>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if p.is_dir() {
                if !name.starts_with('.') && !name.starts_with("target") {
                    walk(&p, out);
                }
            } else if name.ends_with(".rs") || name.ends_with(".md") {
                out.extend(std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
        &mut files,
    );
    assert!(!files.is_empty(), "no source files found");
    files.iter().copied().cycle().take(len).collect()
}

/// Issue 23: what the credential detectors and the environment patterns cost.
/// In-process, the detector stage alone over the corpus and over source text;
/// through a pipe,
/// `shroud redact` with 1,000 secrets and its defaults (every detector, the
/// default `--mask-env` patterns, in an environment of exactly two matching
/// variables) against
/// `--detect none --mask-env ''`, interleaved, ratio of the medians (the
/// target is at least 0.9x).
fn detection_cost(bin: Option<&Path>, dir: &Path, corpus: &[u8], total: usize, rounds: usize) {
    use shroud_redactor::detect::DetectorSet;
    // SHROUD_BENCH_DETECT_LIST=name,… measures a subset in-process (profiling).
    let list = std::env::var("SHROUD_BENCH_DETECT_LIST").unwrap_or_else(|_| "all".into());
    let set = Arc::new(DetectorSet::parse(&list, DEFAULT_MASK).expect("SHROUD_BENCH_DETECT_LIST"));
    let source = source_text(corpus.len());
    println!(
        "
credential detectors (issue 23)"
    );
    for (what, text) in [("log lines", corpus), ("source text", &source[..])] {
        let best = (0..3)
            .map(|_| detect_in_process(&set, text))
            .fold(0.0f64, f64::max);
        println!(
            "  in-process detector stage       {best:6.2} GB/s   ({what}; {list}: {} detectors, 128 KiB writes)",
            set.names().len()
        );
    }
    let Some(bin) = bin else { return };
    // Both runs get an environment of their own: the "on" run registers the
    // values of the variables named like credentials, and whatever the
    // caller's environment holds (a `*_TOKEN` in CI) would join its set.
    let mut off = Command::new(bin);
    off.env_clear()
        .args([
            "redact",
            "--detect",
            "none",
            "--mask-env",
            "",
            "--secrets-dir",
        ])
        .arg(dir);
    let mut on = Command::new(bin);
    on.env_clear()
        .args(["redact", "--secrets-dir"])
        .arg(dir)
        .env("CI_JOB_TOKEN", "bench-job-token-0123456789")
        .env("DEPLOY_PASSWORD", "bench-deploy-password-42");
    let r = interleaved(&mut off, None, &mut on, corpus, total, rounds);
    let (off_gb, on_gb) = (median(&r.base), median(&r.other));
    println!(
        "  pipe redact, detectors off      {off_gb:6.2} GB/s   median (runs {})",
        spread(&r.base)
    );
    println!(
        "  pipe redact, detectors + env on {on_gb:6.2} GB/s   median (runs {})",
        spread(&r.other)
    );
    println!(
        "  on / off (ratio of medians)     {:6.2}x   (target: at least 0.90x)",
        on_gb / off_gb
    );
    // On a loaded machine the wall-clock ratio mostly measures the load: the
    // CPU time shroud used for the same bytes is the cost itself.
    let (off_cpu, on_cpu) = (median(&r.base_cpu), median(&r.other_cpu));
    println!(
        "  on / off by CPU time (user+sys) {:6.2}x   (off {:.3} s, on {:.3} s per run, medians)",
        off_cpu / on_cpu.max(1e-9),
        off_cpu,
        on_cpu
    );
}

fn main() {
    let mut rng = StdRng::seed_from_u64(42);
    let shroud_bin = std::env::var_os("SHROUD_BIN").map(std::path::PathBuf::from);
    let tmp = tempfile::tempdir().unwrap();
    let rounds = env_count("SHROUD_BENCH_ROUNDS", 5);
    let pipe_bytes = env_count("SHROUD_BENCH_PIPE_MIB", PIPE_MIB) << 20;

    // SHROUD_BENCH_SECRETS=10,1000 picks the set sizes (for profiling one of them).
    let sizes: Vec<usize> = match std::env::var("SHROUD_BENCH_SECRETS") {
        // An empty list leaves the set sizes out (the detector section only).
        Ok(list) => list
            .split(',')
            .filter(|n| !n.trim().is_empty())
            .map(|n| {
                n.trim()
                    .parse()
                    .expect("SHROUD_BENCH_SECRETS: comma-separated counts")
            })
            .collect(),
        Err(_) => vec![10, 1_000, 10_000],
    };
    println!(
        "corpus: {CORPUS_BYTES} bytes ({} MiB) of log-like lines per set size, ~1 in 500 with a secret in some encoding",
        CORPUS_BYTES >> 20
    );
    println!("in-process GB/s: bytes per second of the measuring thread's CPU time (user+sys), best of runs");
    if shroud_bin.is_some() {
        println!(
            "pipe: each run pushes {pipe_bytes} bytes ({} MiB) from this process into the command, stdout to /dev/null;\n\
             \x20     {rounds} rounds per set size of `cat` then `shroud redact` (interleaved), medians and their ratio",
            pipe_bytes >> 20
        );
    } else {
        println!("(set SHROUD_BIN to a release build of shroud for the pipe figures; scripts/bench does)");
    }

    for n in sizes {
        let values = secrets(n, &mut rng);
        let t = Instant::now();
        let cpu = self_cpu_secs();
        let set = build(&values);
        let build_time = t.elapsed();
        let build_cpu = self_cpu_secs() - cpu;
        let patterns = set.patterns_for_reference();
        let c = corpus(&patterns, &mut rng);
        let whole = build_whole(&values);
        // Interleaved, best of each: the machine's load moves between rounds.
        let (mut engine, mut engine_whole) = (0f64, 0f64);
        for _ in 0..2 {
            engine = engine.max(engine_in_process(&set, &c).0);
            engine_whole = engine_whole.max(engine_in_process(&whole, &c).0);
        }
        println!(
            "\n{n} secrets: {} patterns ({:.1} per secret: values + encodings), set built in {:.1} ms ({:.1} ms CPU)",
            set.pattern_count(),
            set.pattern_count() as f64 / n as f64,
            build_time.as_secs_f64() * 1e3,
            build_cpu * 1e3
        );
        println!(
            "  in-process shroud engine        {engine:6.2} GB/s   (piece length {})",
            set.piece_length()
        );
        println!(
            "  same, whole patterns only       {engine_whole:6.2} GB/s   (no piece rule; the rule costs {:.2}x)",
            engine_whole / engine
        );
        let no_view = build_no_view(&values);
        let tinted = coloured(&c);
        let (mut on, mut off) = (0f64, 0f64);
        for _ in 0..2 {
            on = on.max(engine_in_process(&set, &tinted).0);
            off = off.max(engine_in_process(&no_view, &tinted).0);
        }
        println!(
            "  ANSI view, coloured corpus      {on:6.2} GB/s on, {off:.2} GB/s off   (the view costs {:.2}x; a colour pair on every 4th line)",
            off / on
        );
        let ended = word_ended(&c);
        let no_wrap = build_with(&values, SecretSetBuilder::new().view("wrap", false));
        let (mut on, mut off) = (0f64, 0f64);
        for _ in 0..2 {
            on = on.max(engine_in_process(&set, &ended).0);
            off = off.max(engine_in_process(&no_wrap, &ended).0);
        }
        println!(
            "  wrap view, lines ending in a word {on:6.2} GB/s on, {off:.2} GB/s off   (the view costs {:.2}x)",
            off / on
        );
        view_costs(&values, &set, &c);
        let (ac_ll, ac_stream) = aho_in_process(&patterns, &c);
        println!(
            "  in-process aho-corasick LL      {ac_ll:6.2} GB/s   (leftmost-longest, whole buffer)"
        );
        println!("  in-process aho-corasick stream  {ac_stream:6.2} GB/s   (stream API, standard semantics only)");
        println!("  engine / aho-corasick LL        {:6.2}x", engine / ac_ll);
        if let Some(bin) = &shroud_bin {
            let dir = tmp.path().join(format!("s{n}"));
            write_values(&dir, &values);
            let mut shroud = Command::new(bin);
            shroud.args(["redact", "--secrets-dir"]).arg(&dir);
            let empty = tmp.path().join("empty");
            write_values(&empty, &[]);
            let mut none = Command::new(bin);
            none.args(["redact", "--secrets-dir"]).arg(&empty);
            let r = interleaved(
                &mut Command::new("cat"),
                Some(&mut none),
                &mut shroud,
                &c,
                pipe_bytes,
                rounds,
            );
            let (cat, gb) = (median(&r.base), median(&r.other));
            println!(
                "  pipe cat                        {cat:6.2} GB/s   median (runs {})",
                spread(&r.base)
            );
            println!(
                "  pipe shroud redact              {gb:6.2} GB/s   median (runs {})   peak RSS {:.1} MiB",
                spread(&r.other),
                r.peak_rss_kib as f64 / 1024.0
            );
            println!("  shroud / cat (ratio of medians) {:6.2}x", gb / cat);
            let none = median(&r.none);
            println!(
                "  pipe shroud redact, no secrets  {none:6.2} GB/s   median (runs {}), {:.2}x cat (the baseline)",
                spread(&r.none),
                none / cat
            );
            println!(
                "  shroud / shroud with no secrets {:6.2}x   (ratio of medians, same rounds)",
                gb / none
            );
            let start = median(&r.other_start_secs);
            let after_start: Vec<f64> = r
                .other_secs
                .iter()
                .map(|t| pipe_bytes as f64 / (t - start).max(1e-9) / 1e9)
                .collect();
            println!(
                "  shroud start, no input          {:6.1} ms median (set load + build, included above)",
                start * 1e3
            );
            println!(
                "  pipe shroud redact after start  {:6.2} GB/s   {:.2}x cat (each run less the median start)",
                median(&after_start),
                median(&after_start) / cat
            );
            // CPU time does not depend on how busy the machine is the way wall
            // time does: when shroud's CPU time is well below its wall time, the
            // run waited on the producer or on other processes, not on the engine.
            let per_gib = |cpu: &[f64]| median(cpu) / (pipe_bytes as f64 / f64::from(1u32 << 30));
            let shroud_cpu = per_gib(&r.other_cpu);
            println!(
                "  CPU per GiB (user+sys)          cat {:.3} s   shroud {shroud_cpu:.3} s   (shroud on a core of its own: {:.2} GB/s)",
                per_gib(&r.base_cpu),
                f64::from(1u32 << 30) / shroud_cpu / 1e9
            );
            if n == 1_000 {
                let (p50, p99) = latency(bin, &dir);
                println!("  line latency at 10,000 lines/s  p50 {p50:.0} µs   p99 {p99:.0} µs");
            }
        }
    }
    if std::env::var_os("SHROUD_BENCH_DETECT").is_none_or(|v| v != "0") {
        let values = secrets(1_000, &mut rng);
        let dir = tmp.path().join("detect");
        write_values(&dir, &values);
        let c = corpus(&build(&values).patterns_for_reference(), &mut rng);
        detection_cost(shroud_bin.as_deref(), &dir, &c, pipe_bytes, rounds);
    }
    if let Some(bin) = &shroud_bin {
        let dir = tmp.path().join("empty");
        write_values(&dir, &[]);
        let c = corpus(&[], &mut rng);
        let mut cmd = Command::new(bin);
        cmd.args(["redact", "--secrets-dir"]).arg(&dir);
        let rss = pipe_run(&mut cmd, &c, 64 << 20).peak_rss_kib;
        println!(
            "\nshroud redact with no secrets: peak RSS {:.1} MiB (baseline)",
            rss as f64 / 1024.0
        );
    }
}
