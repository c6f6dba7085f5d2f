//! The sorted array of unit starts: the arena offset of every `piece`-byte
//! substring of every pattern at least that long, ordered by the unit's bytes,
//! which answers "is this tail the start of some unit" by binary search
//! (`SecretSet::is_proper_prefix`).

use std::ops::Range;

use zeroize::Zeroize;

/// Units are first distributed by their first byte and the high half of the
/// second (4,096 groups), each as one `u64` (its leading bytes above its
/// offset, see [`Packing`]); then each group, a few thousand units, is sorted
/// in cache. One comparison sort of the 1.4 million (key, offset) pairs of
/// 10,000 secrets was most of the set's build time, an LSD radix sort of them
/// slower still (docs/redact.md, "Benchmarks"), and sorting each group by keys
/// read back from the arena waited on a cache miss per unit.
const GROUP_BITS: u32 = 12;

/// The group of the unit at `off`: its first byte, then the high nibble of its
/// second (when a unit has one), so that group order is byte order.
fn group_of(arena: &[u8], off: u32, piece: usize) -> usize {
    let off = off as usize;
    let second = if piece > 1 { arena[off + 1] >> 4 } else { 0 };
    usize::from(arena[off]) << 4 | usize::from(second)
}

/// A unit as one `u64`: its first bytes (at most eight, big-endian, so that
/// integer order is byte order) in the top bits, its arena offset in the
/// `off_bits` low ones. Units whose kept bytes are equal are then compared
/// whole (rare: 10,000 secrets give none but among hex forms).
#[derive(Clone, Copy)]
struct Packing {
    off_bits: u32,
    /// Whether the kept bytes are the whole unit (no tie needs the arena).
    whole: bool,
}

impl Packing {
    fn new(arena_len: usize, piece: usize) -> Self {
        let off_bits = (usize::BITS - arena_len.leading_zeros()).max(1);
        let whole = piece <= 8 && 8 * piece as u32 <= 64 - off_bits;
        Packing { off_bits, whole }
    }

    fn pack(self, arena: &[u8], off: u32, piece: usize) -> u64 {
        let mut k = [0u8; 8];
        let n = piece.min(8);
        k[..n].copy_from_slice(&arena[off as usize..][..n]);
        u64::from_be_bytes(k) >> self.off_bits << self.off_bits | u64::from(off)
    }

    fn offset(self, x: u64) -> u32 {
        (x & ((1 << self.off_bits) - 1)) as u32
    }
}

/// The arena offset of every `piece`-byte unit of the patterns at `spans`
/// (those at least `piece` long), sorted by the unit's bytes. Equal units come
/// in no particular order.
pub(crate) fn sorted_units(arena: &[u8], spans: &[(u32, u32)], piece: usize) -> Vec<u32> {
    let starts_of = || {
        spans
            .iter()
            .filter(move |&&(_, len)| len as usize >= piece)
            .flat_map(move |&(off, len)| off..=off + len - piece as u32)
    };
    let mut starts = vec![0usize; (1 << GROUP_BITS) + 1];
    for off in starts_of() {
        starts[group_of(arena, off, piece) + 1] += 1;
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    let packing = Packing::new(arena.len(), piece);
    let mut packed = vec![0u64; starts[starts.len() - 1]];
    let mut next = starts.clone();
    for off in starts_of() {
        let g = group_of(arena, off, piece);
        packed[next[g]] = packing.pack(arena, off, piece);
        next[g] += 1;
    }
    drop(next);
    let unit = |x: &u64| &arena[packing.offset(*x) as usize..][..piece];
    let key = |x: &u64| *x >> packing.off_bits;
    for g in starts.windows(2) {
        let group = &mut packed[g[0]..g[1]];
        group.sort_unstable();
        if packing.whole {
            continue;
        }
        for tie in group.chunk_by_mut(|a, b| key(a) == key(b)) {
            if tie.len() > 1 {
                tie.sort_unstable_by(|a, b| unit(a).cmp(unit(b)));
            }
        }
    }
    let units = packed.iter().map(|&x| packing.offset(x)).collect();
    packed.zeroize();
    units
}

/// From this many units on, [`UnitRanges`] keeps a table (256 KiB): below, the
/// sorted array is small enough to stay in cache and a search of it whole costs
/// as little.
const RANGES_FROM_UNITS: usize = 1 << 14;

/// Where in the sorted unit array the units starting with each pair of bytes
/// are, for a large set: the search for a held tail's unit then starts in a
/// range of a few dozen units (1,000 secrets) instead of the whole array. The
/// tail check runs on the last bytes of every read, and a search of the 200,000
/// units of 1,000 secrets waited on a cache miss at most of its 18 steps: 5% of
/// `shroud redact`'s CPU through a pipe.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct UnitRanges {
    /// `starts[p]` is the index of the first unit whose first two bytes, as a
    /// big-endian `u16`, are at least `p`; empty when the set is small.
    pub(crate) starts: Vec<u32>,
}

/// Counts units by their first two bytes while the set is built (in arena
/// order, so the arena is read sequentially), then turns the counts into
/// [`UnitRanges`].
pub(crate) struct PairCounter(Vec<u32>);

impl UnitRanges {
    /// A counter for `units` units of `piece` bytes (no table for a small set,
    /// or units shorter than two bytes).
    pub(crate) fn counter(units: usize, piece: usize) -> PairCounter {
        if units >= RANGES_FROM_UNITS && piece >= 2 {
            PairCounter(vec![0; (1 << 16) + 1])
        } else {
            PairCounter(Vec::new())
        }
    }

    /// The range of the sorted units (of `len`) that holds every unit starting
    /// with `tail`'s first two bytes, or its first byte when it has one.
    #[inline]
    pub(crate) fn of(&self, tail: &[u8], len: usize) -> Range<usize> {
        let s = &self.starts;
        match *tail {
            _ if s.is_empty() => 0..len,
            [a] => s[usize::from(a) << 8] as usize..s[(usize::from(a) + 1) << 8] as usize,
            [a, b, ..] => {
                let p = usize::from(u16::from_be_bytes([a, b]));
                s[p] as usize..s[p + 1] as usize
            }
            [] => 0..0,
        }
    }
}

impl PairCounter {
    /// Counts the unit starting at `unit[0]`.
    #[inline]
    pub(crate) fn count(&mut self, unit: &[u8]) {
        if !self.0.is_empty() {
            self.0[usize::from(u16::from_be_bytes([unit[0], unit[1]])) + 1] += 1;
        }
    }

    pub(crate) fn finish(mut self) -> UnitRanges {
        for i in 1..self.0.len() {
            self.0[i] += self.0[i - 1];
        }
        UnitRanges { starts: self.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Grouping then sorting gives the order of one sort by the unit's bytes,
    /// for every piece length, with duplicates, hex-like shared prefixes and
    /// the lowest and highest bytes.
    #[test]
    fn sorted_units_are_in_byte_order() {
        let mut next = crate::xorshift(0x2545_f491_4f6c_dd1du64);
        let alphabets: [&[u8]; 3] = [
            b"0123456789abcdef",
            b"\x00\x01\xfe\xff",
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        ];
        for piece in [1, 2, 3, 8, 9, 12, 20] {
            let mut arena = Vec::new();
            let mut spans = Vec::new();
            for i in 0..300 {
                let alphabet = alphabets[i % 3];
                let len = 1 + (next() % 40) as usize;
                let off = arena.len() as u32;
                arena.extend((0..len).map(|_| alphabet[next() as usize % alphabet.len()]));
                spans.push((off, len as u32));
            }
            // A pattern repeated: equal units.
            let (off, len) = spans[7];
            let copy = arena[off as usize..(off + len) as usize].to_vec();
            spans.push((arena.len() as u32, len));
            arena.extend(copy);
            let got = sorted_units(&arena, &spans, piece);
            let unit = |off: u32| &arena[off as usize..][..piece];
            let mut want: Vec<u32> = spans
                .iter()
                .filter(|s| s.1 as usize >= piece)
                .flat_map(|&(off, len)| off..=off + len - piece as u32)
                .collect();
            want.sort_by(|&a, &b| unit(a).cmp(unit(b)));
            let got_units: Vec<&[u8]> = got.iter().map(|&o| unit(o)).collect();
            let want_units: Vec<&[u8]> = want.iter().map(|&o| unit(o)).collect();
            assert_eq!(got_units, want_units, "piece {piece}");
            let (mut a, mut b) = (got.clone(), want.clone());
            a.sort_unstable();
            b.sort_unstable();
            assert_eq!(a, b, "the same offsets, piece {piece}");
        }
    }
}
