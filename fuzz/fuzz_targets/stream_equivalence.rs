//! The streaming engine must equal the reference implementation for any secret
//! set, piece length, input, chunking and idle flushes at arbitrary points, in
//! normal and strict mode; of any occurrence of a unit (a piece of a pattern, or
//! a short pattern whole) at most `min_length - 1` leading bytes may be shown;
//! and a value printed by a program (`shroud_redactor::producers`: backslash
//! escapes in the styles of JSON, Python, Perl and PHP, shell quoting,
//! `printf %q`, doubled quotes, entities, percent, a wrapped body, colour codes,
//! a pty's line breaks, a truncation) shows no run of its bytes as long as a
//! unit in the output read back the way the producer wrote it.
//!
//! Input layout: byte 0 = min_length (1..=8; top bit set: strict mode), byte 1 =
//! number of secrets (1..=4) in the low two bits and the piece length in the
//! others (0: whole patterns only, else 1..=63), then for each secret a length
//! byte (1..=24) and its bytes; then the producer step, seven bytes: which
//! pattern is printed (a form of a secret), the producer (low four bits) and a
//! second one printing the first one's text (high four bits, 0 for none), the
//! producer's parameter (two bytes), where the printed part of the pattern
//! starts and how long it is beyond the shortest checked run, and where the
//! printed text goes in the surrounding text (low seven bits; top bit set: the
//! surrounding text is taken as it is, else it is mapped to bytes that start
//! no decoded sequence); then a chunk-plan byte string (each byte: chunk length
//! in low 6 bits, flush flag in the top bit) terminated by 0xFE; then the
//! surrounding text.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use shroud_redactor::producers::Producer;
use shroud_redactor::reference::{masked_bytes, render, units};
use shroud_redactor::{Redactor, SecretSetBuilder, DEFAULT_MASK};

/// Surrounding text that ends no sequence a printed value starts (no view's
/// trigger byte): a producer's text is read back as the value wherever it goes.
const NEUTRAL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .:,-_/()=";

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
    let mut step = [0u8; 7];
    for b in &mut step {
        let Some(x) = it.next() else { return };
        *b = x;
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
    let mut noise: Vec<u8> = it.collect();
    let neutral = step[6] & 0x80 == 0;
    if neutral {
        noise
            .iter_mut()
            .for_each(|b| *b = NEUTRAL[usize::from(*b) % NEUTRAL.len()]);
    }
    let set = Arc::new(builder.build().0);
    let all = set.patterns_for_reference();
    let patterns = units(&all, set.piece_length());

    // The producer step: a part of one pattern (at least one unit long, so
    // that the check below has a run to look for), printed.
    let producers = Producer::ALL;
    let first_producer = producers[usize::from(step[1] & 0x0f) % producers.len()];
    let second = match usize::from(step[1] >> 4) {
        0 => None,
        i => Some(producers[(i - 1) % producers.len()]),
    };
    let k = usize::from(u16::from_le_bytes([step[2], step[3]]));
    let form: &[u8] = all
        .get(usize::from(step[0]) % all.len().max(1))
        .map_or(&[], |p| p);
    // The shortest run the guarantee speaks of: a unit, and at least
    // min_length (a pause shows up to min_length - 1 bytes of one).
    let run = form.len().min(set.piece_length()).max(min);
    let (part, printed) = if form.len() >= run && run > 0 {
        let start = usize::from(step[4]) % (form.len() - run + 1);
        let len = run + usize::from(step[5]) % (form.len() - start - run + 1);
        let part = &form[start..start + len];
        (part, Some(first_producer.print(part, k)))
    } else {
        (&[][..], None)
    };
    let at = (usize::from(step[6] & 0x7f) * (noise.len() + 1)) / 128;
    let mut input = noise[..at].to_vec();
    if let Some(p) = &printed {
        match second {
            None => input.extend_from_slice(&p.bytes),
            Some(s) => input.extend_from_slice(&s.print(&p.bytes, k).bytes),
        }
    }
    input.extend_from_slice(&noise[at..]);

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
    // The printed value, read back the producer's way, shows no run of `run`
    // bytes: some byte of the text standing for each such run is masked (the
    // output equals the reference, so the reference's bytes are the output's).
    // Views do not stack: a second producer's text is only compared above.
    let Some(printed) = printed.filter(|_| neutral && second.is_none()) else {
        return;
    };
    if !first_producer.reads_back(part) {
        return;
    }
    let printed_len = printed.from.iter().map(|r| r.1 as usize).max().unwrap_or(0);
    for j in 0..(printed_len + 1).saturating_sub(run) {
        let Some(src) = printed.source_of(j..j + run) else {
            continue;
        };
        assert!(
            masked[at + src.start..at + src.end].iter().any(|&m| m),
            "{run} bytes of a value printed by {first_producer:?} survive"
        );
    }
});
