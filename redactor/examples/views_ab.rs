//! A/B harness (untracked): engine CPU GB/s with every view on / all off, on the
//! bench's log corpus, its coloured and word-ended variants.
#[path = "../benches/common/mod.rs"]
#[allow(dead_code)]
mod common;
use common::{secrets, ALNUM};
use nix::time::{clock_gettime, ClockId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shroud_redactor::{Redactor, SecretSet, SecretSetBuilder};
use std::sync::Arc;

fn cpu() -> f64 {
    let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).unwrap();
    t.tv_sec() as f64 + t.tv_nsec() as f64 * 1e-9
}
fn build_with(values: &[Vec<u8>], mut b: SecretSetBuilder) -> Arc<SecretSet> {
    for (i, v) in values.iter().enumerate() {
        b.add(format!("s{i}"), v);
    }
    Arc::new(b.build().0)
}
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
    let mut out = Vec::with_capacity((64 << 20) + 512);
    let mut n = 0u64;
    while out.len() < 64 << 20 {
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
fn run(set: &Arc<SecretSet>, c: &[u8]) -> (f64, usize) {
    let mut best = f64::MAX;
    let mut n = 0;
    for _ in 0..3 {
        let mut r = Redactor::new(set.clone());
        let mut out = Vec::with_capacity(256 * 1024);
        let t = cpu();
        n = 0;
        for chunk in c.chunks(128 * 1024) {
            r.write(chunk, &mut out);
            n += out.len();
            out.clear();
        }
        r.finish(&mut out);
        n += out.len();
        best = best.min(cpu() - t);
    }
    (c.len() as f64 / best / 1e9, n)
}
fn main() {
    let n: usize = std::env::var("N").ok().map_or(1000, |s| s.parse().unwrap());
    let which = std::env::var("WHICH").unwrap_or_else(|_| "plain,col,word".into());
    let mut rng = StdRng::seed_from_u64(42);
    let values = secrets(n, &mut rng);
    let on = build_with(&values, SecretSetBuilder::new());
    let mut off = SecretSetBuilder::new();
    for name in SecretSetBuilder::view_names() {
        off = off.view(name, false);
    }
    let off = build_with(&values, off);
    let c = corpus(&on.patterns_for_reference(), &mut rng);
    if let Ok(mode) = std::env::var("PROF") {
        let set = if mode == "on" { &on } else { &off };
        let data = match which.as_str() {
            "col" => coloured(&c),
            "word" => word_ended(&c),
            _ => c.clone(),
        };
        for _ in 0..10 {
            run(set, &data);
        }
        return;
    }
    for w in which.split(',') {
        let data = match w {
            "plain" => c.clone(),
            "col" => coloured(&c),
            "word" => word_ended(&c),
            _ => panic!(),
        };
        let (a, na) = run(&on, &data);
        let (b, _) = run(&off, &data);
        println!("{n} {w:5} on {a:.3} off {b:.3} cost {:.3}x out {na}", b / a);
    }
}
