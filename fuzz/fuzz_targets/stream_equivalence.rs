//! The streaming engine must equal the reference implementation for any secret
//! set, piece length, input, chunking and idle flushes at arbitrary points, in
//! normal and strict mode; and of any occurrence of a unit (a piece of a pattern,
//! or a short pattern whole) at most `min_length - 1` leading bytes may be shown.
//!
//! Input layout: byte 0 = min_length (1..=8; top bit set: strict mode), byte 1 =
//! number of secrets (1..=4) in the low two bits and the piece length in the
//! others (0: whole patterns only, else 1..=63), then for each secret a length
//! byte (1..=24) and its
//! bytes, then a chunk-plan byte string (each byte: chunk length in low 6 bits,
//! flush flag in the top bit) terminated by 0xFE, then the stream.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use shroud_redactor::reference::{masked_bytes, render, units};
use shroud_redactor::{Redactor, SecretSetBuilder, DEFAULT_MASK};

fuzz_target!(|data: &[u8]| {
    let mut it = data.iter().copied();
    let (Some(first), Some(count)) = (it.next(), it.next()) else {
        return;
    };
    let min = usize::from(first % 8) + 1;
    let strict = first & 0x80 != 0;
    let piece = match usize::from(count >> 2) {
        0 => 1 << 20,
        p => p,
    };
    let mut builder = SecretSetBuilder::new().min_length(min).piece_length(piece);
    for i in 0..(count % 4 + 1) {
        let Some(len) = it.next() else { return };
        let value: Vec<u8> = it.by_ref().take(usize::from(len % 24) + 1).collect();
        builder.add(format!("s{i}"), &value);
    }
    let mut plan = Vec::new();
    for b in it.by_ref() {
        if b == 0xFE {
            break;
        }
        plan.push(b);
    }
    if plan.is_empty() {
        plan.push(0x3F);
    }
    let input: Vec<u8> = it.collect();
    let set = Arc::new(builder.build().0);
    let patterns = units(&set.patterns_for_reference(), set.piece_length());

    let mut r = Redactor::new(set).strict(strict);
    let mut out = Vec::new();
    let mut flushes = Vec::new();
    let mut pos = 0;
    for &step in plan.iter().cycle() {
        if pos >= input.len() {
            break;
        }
        let end = (pos + usize::from(step & 0x3F).max(1)).min(input.len());
        r.write(&input[pos..end], &mut out);
        pos = end;
        if step & 0x80 != 0 {
            r.flush(&mut out);
            flushes.push(pos);
        }
    }
    r.finish(&mut out);
    if strict {
        flushes.clear();
    }
    let masked = masked_bytes(&patterns, &input, &flushes, min);
    assert!(
        out == render(&input, &masked, DEFAULT_MASK),
        "stream differs from reference"
    );
    for p in &patterns {
        for s in 0..input.len().saturating_sub(p.len() - 1) {
            if input[s..].starts_with(p) {
                let shown = (s + min - 1..s + p.len()).any(|i| !masked[i]);
                assert!(
                    !shown,
                    "more than min_length - 1 bytes of an occurrence shown"
                );
            }
        }
    }
});
