//! A validated, immutable set of secret values and every pattern derived from them.

use std::fmt;

use zeroize::{Zeroize, Zeroizing};

use crate::encodings::Encoding;
use crate::index::WindowIndex;
use crate::units::UnitRanges;

/// Secrets shorter than this many bytes are not matched unless configured otherwise.
pub const DEFAULT_MIN_LENGTH: usize = 6;

/// No run of this many consecutive bytes of a pattern reaches the output unless
/// configured otherwise (the piece rule; see [`SecretSetBuilder::piece_length`]).
pub const DEFAULT_PIECE_LENGTH: usize = 12;

const FIRST_FOUR_BITS: usize = 1 << 18;

/// Case-folded like the index's window keys (a hex pattern matches in any case).
fn first_four_slot(four: &[u8]) -> usize {
    let v = u32::from_le_bytes([four[0], four[1], four[2], four[3]]) | 0x2020_2020;
    (u64::from(v).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - 18)) as usize
}

/// How long a match must be, as one value for callers that pass both along.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lengths {
    /// Patterns (values and forms) shorter than this are not matched.
    pub min: usize,
    /// Runs of this many bytes of a pattern are matched (the piece rule).
    pub piece: usize,
}

impl Default for Lengths {
    fn default() -> Self {
        Lengths {
            min: DEFAULT_MIN_LENGTH,
            piece: DEFAULT_PIECE_LENGTH,
        }
    }
}

/// Hex digits in lower case only: a pattern (or unit) that matches in either case.
pub(crate) fn is_lower_hex(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|&b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
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
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) value: Zeroizing<Vec<u8>>,
}

/// Collects secret values, then builds a [`SecretSet`].
#[derive(Default)]
pub struct SecretSetBuilder {
    entries: Vec<Entry>,
    min_length: Option<usize>,
    piece_length: Option<usize>,
    /// Views switched off (a bit per view, see `views::ALL`).
    views_off: u32,
}

impl fmt::Debug for SecretSetBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretSetBuilder")
            .field("secrets", &self.entries.len())
            .field("min_length", &self.min_length)
            .field("piece_length", &self.piece_length)
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
    /// Names of secrets with a piece that looks like ordinary text (words,
    /// digits only, or a few repeated bytes): masking it will also mask text that
    /// is not the secret.
    pub ordinary: Vec<String>,
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

    /// The piece rule: every run of at least `n` consecutive bytes of a pattern is
    /// masked wherever it appears (a prefix, a suffix, a line of a wrapped
    /// encoding, a truncated value), not only whole patterns; a pattern shorter
    /// than `n` is matched whole. The effective length is at least the minimum
    /// length (at least 1).
    pub fn piece_length(mut self, n: usize) -> Self {
        self.piece_length = Some(n.max(1));
        self
    }

    /// Whether units are also matched in the stream without ANSI escape
    /// sequences (on by default; off only to measure what the view costs).
    pub fn ansi_view(self, on: bool) -> Self {
        self.view("ansi", on)
    }

    /// Whether units are also matched in the decoded view named `name` (one
    /// of [`SecretSetBuilder::view_names`]; all on by default, off only to
    /// measure what a view costs). An unknown name changes nothing.
    pub fn view(mut self, name: &str, on: bool) -> Self {
        let bit = crate::views::bit(name).unwrap_or(0);
        if on {
            self.views_off &= !bit;
        } else {
            self.views_off |= bit;
        }
        self
    }

    /// The names of the decoded views, for [`SecretSetBuilder::view`].
    pub fn view_names() -> impl Iterator<Item = &'static str> {
        crate::views::names()
    }

    /// Both lengths at once (see [`SecretSetBuilder::min_length`] and
    /// [`SecretSetBuilder::piece_length`]).
    pub fn lengths(self, l: Lengths) -> Self {
        self.min_length(l.min).piece_length(l.piece)
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
        let threads = crate::split::threads_for(self.entries.len());
        self.build_on(threads)
    }

    /// [`SecretSetBuilder::build`] on `threads` threads (at least one; the set
    /// is the same for any number), for measuring what more cores give.
    #[doc(hidden)]
    pub fn build_on(self, threads: usize) -> (SecretSet, BuildReport) {
        let threads = threads.max(1);
        let min_length = self.min_length.unwrap_or(DEFAULT_MIN_LENGTH);
        let piece = self
            .piece_length
            .unwrap_or(DEFAULT_PIECE_LENGTH)
            .max(min_length);
        let entries = &self.entries;
        let runs = crate::split::run(threads, entries.len(), |range| {
            crate::patterns::derive(&entries[range.clone()], range.start, min_length, piece)
        });
        let mut report = BuildReport::default();
        for run in &runs {
            report.empty.extend_from_slice(&run.report.empty);
            report.too_short.extend_from_slice(&run.report.too_short);
            report.ordinary.extend_from_slice(&run.report.ordinary);
        }
        let crate::patterns::Patterns { arena, spans, info } = crate::patterns::merge(&runs, piece);
        drop(runs);
        report.patterns = spans.len();
        let names = self.entries.iter().map(|e| e.name.clone()).collect();
        let mut set = SecretSet::from_parts(arena, spans, info, names, min_length, piece, threads);
        set.views = crate::views::Config::for_patterns(!self.views_off, set.arena());
        (set, report)
    }
}

/// An immutable set of patterns, indexed for the streaming matcher.
///
/// What is matched are the set's units: every `piece`-byte substring of a pattern
/// at least that long, and every shorter pattern whole. Units are never copied:
/// they are positions in the pattern arena. Patterns are stored sorted in one
/// zeroized arena; `Debug` shows counts only.
pub struct SecretSet {
    arena: Zeroizing<Vec<u8>>,
    /// (offset, length) of each pattern in `arena`, in byte-wise sorted order (so
    /// offsets ascend with the pattern id).
    spans: Vec<(u32, u32)>,
    info: Vec<PatternInfo>,
    names: Vec<String>,
    min_length: usize,
    piece: usize,
    /// The decoded views units are also matched in.
    pub(crate) views: crate::views::Config,
    /// Length of the longest pattern (0 when empty).
    max_len: usize,
    /// Length of the longest unit (0 when empty).
    max_unit: usize,
    /// Length of the shortest unit (0 when empty).
    min_unit: usize,
    /// Arena offsets of every `piece`-byte unit, sorted by its bytes.
    long_units: Vec<u32>,
    /// Ids of the patterns shorter than `piece`, in sorted order.
    short: Vec<u32>,
    /// Per pattern: lower-case hex digits only, matched in any case.
    hex: Vec<bool>,
    /// `first_bytes[b]` is true when some unit starts with byte `b`.
    first_bytes: [bool; 256],
    /// Bitmap over a hash of the first four bytes of every unit longer than four.
    first_four: Vec<u64>,
    /// For a large set, where in `long_units` the units starting with each pair
    /// of bytes are (see [`UnitRanges`]).
    unit_ranges: UnitRanges,
    pub(crate) index: WindowIndex,
}

impl fmt::Debug for SecretSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretSet")
            .field("secrets", &self.names.len())
            .field("patterns", &self.spans.len())
            .field("min_length", &self.min_length)
            .field("piece_length", &self.piece)
            .finish()
    }
}

impl Drop for SecretSet {
    fn drop(&mut self) {
        // The arena zeroizes itself; the index holds windows of the secrets
        // too, and the first-byte tables and unit ranges say how units start.
        self.index.zeroize();
        self.first_bytes.zeroize();
        self.first_four.zeroize();
        self.unit_ranges.starts.zeroize();
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
        piece: usize,
        threads: usize,
    ) -> Self {
        let short: Vec<u32> = (0..spans.len() as u32)
            .filter(|&id| (spans[id as usize].1 as usize) < piece)
            .collect();
        // The unit sort and the window index read the arena only: with a second
        // core they are built side by side.
        let (long_units, index) = crate::split::both(
            threads,
            || crate::units::sorted_units(&arena, &spans, piece),
            || WindowIndex::build(&arena, &spans, piece),
        );
        let mut first_bytes = [false; 256];
        let mut first_four = vec![0u64; FIRST_FOUR_BITS / 64];
        let mut pairs = UnitRanges::counter(long_units.len(), piece);
        let mut mark = |off: u32, len: usize| {
            let first = arena[off as usize];
            first_bytes[usize::from(first)] = true;
            first_bytes[usize::from(first.to_ascii_uppercase())] |= first.is_ascii_hexdigit();
            if len > 4 {
                let b = first_four_slot(&arena[off as usize..off as usize + 4]);
                first_four[b >> 6] |= 1 << (b & 63);
            }
        };
        for &(off, len) in &spans {
            if len as usize >= piece {
                (off..=off + len - piece as u32).for_each(|u| {
                    mark(u, piece);
                    pairs.count(&arena[u as usize..]);
                });
            } else {
                mark(off, len as usize);
            }
        }
        let max_unit = if long_units.is_empty() {
            short
                .iter()
                .map(|&id| spans[id as usize].1 as usize)
                .max()
                .unwrap_or(0)
        } else {
            piece
        };
        let max_len = spans.iter().map(|s| s.1 as usize).max().unwrap_or(0);
        let min_unit = spans
            .iter()
            .map(|s| (s.1 as usize).min(piece))
            .min()
            .unwrap_or(0);
        let hex = spans
            .iter()
            .map(|&(off, len)| is_lower_hex(&arena[off as usize..(off + len) as usize]))
            .collect();
        SecretSet {
            hex,
            max_len,
            arena,
            spans,
            info,
            names,
            min_length,
            piece,
            views: crate::views::Config::ALL_ON,
            max_unit,
            min_unit,
            long_units,
            short,
            first_bytes,
            first_four,
            unit_ranges: pairs.finish(),
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

    /// The effective piece length: runs of this many bytes of a pattern are masked.
    pub fn piece_length(&self) -> usize {
        self.piece
    }

    /// Length of the longest pattern (0 when empty): no run found is longer, so a
    /// scanner whose windows overlap by one byte less sees every run whole in
    /// some window.
    pub fn max_pattern_len(&self) -> usize {
        self.max_len
    }

    /// Length of the longest unit (0 when empty): the piece length, or the longest
    /// pattern when every pattern is shorter. A stream holds back fewer bytes.
    pub fn max_unit_len(&self) -> usize {
        self.max_unit
    }

    /// Whether every unit of `n` bytes or more, wherever two parts of it
    /// meet, has a whole window in one part that the index holds: true when
    /// every pattern matches by pieces (all its windows are indexed) and the
    /// shortest unit is at least two windows long (one of two parts summing
    /// to it is then at least a window). Default sets of 8-byte-or-longer
    /// values with the 12-byte piece are such sets.
    pub(crate) fn every_split_has_a_window(&self) -> bool {
        let w = self.index.window_len();
        w > 0 && self.short.is_empty() && self.min_unit >= 2 * w
    }

    /// Length of the shortest unit (0 when empty): no match is shorter.
    pub(crate) fn min_unit_len(&self) -> usize {
        self.min_unit
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

    /// The pattern holding arena offset `pos`, and where in it `pos` is.
    #[inline]
    pub(crate) fn pattern_at(&self, pos: u32) -> (usize, usize) {
        let id = self.spans.partition_point(|&(off, _)| off <= pos) - 1;
        (id, (pos - self.spans[id].0) as usize)
    }

    /// Whether pattern `id` is made of lower-case hex digits only (it matches in
    /// any case).
    #[inline]
    pub(crate) fn is_hex(&self, id: usize) -> bool {
        self.hex[id]
    }

    /// Every pattern's (offset, length) in the arena.
    #[cfg(test)]
    pub(crate) fn spans_for_tests(&self) -> &[(u32, u32)] {
        &self.spans
    }

    /// The arena, for the index's window keys.
    pub(crate) fn arena(&self) -> &[u8] {
        &self.arena
    }

    /// The bytes each part of the set holds on the heap (capacity, not
    /// contents), for the benchmarks' memory figures.
    #[doc(hidden)]
    pub fn heap_bytes(&self) -> Vec<(&'static str, usize)> {
        fn of<T>(v: &Vec<T>) -> usize {
            v.capacity() * std::mem::size_of::<T>()
        }
        let mut parts = vec![
            ("pattern arena", of(&self.arena)),
            ("pattern spans", of(&self.spans)),
            ("pattern info", of(&self.info)),
            ("sorted unit starts", of(&self.long_units)),
            ("short patterns", of(&self.short)),
            ("hex flags", of(&self.hex)),
            ("first-four bitmap", of(&self.first_four)),
            ("unit ranges", of(&self.unit_ranges.starts)),
            (
                "names",
                of(&self.names) + self.names.iter().map(String::capacity).sum::<usize>(),
            ),
        ];
        parts.extend(self.index.heap_bytes());
        parts
    }

    /// All pattern bytes, for the reference implementation in tests.
    #[doc(hidden)]
    pub fn patterns_for_reference(&self) -> Vec<Vec<u8>> {
        (0..self.spans.len())
            .map(|i| self.pattern(i).to_vec())
            .collect()
    }

    /// True when `lower` (hex digits in lower case) is a proper prefix of a unit
    /// of a hex pattern.
    fn is_proper_prefix_of_hex(&self, lower: &[u8]) -> bool {
        if lower.len() < self.piece {
            let at = self.first_unit_not_below(lower);
            let hit = self.long_units[at..]
                .iter()
                .take_while(|&&off| self.arena[off as usize..].starts_with(lower))
                .any(|&off| self.is_hex(self.pattern_at(off).0));
            if hit {
                return true;
            }
        }
        let at = self
            .short
            .partition_point(|&id| self.pattern(id as usize) < lower);
        self.short[at..]
            .iter()
            .take_while(|&&id| self.pattern(id as usize).starts_with(lower))
            .any(|&id| self.is_hex(id as usize) && self.pattern(id as usize).len() > lower.len())
    }

    /// The index in `long_units` of the first unit not less than `tail` (a
    /// non-empty tail shorter than the piece length).
    fn first_unit_not_below(&self, tail: &[u8]) -> usize {
        let piece = self.piece;
        let range = self.unit_ranges.of(tail, self.long_units.len());
        range.start
            + self.long_units[range]
                .partition_point(|&off| &self.arena[off as usize..][..piece] < tail)
    }

    /// True when `tail` is a proper prefix of some unit (shorter than it).
    pub(crate) fn is_proper_prefix(&self, tail: &[u8]) -> bool {
        let Some(&first) = tail.first() else {
            return false;
        };
        if tail.len() >= self.max_unit || !self.first_bytes[usize::from(first)] {
            return false;
        }
        // A unit that starts with `tail` has the tail's first window as a window
        // of its pattern, so one bitmap lookup rules out most tails long enough;
        // with 10,000 secrets the binary search below missed cache a few hundred
        // times per 128 KiB read, each miss waiting on the last.
        if !self.index.may_have_window(tail) {
            return false;
        }
        if tail.len() >= 4 {
            let b = first_four_slot(&tail[..4]);
            if self.first_four[b >> 6] & (1 << (b & 63)) == 0 {
                return false;
            }
        }
        if tail.len() < self.piece {
            let at = self.first_unit_not_below(tail);
            if at < self.long_units.len()
                && self.arena[self.long_units[at] as usize..].starts_with(tail)
            {
                return true;
            }
        }
        // Hex in upper or mixed case: a prefix of a hex unit in lower case.
        if tail.iter().all(u8::is_ascii_hexdigit)
            && !is_lower_hex(tail)
            && self.is_proper_prefix_of_hex(&tail.to_ascii_lowercase())
        {
            return true;
        }
        // Short patterns are sorted and distinct: the first one not less than
        // `tail` is `tail` itself or the only candidate that extends it; after an
        // equal one, the next is.
        let short = |i: usize| self.pattern(self.short[i] as usize);
        let mut pos = self
            .short
            .partition_point(|&id| self.pattern(id as usize) < tail);
        if pos < self.short.len() && short(pos) == tail {
            pos += 1;
        }
        pos < self.short.len() && short(pos).starts_with(tail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pair table narrows the search for a held tail's unit to the range
    /// of its first bytes: with it on (a set of 1,000 values), the first unit
    /// not below any tail is where a search of the whole array puts it.
    #[test]
    fn unit_ranges_narrow_the_search_to_where_the_whole_search_lands() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alnum = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut b = SecretSetBuilder::new();
        for i in 0..1000 {
            let len = 16 + (next() % 17) as usize;
            let v: Vec<u8> = (0..len).map(|_| alnum[(next() % 62) as usize]).collect();
            b.add(format!("s{i}"), &v);
        }
        let set = b.build().0;
        assert!(
            !set.unit_ranges.starts.is_empty(),
            "a large set has the table"
        );
        let whole = |tail: &[u8]| {
            set.long_units
                .partition_point(|&off| &set.arena[off as usize..][..set.piece] < tail)
        };
        let mut tails: Vec<Vec<u8>> = Vec::new();
        for _ in 0..20_000 {
            let len = 1 + (next() % (set.piece as u64 - 1)) as usize;
            let tail = if next() % 2 == 0 {
                // A prefix of a unit, or of one with its last byte changed.
                let off = set.long_units[(next() % set.long_units.len() as u64) as usize];
                let mut t = set.arena[off as usize..][..len].to_vec();
                if next() % 2 == 0 {
                    let last = t.len() - 1;
                    t[last] = t[last].wrapping_add(1 + (next() % 3) as u8);
                }
                t
            } else {
                (0..len).map(|_| (next() % 256) as u8).collect()
            };
            tails.push(tail);
        }
        tails.extend([
            vec![0u8],
            vec![255u8],
            vec![255, 255],
            vec![0, 0],
            b"z".to_vec(),
        ]);
        for tail in &tails {
            assert_eq!(
                set.first_unit_not_below(tail),
                whole(tail),
                "tail of {}",
                tail.len()
            );
        }
    }

    /// The views' line-break shortcut holds for default sets of 12-byte-or-longer
    /// values, and not when a pattern matches whole (its inner windows are not
    /// indexed) or a unit is shorter than two windows.
    #[test]
    fn every_split_has_a_window_only_for_long_units() {
        let set = |min: usize, piece: usize, values: &[&[u8]]| {
            let mut b = SecretSetBuilder::new().min_length(min).piece_length(piece);
            for (i, v) in values.iter().enumerate() {
                b.add(format!("s{i}"), v);
            }
            b.build().0
        };
        let long: &[u8] = b"Zq8vR2mT5xLw9cHb";
        assert!(set(8, 12, &[long]).every_split_has_a_window());
        assert!(set(8, 16, &[b"Zq8vR2mT5xLw9cHbK3"]).every_split_has_a_window());
        // An 8-byte value is shorter than the piece: matched whole.
        assert!(!set(8, 12, &[long, b"pW4kN7sD"]).every_split_has_a_window());
        // 13-byte pieces give 7-byte windows: a unit of 13 splits into 6 + 7.
        assert!(!set(8, 13, &[long]).every_split_has_a_window());
        assert!(!SecretSet::empty().every_split_has_a_window());
    }

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
        let (set, _) = b.piece_length(64).build();
        for len in 1..28 {
            let tail = &b"correct-horse-battery-staple"[..len];
            assert!(set.is_proper_prefix(tail), "{len} bytes");
        }
        assert!(!set.is_proper_prefix(b"correct-horse-battery-staple"));
        assert!(!set.is_proper_prefix(b"correct-horsE"));
        assert!(!set.is_proper_prefix(b"orrect-horse-battery"));
    }

    /// Hex is stored in lower case and matches in any case, mixed included; a
    /// run of hex digits inside another value too.
    #[test]
    fn hex_matches_in_any_case() {
        let mut b = SecretSetBuilder::new();
        b.add("h", b"deadbeef0123456789abcdef")
            .add("x", b"token-0123456789abcdef-end");
        let (set, _) = b.build();
        for text in [
            &b"id=DeadBeef0123456789ABCDEF;"[..],
            b"id=DEADBEEF0123456789abcdef;",
            b"t 0123456789ABCDEF x",
        ] {
            let found = set.find_occurrences(text);
            assert!(!found.is_empty(), "{}", String::from_utf8_lossy(text));
        }
        assert!(set.is_proper_prefix(b"DeadBeef01"));
        assert!(set.is_proper_prefix(b"0123456789ABCDE"[..11].as_ref()));
        assert!(!set.is_proper_prefix(b"DeadBeeX"));
        // Other bytes keep their case.
        assert!(set.find_occurrences(b"TOKEN-0123456").is_empty());
    }

    /// The set is the same on any number of threads: every structure equal.
    #[test]
    fn threads_build_the_same_set() {
        let mut next = crate::xorshift(0x853c_49e6_748f_ea9bu64);
        let mut b = SecretSetBuilder::new();
        for n in 0..2_500 {
            let len = (next() % 40) as usize;
            let mut v: Vec<u8> = (0..len).map(|_| (next() % 256) as u8).collect();
            match n % 5 {
                // Shared across secrets: the first one keeps the pattern.
                0 => v = format!("shared-{}", n % 3).into_bytes(),
                1 => v = hex::encode(&v).into_bytes(),
                _ => {}
            }
            b.add(format!("s{n}"), &v);
        }
        let build = |threads| {
            let mut again = SecretSetBuilder::new();
            for e in &b.entries {
                again.add(e.name.clone(), &e.value);
            }
            again.build_on(threads)
        };
        let (one, one_report) = build(1);
        assert!(one.pattern_count() > 5_000);
        for threads in [2, 3] {
            let (set, report) = build(threads);
            assert_eq!(report, one_report, "{threads} threads");
            assert_eq!(*set.arena, *one.arena);
            assert_eq!(set.spans, one.spans);
            assert_eq!(set.info, one.info);
            assert_eq!(set.short, one.short);
            assert_eq!(set.hex, one.hex);
            assert_eq!(set.first_bytes, one.first_bytes);
            assert_eq!(set.first_four, one.first_four);
            assert!(set.index == one.index, "{threads} threads: the same index");
            // Equal units may come in either order: compare their bytes.
            let units = |s: &SecretSet| -> Vec<Vec<u8>> {
                (s.long_units.iter())
                    .map(|&o| s.arena[o as usize..][..s.piece].to_vec())
                    .collect()
            };
            assert_eq!(units(&set), units(&one));
        }
    }

    /// Under the piece rule a tail is held when it can start a piece anywhere in a
    /// pattern, and never when it is a whole piece already.
    #[test]
    fn proper_prefix_of_a_piece() {
        let mut b = SecretSetBuilder::new().min_length(6).piece_length(8);
        b.add("a", b"correct-horse-battery-staple")
            .add("b", b"short7x");
        let (set, _) = b.build();
        assert_eq!(set.max_unit_len(), 8);
        assert!(set.is_proper_prefix(b"horse-b"), "inside the value");
        assert!(set.is_proper_prefix(b"y-stapl"), "the last piece");
        assert!(!set.is_proper_prefix(b"-staple"), "no piece starts here");
        assert!(!set.is_proper_prefix(b"horse-ba"), "a whole piece");
        assert!(set.is_proper_prefix(b"short7"), "a short value, whole");
        assert!(!set.is_proper_prefix(b"hort7"));
        // Hex and base64 forms have pieces too.
        assert!(set.is_proper_prefix(b"636f727"));
    }
}
