//! Whether a secret value's pieces are likely to occur in ordinary text.
//!
//! Masking matches pieces of a value; a value made of dictionary words, a
//! repeated character, a keyboard run or digits only has pieces that ordinary
//! output holds too, so it masks unrelated text and is itself easy to guess.
//! [`assess`] is a pure function over the bytes: callers warn by secret name,
//! never showing the value.

use std::collections::HashSet;
use std::fmt;
use std::sync::OnceLock;

/// The piece length the alphabet check assumes (the engine's default).
const PIECE: usize = 12;
/// A piece carrying fewer bits than this is likely to occur by chance.
const MIN_PIECE_BITS: f64 = 40.0;
/// Covered by words, years and sequences at least this much: weak.
const MAX_WORD_COVER: f64 = 0.6;
/// Values of at least this many bytes with less entropy per byte: weak.
const MIN_BITS_PER_BYTE: f64 = 2.0;
/// Only this many leading bytes are judged (a long value, such as a document,
/// is judged by its start; keeps the checks linear-time on any input).
const MAX_ASSESSED: usize = 1024;
/// Longest alphabet or keyboard run looked for.
const MAX_SEQUENCE: usize = 26;
/// Common English words, names and password words, lowercase, 4+ letters.
const WORDS: &str = include_str!("quality_words.txt");
/// Keyboard rows, read forwards and backwards by [`sequence_len`].
const KEYBOARD_ROWS: [&[u8]; 4] = [b"1234567890", b"qwertyuiop", b"asdfghjkl", b"zxcvbnm"];

/// Why a value's pieces are likely to occur in ordinary text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weakness {
    /// One byte, or a short unit, repeated over most of the value.
    Repeated,
    /// Mostly dictionary words, years, or alphabet/keyboard sequences.
    Words,
    /// Drawn from so few symbols (digits only, one letter case) that a piece
    /// carries under 40 bits.
    ShortAlphabet,
    /// A few distinct bytes, unevenly used (under 2 bits per byte).
    LowEntropy,
}

impl fmt::Display for Weakness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Weakness::Repeated => "repeated characters",
            Weakness::Words => "dictionary words or common sequences",
            Weakness::ShortAlphabet => "short alphabet",
            Weakness::LowEntropy => "low entropy",
        })
    }
}

/// What [`assess`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing suggests its pieces occur in ordinary text.
    Strong,
    /// Its pieces are likely to occur in ordinary text, for this reason.
    Weak(Weakness),
}

/// Judges `value` (empty is [`Verdict::Strong`]: there is nothing to match; of a
/// long value, the first 1 KiB).
pub fn assess(value: &[u8]) -> Verdict {
    let value = &value[..value.len().min(MAX_ASSESSED)];
    if value.is_empty() {
        return Verdict::Strong;
    }
    if repeated(value) {
        Verdict::Weak(Weakness::Repeated)
    } else if word_cover(value) >= MAX_WORD_COVER {
        Verdict::Weak(Weakness::Words)
    } else if piece_bits(value) < MIN_PIECE_BITS {
        Verdict::Weak(Weakness::ShortAlphabet)
    } else if value.len() >= 8 && bits_per_byte(value) < MIN_BITS_PER_BYTE {
        Verdict::Weak(Weakness::LowEntropy)
    } else {
        Verdict::Strong
    }
}

/// A run of one byte over half the value, or the whole value a unit repeated.
fn repeated(v: &[u8]) -> bool {
    if v.len() < 4 {
        return false;
    }
    let mut longest = 1;
    let mut run = 1;
    for w in v.windows(2) {
        run = if w[0] == w[1] { run + 1 } else { 1 };
        longest = longest.max(run);
    }
    if longest * 2 >= v.len() {
        return true;
    }
    (1..=v.len() / 2).any(|p| v[p..].iter().zip(v).all(|(a, b)| a == b))
}

/// The word list, and which four-letter starts its words have.
struct Dictionary {
    words: HashSet<&'static [u8]>,
    /// Bit `n` is set when some word starts with the four lowercase letters
    /// whose base-26 number is `n` (57 KiB). Most positions of a value start no
    /// word: one bit test then replaces the ten hashed lookups of every word
    /// length, which were most of loading 10,000 secrets (45 ms).
    starts: Vec<u64>,
    /// Length of the longest word.
    longest: usize,
}

impl Dictionary {
    /// The bit of `four` in `starts`, when it is four lowercase letters.
    fn start_bit(four: &[u8]) -> Option<usize> {
        four.iter().try_fold(0usize, |n, &b| {
            b.is_ascii_lowercase()
                .then(|| n * 26 + usize::from(b - b'a'))
        })
    }

    /// False when no word starts with `four`.
    fn may_start(&self, four: &[u8]) -> bool {
        Self::start_bit(four).is_some_and(|n| self.starts[n >> 6] & (1 << (n & 63)) != 0)
    }
}

fn dictionary() -> &'static Dictionary {
    static DICT: OnceLock<Dictionary> = OnceLock::new();
    DICT.get_or_init(|| {
        let words: HashSet<&'static [u8]> = WORDS.lines().map(str::as_bytes).collect();
        let mut starts = vec![0u64; (26usize.pow(4)).div_ceil(64)];
        for w in &words {
            let n = Dictionary::start_bit(&w[..4]).expect("words are 4+ lowercase letters");
            starts[n >> 6] |= 1 << (n & 63);
        }
        let longest = words.iter().map(|w| w.len()).max().unwrap_or(0);
        Dictionary {
            words,
            starts,
            longest,
        }
    })
}

/// Digits and symbols people use for letters (`p@ssw0rd`).
fn unleet(b: u8) -> u8 {
    match b.to_ascii_lowercase() {
        b'0' => b'o',
        b'1' | b'!' => b'i',
        b'3' => b'e',
        b'4' | b'@' => b'a',
        b'5' | b'$' => b's',
        b'7' => b't',
        other => other,
    }
}

/// Length of the alphabet or keyboard run (3+ bytes, either direction) at `v[i..]`.
/// Called at every position of every secret: no allocation.
fn sequence_len(v: &[u8], i: usize) -> usize {
    let n = (v.len() - i).min(MAX_SEQUENCE);
    let lower = |j: usize| v[i + j].to_ascii_lowercase();
    let mut best = 0;
    for step in [1i16, -1] {
        let run = 1
            + (1..n)
                .take_while(|&j| {
                    let (a, b) = (lower(j - 1), lower(j));
                    a.is_ascii_alphanumeric() && i16::from(b) - i16::from(a) == step
                })
                .count();
        best = best.max(run);
    }
    let first = lower(0);
    for row in KEYBOARD_ROWS {
        for reversed in [false, true] {
            let at = |k: usize| {
                if reversed {
                    row[row.len() - 1 - k]
                } else {
                    row[k]
                }
            };
            if let Some(start) = (0..row.len()).find(|&k| at(k) == first) {
                let run = (start..row.len())
                    .zip(0..n)
                    .take_while(|&(k, j)| at(k) == lower(j))
                    .count();
                best = best.max(run);
            }
        }
    }
    if best >= 3 {
        best
    } else {
        0
    }
}

/// A year from 1950 to 2039 at `v[i..]`.
fn year_at(v: &[u8], i: usize) -> bool {
    match v.get(i..i + 4) {
        Some(y) if y.iter().all(u8::is_ascii_digit) => {
            matches!(&y[..2], b"19" if y[2] >= b'5')
                || matches!(&y[..3], b"200" | b"201" | b"202" | b"203")
        }
        _ => false,
    }
}

/// The share of `v` covered by dictionary words (after undoing leetspeak),
/// years and sequences, with the best choice of non-overlapping segments.
fn word_cover(v: &[u8]) -> f64 {
    let words = dictionary();
    let norm: Vec<u8> = v.iter().map(|&b| unleet(b)).collect();
    let longest = words.longest;
    // best[i]: most bytes of v[..i] coverable.
    let mut best = vec![0usize; v.len() + 1];
    for i in 0..v.len() {
        best[i + 1] = best[i + 1].max(best[i]);
        let reach = |end: usize, best: &mut Vec<usize>| {
            best[end] = best[end].max(best[i] + end - i);
        };
        if norm.get(i..i + 4).is_some_and(|four| words.may_start(four)) {
            for len in 4..=longest.min(v.len() - i) {
                if words.words.contains(&norm[i..i + len]) {
                    reach(i + len, &mut best);
                }
            }
        }
        let s = sequence_len(v, i);
        if s > 0 {
            reach(i + s, &mut best);
        }
        if year_at(v, i) {
            reach(i + 4, &mut best);
        }
    }
    best[v.len()] as f64 / v.len() as f64
}

/// Bits in a piece of `PIECE` bytes drawn from the value's character classes.
fn piece_bits(v: &[u8]) -> f64 {
    let all = |f: fn(&u8) -> bool| v.iter().all(f);
    let alphabet = if all(u8::is_ascii_digit) {
        10.0
    } else if all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        || all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b))
    {
        16.0
    } else {
        let any = |f: fn(&u8) -> bool| v.iter().any(f);
        let mut n = 0.0;
        if any(u8::is_ascii_lowercase) {
            n += 26.0;
        }
        if any(u8::is_ascii_uppercase) {
            n += 26.0;
        }
        if any(u8::is_ascii_digit) {
            n += 10.0;
        }
        if any(|b| b.is_ascii_punctuation() || *b == b' ') {
            n += 33.0;
        }
        if any(|b| !b.is_ascii_graphic() && *b != b' ') {
            n += 128.0;
        }
        n
    };
    v.len().min(PIECE) as f64 * f64::log2(alphabet)
}

/// Shannon entropy of the value's byte distribution.
fn bits_per_byte(v: &[u8]) -> f64 {
    let mut counts = [0usize; 256];
    for &b in v {
        counts[usize::from(b)] += 1;
    }
    let n = v.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// The first versions of the word and sequence checks (a hashed lookup
    /// per word length at every position, vectors per call), kept as the
    /// reference the faster ones must agree with.
    mod reference {
        use super::super::*;

        fn sequence_len(v: &[u8], i: usize) -> usize {
            let lower: Vec<u8> = v[i..]
                .iter()
                .take(MAX_SEQUENCE)
                .map(u8::to_ascii_lowercase)
                .collect();
            let mut best = 0;
            for step in [1i16, -1] {
                let n = 1 + lower
                    .windows(2)
                    .take_while(|w| {
                        w[0].is_ascii_alphanumeric() && i16::from(w[1]) - i16::from(w[0]) == step
                    })
                    .count();
                best = best.max(n);
            }
            for row in KEYBOARD_ROWS {
                for dir in [false, true] {
                    let row: Vec<u8> = if dir {
                        row.iter().rev().copied().collect()
                    } else {
                        row.to_vec()
                    };
                    if let Some(start) = row.iter().position(|&c| Some(&c) == lower.first()) {
                        let n = row[start..]
                            .iter()
                            .zip(&lower)
                            .take_while(|(a, b)| a == b)
                            .count();
                        best = best.max(n);
                    }
                }
            }
            if best >= 3 {
                best
            } else {
                0
            }
        }

        pub fn word_cover(v: &[u8]) -> f64 {
            let words: HashSet<&'static [u8]> = WORDS.lines().map(str::as_bytes).collect();
            let norm: Vec<u8> = v.iter().map(|&b| unleet(b)).collect();
            let longest = 24.min(v.len());
            let mut best = vec![0usize; v.len() + 1];
            for i in 0..v.len() {
                best[i + 1] = best[i + 1].max(best[i]);
                let reach = |end: usize, best: &mut Vec<usize>| {
                    best[end] = best[end].max(best[i] + end - i);
                };
                for len in 4..=longest.min(v.len() - i) {
                    if words.contains(&norm[i..i + len]) {
                        reach(i + len, &mut best);
                    }
                }
                let s = sequence_len(v, i);
                if s > 0 {
                    reach(i + s, &mut best);
                }
                if year_at(v, i) {
                    reach(i + 4, &mut best);
                }
            }
            best[v.len()] as f64 / v.len() as f64
        }
    }

    /// Values made of words, leetspeak, sequences, years and random bytes are
    /// covered exactly as the reference covers them.
    #[test]
    fn word_cover_agrees_with_the_reference() {
        let mut rng = StdRng::seed_from_u64(7);
        let words: Vec<&str> = WORDS.lines().collect();
        let bits: &[&[u8]] = &[
            b"qwerty",
            b"poiuy",
            b"abcdef",
            b"ZYXW",
            b"1234",
            b"0987",
            b"2019",
            b"1961",
            b"p@ss",
            b"!",
            b"$",
            b"zxcv",
            b"lkjh",
            b"mnbv",
            b"lkjhgfdsa",
            b"poiuytrewq",
            b"mnbvcxz",
            b"4321",
            b"21",
            b"uiop",
            b"yxwvutsrqp",
        ];
        for _ in 0..3000 {
            let mut v = Vec::new();
            for _ in 0..rng.gen_range(1..6) {
                match rng.gen_range(0..4) {
                    0 => {
                        let w = words[rng.gen_range(0..words.len())].as_bytes();
                        v.extend(w.iter().map(|&b| match rng.gen_range(0..6) {
                            0 => b.to_ascii_uppercase(),
                            1 if b == b'o' => b'0',
                            1 if b == b'a' => b'@',
                            _ => b,
                        }));
                    }
                    1 => v.extend_from_slice(bits[rng.gen_range(0..bits.len())]),
                    2 => v.extend((0..rng.gen_range(1..8)).map(|_| rng.gen_range(b' '..=b'~'))),
                    _ => v.extend((0..rng.gen_range(1..4)).map(|_| rng.gen::<u8>())),
                }
            }
            assert_eq!(
                word_cover(&v),
                reference::word_cover(&v),
                "{}",
                String::from_utf8_lossy(&v)
            );
        }
    }

    fn weak(v: &str) -> Option<Weakness> {
        match assess(v.as_bytes()) {
            Verdict::Weak(w) => Some(w),
            Verdict::Strong => None,
        }
    }

    #[test]
    fn clear_positives_name_their_reason() {
        assert_eq!(weak("password123"), Some(Weakness::Words));
        assert_eq!(weak("aaaaaaaaaaaaaaaa"), Some(Weakness::Repeated));
        assert_eq!(weak("correcthorsebatterystaple"), Some(Weakness::Words));
        assert_eq!(weak("P@ssw0rd!"), Some(Weakness::Words));
        assert_eq!(weak("Summer2024!"), Some(Weakness::Words));
        assert_eq!(weak("qwertyuiop123"), Some(Weakness::Words));
        assert_eq!(weak("abcabcabcabc"), Some(Weakness::Repeated));
        assert_eq!(weak("service_account"), Some(Weakness::Words));
        assert_eq!(weak("4111111111111111"), Some(Weakness::Repeated));
        assert_eq!(weak("80417365920417"), Some(Weakness::ShortAlphabet));
        assert_eq!(weak("zqxjvkwp"), Some(Weakness::ShortAlphabet));
        assert_eq!(weak("aabbaabaabbbabab"), Some(Weakness::LowEntropy));
    }

    #[test]
    fn random_tokens_are_strong() {
        const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const HEX: &[u8] = b"0123456789abcdef";
        const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut rng = StdRng::seed_from_u64(21);
        for alphabet in [B64, HEX, ALNUM] {
            for _ in 0..1500 {
                let len = rng.gen_range(16..=48);
                let v: Vec<u8> = (0..len)
                    .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                    .collect();
                assert_eq!(
                    assess(&v),
                    Verdict::Strong,
                    "{}",
                    String::from_utf8_lossy(&v)
                );
            }
        }
        // Long values are judged quickly, by their start.
        let long: Vec<u8> = (0..64 << 10)
            .map(|_| ALNUM[rng.gen_range(0..ALNUM.len())])
            .collect();
        assert_eq!(assess(&long), Verdict::Strong);
        let mut abab = b"ab".repeat(32 << 10);
        abab.push(b'c');
        assert_eq!(assess(&abab), Verdict::Weak(Weakness::Repeated));
        let bytes: Vec<u8> = (0..32).map(|_| rng.gen()).collect();
        assert_eq!(assess(&bytes), Verdict::Strong);
        assert_eq!(assess(b""), Verdict::Strong);
    }
}
