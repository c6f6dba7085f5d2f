//! Decoded views of a stream: what a program's insertions (colour codes,
//! escapes, quoting, entities, line breaks) hide. A view turns source bytes into
//! decoded bytes, each with the source span it came from; a unit found in the
//! decoded bytes masks the source from its first decoded byte's span to its
//! last's.
//!
//! Every view is a set of *sequences*: a sequence starts at one of the view's
//! trigger bytes and is at most [`View::max_seq`] bytes long; it decodes to at
//! most four bytes (none for a dropped one), and every other byte is itself.
//! Decoding parses left to right from a sequence boundary, so it is
//! prefix-stable: a prefix of the stream decodes to a prefix of the whole
//! stream's decoded bytes, and a sequence the end of the buffer leaves undecided
//! is reported as pending (held back) when the view says so.
//!
//! Windows (the speed design): a unit that occurs in a view but not in the raw
//! bytes contains a decoded sequence, so only the source around sequences is
//! decoded: [`find`] looks for triggers (every view's at once, 16 bytes a
//! vector compare, `triggers.rs`), parses only at them, and
//! decodes a window reaching `max_unit_len` decoded bytes either side of each
//! sequence (merged when they overlap). A window never starts inside a sequence,
//! so its decoding equals the whole stream's. A buffer without a trigger costs
//! that one classifying pass; a trigger that starts no sequence (an apostrophe in
//! prose) costs one look at the bytes after it. A window is decoded with its
//! source spans only when the bitmap holds one of its sampled windows (most
//! hold no unit), and a lone dropped sequence (a log's line break between
//! two words, in the wrap view) is ruled out before its window is measured,
//! by the two windows beside it (see [`find`]).
//!
//! What each view may hold back at a chunk edge (besides a decoded proper prefix
//! of a unit, held as in the raw stream): `ansi` an unfinished escape sequence
//! (up to 64 bytes); `backslash` an unfinished escape (up to 12 bytes);
//! `shell_quote` an unfinished `'\''` (3 bytes); `shell_escape` a final `\`;
//! `doubled` a final quote; `entity` an unfinished reference (up to 12 bytes);
//! `percent` an unfinished `%XX`; `pty` a final `\r`; `wrap` nothing of its
//! own (a break drops bytes only), but an undecided break ends the view, so a
//! proper prefix of a unit before it is held, the break with it.

pub(crate) mod ansi;
pub(crate) mod backslash;
pub(crate) mod doubled;
pub(crate) mod entity;
pub(crate) mod percent;
pub(crate) mod pty;
pub(crate) mod shell;
mod triggers;
pub(crate) mod wrap;

use std::ops::Range;

use crate::index::Match;
use crate::set::SecretSet;

/// What a sequence decodes to: up to four bytes (a UTF-8 character).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Out {
    bytes: [u8; 4],
    len: u8,
}

impl Out {
    /// Nothing: the sequence is dropped.
    pub const NONE: Out = Out {
        bytes: [0; 4],
        len: 0,
    };

    /// One byte.
    pub const fn byte(b: u8) -> Out {
        Out {
            bytes: [b, 0, 0, 0],
            len: 1,
        }
    }

    /// The UTF-8 encoding of `c`, or None when it is no scalar value.
    pub fn char(c: u32) -> Option<Out> {
        let ch = char::from_u32(c)?;
        let mut bytes = [0; 4];
        let len = ch.encode_utf8(&mut bytes).len() as u8;
        Some(Out { bytes, len })
    }

    /// The decoded bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// What a view reads at a trigger byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// The trigger is an ordinary byte.
    Literal,
    /// A sequence of `len` source bytes that decodes to `out`.
    Seq { len: usize, out: Out },
    /// The buffer ends before the sequence is decided.
    Open,
}

/// The source a view decodes around a sequence, given the longest unit: at
/// most `max_unit - 1` bytes before the sequence and after it ([`find`] relies
/// on that bound to tell a sequence whose window is alone).
pub(crate) type WindowFn = fn(src: &[u8], seq: Range<usize>, max_unit: usize) -> Range<usize>;

/// One view: its triggers and how it reads a sequence.
pub(crate) struct View {
    /// A short stable name (docs, benchmarks).
    pub name: &'static str,
    /// The bytes a sequence starts with (one to three, for memchr).
    pub triggers: &'static [u8],
    /// The longest sequence, in source bytes.
    pub max_seq: usize,
    /// Whether a sequence left open by the end of the buffer is held back (a
    /// view whose sequences decode to bytes must; one that only drops bytes
    /// need not, see the module docs).
    pub hold_open: bool,
    /// Reads the sequence starting at `src[at]` (a trigger); may look at any
    /// byte of `src` before or after.
    pub step: fn(src: &[u8], at: usize) -> Step,
    /// Whether a unit found in this view counts (the wrap view takes only
    /// units made of its alphabet).
    pub accept: fn(unit: &[u8]) -> bool,
    /// Bytes a decoded window reaches past the sequences, as a function of
    /// the longest unit (None: the source that decodes to `max_unit_len - 1`
    /// bytes either side, counted over the sequences around it).
    pub window: Option<WindowFn>,
    /// When set, a trigger can start a sequence only right after a byte in
    /// this range (inclusive; a superset of what `step` checks, which sees
    /// every trigger it is called for), and the trigger search leaves out the
    /// others: the wrap view's line breaks after a space or a `}`.
    pub after: Option<(u8, u8)>,
}

fn any(_: &[u8]) -> bool {
    true
}

/// Every view, in a fixed order (bit `i` of [`Config`] is `ALL[i]`).
pub(crate) const ALL: &[&View] = &[
    &ansi::VIEW,
    &backslash::VIEW,
    &shell::QUOTE,
    &shell::ESCAPE,
    &doubled::VIEW,
    &entity::VIEW,
    &percent::VIEW,
    &wrap::VIEW,
    &pty::VIEW,
];

/// The names of every view, in order.
pub fn names() -> impl Iterator<Item = &'static str> {
    ALL.iter().map(|v| v.name)
}

/// Which views a set matches in. A view whose sequences can only decode to
/// bytes no pattern holds (a doubled quote when no pattern has a quote, a
/// pty's `\r\n` when none has a line break) is left out: it could find nothing
/// the raw stream does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Config {
    on: u32,
    /// Whether some pattern has a space (for the percent view's `+`).
    plus: bool,
}

impl Config {
    /// Every view on.
    pub const ALL_ON: Config = Config {
        on: u32::MAX,
        plus: true,
    };

    /// `wanted` (a bit per view) narrowed to the views that can matter for a
    /// set whose patterns are all in `arena`.
    pub fn for_patterns(wanted: u32, arena: &[u8]) -> Config {
        let mut on = wanted;
        let has = |b: u8| memchr::memchr(b, arena).is_some();
        for (i, v) in ALL.iter().enumerate() {
            let useful = match v.name {
                "doubled" | "shell_quote" => has(b'\'') || has(b'"'),
                "pty" => has(b'\n'),
                _ => true,
            };
            if !useful {
                on &= !(1 << i);
            }
        }
        Config {
            on,
            plus: has(b' '),
        }
    }

    /// The views that are on, as this set reads them.
    pub fn views(self) -> impl Iterator<Item = &'static View> {
        (0..ALL.len())
            .filter(move |&i| self.is_on(i))
            .map(move |i| self.view(i))
    }

    /// View `i` of [`ALL`] as this set reads it.
    fn view(self, i: usize) -> &'static View {
        match ALL[i].name {
            "percent" if !self.plus => &percent::NO_PLUS,
            _ => ALL[i],
        }
    }

    /// Whether view `i` of [`ALL`] is on.
    pub fn is_on(self, i: usize) -> bool {
        self.on & (1 << i) != 0
    }

    /// Whether no view is on.
    pub fn is_empty(self) -> bool {
        self.on & ((1 << ALL.len()) - 1) == 0
    }

    /// Whether `bytes` holds a trigger of some view that is on.
    pub fn any_trigger(self, bytes: &[u8]) -> bool {
        (0..ALL.len()).any(|i| {
            self.is_on(i)
                && match *self.view(i).triggers {
                    [a] => memchr::memchr(a, bytes).is_some(),
                    [a, b] => memchr::memchr2(a, b, bytes).is_some(),
                    [a, b, c] => memchr::memchr3(a, b, c, bytes).is_some(),
                    _ => true,
                }
        })
    }
}

/// The bit of the view named `name`, if there is one.
pub fn bit(name: &str) -> Option<u32> {
    ALL.iter().position(|v| v.name == name).map(|i| 1 << i)
}

/// How much of the start of a unit the held tail of a buffer is, as each
/// candidate for it reads (the raw bytes, each view's decoded bytes): what an
/// idle flush decides by (`stream.rs`). Counted in decoded bytes, because that
/// is what a unit's start shows: five hex digits and the line break after them
/// are five bytes of a wrapped body, not six. A sequence the end of the buffer
/// leaves open and the view holds counts in source bytes (it decodes to at
/// most a few, unknown yet). The wrap view does not hold its open line break:
/// a tail it alone holds ends before it (`before_open`), so a flush that masks
/// the tail can show the break, which is no byte of any value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Evidence {
    /// The longest start of a unit that reaches the end of the buffer.
    pub to_end: usize,
    /// The longest start of a unit whose decoded bytes end where an open
    /// sequence its view does not hold starts, and where that sequence starts.
    pub before_open: Option<(usize, usize)>,
}

impl Evidence {
    /// Notes a start of a unit of `decoded` bytes in `view`, whose decoded
    /// bytes end at `open` (an undecided sequence) or at the end of a buffer
    /// of `n` bytes.
    pub fn saw(&mut self, view: &View, decoded: usize, open: Option<usize>, n: usize) {
        match open {
            None => self.to_end = self.to_end.max(decoded),
            Some(p) if view.hold_open => self.to_end = self.to_end.max(decoded + (n - p)),
            Some(p) => {
                if self.before_open.is_none_or(|(len, _)| decoded > len) {
                    self.before_open = Some((decoded, p));
                }
            }
        }
    }
}

/// One view of a buffer (or of a window of it).
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    /// The decoded bytes.
    pub bytes: Vec<u8>,
    /// For each decoded byte, the source span it came from.
    pub spans: Vec<(u32, u32)>,
    /// Source ranges of the sequences (dropped or decoded), in order.
    pub seqs: Vec<Range<usize>>,
    /// Where an undecided sequence at the end starts, if the view holds it.
    pub pending: Option<usize>,
    /// Where an undecided sequence at the end starts, held or not: the
    /// decoded bytes end there.
    pub open: Option<usize>,
}

impl Decoded {
    /// The source range of decoded bytes `r`.
    pub fn source(&self, r: Range<usize>) -> Range<usize> {
        self.spans[r.start].0 as usize..self.spans[r.end - 1].1 as usize
    }

    /// The start of the sequence strictly containing `pos`, if any: a position
    /// inside one is no place to start decoding.
    pub fn sync_before(&self, pos: usize) -> usize {
        sync_before(&self.seqs, pos)
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.spans.clear();
        self.seqs.clear();
        self.pending = None;
        self.open = None;
    }

    fn literal(&mut self, r: Range<usize>, src: &[u8]) {
        self.bytes.extend_from_slice(&src[r.clone()]);
        self.spans.extend(r.map(|i| (i as u32, i as u32 + 1)));
    }
}

fn sync_before(seqs: &[Range<usize>], pos: usize) -> usize {
    let i = seqs.partition_point(|d| d.end <= pos);
    match seqs.get(i) {
        Some(d) if d.start < pos => d.start,
        _ => pos,
    }
}

/// A sequence found by the parse.
#[derive(Clone, Copy, Debug)]
struct Found {
    at: usize,
    len: usize,
    out: Out,
}

/// The next trigger of `view` in `src` at or after `from`.
fn next_trigger(view: &View, src: &[u8], from: usize) -> Option<usize> {
    let hay = src.get(from..)?;
    let n = match *view.triggers {
        [a] => memchr::memchr(a, hay),
        [a, b] => memchr::memchr2(a, b, hay),
        [a, b, c] => memchr::memchr3(a, b, c, hay),
        _ => unreachable!("a view has one to three triggers"),
    }?;
    Some(from + n)
}

/// Parses `src` from its start (a sequence boundary): every sequence, and where
/// an undecided one at the end starts.
fn parse(view: &View, src: &[u8], seqs: &mut Vec<Found>) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = next_trigger(view, src, from) {
        match (view.step)(src, at) {
            Step::Literal => from = at + 1,
            Step::Seq { len, out } => {
                seqs.push(Found { at, len, out });
                from = at + len;
            }
            Step::Open => return Some(at),
        }
    }
    None
}

/// Decodes `src[window]` given the sequences in it (in order).
fn decode_window(src: &[u8], window: Range<usize>, seqs: &[Found], d: &mut Decoded) {
    d.clear();
    let mut pos = window.start;
    for s in seqs {
        d.literal(pos..s.at, src);
        for &b in s.out.as_slice() {
            d.bytes.push(b);
            d.spans.push((s.at as u32, (s.at + s.len) as u32));
        }
        d.seqs.push(s.at..s.at + s.len);
        pos = s.at + s.len;
    }
    d.literal(pos..window.end.max(pos), src);
}

/// Whether a unit of `set` can hold the bytes on both sides of the dropped
/// sequence `seq` of `buf` with no other sequence in it (for a set whose every
/// split has a window, see [`SecretSet::every_split_has_a_window`]): its part
/// on one side is then at least a window long, so the window that ends at the
/// sequence or the one that starts after it is indexed. False only when the
/// bitmap rules out both.
fn may_hold_a_split_unit(set: &SecretSet, buf: &[u8], seq: Range<usize>) -> bool {
    let w = set.index.window_len();
    (seq.start >= w && set.index.may_have_window(&buf[seq.start - w..]))
        || (seq.end + w <= buf.len() && set.index.may_have_window(&buf[seq.end..]))
}

/// The source around `found[j]` that decodes to `reach` bytes on each side of
/// it (fewer where the buffer starts, or ends at `end`), counted over the
/// sequences beside it: a unit holding the sequence's decoded bytes (or, for
/// a dropped one, bytes on both sides of it) has at most `max_unit - 1` others
/// on each side. The window starts and ends at a sequence boundary.
///
/// It replaced a bound that assumed every byte around a sequence might be one
/// (`max_unit × (max_seq + 1)` source bytes each side: 4 KiB around an ANSI
/// colour code with 32-byte units), under which the colour codes of a
/// coloured log, a few lines apart, merged into windows as long as the buffer,
/// each decoded and looked up whole.
fn decoded_reach(found: &[Found], j: usize, reach: usize, end: usize) -> Range<usize> {
    let f = found[j];
    // Leftwards: the literal bytes between sequences, then each sequence's
    // decoded bytes, until `reach` are counted.
    let (mut need, mut start, mut i) = (reach, f.at, j);
    loop {
        let prev_end = if i == 0 {
            0
        } else {
            found[i - 1].at + found[i - 1].len
        };
        let gap = start - prev_end;
        if gap >= need || i == 0 {
            start -= need.min(gap);
            break;
        }
        need -= gap;
        i -= 1;
        start = found[i].at;
        let out = usize::from(found[i].out.len);
        if out >= need {
            break;
        }
        need -= out;
    }
    // Rightwards, likewise, up to `end`.
    let (mut need, mut stop, mut i) = (reach, f.at + f.len, j + 1);
    loop {
        let next_at = found.get(i).map_or(end, |n| n.at.min(end));
        let gap = next_at.saturating_sub(stop);
        if gap >= need || i == found.len() {
            stop += need.min(gap);
            break;
        }
        need -= gap;
        stop = found[i].at + found[i].len;
        let out = usize::from(found[i].out.len);
        i += 1;
        if out >= need {
            break;
        }
        need -= out;
    }
    start..stop.min(end)
}

/// Whether a unit of `set` may span one of the dropped sequences `seqs` of
/// the window starting at `start` whose decoded bytes are `bytes` (for a set
/// whose every split has a window): such a unit has a whole indexed window
/// right before or right after the sequence, in decoded bytes, so two bitmap
/// lookups per sequence rule it out; a unit that spans none is in the raw
/// bytes. False only when the bitmap rules out every sequence.
///
/// For a colour pair around a word (`ESC[32m` word `ESC[0m`), four lookups
/// instead of [`WindowIndex::may_match`](crate::index::WindowIndex)'s one per
/// sampled position of the whole decoded window (a dozen, each a likely cache
/// miss in the bitmap).
fn may_span_a_dropped_sequence(
    set: &SecretSet,
    bytes: &[u8],
    start: usize,
    seqs: &[Found],
) -> bool {
    let w = set.index.window_len();
    let mut dropped = 0;
    seqs.iter().any(|f| {
        // Where the sequence sits in the decoded bytes.
        let p = f.at - start - dropped;
        dropped += f.len;
        (p >= w && set.index.may_have_window(&bytes[p - w..]))
            || (p + w <= bytes.len() && set.index.may_have_window(&bytes[p..]))
    })
}

/// The bytes [`decode_window`] decodes `src[window]` to, without their spans.
fn decode_bytes(src: &[u8], window: Range<usize>, seqs: &[Found], bytes: &mut Vec<u8>) {
    bytes.clear();
    let mut pos = window.start;
    for s in seqs {
        bytes.extend_from_slice(&src[pos..s.at]);
        bytes.extend_from_slice(s.out.as_slice());
        pos = s.at + s.len;
    }
    bytes.extend_from_slice(&src[pos..window.end.max(pos)]);
}

/// The whole of `src` in `view`, decoded naively (for the reference model).
pub(crate) fn decode_all(view: &View, src: &[u8]) -> Decoded {
    let mut seqs = Vec::new();
    let open = parse(view, src, &mut seqs);
    let end = open.unwrap_or(src.len());
    let mut d = Decoded::default();
    decode_window(src, 0..end, &seqs, &mut d);
    d.open = open;
    d.pending = open.filter(|_| view.hold_open);
    d
}

/// The most source bytes a unit found in a view of `set` spans: each of its
/// decoded bytes is one sequence or a literal, and a dropped sequence may sit
/// before each (twice the reach [`find`] decodes around a sequence).
pub(crate) fn max_source_span(set: &SecretSet) -> usize {
    let max_seq = set.views.views().map(|v| v.max_seq).max().unwrap_or(0);
    set.max_unit_len().saturating_mul(2 * max_seq + 1)
}

/// Reusable buffers for [`find`].
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// Per view of [`ALL`], the sequences of the buffer.
    seqs: Vec<Vec<Found>>,
    decoded: Decoded,
    found: Vec<Match>,
    /// A bit per byte of the buffer: a trigger of a view that is on.
    triggers: Vec<u64>,
    /// The trigger tables of the last set's views.
    tables: Option<Tables>,
}

/// How a view reads the sequence at a trigger ([`View::step`]).
type StepFn = fn(src: &[u8], at: usize) -> Step;

/// A set's views and their trigger tables.
#[derive(Debug)]
struct Tables {
    cfg: Config,
    /// Per byte, the views it triggers.
    by_byte: Box<triggers::ByteViews>,
    finder: triggers::Finder,
    /// Per view of [`ALL`], its step as `cfg` reads it: looked up once here,
    /// not per trigger ([`Config::view`] matches on the view's name).
    steps: [StepFn; ALL.len()],
}

/// The trigger tables for `cfg` in `tables`, built when the set's views changed.
fn tables_for(tables: &mut Option<Tables>, cfg: Config) -> &Tables {
    if tables.as_ref().is_none_or(|t| t.cfg != cfg) {
        let mut by_byte = Box::new([0u16; 256]);
        for i in (0..ALL.len()).filter(|&i| cfg.is_on(i)) {
            for &t in cfg.view(i).triggers {
                by_byte[usize::from(t)] |= 1 << i;
            }
        }
        // A byte some view finds anywhere is found anywhere; one that only
        // views with a range before them trigger, after a byte in the union
        // of their ranges (one range today: the wrap view's).
        let mut anywhere = [false; 256];
        let mut after_byte = [false; 256];
        let mut after: Option<(u8, u8)> = None;
        for i in (0..ALL.len()).filter(|&i| cfg.is_on(i)) {
            let v = cfg.view(i);
            for &t in v.triggers {
                match v.after {
                    None => anywhere[usize::from(t)] = true,
                    Some(_) => after_byte[usize::from(t)] = true,
                }
            }
            if let Some((lo, hi)) = v.after {
                after = Some(after.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
            }
        }
        let finder = triggers::Finder::new(&anywhere, &after_byte, after.unwrap_or((0, 255)));
        let steps = std::array::from_fn(|i| cfg.view(i).step);
        *tables = Some(Tables {
            cfg,
            by_byte,
            finder,
            steps,
        });
    }
    tables.as_ref().expect("just built")
}

/// Parses every view that is on over `buf` (from its start, a sequence boundary)
/// in one pass over the trigger bytes: per view, what [`parse`] finds, into
/// `seqs[i]` for view `i` of [`ALL`], and where an undecided sequence at the end
/// starts.
fn parse_all(cfg: Config, buf: &[u8], s: &mut Scratch) -> [Option<usize>; ALL.len()] {
    let mut open = [None; ALL.len()];
    s.seqs.resize_with(ALL.len(), Vec::new);
    for seqs in &mut s.seqs {
        seqs.clear();
    }
    let mut triggers = std::mem::take(&mut s.triggers);
    let mut tables = s.tables.take();
    let t = tables_for(&mut tables, cfg);
    triggers::candidates(buf, &t.finder, &mut triggers);
    // Per view, where its parse continues (after a sequence, triggers inside
    // it are not looked at); a view whose sequence is undecided stops.
    let mut from = [0usize; ALL.len()];
    let mut live: u16 = (0..ALL.len())
        .filter(|&i| cfg.is_on(i))
        .fold(0, |m, i| m | 1 << i);
    let positions = triggers.iter().enumerate().flat_map(|(w, &bits)| {
        let mut bits = bits;
        std::iter::from_fn(move || {
            let bit = bits.trailing_zeros();
            bits &= bits.wrapping_sub(1);
            (bit < 64).then(|| w * 64 + bit as usize)
        })
    });
    for at in positions {
        let mut views = t.by_byte[usize::from(buf[at])] & live;
        while views != 0 {
            let vi = views.trailing_zeros() as usize;
            views &= views - 1;
            if at < from[vi] {
                continue;
            }
            match (t.steps[vi])(buf, at) {
                Step::Literal => from[vi] = at + 1,
                Step::Seq { len, out } => {
                    s.seqs[vi].push(Found { at, len, out });
                    from[vi] = at + len;
                }
                Step::Open => {
                    open[vi] = Some(at);
                    live &= !(1 << vi);
                }
            }
        }
    }
    s.triggers = triggers;
    s.tables = tables;
    open
}

/// Adds to `matches` (as source ranges) the units found in every view of `buf`
/// that `set` has on, and returns `hold` moved back to where a view's undecided
/// tail starts, to where a decoded proper prefix of a unit starts, and then out
/// of any sequence (so that the next scan starts decoding where the whole
/// stream's decoding is).
/// Each of those starts of a unit is noted in `evidence`.
pub(crate) fn find(
    set: &SecretSet,
    buf: &[u8],
    matches: &mut Vec<Match>,
    mut hold: usize,
    evidence: &mut Evidence,
    s: &mut Scratch,
) -> usize {
    let cfg = set.views;
    let max_unit = set.max_unit_len();
    let opens = parse_all(cfg, buf, s);
    let split_windows = set.every_split_has_a_window();
    let seqs = std::mem::take(&mut s.seqs);
    for vi in 0..ALL.len() {
        if !cfg.is_on(vi) {
            continue;
        }
        let view = cfg.view(vi);
        let found = &seqs[vi];
        let open = opens[vi];
        let end = open.unwrap_or(buf.len());
        if let Some(p) = open {
            if view.hold_open {
                hold = hold.min(p);
                evidence.saw(view, 0, open, buf.len());
            }
            // The view ends where an undecided sequence starts, and a proper
            // prefix of a unit in the bytes before it is held (when no window
            // below reaches the sequence, those bytes are the raw ones).
            let after_seqs = found.last().map_or(0, |f| f.at + f.len);
            let tail_from = p.saturating_sub(max_unit.saturating_sub(1)).max(after_seqs);
            if let Some(i) = (tail_from..p)
                .find(|&i| (view.accept)(&buf[i..p]) && set.is_proper_prefix(&buf[i..p]))
            {
                hold = hold.min(i);
                evidence.saw(view, p - i, open, buf.len());
            }
        }
        if found.is_empty() {
            continue;
        }
        let window_of = |j: usize| match view.window {
            Some(w) => w(buf, found[j].at..found[j].at + found[j].len, max_unit),
            None => decoded_reach(found, j, max_unit.saturating_sub(1), end),
        };
        // A view window function reaches this far past its sequence.
        let near = max_unit.saturating_sub(1);
        let alone_ok = split_windows && view.window.is_some();
        let mut first = 0;
        while first < found.len() {
            let f = found[first];
            if alone_ok
                && f.out.len == 0
                && f.at + f.len + near < end
                && found
                    .get(first + 1)
                    .is_none_or(|n| n.at > f.at + f.len + 2 * near)
                && !may_hold_a_split_unit(set, buf, f.at..f.at + f.len)
            {
                // A dropped sequence (a wrap view's line break) whose window
                // is alone and does not end the buffer: a unit the raw bytes
                // lack holds bytes on both sides of it, and then a whole
                // indexed window on one side, which two bitmap lookups rule
                // out for nearly every line break of a log, before its window
                // is measured or decoded.
                first += 1;
                continue;
            }
            let mut w = window_of(first);
            let mut last = first + 1;
            loop {
                // A sequence that starts inside the window merges with it
                // (its own window starts at or before it), and of those only
                // the last one's window end counts (a later sequence's window
                // ends no earlier), so the ones between are not measured:
                // with a sequence every few bytes (a wholly percent-encoded
                // line) measuring each walks a unit's length of sequences,
                // which made such input 2x slower than the generic bound did.
                let from = last;
                while last < found.len() && found[last].at < w.end {
                    last += 1;
                }
                if last > from {
                    w.end = w.end.max(window_of(last - 1).end);
                    continue;
                }
                if last == found.len() {
                    break;
                }
                let next = window_of(last);
                if next.start > w.end {
                    break;
                }
                w.end = w.end.max(next.end);
                last += 1;
            }
            let w = w.start..w.end.min(end);
            let in_window = &found[first..last];
            first = last;
            // No unit fits in a window that decodes to fewer bytes than the
            // shortest (in the wrap view: a line break between two short runs
            // of body bytes, as in most log lines), and one that does not end
            // the buffer decides no hold.
            let decoded_len = w.len()
                - in_window
                    .iter()
                    .map(|f| f.len - f.out.as_slice().len())
                    .sum::<usize>();
            if w.end != end {
                if decoded_len < set.min_unit_len() {
                    continue;
                }
                // Most windows hold no unit (a wrap view's line break between
                // two words of a log): its decoded bytes alone, and the
                // bitmap at their sampled positions, tell so without the
                // source spans.
                decode_bytes(buf, w.clone(), in_window, &mut s.decoded.bytes);
                let may = if split_windows && in_window.iter().all(|f| f.out.len == 0) {
                    may_span_a_dropped_sequence(set, &s.decoded.bytes, w.start, in_window)
                } else {
                    set.index.may_match(&s.decoded.bytes)
                };
                if !may {
                    continue;
                }
            }
            decode_window(buf, w.clone(), in_window, &mut s.decoded);
            let at_end = (w.end == end).then_some(Tail {
                open,
                n: buf.len(),
                evidence: &mut *evidence,
            });
            hold = window_matches(set, view, &s.decoded, at_end, hold, matches, &mut s.found);
        }
    }
    s.seqs = seqs;
    // Moving out of one view's sequence can land inside another's. A view's
    // sequences are in order and apart, so one binary search per view finds
    // the one holding `hold` (a view that is off has none). This replaced a
    // list of every view's sequences, sorted and scanned whole at every
    // write: on lines that end in a word, a wrap view's sequence per line.
    loop {
        let moved = s
            .seqs
            .iter()
            .filter_map(|found| {
                let i = found.partition_point(|f| f.at + f.len <= hold);
                found.get(i).filter(|f| f.at < hold).map(|f| f.at)
            })
            .min()
            .unwrap_or(hold);
        if moved == hold {
            return hold;
        }
        hold = moved;
    }
}

/// Where a window ends the view of a buffer: at the buffer's `n` bytes or at
/// an undecided sequence (`open`).
struct Tail<'a> {
    open: Option<usize>,
    n: usize,
    evidence: &'a mut Evidence,
}

/// The units found in one decoded window, as source matches; returns the hold
/// moved to a decoded proper prefix at the window's end (when it ends the
/// view: `at_end`, where the prefix's length is noted).
fn window_matches(
    set: &SecretSet,
    view: &View,
    d: &Decoded,
    at_end: Option<Tail<'_>>,
    mut hold: usize,
    matches: &mut Vec<Match>,
    found: &mut Vec<Match>,
) -> usize {
    let dn = d.bytes.len();
    if let Some(t) = at_end {
        let tail_from = dn.saturating_sub(set.max_unit_len().saturating_sub(1));
        if let Some(i) = (tail_from..dn)
            .find(|&i| (view.accept)(&d.bytes[i..]) && set.is_proper_prefix(&d.bytes[i..]))
        {
            hold = hold.min(d.spans[i].0 as usize);
            t.evidence.saw(view, dn - i, t.open, t.n);
        }
    }
    found.clear();
    set.index.find_all(set, &d.bytes, found);
    // A run is the union of its units, and with units of two bytes or more
    // every pair of neighbouring decoded bytes shares one, so the source
    // between them (a dropped sequence) is covered; single-byte units cover
    // only their own bytes.
    let step = if set.piece_length() == 1 {
        1
    } else {
        usize::MAX
    };
    for m in found.iter() {
        if !(view.accept)(&d.bytes[m.start..m.end]) {
            continue;
        }
        let mut at = m.start;
        while at < m.end {
            let to = at.saturating_add(step).min(m.end);
            let r = d.source(at..to);
            matches.push(Match {
                start: r.start,
                end: r.end,
                pattern: m.pattern,
            });
            at = to;
        }
    }
    hold
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// `src` decoded whole by `view`, as (bytes, pending).
    pub fn view(v: &View, src: &[u8]) -> (Vec<u8>, Option<usize>) {
        let d = decode_all(v, src);
        (d.bytes, d.pending)
    }

    /// `src` decoded whole, as a lossy string (for readable assertions).
    pub fn text(v: &View, src: &[u8]) -> String {
        String::from_utf8_lossy(&decode_all(v, src).bytes).into_owned()
    }
}
