//! The streaming matcher: masks the union of all occurrences of any unit (a
//! piece-length substring of a pattern, or a shorter pattern whole; see
//! [`crate::SecretSet`]) in a byte stream that arrives in arbitrary chunks and
//! with arbitrary pauses, holding back only a trailing proper prefix of some unit
//! (fewer bytes than the piece length).
//!
//! Output model (see [`crate::reference`]): every byte covered by an occurrence of a
//! unit is masked, and each maximal run of masked bytes (overlapping or adjacent
//! occurrences) is written as one mask.
//!
//! Invariant: after every [`Redactor::write`], the held bytes are the suffix of the
//! stream starting at the earliest position whose remainder is a proper prefix of a
//! unit, and every byte before it has been written out exactly as the model over
//! the whole stream has it. Whether such a byte is covered cannot change with more
//! input: an occurrence covering it that is not yet complete would start at or
//! before it, and its start would then be an earlier proper-prefix position.
//!
//! An idle flush ([`Redactor::flush`]) releases the held piece but keeps it as
//! context: occurrences that continue it are still found, and their bytes after
//! the flush are masked. At the flush the piece is masked when it is the start of
//! a unit at least the minimum length long, counted in the bytes it decodes to
//! ([`views::Evidence`]: a wrapped body's line break is none, `\x41` is one), and
//! otherwise written verbatim (except bytes already known to be covered), so at
//! most `min_length - 1` bytes of the start of an occurrence are ever visible,
//! whatever the pauses. A wrap view's line break that ends the piece is shown
//! either way: it is no byte of a value, and masking it would join two lines.
//! In strict mode a flush releases nothing.

use std::ops::Range;
use std::sync::Arc;

use zeroize::{Zeroize, Zeroizing};

use crate::index::Match;
use crate::set::SecretSet;
use crate::views::{self, Evidence};

/// The mask written in place of every match unless configured otherwise.
pub const DEFAULT_MASK: &[u8] = b"[REDACTED]";

/// Counters of one stream, for metrics. No content.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes given to [`Redactor::write`].
    pub bytes_in: u64,
    /// Masks written (one per run of covered bytes, including masked held pieces).
    pub masked: u64,
}

/// What a scan leaves for the next one.
struct Scanned {
    /// Where the held suffix starts.
    hold: usize,
    /// How far past `hold` bytes are covered by occurrences that start before it.
    cover: usize,
    /// How much of a unit's start the held suffix is (positions from `hold`).
    evidence: Evidence,
}

/// Redacts one byte stream. Cheap to create; one per stream.
pub struct Redactor {
    set: Arc<SecretSet>,
    mask: Vec<u8>,
    strict: bool,
    /// The held suffix of the stream; its first `emitted` bytes were already
    /// written by a flush and are kept only as matching context.
    held: Zeroizing<Vec<u8>>,
    emitted: usize,
    /// The first `cover` bytes of `held` are known to be masked.
    cover: usize,
    /// What a flush decides the held piece by (positions in `held`).
    evidence: Evidence,
    /// The bytes of `held` that occurrences starting in it cover (in order,
    /// apart): what the scan that left `held` found.
    held_cover: Vec<Range<usize>>,
    /// The last byte written out was masked: a covered byte next to it continues
    /// the same mask.
    in_run: bool,
    scratch: Zeroizing<Vec<u8>>,
    matches: Vec<Match>,
    stats: Stats,
    own: Vec<u8>,
    pieces: Vec<Piece>,
    views: views::Scratch,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("set", &self.set)
            .field("strict", &self.strict)
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
            strict: false,
            held: Zeroizing::new(Vec::new()),
            emitted: 0,
            cover: 0,
            evidence: Evidence::default(),
            held_cover: Vec::new(),
            in_run: false,
            scratch: Zeroizing::new(Vec::new()),
            matches: Vec::new(),
            stats: Stats::default(),
            own: Vec::new(),
            pieces: Vec::new(),
            views: views::Scratch::default(),
        }
    }

    /// Replaces the mask written for each match.
    pub fn with_mask(mut self, mask: impl Into<Vec<u8>>) -> Self {
        self.mask = mask.into();
        self
    }

    /// Strict mode: [`Redactor::flush`] releases nothing, so a held possible start
    /// of a secret waits until the following bytes resolve it or the stream ends.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
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

    /// Bytes held back and not yet written (a possible start of a secret). Zero
    /// after a flush, though the flushed bytes are kept as matching context.
    pub fn pending(&self) -> usize {
        self.held.len() - self.emitted
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
            self.release(&mut sink, false);
            self.drop_held();
            if !input.is_empty() {
                self.in_run = false;
            }
            sink.input(0..input.len());
            return;
        }
        let maxlen = self.set.max_unit_len();
        if self.held.is_empty() {
            let s = self.scan(input, Some(0), 0, 0, None, &mut sink);
            self.cover = s.cover;
            self.evidence = s.evidence;
            self.held.extend_from_slice(&input[s.hold..]);
        } else if input.len() >= maxlen
            && !self.set.views.any_trigger(&self.held)
            && !self.set.views.any_trigger(&input[..maxlen])
        {
            // Resolve the junction on a small copy: with `maxlen` new bytes after
            // it, every occurrence that starts inside the held piece ends inside
            // the copy, so every held byte is decided and the copy's scan stops
            // at the junction (without looking for a proper prefix in its own
            // tail, which the scan of `input` does); the rest is contiguous.
            // (With a view's trigger near the junction its hold can reach
            // further back: the slow path below.)
            let mut scratch = std::mem::take(&mut self.scratch);
            scratch.clear();
            scratch.extend_from_slice(&self.held);
            scratch.extend_from_slice(&input[..maxlen]);
            let junction = Some(self.held.len());
            let first = self.scan(
                &scratch,
                None,
                self.emitted,
                self.cover,
                junction,
                &mut sink,
            );
            wipe(&mut scratch);
            self.scratch = scratch;
            self.drop_held();
            let s = self.scan(input, Some(0), 0, first.cover, None, &mut sink);
            self.cover = s.cover;
            self.evidence = s.evidence;
            self.held.extend_from_slice(&input[s.hold..]);
        } else {
            let mut scratch = std::mem::take(&mut self.scratch);
            scratch.clear();
            scratch.extend_from_slice(&self.held);
            scratch.extend_from_slice(input);
            let s = self.scan(&scratch, None, self.emitted, self.cover, None, &mut sink);
            let emitted = self.emitted.saturating_sub(s.hold);
            self.drop_held();
            self.emitted = emitted;
            self.cover = s.cover;
            self.evidence = s.evidence;
            self.held.extend_from_slice(&scratch[s.hold..]);
            wipe(&mut scratch);
            self.scratch = scratch;
        }
    }

    /// Releases the held piece unless in strict mode: masked when it is the start
    /// of a unit at least the minimum length long, as decoded (it may be the
    /// start of a secret), verbatim otherwise; a wrap view's line break it ends
    /// with is shown either way.
    /// The piece stays as context, so a secret it starts is masked from here on
    /// when the following bytes complete it. Call when no more bytes arrived for
    /// the idle interval.
    pub fn flush(&mut self, out: &mut Vec<u8>) {
        if !self.strict {
            self.release_into(out);
        }
    }

    /// End of stream: the held piece is released by the rule of
    /// [`Redactor::flush`], in strict mode too, and forgotten.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.release_into(out);
        self.drop_held();
        self.in_run = false;
    }

    fn release_into(&mut self, out: &mut Vec<u8>) {
        let mut own = std::mem::take(&mut self.own);
        let mut pieces = std::mem::take(&mut self.pieces);
        self.release(&mut Sink::new(&mut own, &mut pieces), true);
        out.extend_from_slice(&own);
        own.clear();
        pieces.clear();
        self.own = own;
        self.pieces = pieces;
    }

    /// Writes the unwritten part of the held piece by the flush rule; with
    /// `keep`, the piece stays as context.
    fn release(&mut self, sink: &mut Sink<'_>, keep: bool) {
        let len = self.held.len();
        if len == self.emitted {
            return;
        }
        let min = self.set.min_length();
        // Masked up to here: the start of a unit as long as the minimum, and
        // every byte an earlier occurrence covers.
        let start_of_unit = if self.evidence.to_end >= min {
            len
        } else {
            match self.evidence.before_open {
                Some((decoded, at)) if decoded >= min => at,
                _ => 0,
            }
        };
        let masked_to = start_of_unit.max(self.cover).min(len);
        let held_cover = std::mem::take(&mut self.held_cover);
        let masked = |i: usize| i < masked_to || held_cover.iter().any(|r| r.contains(&i));
        let mut i = self.emitted;
        while i < len {
            let m = masked(i);
            let run = (i..len).find(|&j| masked(j) != m).unwrap_or(len);
            if m {
                self.open_mask(sink);
            } else {
                sink.own(&self.held[i..run]);
                self.in_run = false;
            }
            i = run;
        }
        self.held_cover = held_cover;
        self.cover = self.cover.max(masked_to);
        self.emitted = len;
        if !keep {
            self.drop_held();
        }
    }

    fn open_mask(&mut self, sink: &mut Sink<'_>) {
        if !self.in_run {
            sink.own(&self.mask);
            self.stats.masked += 1;
            self.in_run = true;
        }
    }

    fn drop_held(&mut self) {
        self.held.zeroize();
        self.emitted = 0;
        self.cover = 0;
        self.evidence = Evidence::default();
    }

    /// Writes `buf[skip..]` up to the earliest proper-prefix position (or to
    /// `until`, a position the caller knows every byte before is decided at),
    /// masking each run of covered bytes once, and returns that position and how
    /// far coverage from earlier occurrences reaches past it. The first `cover`
    /// bytes of `buf` are covered already; the first `skip` were written before.
    /// `base` is where `buf` starts in the caller's input, or None when `buf` is
    /// our own copy.
    fn scan(
        &mut self,
        buf: &[u8],
        base: Option<usize>,
        skip: usize,
        cover: usize,
        until: Option<usize>,
        sink: &mut Sink<'_>,
    ) -> Scanned {
        let set = &*self.set;
        let n = buf.len();
        let tail_from = n.saturating_sub(set.max_unit_len().saturating_sub(1));
        let mut hold = until.unwrap_or_else(|| {
            (tail_from..n)
                .find(|&p| set.is_proper_prefix(&buf[p..]))
                .unwrap_or(n)
        });
        let mut evidence = Evidence {
            to_end: n - hold,
            before_open: None,
        };
        self.matches.clear();
        set.index.find_all(set, buf, &mut self.matches);
        if !set.views.is_empty() {
            hold = views::find(
                set,
                buf,
                &mut self.matches,
                hold,
                &mut evidence,
                &mut self.views,
            );
        }
        if self.matches.len() > 1 {
            self.matches.sort_unstable_by_key(|m| m.start);
        }
        let mut pos = skip;
        let mut in_run = self.in_run;
        // The current run of covered bytes, [run_start, run_end).
        let (mut run_start, mut run_end) = (0, cover);
        let mut masks = 0;
        let mut emit_run = |a: usize, b: usize, pos: &mut usize, in_run: &mut bool| {
            let (a, b) = (a.max(*pos), b.min(hold));
            if a >= b {
                return;
            }
            if a > *pos {
                sink.verbatim(buf, base, *pos..a);
                *in_run = false;
            }
            if !*in_run {
                sink.own(&self.mask);
                masks += 1;
                *in_run = true;
            }
            *pos = b;
        };
        let mut inside = self.matches.len();
        for (k, m) in self.matches.iter().enumerate() {
            if m.start >= hold {
                inside = k;
                break;
            }
            if m.start <= run_end {
                run_end = run_end.max(m.end);
            } else {
                emit_run(run_start, run_end, &mut pos, &mut in_run);
                (run_start, run_end) = (m.start, m.end);
            }
        }
        emit_run(run_start, run_end, &mut pos, &mut in_run);
        if hold > pos {
            sink.verbatim(buf, base, pos..hold);
            in_run = false;
        }
        self.in_run = in_run;
        self.stats.masked += masks;
        // Whole occurrences inside the held piece: a flush masks their bytes
        // even when it shows the piece's other bytes.
        self.held_cover.clear();
        for m in &self.matches[inside..] {
            let r = m.start - hold..m.end - hold;
            match self.held_cover.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => self.held_cover.push(r),
            }
        }
        evidence.before_open = evidence
            .before_open
            .filter(|&(_, at)| at >= hold)
            .map(|(decoded, at)| (decoded, at - hold));
        Scanned {
            hold,
            cover: run_end.saturating_sub(hold),
            evidence,
        }
    }
}

/// Zeroes the bytes `v` holds and empties it. Only its length, not its whole
/// capacity as `Zeroize` does: every use of the scratch copy ends here, so the
/// spare capacity is already zero, and the junction copy (a few dozen bytes)
/// would otherwise clear the 128 KiB a whole-buffer copy once grew it to, on
/// every write.
fn wipe(v: &mut Vec<u8>) {
    v.as_mut_slice().zeroize();
    v.clear();
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

impl<'a> Sink<'a> {
    fn new(own: &'a mut Vec<u8>, pieces: &'a mut Vec<Piece>) -> Self {
        Sink { own, pieces }
    }

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
    fn prefix_secrets_are_masked_in_full() {
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

    /// The case: a pause longer than the idle interval inside a value.
    #[test]
    fn a_pause_inside_a_value_shows_at_most_a_short_start() {
        let s = set(&[b"Sup3rS3cretValue-4711xyz"], 6);
        let mut r = Redactor::new(s.clone());
        let mut out = Vec::new();
        r.write(b"token=Sup", &mut out);
        r.flush(&mut out);
        assert_eq!(out, b"token=Sup", "a short start shows at the flush");
        assert_eq!(r.pending(), 0);
        r.write(b"3rS3cretValue-4711xyz\n", &mut out);
        r.finish(&mut out);
        assert_eq!(out, b"token=Sup[REDACTED]\n");

        let mut r = Redactor::new(s.clone());
        let mut out = Vec::new();
        r.write(b"token=Sup3rS", &mut out);
        r.flush(&mut out);
        r.write(b"3cretValue-4711xyz\n", &mut out);
        r.finish(&mut out);
        assert_eq!(out, b"token=[REDACTED]\n", "same as the buffered run");

        let mut r = Redactor::new(s).strict(true);
        let mut out = Vec::new();
        r.write(b"token=Sup", &mut out);
        r.flush(&mut out);
        assert_eq!(out, b"token=", "strict mode holds the start");
        r.write(b"3rS3cretValue-4711xyz\n", &mut out);
        r.finish(&mut out);
        assert_eq!(out, b"token=[REDACTED]\n");
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

    /// The piece rule: a truncated value, a value inside another word, and every
    /// line of its wrapped base64 are masked; fewer than 12 bytes are not.
    #[test]
    fn pieces_of_a_value_are_masked_wherever_they_appear() {
        use base64::Engine as _;
        let value = b"Zq8vN3xW0pLr7TkY2mHs9cBd4FgJ6aQe1uIo5yRt";
        let mut b = SecretSetBuilder::new();
        b.add("k", value);
        let s = Arc::new(b.build().0);
        let printed = [
            &b"token=Zq8vN3xW0pLr7TkY2mHs9c...\n"[..],
            b"id:0pLr7TkY2mHs9cBd4FgJ6aQe1uIo5yRtZZZ\n",
        ];
        for p in printed {
            let out = run(s.clone(), &[p]);
            assert!(out.windows(10).any(|w| w == DEFAULT_MASK), "{out:?}");
            assert!(!out.windows(12).any(|w| value.windows(12).any(|v| v == w)));
        }
        let short = b"x Zq8vN3xW0pL y";
        assert_eq!(run(s.clone(), &[short]), short, "11 bytes stay");
        let mut blob = vec![0u8; 40];
        blob.extend_from_slice(value);
        blob.extend_from_slice(&[7u8; 40]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&blob);
        let wrapped: Vec<u8> = b64
            .as_bytes()
            .chunks(20)
            .flat_map(|l| l.iter().copied().chain([b'\n']))
            .collect();
        let out = run(s, &wrapped.chunks(7).collect::<Vec<_>>());
        // The wrap view joins the lines: the value's encoding is one mask, and
        // no 12 characters of it show even with the line breaks taken out.
        assert!(out.windows(10).any(|w| w == DEFAULT_MASK));
        let joined: Vec<u8> = out.iter().copied().filter(|&b| b != b'\n').collect();
        let encoded = &b64.as_bytes()[56..104];
        assert!(
            !encoded
                .windows(12)
                .any(|p| joined.windows(12).any(|w| w == p)),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }

    /// The ANSI view: `grep --color=always` (GNU grep 3.8, exact bytes) colouring
    /// part of a value splits it into pieces shorter than 12; the view without the
    /// colour codes sees it whole, also when the write ends inside a sequence.
    #[test]
    fn a_value_coloured_by_grep_is_masked_whole() {
        let mut b = SecretSetBuilder::new();
        b.add("k", b"Zq8vN3xW0pLr7TkY");
        let s = Arc::new(b.build().0);
        let printed = b"id=Zq8vN3\x1b[01;31m\x1b[Kx\x1b[m\x1b[KW0pLr7TkY\n";
        assert_eq!(run(s.clone(), &[printed]), b"id=[REDACTED]\n");
        let chunks: Vec<&[u8]> = printed.chunks(3).collect();
        assert_eq!(run(s.clone(), &chunks), b"id=[REDACTED]\n");
        // Colour around a value stays.
        let around = b"\x1b[32mZq8vN3xW0pLr7TkY\x1b[0m ok\n";
        assert_eq!(run(s, &[around]), b"\x1b[32m[REDACTED]\x1b[0m ok\n");
    }

    /// Feeds `writes`, flushing after each (a pause after every write).
    fn paused(set: Arc<SecretSet>, writes: &[&[u8]]) -> Vec<u8> {
        let mut r = Redactor::new(set);
        let mut out = Vec::new();
        for w in writes {
            r.write(w, &mut out);
            r.flush(&mut out);
        }
        r.finish(&mut out);
        out
    }

    /// A random value whose hex form the wrap view reads across line breaks
    /// (a hex unit matches in either case).
    const HEX_VALUE: &[u8] = b"Kq7#vW2!pZ9xR4mT";

    /// CI's case: `openssl x509 -serial` printed a line ending in five hex
    /// digits that start a unit of a value's hex form, and nothing followed
    /// for a while. The wrap view holds those digits with the line break (the
    /// next line might continue a wrapped body); five decoded bytes are less
    /// than the minimum length, so the flush shows the line whole, break
    /// included (six source bytes masked would join it to the next line).
    #[test]
    fn a_line_ending_in_a_short_start_of_a_wrapped_unit_shows_whole_at_a_pause() {
        let s = set(&[HEX_VALUE], 6);
        let start = &hex::encode_upper(HEX_VALUE)[..5];
        let line = format!("serial=19BF21DD{start}\n");
        let out = paused(s.clone(), &[line.as_bytes(), b"next line\n"]);
        assert_eq!(String::from_utf8_lossy(&out), format!("{line}next line\n"));
        // The same line with no pause after it never held anything long.
        let out = run(s, &[line.as_bytes(), b"next line\n"]);
        assert_eq!(String::from_utf8_lossy(&out), format!("{line}next line\n"));
    }

    /// Six decoded bytes of a unit's start before the break are masked at the
    /// pause (they may start the value), the line break stays, and a value
    /// that continues after the pause on the next line is masked from there.
    #[test]
    fn a_long_start_of_a_wrapped_unit_at_a_pause_is_masked_but_its_line_break_shows() {
        let s = set(&[HEX_VALUE], 6);
        let hex = hex::encode(HEX_VALUE);
        let (head, rest) = hex.split_at(6);
        let out = paused(s.clone(), &[format!("id={head}\n").as_bytes(), b"next\n"]);
        assert_eq!(out, b"id=[REDACTED]\nnext\n");
        let out = paused(
            s,
            &[
                format!("id={head}\n").as_bytes(),
                format!("{rest}\n").as_bytes(),
            ],
        );
        assert_eq!(out, b"id=[REDACTED]\n[REDACTED]\n");
    }

    /// An escaped start of a value counts its decoded bytes: five bytes as
    /// twenty source bytes of `\xHH` are shown at a pause (the bound on a
    /// value's start shown is `min_length - 1` bytes, decoded), six are masked.
    #[test]
    fn an_escaped_start_of_a_value_is_measured_decoded_at_a_pause() {
        let value = b"Sup3rS3cretValue-4711xyz";
        let s = set(&[value], 6);
        let escaped =
            |n: usize| -> String { value[..n].iter().map(|b| format!("\\x{b:02x}")).collect() };
        let five = format!("pw={}", escaped(5));
        assert_eq!(paused(s.clone(), &[five.as_bytes()]), five.as_bytes());
        let six = format!("pw={}", escaped(6));
        assert_eq!(paused(s, &[six.as_bytes()]), b"pw=[REDACTED]");
    }

    #[test]
    fn arbitrary_bytes_pass_through() {
        let s = set(&[b"\xff\x00secret\x1b["], 6);
        let out = run(s, &[b"\x1b[31mred\xff\x00secret\x1b[\x00\xfe"]);
        assert_eq!(out, b"\x1b[31mred[REDACTED]\x00\xfe");
    }
}
