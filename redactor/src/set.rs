//! A validated, immutable set of secret values and every pattern derived from them.

use std::fmt;

use zeroize::{Zeroize, Zeroizing};

use crate::encodings::{variants, Encoding};
use crate::index::WindowIndex;

/// Secrets shorter than this many bytes are not matched unless configured otherwise.
pub const DEFAULT_MIN_LENGTH: usize = 6;

const FIRST_FOUR_BITS: usize = 1 << 18;

fn first_four_slot(four: &[u8]) -> usize {
    let v = u32::from_le_bytes([four[0], four[1], four[2], four[3]]);
    (u64::from(v).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - 18)) as usize
}

/// Where a pattern came from: the secret's name and the encoding. Never the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatternInfo {
    /// Index of the secret in the order it was added.
    pub secret: usize,
    /// Which form of the secret the pattern is.
    pub encoding: Encoding,
}

/// One secret as added to the builder. Its value is zeroized when dropped.
struct Entry {
    name: String,
    value: Zeroizing<Vec<u8>>,
}

/// Collects secret values, then builds a [`SecretSet`].
#[derive(Default)]
pub struct SecretSetBuilder {
    entries: Vec<Entry>,
    min_length: Option<usize>,
}

impl fmt::Debug for SecretSetBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretSetBuilder")
            .field("secrets", &self.entries.len())
            .field("min_length", &self.min_length)
            .finish()
    }
}

/// What building a set found worth telling the user: names only, never values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildReport {
    /// Names of secrets whose value is shorter than the minimum length and so is not
    /// matched on its own.
    pub too_short: Vec<String>,
    /// Names of secrets whose value is empty.
    pub empty: Vec<String>,
    /// How many distinct patterns (values and encodings) the set matches.
    pub patterns: usize,
}

impl SecretSetBuilder {
    /// A builder with the default minimum length.
    pub fn new() -> Self {
        Self::default()
    }

    /// Patterns shorter than `n` bytes are not matched (at least 1).
    pub fn min_length(mut self, n: usize) -> Self {
        self.min_length = Some(n.max(1));
        self
    }

    /// Adds one secret value under a name used in reports (not secret itself).
    pub fn add(&mut self, name: impl Into<String>, value: &[u8]) -> &mut Self {
        self.entries.push(Entry {
            name: name.into(),
            value: Zeroizing::new(value.to_vec()),
        });
        self
    }

    /// Number of values added so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no value was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Derives every pattern and indexes them.
    pub fn build(self) -> (SecretSet, BuildReport) {
        let min_length = self.min_length.unwrap_or(DEFAULT_MIN_LENGTH);
        let mut report = BuildReport::default();
        let mut found: Vec<(Zeroizing<Vec<u8>>, PatternInfo)> = Vec::new();
        for (secret, entry) in self.entries.iter().enumerate() {
            if entry.value.is_empty() {
                report.empty.push(entry.name.clone());
                continue;
            }
            if entry.value.len() < min_length {
                report.too_short.push(entry.name.clone());
            }
            let mut forms: Vec<(Zeroizing<Vec<u8>>, Encoding)> = variants(&entry.value)
                .into_iter()
                .map(|(bytes, encoding)| (Zeroizing::new(bytes), encoding))
                .filter(|(bytes, _)| bytes.len() >= min_length)
                .collect();
            // Most forms of a value repeat another (every escaping of plain text is
            // the text): dropping them here keeps the set-wide sort small. Stable,
            // so the first form of each stays, as the set-wide pass keeps the first.
            forms.sort_by(|a, b| a.0.as_slice().cmp(b.0.as_slice()));
            forms.dedup_by(|a, b| a.0 == b.0);
            found.extend(
                forms
                    .into_iter()
                    .map(|(bytes, encoding)| (bytes, PatternInfo { secret, encoding })),
            );
        }
        // Sorting makes duplicates adjacent and gives the prefix lookup its order.
        found.sort_by(|a, b| a.0.as_slice().cmp(b.0.as_slice()));
        found.dedup_by(|a, b| a.0 == b.0);
        report.patterns = found.len();

        let mut arena = Zeroizing::new(Vec::with_capacity(found.iter().map(|p| p.0.len()).sum()));
        let mut spans = Vec::with_capacity(found.len());
        let mut info = Vec::with_capacity(found.len());
        for (bytes, pi) in &found {
            spans.push((arena.len() as u32, bytes.len() as u32));
            arena.extend_from_slice(bytes);
            info.push(*pi);
        }
        drop(found);
        let names = self.entries.iter().map(|e| e.name.clone()).collect();
        let set = SecretSet::from_parts(arena, spans, info, names, min_length);
        (set, report)
    }
}

/// An immutable set of patterns, indexed for the streaming matcher.
///
/// Patterns are stored sorted in one zeroized arena; `Debug` shows counts only.
pub struct SecretSet {
    arena: Zeroizing<Vec<u8>>,
    /// (offset, length) of each pattern in `arena`, in byte-wise sorted order.
    spans: Vec<(u32, u32)>,
    info: Vec<PatternInfo>,
    names: Vec<String>,
    min_length: usize,
    max_len: usize,
    /// `first_bytes[b]` is true when some pattern starts with byte `b`.
    first_bytes: [bool; 256],
    /// Bitmap over a hash of the first four bytes of every pattern longer than four.
    first_four: Vec<u64>,
    pub(crate) index: WindowIndex,
}

impl fmt::Debug for SecretSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretSet")
            .field("secrets", &self.names.len())
            .field("patterns", &self.spans.len())
            .field("min_length", &self.min_length)
            .finish()
    }
}

impl Drop for SecretSet {
    fn drop(&mut self) {
        // The arena zeroizes itself; the index holds windows of the secrets too.
        self.index.zeroize();
        self.first_bytes.zeroize();
        self.first_four.zeroize();
    }
}

impl SecretSet {
    /// A set that matches nothing.
    pub fn empty() -> Self {
        SecretSetBuilder::new().build().0
    }

    fn from_parts(
        arena: Zeroizing<Vec<u8>>,
        spans: Vec<(u32, u32)>,
        info: Vec<PatternInfo>,
        names: Vec<String>,
        min_length: usize,
    ) -> Self {
        let max_len = spans.iter().map(|s| s.1 as usize).max().unwrap_or(0);
        let min_len = spans.iter().map(|s| s.1 as usize).min().unwrap_or(0);
        let mut first_bytes = [false; 256];
        for &(off, _) in &spans {
            first_bytes[usize::from(arena[off as usize])] = true;
        }
        let mut first_four = vec![0u64; FIRST_FOUR_BITS / 64];
        for &(off, len) in &spans {
            if len > 4 {
                let b = first_four_slot(&arena[off as usize..off as usize + 4]);
                first_four[b >> 6] |= 1 << (b & 63);
            }
        }
        let index = WindowIndex::build(&arena, &spans, min_len);
        SecretSet {
            arena,
            spans,
            info,
            names,
            min_length,
            max_len,
            first_bytes,
            first_four,
            index,
        }
    }

    /// Number of distinct patterns matched.
    pub fn pattern_count(&self) -> usize {
        self.spans.len()
    }

    /// True when the set matches nothing.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The minimum length this set was built with.
    pub fn min_length(&self) -> usize {
        self.min_length
    }

    /// Length of the longest pattern (0 when empty).
    pub fn max_pattern_len(&self) -> usize {
        self.max_len
    }

    /// The name of the secret with this index.
    pub fn secret_name(&self, secret: usize) -> &str {
        &self.names[secret]
    }

    /// Where pattern `id` came from.
    pub fn pattern_info(&self, id: usize) -> PatternInfo {
        self.info[id]
    }

    /// The bytes of pattern `id`. Crate-private so the bytes never leave the engine.
    pub(crate) fn pattern(&self, id: usize) -> &[u8] {
        let (off, len) = self.spans[id];
        &self.arena[off as usize..(off + len) as usize]
    }

    /// All pattern bytes, for the reference implementation in tests.
    #[doc(hidden)]
    pub fn patterns_for_reference(&self) -> Vec<Vec<u8>> {
        (0..self.spans.len())
            .map(|i| self.pattern(i).to_vec())
            .collect()
    }

    /// True when `tail` is a proper prefix of some pattern (shorter than it).
    pub(crate) fn is_proper_prefix(&self, tail: &[u8]) -> bool {
        let Some(&first) = tail.first() else {
            return false;
        };
        if tail.len() >= self.max_len || !self.first_bytes[usize::from(first)] {
            return false;
        }
        // A pattern that starts with `tail` has the tail's first window as its
        // window at offset 0, so one bitmap lookup rules out most tails long
        // enough; with 10,000 secrets the binary search below missed cache a few
        // hundred times per 128 KiB read, each miss waiting on the last.
        if !self.index.may_have_window(tail) {
            return false;
        }
        if tail.len() >= 4 {
            let b = first_four_slot(&tail[..4]);
            if self.first_four[b >> 6] & (1 << (b & 63)) == 0 {
                return false;
            }
        }
        // Patterns are sorted and distinct: the first one not less than `tail` is
        // `tail` itself or the only candidate that extends it; after an equal one,
        // the next is.
        let mut pos = self
            .spans
            .partition_point(|&(off, len)| &self.arena[off as usize..(off + len) as usize] < tail);
        if pos < self.spans.len() && self.pattern(pos) == tail {
            pos += 1;
        }
        pos < self.spans.len() && self.pattern(pos).starts_with(tail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_short_and_empty_values_by_name() {
        let mut b = SecretSetBuilder::new();
        b.add("short", b"abc")
            .add("empty", b"")
            .add("ok", b"long-enough");
        let (set, report) = b.build();
        assert_eq!(report.too_short, vec!["short".to_string()]);
        assert_eq!(report.empty, vec!["empty".to_string()]);
        assert!(set.pattern_count() >= 1);
        assert!(!format!("{set:?}").contains("long-enough"));
    }

    #[test]
    fn proper_prefix_lookup() {
        let mut b = SecretSetBuilder::new().min_length(3);
        b.add("a", b"abcdef").add("b", b"abc");
        let (set, _) = b.build();
        assert!(
            set.is_proper_prefix(b"abc"),
            "abc is a complete pattern and a prefix of abcdef"
        );
        assert!(set.is_proper_prefix(b"abcde"));
        assert!(!set.is_proper_prefix(b"abcdef"));
        assert!(!set.is_proper_prefix(b"abd"));
        assert!(!set.is_proper_prefix(b""));
    }

    /// Tails at least a window long go through the index's bitmap first.
    #[test]
    fn proper_prefix_lookup_of_long_tails() {
        let mut b = SecretSetBuilder::new().min_length(16);
        b.add("a", b"correct-horse-battery-staple");
        let (set, _) = b.build();
        for len in 1..28 {
            let tail = &b"correct-horse-battery-staple"[..len];
            assert!(set.is_proper_prefix(tail), "{len} bytes");
        }
        assert!(!set.is_proper_prefix(b"correct-horse-battery-staple"));
        assert!(!set.is_proper_prefix(b"correct-horsE"));
        assert!(!set.is_proper_prefix(b"orrect-horse-battery"));
    }
}
