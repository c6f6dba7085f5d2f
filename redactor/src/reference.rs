//! The simple implementation every fast path is checked against: a naive,
//! quadratic statement of what the streaming [`crate::Redactor`] must output, for
//! tests, fuzzing and benchmarks only.
//!
//! The model decides, for every byte of the stream, whether it is shown or masked;
//! each maximal run of masked bytes is written as one mask. It works on units
//! ([`units`]): every `piece`-byte substring of a pattern at least that long, and
//! every shorter pattern whole (the piece rule).
//!
//! - A byte covered by an occurrence of any unit is masked (the union of
//!   overlapping and adjacent occurrences). Occurrences are looked for in the
//!   stream and in each of its decoded views (`crate::views`: ANSI, backslash
//!   escapes, shell quoting, doubled quotes, entities, percent, wrapped bodies,
//!   pty line breaks; each decoded from the start); an occurrence in a view
//!   covers the source from its first byte to its last, the sequences between
//!   included. In the wrap view only units made of its body alphabet count.
//!   The views are those the engine reads for a set with these units (a view
//!   that can only decode bytes no unit holds is left out).
//! - At an idle flush after byte `f`, let `h` be the earliest position such that
//!   `input[h..f]` is a proper prefix of a unit, or a view of `input[..f]` from
//!   the source of its decoded byte at `h` is (a counted one, for the wrap
//!   view; a view's decoded bytes end where a sequence that `input[..f]` ends
//!   inside of starts), or such a sequence starts at `h` and the view holds it; and `h` moved back to the start of a sequence of any view it
//!   falls strictly inside, until it is inside none (the held piece). Each of
//!   those proper prefixes is a *start of a unit* as long as its bytes (decoded
//!   bytes in a view, plus the source bytes of a held open sequence after them;
//!   a held open sequence alone counts its source bytes). The piece's bytes not
//!   decided by an earlier flush are decided now: all masked when a start of a
//!   unit reaching `f` is at least `min_length` long; else, when a start of a unit in the wrap view
//!   ending where its open line break starts is that long, the bytes before
//!   the break are masked and the break's bytes are decided as follows;
//!   otherwise each is masked if an occurrence complete by `f` covers it, and
//!   shown if not, even if a later occurrence covers it. End of stream is a
//!   flush at the end.
//! - Every other byte is masked exactly when an occurrence covers it.
//!
//! A unit made only of lower-case hex digits (`[0-9a-f]`) matches in either
//! case, mixed case included (`DeadBeef…`): the set stores every hex pattern in
//! lower case.
//!
//! In strict mode flushes do nothing, so the output is that of the whole stream
//! buffered: pass no flush positions.

use crate::views::{self, Decoded, View};

/// `src` decoded whole by every view that decodes anything (a view with no
/// sequence and none open at the end is the source: the raw stream has its
/// units).
fn all_views(cfg: views::Config, src: &[u8]) -> Vec<(&'static View, Decoded)> {
    cfg.views()
        .map(|v| (v, views::decode_all(v, src)))
        .filter(|(_, d)| !d.seqs.is_empty() || d.open.is_some())
        .collect()
}

/// The units a set of patterns is matched by under the piece rule with `piece`
/// bytes: every `piece`-byte substring of each pattern at least that long, and
/// each shorter pattern whole. Pass the set's effective piece length
/// ([`crate::SecretSet::piece_length`]).
pub fn units(patterns: &[Vec<u8>], piece: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for p in patterns {
        if p.len() >= piece {
            out.extend(p.windows(piece).map(<[u8]>::to_vec));
        } else {
            out.push(p.clone());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// A unit of lower-case hex digits only: it matches in either case.
fn folds(unit: &[u8]) -> bool {
    unit.iter().all(|&b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `bytes` starts with `unit` (in either case for a hex unit).
fn starts_with_unit(bytes: &[u8], unit: &[u8]) -> bool {
    if folds(unit) {
        bytes.len() >= unit.len() && bytes[..unit.len()].eq_ignore_ascii_case(unit)
    } else {
        bytes.starts_with(unit)
    }
}

/// Whether each byte of `input` is masked, `patterns` being the units ([`units`]),
/// for idle flushes after each byte position in `flushes` (ascending; the end of
/// the stream is always one).
pub fn masked_bytes(
    patterns: &[Vec<u8>],
    input: &[u8],
    flushes: &[usize],
    min_length: usize,
) -> Vec<bool> {
    let n = input.len();
    // The views a set of these units reads (the same bytes as its patterns).
    let cfg = views::Config::for_patterns(u32::MAX, &patterns.concat());
    // Every occurrence complete by `f`, as a source range.
    let occurrences = |f: usize| {
        let mut found = Vec::new();
        for s in 0..f {
            for p in patterns {
                if !p.is_empty() && starts_with_unit(&input[s..f], p) {
                    found.push(s..s + p.len());
                }
            }
        }
        for (v, view) in all_views(cfg, &input[..f]) {
            for s in 0..view.bytes.len() {
                for p in patterns {
                    if !p.is_empty() && starts_with_unit(&view.bytes[s..], p) && (v.accept)(p) {
                        found.push(view.source(s..s + p.len()));
                    }
                }
            }
        }
        found
    };
    let covered_by = |f: usize| {
        let mut covered = vec![false; f];
        for r in occurrences(f) {
            covered[r].iter_mut().for_each(|c| *c = true);
        }
        covered
    };
    let proper_prefix = |piece: &[u8]| {
        patterns.iter().any(|p| {
            p.len() > piece.len()
                && (p.starts_with(piece)
                    || folds(p) && p[..piece.len()].eq_ignore_ascii_case(piece))
        })
    };
    // The held piece's start, and how much of a unit's start it is.
    let held_from = |f: usize| {
        let raw = (0..f)
            .find(|&h| !input[h..f].is_empty() && proper_prefix(&input[h..f]))
            .unwrap_or(f);
        let mut evidence = views::Evidence {
            to_end: f - raw,
            before_open: None,
        };
        let views = all_views(cfg, &input[..f]);
        let mut h = raw;
        for (v, view) in &views {
            let found = (0..view.bytes.len())
                .find(|&d| (v.accept)(&view.bytes[d..]) && proper_prefix(&view.bytes[d..]));
            if let Some(d) = found {
                evidence.saw(v, view.bytes.len() - d, view.open, f);
            }
            if view.pending.is_some() {
                evidence.saw(v, 0, view.open, f);
            }
            let decoded = found.map_or(f, |d| view.spans[d].0 as usize);
            h = h.min(decoded).min(view.pending.unwrap_or(f));
        }
        loop {
            let moved = views
                .iter()
                .map(|(_, view)| view.sync_before(h))
                .min()
                .unwrap_or(h);
            if moved == h {
                return (h, evidence);
            }
            h = moved;
        }
    };
    let mut decided: Vec<Option<bool>> = vec![None; n];
    for &f in flushes.iter().chain(std::iter::once(&n)) {
        let f = f.min(n);
        let (h, evidence) = held_from(f);
        let start_of_unit = if evidence.to_end >= min_length {
            f
        } else {
            match evidence.before_open {
                Some((decoded, at)) if decoded >= min_length => at,
                _ => h,
            }
        };
        let covered = covered_by(f);
        for i in h..f {
            if decided[i].is_none() {
                decided[i] = Some(i < start_of_unit || covered[i]);
            }
        }
    }
    let covered = covered_by(n);
    decided
        .iter()
        .zip(covered)
        .map(|(d, c)| d.unwrap_or(c))
        .collect()
}

/// `input` with each run of masked bytes replaced by one `mask`.
pub fn render(input: &[u8], masked: &[bool], mask: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    for (i, &b) in input.iter().enumerate() {
        if !masked[i] {
            out.push(b);
        } else if i == 0 || !masked[i - 1] {
            out.extend_from_slice(mask);
        }
    }
    out
}

/// The output for `input` with idle flushes after each position in `flushes`.
pub fn redact_flushed(
    patterns: &[Vec<u8>],
    input: &[u8],
    flushes: &[usize],
    mask: &[u8],
    min_length: usize,
) -> Vec<u8> {
    render(
        input,
        &masked_bytes(patterns, input, flushes, min_length),
        mask,
    )
}

/// The output for the whole of `input` at once (no idle flush before the end).
pub fn redact_all(patterns: &[Vec<u8>], input: &[u8], mask: &[u8], min_length: usize) -> Vec<u8> {
    redact_flushed(patterns, input, &[], mask, min_length)
}
