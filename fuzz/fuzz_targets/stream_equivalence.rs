//! The streaming engine must equal the reference implementation for any secret
//! set, input, chunking and idle flushes; and with no flushes, no pattern may
//! survive except where mask bytes help form it.
//!
//! Input layout: byte 0 = min_length (1..=8), byte 1 = number of secrets (1..=4),
//! then for each secret a length byte (1..=24) and its bytes, then a chunk-plan
//! byte string (each byte: chunk length in low 6 bits, flush flag in the top bit)
//! terminated by 0xFE, then the stream.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use shroud_redactor::reference::redact_all;
use shroud_redactor::{Redactor, SecretSetBuilder, DEFAULT_MASK};

fuzz_target!(|data: &[u8]| {
    let mut it = data.iter().copied();
    let (Some(min), Some(count)) = (it.next(), it.next()) else { return };
    let min = usize::from(min % 8) + 1;
    let mut builder = SecretSetBuilder::new().min_length(min);
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
    let patterns = set.patterns_for_reference();

    let mut r = Redactor::new(set);
    let mut out = Vec::new();
    let mut segments = vec![Vec::new()];
    let mut pos = 0;
    for &step in plan.iter().cycle() {
        if pos >= input.len() {
            break;
        }
        let end = (pos + usize::from(step & 0x3F).max(1)).min(input.len());
        r.write(&input[pos..end], &mut out);
        segments.last_mut().unwrap().extend_from_slice(&input[pos..end]);
        pos = end;
        if step & 0x80 != 0 {
            r.flush(&mut out);
            segments.push(Vec::new());
        }
    }
    r.finish(&mut out);
    let expected: Vec<u8> = segments
        .iter()
        .flat_map(|s| redact_all(&patterns, s, DEFAULT_MASK, min))
        .collect();
    assert!(out == expected, "stream differs from reference");
});
