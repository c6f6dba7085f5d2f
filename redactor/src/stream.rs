//! The streaming matcher: leftmost-longest replacement over a byte stream that
//! arrives in arbitrary pieces, holding back only a trailing proper prefix of some
//! pattern.
//!
//! Invariant: after every [`Redactor::write`], the held bytes are the suffix of the
//! stream starting at the earliest position whose remainder is a proper prefix of a
//! pattern, and every byte before it has been written out, masked or verbatim,
//! exactly as a replacement over the whole stream would have it. A match that starts
//! before that position cannot change with more input: a longer match at the same
//! start, or an earlier start, would make an earlier position a proper prefix.

use std::ops::Range;
use std::sync::Arc;

use zeroize::{Zeroize, Zeroizing};

use crate::index::Match;
use crate::set::SecretSet;

/// The mask written in place of every match unless configured otherwise.
pub const DEFAULT_MASK: &[u8] = b"[REDACTED]";

/// Counters of one stream, for metrics. No content.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes given to [`Redactor::write`].
    pub bytes_in: u64,
    /// Matches replaced by the mask, including masked held pieces.
    pub masked: u64,
}

/// Redacts one byte stream. Cheap to create; one per stream.
pub struct Redactor {
    set: Arc<SecretSet>,
    mask: Vec<u8>,
    held: Zeroizing<Vec<u8>>,
    scratch: Zeroizing<Vec<u8>>,
    matches: Vec<Match>,
    stats: Stats,
    own: Vec<u8>,
    pieces: Vec<Piece>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("set", &self.set)
            .field("held_bytes", &self.held.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl Redactor {
    /// A redactor for `set` with the default mask.
    pub fn new(set: Arc<SecretSet>) -> Self {
        Redactor {
            set,
            mask: DEFAULT_MASK.to_vec(),
            held: Zeroizing::new(Vec::new()),
            scratch: Zeroizing::new(Vec::new()),
            matches: Vec::new(),
            stats: Stats::default(),
            own: Vec::new(),
            pieces: Vec::new(),
        }
    }

    /// Replaces the mask written for each match.
    pub fn with_mask(mut self, mask: impl Into<Vec<u8>>) -> Self {
        self.mask = mask.into();
        self
    }

    /// The set in use.
    pub fn secrets(&self) -> &Arc<SecretSet> {
        &self.set
    }

    /// Swaps the secret set mid-stream. The held piece is kept and examined against
    /// the new set together with the next bytes, so a value present in both sets
    /// and split across the swap is still masked.
    pub fn set_secrets(&mut self, set: Arc<SecretSet>) {
        self.set = set;
    }

    /// Bytes currently held back (a possible start of a secret).
    pub fn pending(&self) -> usize {
        self.held.len()
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Consumes `input` and appends to `out` every byte that can no longer be part
    /// of a secret, with matches replaced by the mask.
    pub fn write(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut own = std::mem::take(&mut self.own);
        let mut pieces = std::mem::take(&mut self.pieces);
        self.write_pieces(input, &mut own, &mut pieces);
        for p in &pieces {
            match p {
                Piece::Input(r) => out.extend_from_slice(&input[r.clone()]),
                Piece::Own(r) => out.extend_from_slice(&own[r.clone()]),
            }
        }
        own.clear();
        pieces.clear();
        self.own = own;
        self.pieces = pieces;
    }

    /// [`Redactor::write`] without copying the input: appends to `pieces` the output
    /// in order, each piece either a range of `input` or a range of `own` (where
    /// masks and bytes from the held piece are put). Concatenated, the pieces are
    /// exactly what `write` would append. For writers that use `writev`.
    pub fn write_pieces(&mut self, input: &[u8], own: &mut Vec<u8>, pieces: &mut Vec<Piece>) {
        self.stats.bytes_in += input.len() as u64;
        let mut sink = Sink { own, pieces };
        if self.set.is_empty() {
            sink.own(&self.held);
            self.held.zeroize();
            sink.input(0..input.len());
            return;
        }
        let maxlen = self.set.max_pattern_len();
        if self.held.is_empty() {
            let h = self.scan(input, Some(0), &mut sink);
            self.held.extend_from_slice(&input[h..]);
        } else if input.len() >= maxlen {
            // Resolve the junction on a small copy: with `maxlen` new bytes after
            // it, no proper prefix can start inside the held piece, so the scan
            // stops inside `input` and the rest is contiguous.
            let mut scratch = std::mem::take(&mut self.scratch);
            scratch.clear();
            scratch.extend_from_slice(&self.held);
            scratch.extend_from_slice(&input[..maxlen]);
            let h = self.scan(&scratch, None, &mut sink);
            let consumed = h - self.held.len();
            scratch.zeroize();
            self.scratch = scratch;
            self.held.zeroize();
            let h = consumed + self.scan(&input[consumed..], Some(consumed), &mut sink);
            self.held.extend_from_slice(&input[h..]);
        } else {
            let mut scratch = std::mem::take(&mut self.scratch);
            scratch.clear();
            scratch.extend_from_slice(&self.held);
            scratch.extend_from_slice(input);
            let h = self.scan(&scratch, None, &mut sink);
            self.held.zeroize();
            self.held.extend_from_slice(&scratch[h..]);
            scratch.zeroize();
            self.scratch = scratch;
        }
    }

    /// Releases the held piece: masked when it is at least the minimum length (it
    /// may be the start of a secret), verbatim otherwise. Call when no more bytes
    /// arrived for the idle interval.
    pub fn flush(&mut self, out: &mut Vec<u8>) {
        if self.held.is_empty() {
            return;
        }
        if self.held.len() >= self.set.min_length() {
            out.extend_from_slice(&self.mask);
            self.stats.masked += 1;
        } else {
            out.extend_from_slice(&self.held);
        }
        self.held.zeroize();
    }

    /// End of stream: the same rule as [`Redactor::flush`].
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.flush(out);
    }

    /// Writes `buf` up to the earliest proper-prefix position, with matches masked,
    /// and returns that position. `base` is where `buf` starts in the caller's input,
    /// or None when `buf` is our own scratch copy.
    fn scan(&mut self, buf: &[u8], base: Option<usize>, sink: &mut Sink<'_>) -> usize {
        let set = &*self.set;
        let n = buf.len();
        let tail_from = n.saturating_sub(set.max_pattern_len().saturating_sub(1));
        let earliest = |from: usize| {
            (from.max(tail_from)..n)
                .find(|&p| set.is_proper_prefix(&buf[p..]))
                .unwrap_or(n)
        };
        let mut hold = earliest(0);
        self.matches.clear();
        set.index.find_all(set, buf, &mut self.matches);
        if self.matches.len() > 1 {
            // Leftmost first; at one start, longest first.
            self.matches
                .sort_unstable_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
        }
        let mut cur = 0;
        for m in &self.matches {
            if m.start < cur {
                continue;
            }
            if m.start >= hold {
                break;
            }
            sink.verbatim(buf, base, cur..m.start);
            sink.own(&self.mask);
            self.stats.masked += 1;
            cur = m.end;
            if cur > hold {
                hold = earliest(cur);
            }
        }
        sink.verbatim(buf, base, cur..hold);
        hold
    }
}

/// One piece of a redactor's output (see [`Redactor::write_pieces`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// These bytes of the input, unchanged.
    Input(Range<usize>),
    /// These bytes of the `own` buffer.
    Own(Range<usize>),
}

struct Sink<'a> {
    own: &'a mut Vec<u8>,
    pieces: &'a mut Vec<Piece>,
}

impl Sink<'_> {
    fn input(&mut self, r: Range<usize>) {
        if r.is_empty() {
            return;
        }
        if let Some(Piece::Input(last)) = self.pieces.last_mut() {
            if last.end == r.start {
                last.end = r.end;
                return;
            }
        }
        self.pieces.push(Piece::Input(r));
    }

    fn own(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let start = self.own.len();
        self.own.extend_from_slice(bytes);
        if let Some(Piece::Own(last)) = self.pieces.last_mut() {
            if last.end == start {
                last.end = self.own.len();
                return;
            }
        }
        self.pieces.push(Piece::Own(start..self.own.len()));
    }

    fn verbatim(&mut self, buf: &[u8], base: Option<usize>, r: Range<usize>) {
        match base {
            Some(b) => self.input(b + r.start..b + r.end),
            None => self.own(&buf[r]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::set::SecretSetBuilder;

    fn set(values: &[&[u8]], min: usize) -> Arc<SecretSet> {
        let mut b = SecretSetBuilder::new().min_length(min);
        for (i, v) in values.iter().enumerate() {
            b.add(format!("s{i}"), v);
        }
        Arc::new(b.build().0)
    }

    fn run(set: Arc<SecretSet>, chunks: &[&[u8]]) -> Vec<u8> {
        let mut r = Redactor::new(set);
        let mut out = Vec::new();
        for c in chunks {
            r.write(c, &mut out);
        }
        r.finish(&mut out);
        out
    }

    #[test]
    fn masks_value_split_across_every_write() {
        let s = set(&[b"supersecret"], 6);
        let input = b"pw=supersecret!\n";
        let chunks: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(run(s, &chunks), b"pw=[REDACTED]!\n");
    }

    #[test]
    fn leftmost_longest_for_prefix_secrets() {
        let s = set(&[b"abcdef", b"abcdefghij"], 6);
        assert_eq!(run(s.clone(), &[b"x abcdefghij y"]), b"x [REDACTED] y");
        assert_eq!(run(s, &[b"x abcdefgh", b"ij y"]), b"x [REDACTED] y");
    }

    #[test]
    fn held_prefix_is_masked_or_released_by_length() {
        let s = set(&[b"abcdefghij"], 6);
        let mut r = Redactor::new(s);
        let mut out = Vec::new();
        r.write(b"prompt> abc", &mut out);
        assert_eq!(out, b"prompt> ");
        assert_eq!(r.pending(), 3);
        r.flush(&mut out);
        assert_eq!(out, b"prompt> abc");
        out.clear();
        r.write(b"abcdefg", &mut out);
        r.flush(&mut out);
        assert_eq!(out, b"[REDACTED]");
    }

    #[test]
    fn swap_keeps_value_present_in_both_sets() {
        let old = set(&[b"keepme-123", b"oldvalue-1"], 6);
        let new = set(&[b"keepme-123", b"newvalue-1"], 6);
        let mut r = Redactor::new(old);
        let mut out = Vec::new();
        r.write(b"a keepme", &mut out);
        r.set_secrets(new);
        r.write(b"-123 newvalue-1\n", &mut out);
        r.finish(&mut out);
        assert_eq!(out, b"a [REDACTED] [REDACTED]\n");
    }

    #[test]
    fn arbitrary_bytes_pass_through() {
        let s = set(&[b"\xff\x00secret\x1b["], 6);
        let out = run(s, &[b"\x1b[31mred\xff\x00secret\x1b[\x00\xfe"]);
        assert_eq!(out, b"\x1b[31mred[REDACTED]\x00\xfe");
    }
}
