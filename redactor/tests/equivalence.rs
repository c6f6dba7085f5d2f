//! The streaming engine against the reference implementation, for random secret
//! sets (with overlapping and prefix secrets), random piece lengths, random inputs
//! holding them in every encoding, whole, cut to random pieces and with letters
//! in the other case (hex matches in any case), random chunk
//! sizes and idle flushes at random points (the pauses of a real stream), in
//! normal and strict mode.

use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use shroud_redactor::producers::{Printed, Producer};
use shroud_redactor::reference::{masked_bytes, redact_all, render, units};
use shroud_redactor::{Redactor, SecretSet, SecretSetBuilder, DEFAULT_MASK};

const ALPHABET: &[u8] = b"abcd01\"\\/&<> \n\xff\x00=+\x1b[m'%\r;#x";

/// Escape sequences as programs write them (and a cut one), inserted between
/// pieces of values: the view without them must see the value whole.
const ESCAPES: &[&[u8]] = &[
    b"\x1b[31m",
    b"\x1b[0m",
    b"\x1b[01;31m\x1b[K",
    b"\x1b]0;t\x07",
    b"\x1b]8;;u\x1b\\",
    b"\x1b[",
    b"\x1b",
];

fn secret_strategy() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let byte = proptest::sample::select(ALPHABET.to_vec());
    let value = proptest::collection::vec(byte, 1..20);
    proptest::collection::vec(value, 1..6)
        .prop_flat_map(|base| {
            // Derive secrets that overlap or are prefixes of the random ones.
            let n = base.len();
            (
                Just(base),
                proptest::collection::vec((0..n, 0usize..20, 0usize..20), 0..3),
            )
        })
        .prop_map(|(mut base, derived)| {
            for (i, cut, extra) in derived {
                let src = base[i].clone();
                let cut = cut.min(src.len());
                let mut v = src[..cut].to_vec();
                v.extend(src.iter().rev().take(extra));
                if !v.is_empty() {
                    base.push(v);
                }
            }
            base
        })
}

#[derive(Debug, Clone)]
enum Piece {
    Noise(Vec<u8>),
    Pattern(usize),
    /// Part of a pattern: which, where it starts, how long.
    Cut(usize, usize, usize),
    /// A pattern with an escape sequence inserted: which, where, which escape.
    Coloured(usize, usize, usize),
    /// A pattern with the case of its letters flipped where the bits of the
    /// second number are set (hex in mixed case).
    Flipped(usize, u32),
    /// Part of a pattern as a producer prints it: which, where it starts, how
    /// long, which producer (of [`Producer::ALL`]), and the producer's
    /// parameter.
    Produced(usize, usize, usize, usize, usize),
}

fn pieces_strategy() -> impl Strategy<Value = Vec<Piece>> {
    proptest::collection::vec(
        prop_oneof![
            proptest::collection::vec(proptest::sample::select(ALPHABET.to_vec()), 0..12)
                .prop_map(Piece::Noise),
            (0usize..1000).prop_map(Piece::Pattern),
            (0usize..1000, 0usize..40, 0usize..40).prop_map(|(i, a, n)| Piece::Cut(i, a, n)),
            (0usize..1000, 0usize..40, 0usize..ESCAPES.len())
                .prop_map(|(i, a, e)| Piece::Coloured(i, a, e)),
            (0usize..1000, any::<u32>()).prop_map(|(i, m)| Piece::Flipped(i, m)),
            (
                0usize..1000,
                0usize..8,
                1usize..40,
                0..Producer::ALL.len(),
                0usize..1000
            )
                .prop_map(|(i, a, n, h, k)| Piece::Produced(i, a, n, h, k)),
        ],
        0..24,
    )
}

fn build(secrets: &[Vec<u8>], min: usize) -> Arc<SecretSet> {
    build_pieces(secrets, min, 64)
}

fn build_pieces(secrets: &[Vec<u8>], min: usize, piece: usize) -> Arc<SecretSet> {
    let mut b = SecretSetBuilder::new().min_length(min).piece_length(piece);
    for (i, s) in secrets.iter().enumerate() {
        b.add(format!("s{i}"), s);
    }
    Arc::new(b.build().0)
}

fn assemble(set: &SecretSet, pieces: &[Piece]) -> Vec<u8> {
    let patterns = set.patterns_for_reference();
    let mut input = Vec::new();
    for p in pieces {
        match p {
            Piece::Noise(n) => input.extend_from_slice(n),
            Piece::Pattern(i) if !patterns.is_empty() => {
                input.extend_from_slice(&patterns[i % patterns.len()])
            }
            &Piece::Cut(i, a, n) if !patterns.is_empty() => {
                let p = &patterns[i % patterns.len()];
                let a = a.min(p.len());
                input.extend_from_slice(&p[a..(a + n).min(p.len())]);
            }
            &Piece::Coloured(i, a, e) if !patterns.is_empty() => {
                let p = &patterns[i % patterns.len()];
                let a = a.min(p.len());
                input.extend_from_slice(&p[..a]);
                input.extend_from_slice(ESCAPES[e]);
                input.extend_from_slice(&p[a..]);
            }
            &Piece::Flipped(i, m) if !patterns.is_empty() => {
                let p = &patterns[i % patterns.len()];
                input.extend(p.iter().enumerate().map(|(k, &b)| {
                    if m >> (k % 32) & 1 == 1 {
                        b ^ (u8::from(b.is_ascii_alphabetic()) << 5)
                    } else {
                        b
                    }
                }));
            }
            &Piece::Produced(i, a, n, how, k) if !patterns.is_empty() => {
                let p = &patterns[i % patterns.len()];
                let a = a.min(p.len());
                input.extend(
                    Producer::ALL[how]
                        .print(&p[a..(a + n).min(p.len())], k)
                        .bytes,
                );
            }
            Piece::Pattern(_)
            | Piece::Cut(..)
            | Piece::Coloured(..)
            | Piece::Flipped(..)
            | Piece::Produced(..) => {}
        }
    }
    input
}

/// Feeds `input` in chunks, flushing where `cuts` says; returns the output and the
/// positions after which the flushes happened.
fn stream(
    set: Arc<SecretSet>,
    strict: bool,
    input: &[u8],
    cuts: &[(usize, bool)],
) -> (Vec<u8>, Vec<usize>) {
    let mut r = Redactor::new(set).strict(strict);
    let mut out = Vec::new();
    let mut flushes = Vec::new();
    let mut pos = 0;
    for &(len, flush) in cuts.iter().cycle() {
        if pos >= input.len() {
            break;
        }
        let end = (pos + len.max(1)).min(input.len());
        r.write(&input[pos..end], &mut out);
        pos = end;
        if flush {
            r.flush(&mut out);
            flushes.push(pos);
        }
    }
    r.finish(&mut out);
    (out, flushes)
}

/// The set, an input assembled from `pieces`, and the set's units (what the
/// reference matches).
fn case(
    secrets: &[Vec<u8>],
    min: usize,
    piece: usize,
    pieces: &[Piece],
) -> (Arc<SecretSet>, Vec<u8>, Vec<Vec<u8>>) {
    let set = build_pieces(secrets, min, piece);
    let input = assemble(&set, pieces);
    let units = units(&set.patterns_for_reference(), set.piece_length());
    (set, input, units)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// A pattern may be formed by mask bytes next to kept bytes; that is not a leak of
/// the secret's own bytes.
fn only_next_to_mask(out: &[u8], p: &[u8]) -> bool {
    out.windows(p.len())
        .enumerate()
        .filter(|(_, w)| *w == p)
        .all(|(i, _)| {
            let lo = i.saturating_sub(DEFAULT_MASK.len());
            let hi = (i + p.len() + DEFAULT_MASK.len()).min(out.len());
            contains(&out[lo..hi], DEFAULT_MASK)
        })
}

/// The bound on visible bytes: of every occurrence of a pattern in `input`, only
/// bytes among its first `min - 1` may be shown.
fn shown_only_at_starts(
    patterns: &[Vec<u8>],
    input: &[u8],
    masked: &[bool],
    min: usize,
) -> Result<(), String> {
    for p in patterns {
        for s in 0..input.len().saturating_sub(p.len() - 1) {
            if !input[s..].starts_with(p) {
                continue;
            }
            if let Some(i) = (s + min - 1..s + p.len()).find(|&i| !masked[i]) {
                return Err(format!("byte {} of an occurrence at {s} is shown", i - s));
            }
        }
    }
    Ok(())
}

fn cuts_strategy() -> impl Strategy<Value = Vec<(usize, bool)>> {
    proptest::collection::vec(
        (
            prop_oneof![1usize..4, 1usize..40, 1usize..65536],
            proptest::bool::weighted(0.3),
        ),
        1..16,
    )
}

/// Surrounding text with no view's trigger byte: a printed value is read back
/// as the value wherever it goes.
const NEUTRAL: &[u8] = b"abcdefxyz0189 .:,-_/()=";

/// Mostly bytes of a base64 or hex body (what the wrap view joins), and a few
/// that end one.
const BODYISH: &[u8] = b"abcdXYZ0189+/=-_ .\"";

/// Line breaks a wrapped body is printed with.
const BREAKS: &[&[u8]] = &[b"\n", b"\n    ", b"\r\n", b"\n# ", b"\n\n", b" \n"];

/// A value printed by one producer, or two in a row, among neutral text,
/// streamed: the output equals the reference, and the first `run`-byte window
/// of the value whose printed bytes all show, if any (`at`: where the printed
/// text starts in the input).
#[allow(clippy::too_many_arguments)]
fn printed_run_shown(
    set: Arc<SecretSet>,
    min: usize,
    part: &[u8],
    chain: &[(Producer, usize)],
    before: &[u8],
    after: &[u8],
    cuts: &[(usize, bool)],
    run: usize,
) -> Result<Option<usize>, String> {
    let mut printed: Option<Printed> = None;
    for &(p, k) in chain {
        printed = Some(match printed {
            None => p.print(part, k),
            Some(inner) => inner.then(p.print(&inner.bytes, k)),
        });
    }
    let printed = printed.expect("a chain has a producer");
    let mut input = before.to_vec();
    input.extend_from_slice(&printed.bytes);
    input.extend_from_slice(after);
    let patterns = units(&set.patterns_for_reference(), set.piece_length());
    let (out, flushes) = stream(set, false, &input, cuts);
    let masked = masked_bytes(&patterns, &input, &flushes, min);
    if out != render(&input, &masked, DEFAULT_MASK) {
        return Err("stream differs from reference".into());
    }
    let printed_len = printed.from.iter().map(|r| r.1 as usize).max().unwrap_or(0);
    Ok((0..(printed_len + 1).saturating_sub(run)).find(|&j| {
        printed.source_of(j..j + run).is_some_and(|r| {
            !masked[before.len() + r.start..before.len() + r.end]
                .iter()
                .any(|&m| m)
        })
    }))
}

/// A part of pattern `which` of `set` (at least `run` bytes from `start`,
/// `extra` more if there are), and `run`: a unit, and at least `min`.
fn printed_part(
    set: &SecretSet,
    which: usize,
    start: usize,
    extra: usize,
    min: usize,
) -> Option<(Vec<u8>, usize)> {
    let all = set.patterns_for_reference();
    let form = all.get(which % all.len().max(1))?;
    let run = form.len().min(set.piece_length()).max(min);
    if form.len() < run {
        return None;
    }
    let start = start % (form.len() - run + 1);
    let len = run + extra % (form.len() - start - run + 1);
    Some((form[start..start + len].to_vec(), run))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// A value printed by a program (escapes, quoting, entities, percent, a
    /// wrapped body, colour codes, a pty, a truncation), streamed with pauses
    /// anywhere, shows no run of a unit's length when read back the
    /// producer's way (the fuzz target checks the same).
    #[test]
    fn a_printed_value_shows_no_run_of_a_unit(
        secrets in secret_strategy(),
        min in 1usize..8,
        piece in prop_oneof![8usize..16, Just(64)],
        which in 0usize..1000,
        how in 0..Producer::ALL.len(),
        k in 0usize..100_000,
        start in 0usize..64,
        extra in 0usize..64,
        before in proptest::collection::vec(proptest::sample::select(NEUTRAL.to_vec()), 0..12),
        after in proptest::collection::vec(proptest::sample::select(NEUTRAL.to_vec()), 0..12),
        cuts in cuts_strategy(),
    ) {
        let set = build_pieces(&secrets, min, piece);
        let Some((part, run)) = printed_part(&set, which, start, extra, min) else {
            return Ok(());
        };
        let producer = Producer::ALL[how];
        prop_assume!(producer.reads_back(&part));
        let shown = printed_run_shown(set, min, &part, &[(producer, k)], &before, &after, &cuts, run);
        prop_assert_eq!(shown, Ok(None), "{:?} of {:?}", producer, String::from_utf8_lossy(&part));
    }

    #[test]
    fn streaming_equals_reference(
        secrets in secret_strategy(),
        min in 1usize..8,
        piece in prop_oneof![1usize..16, Just(64)],
        pieces in pieces_strategy(),
        cuts in proptest::collection::vec(prop_oneof![1usize..4, 1usize..64, 1usize..65536], 1..16),
    ) {
        let (set, input, patterns) = case(&secrets, min, piece, &pieces);
        let cuts: Vec<(usize, bool)> = cuts.into_iter().map(|c| (c, false)).collect();
        let (out, _) = stream(set, false, &input, &cuts);
        let expected = redact_all(&patterns, &input, DEFAULT_MASK, min);
        prop_assert_eq!(&out, &expected);
        for p in &patterns {
            prop_assert!(only_next_to_mask(&out, p), "a pattern survived");
        }
    }

    /// Idle flushes at random points: the output is the reference's for the same
    /// flush points, and of any occurrence at most `min - 1` leading bytes show.
    #[test]
    fn idle_flushes_anywhere_show_at_most_min_minus_one_bytes(
        secrets in secret_strategy(),
        min in 1usize..8,
        piece in prop_oneof![1usize..16, Just(64)],
        pieces in pieces_strategy(),
        cuts in cuts_strategy(),
    ) {
        let (set, input, patterns) = case(&secrets, min, piece, &pieces);
        let (out, flushes) = stream(set, false, &input, &cuts);
        let masked = masked_bytes(&patterns, &input, &flushes, min);
        prop_assert_eq!(out, render(&input, &masked, DEFAULT_MASK));
        if let Err(e) = shown_only_at_starts(&patterns, &input, &masked, min) {
            prop_assert!(false, "{}", e);
        }
    }

    /// Strict mode: flushes change nothing; the output is the buffered run's.
    #[test]
    fn strict_mode_ignores_idle_flushes(
        secrets in secret_strategy(),
        min in 1usize..8,
        piece in prop_oneof![1usize..16, Just(64)],
        pieces in pieces_strategy(),
        cuts in cuts_strategy(),
    ) {
        let (set, input, patterns) = case(&secrets, min, piece, &pieces);
        let (out, _) = stream(set, true, &input, &cuts);
        prop_assert_eq!(out, redact_all(&patterns, &input, DEFAULT_MASK, min));
    }

    #[test]
    fn swapping_sets_never_leaks_a_value_in_both(
        shared in proptest::collection::vec(proptest::sample::select(b"abcdefgh".to_vec()), 8..20),
        split in 0usize..20,
        noise in proptest::collection::vec(proptest::sample::select(b"abcdefgh ".to_vec()), 0..30),
    ) {
        let old = build(&[shared.clone(), b"old-only-value".to_vec()], 6);
        let new = build(&[shared.clone(), b"new-only-value".to_vec()], 6);
        let mut input = noise.clone();
        input.extend_from_slice(&shared);
        input.push(b'\n');
        let split = (noise.len() + split).min(input.len());
        let mut r = Redactor::new(old);
        let mut out = Vec::new();
        r.write(&input[..split], &mut out);
        r.set_secrets(new);
        r.write(&input[split..], &mut out);
        r.finish(&mut out);
        prop_assert!(!contains(&out, &shared));
    }
}

/// The cases: overlapping and adjacent occurrences are one mask.
#[test]
fn overlapping_and_adjacent_occurrences_are_masked_as_their_union() {
    let set = build(&[b"bbbbbbCCCCCC".to_vec(), b"CCCCCCdddddd".to_vec()], 6);
    for chunk in [1, 5, 100] {
        let cuts = [(chunk, false)];
        let (out, _) = stream(set.clone(), false, b"x bbbbbbCCCCCCdddddd y", &cuts);
        assert_eq!(out, b"x [REDACTED] y", "chunk {chunk}");
        let (out, _) = stream(set.clone(), false, b"x bbbbbbCCCCCCCCCCCCdddddd y", &cuts);
        assert_eq!(out, b"x [REDACTED] y", "adjacent, chunk {chunk}");
    }
}

/// With many realistic secrets and a stream that ends in a newline (no pattern
/// starts with one), the engine equals aho-corasick's leftmost-longest replacement.
#[test]
fn many_secrets_match_aho_corasick_leftmost_longest() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let alnum = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    // Whole patterns only: aho-corasick knows no pieces.
    let mut b = SecretSetBuilder::new().piece_length(4096);
    let mut secrets = Vec::new();
    for i in 0..200 {
        let len = rng.gen_range(16..=32);
        let s: Vec<u8> = (0..len)
            .map(|_| alnum[rng.gen_range(0..alnum.len())])
            .collect();
        b.add(format!("s{i}"), &s);
        secrets.push(s);
    }
    let set = Arc::new(b.build().0);
    let patterns = set.patterns_for_reference();
    let mut input = Vec::new();
    while input.len() < 256 * 1024 {
        input.extend_from_slice(b"2026-11-28T10:00:00Z INFO request id=");
        if rng.gen_bool(0.2) {
            let p = &patterns[rng.gen_range(0..patterns.len())];
            input.extend_from_slice(p);
        } else {
            input.extend((0..rng.gen_range(5..80)).map(|_| alnum[rng.gen_range(0..alnum.len())]));
        }
        input.push(b'\n');
    }
    let ac = AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(&patterns)
        .unwrap();
    let mut expected = Vec::new();
    ac.replace_all_with_bytes(&input, &mut expected, |_, _, dst| {
        dst.extend_from_slice(DEFAULT_MASK);
        true
    });
    for chunk in [1usize, 7, 4096, 65536] {
        let mut r = Redactor::new(set.clone());
        let mut out = Vec::new();
        for c in input.chunks(chunk) {
            r.write(c, &mut out);
        }
        r.finish(&mut out);
        assert!(
            out == expected,
            "chunk size {chunk}: output differs from aho-corasick"
        );
    }
    for s in &secrets {
        assert!(!contains(&expected, s));
    }
}

/// Two producers in a row, as programs chain them (a JSON body under `bash
/// -x`, a `bash -x` line in a JSON log, a URL in HTML...): views do not stack,
/// so a chain is masked only where one view (or a form) reads the outer text
/// back to a form of the value. Prints, per chain, how many of its random
/// values showed a run of a piece; `docs/redact.md` ("Two producers in a
/// row") has the table.
#[test]
#[ignore = "views do not stack: printf %q inside JSON, a Python repr inside shell quotes or with colour codes, and entities inside percent-encoding leak (docs/redact.md, \"Two producers in a row\")"]
fn two_producers_in_a_row_show_no_run_of_a_piece() {
    use Producer::*;
    let chains = [
        (Json, ShellQuote),
        (Json, Json),
        (Json, Entities),
        (Json, Percent),
        (Json, Colour),
        (Json, Pty),
        (PythonRepr, ShellQuote),
        (PythonRepr, Json),
        (PythonRepr, Colour),
        (ShellQuote, Json),
        (ShellQuote, PythonRepr),
        (ShellQuote, Pty),
        (PrintfQ, Json),
        (Doubled, Json),
        (Doubled, Colour),
        (Percent, Entities),
        (Percent, Json),
        (Entities, Percent),
        (Entities, Json),
    ];
    let alnum = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let specials = b"'\"\\ &<%$\n/";
    let mut rng = rand::rngs::StdRng::seed_from_u64(21);
    let mut leaking = Vec::new();
    for (inner, outer) in chains {
        let mut leaks = 0;
        let trials = 40;
        for _ in 0..trials {
            let len = rng.gen_range(16..=32);
            let mut value: Vec<u8> = (0..len)
                .map(|_| alnum[rng.gen_range(0..alnum.len())])
                .collect();
            for _ in 0..3 {
                let at = rng.gen_range(1..len - 1);
                value[at] = specials[rng.gen_range(0..specials.len())];
            }
            let set = build_pieces(&[value.clone()], 6, 12);
            let chain = [(inner, rng.gen()), (outer, rng.gen())];
            match printed_run_shown(set, 6, &value, &chain, b"x ", b" y", &[(4096, false)], 12) {
                Ok(Some(_)) => leaks += 1,
                Ok(None) => {}
                Err(e) => panic!("{inner:?} then {outer:?}: {e}"),
            }
        }
        println!("{inner:?} then {outer:?}: {leaks}/{trials} values show a piece");
        if leaks > 0 {
            leaking.push((inner, outer, leaks));
        }
    }
    assert!(leaking.is_empty(), "chains that leak: {leaking:?}");
}

proptest! {
    // The reference is quadratic and these inputs long: fewer cases than above.
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Secrets at least the default piece long, with the default piece: the
    /// sets for which `views::find` rules out a line break's wrap window by
    /// the two windows beside it. Patterns split anywhere by a wrap's line
    /// break (with indentation, a comment prefix or a pty's `\r`), between
    /// log-like words and lines that end in body bytes, streamed in random
    /// chunks: the output is the reference's.
    #[test]
    fn default_piece_sets_with_wrapped_patterns_equal_reference(
        secrets in proptest::collection::vec(
            proptest::collection::vec(proptest::sample::select(BODYISH.to_vec()), 12..40),
            1..6,
        ),
        min in 1usize..8,
        pieces in pieces_strategy().prop_map(|v| v.into_iter().take(6).collect::<Vec<_>>()),
        breaks in proptest::collection::vec((0usize..1000, 0usize..1000, 0..BREAKS.len(), 0usize..3), 0..8),
        cuts in proptest::collection::vec(prop_oneof![1usize..4, 1usize..64, 1usize..65536], 1..16),
    ) {
        let set = build_pieces(&secrets, min, 12);
        let patterns = set.patterns_for_reference();
        let mut input = assemble(&set, &pieces);
        for (which, at, sep, around) in breaks {
            let p = &patterns[which % patterns.len()];
            let at = at % (p.len() + 1);
            input.extend_from_slice([&b"INFO done "[..], b"id=", b"\n2026-12-07T20"][around]);
            input.extend_from_slice(&p[..at]);
            input.extend_from_slice(BREAKS[sep]);
            input.extend_from_slice(&p[at..]);
            input.extend_from_slice([&b" ok\n"[..], b"\n2026-12-07T20:01Z x", b"xyz0"][around]);
        }
        let cuts: Vec<(usize, bool)> = cuts.into_iter().map(|c| (c, false)).collect();
        let (out, _) = stream(set.clone(), false, &input, &cuts);
        let expected = redact_all(&units(&patterns, set.piece_length()), &input, DEFAULT_MASK, min);
        prop_assert_eq!(out, expected);
    }
}

/// The window a view decodes around a sequence (`views::find`) reaches
/// exactly the source that decodes to `max_unit_len - 1` bytes on each side,
/// counted over the sequences beside it. The longest pattern, with one of its
/// bytes percent-encoded or a colour code inserted before it, at every
/// position (so the pattern's far end lies that many decoded bytes from the
/// sequence), also with every fifth byte encoded and with unrelated sequences
/// just outside it, whole and in small writes: the output is the reference's.
/// Fails if the window falls one byte short on either side.
#[test]
fn view_windows_reach_a_whole_unit_around_each_sequence() {
    // Whole patterns, and the default piece (every split has a window: a
    // window of colour codes only is ruled out by the windows beside them).
    for piece in [64, 12] {
        view_windows_case(piece);
    }
}

fn view_windows_case(piece: usize) {
    let set = build_pieces(&[b"Zq7vK2mW9xLp4RtY8nB3cF6h".to_vec()], 6, piece);
    let patterns = set.patterns_for_reference();
    let units = units(&patterns, set.piece_length());
    let p = patterns.iter().max_by_key(|p| p.len()).expect("a pattern");
    let pct = |b: u8| format!("%{b:02X}").into_bytes();
    for k in 0..p.len() {
        let mut inputs = Vec::new();
        for (before, after) in [(&b"x "[..], &b" y"[..]), (b"%41%2", b"%42 &amp;")] {
            let mut one = before.to_vec();
            one.extend_from_slice(&p[..k]);
            one.extend(pct(p[k]));
            one.extend_from_slice(&p[k + 1..]);
            one.extend_from_slice(after);
            inputs.push(one);
            let mut colour = before.to_vec();
            colour.extend_from_slice(&p[..k]);
            colour.extend_from_slice(b"\x1b[1;31m");
            colour.extend_from_slice(&p[k..(k + 3).min(p.len())]);
            colour.extend_from_slice(b"\x1b[0m");
            colour.extend_from_slice(&p[(k + 3).min(p.len())..]);
            colour.extend_from_slice(after);
            inputs.push(colour);
            let mut dense = before.to_vec();
            for (i, &b) in p.iter().enumerate() {
                if i % 5 == k % 5 {
                    dense.extend(pct(b));
                } else {
                    dense.push(b);
                }
            }
            dense.extend_from_slice(after);
            inputs.push(dense);
            // Every byte an escape, the first `k` as escapes of other bytes
            // too (windows merged across a run of sequences).
            let mut all = before.to_vec();
            all.extend(p[..k].iter().flat_map(|&b| pct(b ^ 1)));
            all.extend(p.iter().flat_map(|&b| pct(b)));
            all.extend_from_slice(after);
            inputs.push(all);
        }
        for input in &inputs {
            let expected = redact_all(&units, input, DEFAULT_MASK, 6);
            for chunk in [input.len(), 7, 1] {
                let (out, _) = stream(set.clone(), false, input, &[(chunk, false)]);
                assert_eq!(
                    out, expected,
                    "piece {piece}: sequence at {k} of the longest pattern, writes of {chunk}"
                );
            }
        }
    }
}
