//! The sampled-window prefilter.
//!
//! Every unit (a `piece`-byte substring of a pattern, or a shorter pattern whole)
//! is at least `min_len = w + k - 1` bytes long, so wherever a unit occurs, exactly
//! one of the positions `0, k, 2k, …` falls within its first `k` bytes, and the
//! `w`-byte window there lies inside the unit. The index stores, by arena offset
//! (the bytes are never copied), every window of a pattern at least `piece` long
//! and the windows at offsets `0..k` of a shorter one; the scanner hashes only the
//! window at every k-th position of the input, and checks a candidate byte-for-byte
//! only when a bitmap and then the exact window key agree. A hit on a long pattern
//! is extended both ways to the whole run of bytes that agree with the pattern at
//! that alignment, reported when at least `piece` long: that run is exactly the
//! union of the unit occurrences at that alignment. A run longer than `k` is hit
//! at several sampled positions; all but the first see the run reach back over the
//! previous sampled position and drop it, so each run costs its length once.
//!
//! Not done, measured (docs/redact.md, "A byte-class prefilter before the
//! sampled lookups"): skipping the lookup of a window holding a byte that no
//! indexed window holds. On the benchmark's log lines 78% of the sampled windows
//! could be skipped, but the scan loop is bound by its instructions about as much
//! as by the bitmap (with every lookup an L1 hit it runs only 1.7x faster), and a
//! per-window test costs about as much as the lookup it saves: a branch-free SWAR
//! test on the loaded word made the engine 0.6-0.7x with 1,000 secrets, SSE2 masks per
//! 56-byte block (looking up only the passing positions) came within noise of
//! this loop.

use zeroize::Zeroize;

use crate::set::SecretSet;

const HASH_MUL: u64 = 0x9E37_79B9_7F4A_7C15;
/// Bitmap sizes are powers of two from 8 KiB to 8 MiB, each with its own
/// instantiation of the scan loop.
const MIN_BITS_LOG: u32 = 16;
const MAX_BITS_LOG: u32 = 26;
/// Bits in a 32 KiB bitmap.
const BITS_IN_L1: usize = 32 * 1024 * 8;
/// Bits per window key once the bitmap no longer fits in L1 (two of them set per
/// key, see [`bitmap`]).
const DENSE_BITS_PER_ENTRY: usize = 20;
/// The build groups windows by this many top bits of their hash (2,048 groups):
/// a group's share of the bitmap and the bucket table then stays in L1.
const GROUP_BITS: u32 = 11;

/// A verified run of a pattern's bytes in a buffer: at least the piece length, or
/// a shorter pattern whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Match {
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
    /// Which pattern (see [`SecretSet::pattern_info`]).
    pub pattern: usize,
}

#[cfg_attr(test, derive(PartialEq))]
pub(crate) struct WindowIndex {
    /// Window width in bytes (1..=8); 0 for an empty set.
    w: usize,
    /// Sampling step.
    k: usize,
    key_mask: u64,
    bits: Vec<u64>,
    /// `bits` has `1 << bits_log` bits, indexed by the hash's top `bits_log` bits.
    bits_log: u32,
    buckets: Vec<u32>,
    bucket_shift: u32,
    /// The indexed windows, grouped by bucket: each an arena offset (the low
    /// [`Fingerprint::offset_bits`]) below a few bits of its key's hash.
    entries: Vec<u32>,
    fingerprint: Fingerprint,
    /// Patterns at least this long match by pieces; shorter ones whole.
    piece: usize,
}

impl Zeroize for WindowIndex {
    fn zeroize(&mut self) {
        self.bits.zeroize();
        self.entries.zeroize();
    }
}

/// Set in every byte of a window key: keys are case-folded (and lossy beyond
/// letters, which only costs a rare false candidate), so that a hex pattern,
/// stored in lower case, is found in any case by one lookup; the probe then
/// compares bytes exactly, or ignoring case for a hex pattern.
const FOLD: u64 = 0x2020_2020_2020_2020;

/// The window key at `buf[i..i + w]` (`mask` keeps its `w` bytes).
#[inline(always)]
fn load(buf: &[u8], i: usize, w: usize, mask: u64) -> u64 {
    if let Some(bytes) = buf.get(i..i + 8) {
        let mut a = [0u8; 8];
        a.copy_from_slice(bytes);
        (u64::from_le_bytes(a) | FOLD) & mask
    } else {
        let mut a = [0u8; 8];
        a[..w].copy_from_slice(&buf[i..i + w]);
        (u64::from_le_bytes(a) | FOLD) & mask
    }
}

/// Bitmaps up to this size (L1) have one bit per key; larger ones two.
const L1_LOG: u32 = BITS_IN_L1.trailing_zeros();
/// From a 1 MiB bitmap on (10,000 secrets take 2 MiB) most lookups miss L2, and the
/// scan waits on memory; the words it will test are then prefetched this many
/// rounds ahead. With 10,000 secrets on a loaded 2-core EPYC: 1.3-1.4x the
/// throughput without (4 rounds ahead 1.15x, 8 1.2x, 32 and 64 no better than 16);
/// with 1,000 (256 KiB, in L2) prefetching cost 15-20%, hence the threshold.
const PREFETCH_FROM_LOG: u32 = 23;
const PREFETCH_ROUNDS: usize = 16;

/// Asks the CPU to bring `word` into cache; a hint, no effect on the result.
#[inline(always)]
#[allow(unsafe_code)]
fn prefetch(word: &u64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` only hints the cache: it never faults, reads nothing
    // the program sees and writes nothing; the pointer comes from a live reference.
    // SSE, its target feature, is part of the x86_64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            std::ptr::from_ref(word).cast(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = word;
}

/// Where a window key's bits are: the word at the hash's top `bits_log - 6` bits,
/// and in it the bit at the next 6-bit field, and for a bitmap larger than L1 also
/// the bit at the field after that.
#[inline(always)]
fn slots(key: u64, bits_log: u32) -> (usize, u64) {
    slots_of_hash(key.wrapping_mul(HASH_MUL), bits_log)
}

/// [`slots`] of a key's hash: only its top `bits_log + 6` bits (at most 32) count.
#[inline(always)]
fn slots_of_hash(h: u64, bits_log: u32) -> (usize, u64) {
    let word = (h >> (64 - bits_log)) as usize >> 6;
    let mut bits = 1u64 << ((h >> (64 - bits_log)) & 63);
    if bits_log > L1_LOG {
        bits |= 1u64 << ((h >> (58 - bits_log)) & 63);
    }
    (word, bits)
}

/// How an index entry holds a fingerprint of its window beside the window's
/// arena offset: the hash bits right below those that pick the bucket, in the
/// bits of the `u32` the offsets leave free. A bitmap hit whose bucket holds
/// entries of other windows (the common false hit) is then told apart by the
/// entries alone, without loading each one's bytes from the arena: one cache
/// miss fewer per entry, for no memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fingerprint {
    /// Bits of an entry that hold the offset (enough for any offset in the arena).
    offset_bits: u32,
    /// Bits of the fingerprint (0 when the arena needs all 32 bits).
    bits: u32,
    /// The buckets' hash bits, which the fingerprint follows.
    bucket_log: u32,
}

impl Fingerprint {
    fn new(arena_len: usize, bucket_log: u32) -> Self {
        let offset_bits = (usize::BITS - arena_len.leading_zeros()).min(32);
        // The index keeps each hash's top 32 bits: those below the bucket's.
        let bits = (32 - offset_bits).min(32 - bucket_log);
        Fingerprint {
            offset_bits,
            bits,
            bucket_log,
        }
    }

    /// The fingerprint of the hash whose top 32 bits are `top`.
    #[inline(always)]
    fn of(self, top: u32) -> u32 {
        (((u64::from(top) << self.bucket_log) & u64::from(u32::MAX)) >> (32 - self.bits)) as u32
    }

    /// The entry for arena offset `off` of a window whose hash has top bits `top`.
    fn entry(self, top: u32, off: u32) -> u32 {
        (u64::from(self.of(top)) << self.offset_bits) as u32 | off
    }

    /// An entry's fingerprint.
    #[inline(always)]
    fn fingerprint(self, entry: u32) -> u32 {
        (u64::from(entry) >> self.offset_bits) as u32
    }

    /// An entry's arena offset.
    #[inline(always)]
    fn offset(self, entry: u32) -> u32 {
        (u64::from(entry) & ((1u64 << self.offset_bits) - 1)) as u32
    }
}

/// One bit per window key while the bitmap fits in L1; beyond, two bits per key
/// in one 64-bit word (a blocked Bloom filter): a lookup is still one load, and
/// the false-hit rate is that of one bit in a bitmap several times larger, which
/// is what keeps large sets in L2.
#[cfg(test)]
fn bitmap(keys: impl Iterator<Item = u64>, bits_log: u32) -> Vec<u64> {
    let mut bits = vec![0u64; 1 << (bits_log - 6)];
    for key in keys {
        let (word, set) = slots(key, bits_log);
        bits[word] |= set;
    }
    bits
}

/// How many windows of a pattern `len` bytes long are indexed: every one when
/// it matches by pieces, else those at offsets `0..k`.
fn window_count(len: usize, piece: usize, w: usize, k: usize) -> usize {
    if len >= piece {
        len + 1 - w
    } else {
        k
    }
}

impl WindowIndex {
    pub(crate) fn build(arena: &[u8], spans: &[(u32, u32)], piece: usize) -> Self {
        if spans.is_empty() {
            return WindowIndex {
                w: 0,
                k: 1,
                key_mask: 0,
                bits: vec![0; 1 << (MIN_BITS_LOG - 6)],
                bits_log: MIN_BITS_LOG,
                buckets: vec![0, 0],
                bucket_shift: 63,
                entries: Vec::new(),
                fingerprint: Fingerprint::new(0, 1),
                piece,
            };
        }
        let min_len = spans
            .iter()
            .map(|s| (s.1 as usize).min(piece))
            .min()
            .unwrap_or(piece);
        // From 12 bytes on (the default piece length) a 6-byte window leaves a
        // step of 7: no more false hits on text than 8 bytes did once hashed,
        // and a sixth fewer samples than w = 8 (step 5).
        let w = if min_len >= 12 {
            (min_len - 6).clamp(6, 8)
        } else {
            min_len.saturating_sub(2).clamp(1, 8)
        };
        let k = min_len + 1 - w;
        let key_mask = if w == 8 {
            u64::MAX
        } else {
            (1u64 << (8 * w)) - 1
        };
        let key_at = |off: u32| load(arena, off as usize, w, key_mask);
        let count: usize = spans
            .iter()
            .map(|&(_, len)| window_count(len as usize, piece, w, k))
            .sum();
        // The bitmap's fill is the false-hit rate of a sampled lookup, and a false
        // hit costs a probe and, worse, a mispredicted branch; its size is cache
        // misses. 128 bits per entry (one per key) while that fits in L1 (32 KiB),
        // where testing a second bit cost 25-35% with 10 secrets; beyond that 20,
        // two bits per key in one word: with 10,000 secrets (600,000 window
        // keys) that is a 2 MiB bitmap with about 0.5% false hits, where one bit
        // per key at 64 bits per entry took 8 MiB for about 1%. Measured side by side
        // in one process on a loaded 2-core machine (so only the ratios mean
        // anything): 0.9-1.8x (typically 1.3x) the throughput of the 8 MiB bitmap
        // with 10,000 secrets and 1.2-2.5x with 1,000; 12 bits per entry (1 MiB) lost more
        // to probes than it gained in cache misses, 40 (4 MiB) gained nothing.
        let bits_log = if count * 128 <= BITS_IN_L1 {
            (count * 128).next_power_of_two()
        } else {
            (count * DENSE_BITS_PER_ENTRY)
                .next_power_of_two()
                .max(2 * BITS_IN_L1)
        }
        .trailing_zeros()
        .clamp(MIN_BITS_LOG, MAX_BITS_LOG);
        let bucket_log = count.next_power_of_two().trailing_zeros().clamp(1, 26);
        let bucket_shift = 64 - bucket_log;
        let hash_at = |e: u32| key_at(e).wrapping_mul(HASH_MUL);
        let windows = || {
            spans.iter().flat_map(move |&(off, len)| {
                off..off + window_count(len as usize, piece, w, k) as u32
            })
        };
        // Windows are grouped by the top bits of their hash in two sequential
        // passes over the arena (count, then scatter each window's hash above
        // its offset), then each group, a few KiB, is counted and placed by
        // bucket in cache (the group's share of the bitmap, the bucket table
        // and the entries is a contiguous range of each). With 10,000 secrets
        // (1.4 million windows) in arena order every window was a cache miss
        // in the bucket table and the bitmap; a radix sort of the pairs, the
        // step before this, moved them twice; reading the windows back from
        // the arena group by group, a cache miss each, took half the time.
        let group_bits = bucket_log.min(GROUP_BITS);
        let group_of = |h: u64| (h >> (64 - group_bits)) as usize;
        let mut starts = vec![0usize; (1 << group_bits) + 1];
        for e in windows() {
            starts[group_of(hash_at(e)) + 1] += 1;
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        // Each window's hash's top 32 bits (all that the bitmap and the buckets
        // use: `bits_log + 6` and `bucket_log` are at most 32) above its offset.
        let mut grouped = vec![0u64; count];
        let mut next = starts.clone();
        for e in windows() {
            let h = hash_at(e);
            let g = group_of(h);
            grouped[next[g]] = h & !u64::from(u32::MAX) | u64::from(e);
            next[g] += 1;
        }
        drop(next);
        let mut bits = vec![0u64; 1 << (bits_log - 6)];
        let mut buckets = vec![0u32; (1usize << bucket_log) + 1];
        let mut entries = vec![0u32; count];
        let per_group = 1usize << (bucket_log - group_bits);
        let mut cursor = vec![0u32; per_group];
        let fingerprint = Fingerprint::new(arena.len(), bucket_log);
        for (g, range) in starts.windows(2).enumerate() {
            let group = &grouped[range[0]..range[1]];
            let first = g * per_group;
            for &x in group {
                let (word, set) = slots_of_hash(x, bits_log);
                bits[word] |= set;
                buckets[(x >> bucket_shift) as usize + 1] += 1;
            }
            // Buckets before this group's are final: its starts follow on.
            for b in first..first + per_group {
                buckets[b + 1] += buckets[b];
            }
            cursor.copy_from_slice(&buckets[first..first + per_group]);
            // In arena order, as scattered: each bucket's windows stay so.
            for &x in group {
                let c = &mut cursor[(x >> bucket_shift) as usize - first];
                entries[*c as usize] = fingerprint.entry((x >> 32) as u32, x as u32);
                *c += 1;
            }
        }
        grouped.zeroize();
        WindowIndex {
            w,
            k,
            key_mask,
            bits,
            bits_log,
            buckets,
            bucket_shift,
            entries,
            fingerprint,
            piece,
        }
    }

    /// The bytes of the bitmap, the bucket table and the entries.
    pub(crate) fn heap_bytes(&self) -> [(&'static str, usize); 3] {
        [
            ("index bitmap", self.bits.capacity() * 8),
            ("index buckets", self.buckets.capacity() * 4),
            ("index entries", self.entries.capacity() * 4),
        ]
    }

    /// Appends every run of a pattern's bytes (at least the piece length; a
    /// shorter pattern whole) that lies wholly inside `buf`. Each run at one
    /// alignment of one pattern is reported once (though a run may sit inside a
    /// run of another pattern); the order is by sampled position.
    pub(crate) fn find_all(&self, set: &SecretSet, buf: &[u8], out: &mut Vec<Match>) {
        let (w, k) = (self.w, self.k);
        if w == 0 || buf.len() < w {
            return;
        }
        let mut hits = Hits::default();
        // The default piece length (12) gives 6-byte windows every 7 bytes:
        // that step is a constant in its own instantiations, so the four
        // windows of a round are loaded at fixed offsets from one pointer.
        macro_rules! sampled {
            ($($log:literal)*) => {
                match (self.bits_log, w == 8, k == DEFAULT_STEP) {
                    $(
                        ($log, true, _) => self.sampled::<$log, true, 0>(set, buf, &mut hits, out),
                        ($log, false, true) => {
                            self.sampled::<$log, false, DEFAULT_STEP>(set, buf, &mut hits, out)
                        }
                        ($log, false, false) => self.sampled::<$log, false, 0>(set, buf, &mut hits, out),
                    )*
                    _ => unreachable!("bits_log is one of the instantiated sizes"),
                }
            };
        }
        let mut i = sampled!(16 17 18 19 20 21 22 23 24 25 26);
        let last = buf.len() - w;
        while i <= last {
            let key = load(buf, i, w, self.key_mask);
            if self.bit(key) != 0 {
                self.hit(set, buf, &mut hits, i, out);
            }
            i += k;
        }
        self.verify(set, buf, &hits.at[..hits.n], out);
    }

    /// Records a sampled position whose bitmap bits are set; verifies the
    /// batch once it is full.
    #[inline(always)]
    fn hit(&self, set: &SecretSet, buf: &[u8], hits: &mut Hits, at: usize, out: &mut Vec<Match>) {
        hits.at[hits.n] = at;
        hits.n += 1;
        if hits.n == HIT_BATCH {
            self.verify(set, buf, &hits.at, out);
            hits.n = 0;
        }
    }

    /// The fast path of [`WindowIndex::find_all`]: four sampled positions per
    /// round, each an unaligned 8-byte load, a multiply, a constant shift and a bit
    /// test, branching only on a bitmap hit. The bitmap size and the window width
    /// are constants here so that every operand stays in a register (a generic loop
    /// spilled to the stack and shifted through `cl`). Returns where it stopped.
    #[inline(never)]
    fn sampled<const LOG: u32, const FULL_KEY: bool, const STEP: usize>(
        &self,
        set: &SecretSet,
        buf: &[u8],
        hits: &mut Hits,
        out: &mut Vec<Match>,
    ) -> usize {
        // STEP is the sampling step when it is a constant, else 0.
        let k = if STEP == 0 { self.k } else { STEP };
        let round = 3 * k + 8;
        if buf.len() < round {
            return 0;
        }
        let bits = &self.bits[..1 << (LOG - 6)];
        let key_mask = if FULL_KEY { u64::MAX } else { self.key_mask };
        let hash = |window: &[u8]| -> u64 {
            let mut a = [0u8; 8];
            a.copy_from_slice(&window[..8]);
            ((u64::from_le_bytes(a) | FOLD) & key_mask).wrapping_mul(HASH_MUL)
        };
        let test = |window: &[u8]| -> u64 {
            let h = hash(window);
            let word = bits[(h >> (64 - LOG + 6)) as usize];
            let first = word >> ((h >> (64 - LOG)) & 63);
            // A constant per instantiation: the L1 sizes pay for one bit only.
            if LOG > L1_LOG {
                first & (word >> ((h >> (58 - LOG)) & 63))
            } else {
                first
            }
        };
        let word_of = |window: &[u8]| -> &u64 { &bits[(hash(window) >> (64 - LOG + 6)) as usize] };
        let ahead = PREFETCH_ROUNDS * 4 * k;
        let mut i = 0;
        while i + round <= buf.len() {
            // A constant per instantiation, like the bit count below.
            if LOG >= PREFETCH_FROM_LOG && i + ahead + round <= buf.len() {
                let r = &buf[i + ahead..i + ahead + round];
                for j in 0..4 {
                    prefetch(word_of(&r[j * k..]));
                }
            }
            let r = &buf[i..i + round];
            let t = [test(r), test(&r[k..]), test(&r[2 * k..]), test(&r[3 * k..])];
            if (t[0] | t[1] | t[2] | t[3]) & 1 != 0 {
                for (j, t) in t.into_iter().enumerate() {
                    if t & 1 != 0 {
                        self.hit(set, buf, hits, i + j * k, out);
                    }
                }
            }
            i += 4 * k;
        }
        i
    }

    /// The window width (0 for an empty set).
    pub(crate) fn window_len(&self) -> usize {
        self.w
    }

    /// False when [`WindowIndex::find_all`] finds nothing in `buf`: no sampled
    /// position's window has its bitmap bits set. For short buffers (a view's
    /// decoded window, a few dozen bytes), where building the window's source
    /// spans costs more than the lookups.
    pub(crate) fn may_match(&self, buf: &[u8]) -> bool {
        let w = self.w;
        if w == 0 || buf.len() < w {
            return false;
        }
        (0..=buf.len() - w)
            .step_by(self.k)
            .any(|i| self.bit(load(buf, i, w, self.key_mask)) != 0)
    }

    /// False when `bytes[..w]` is a window of no pattern (in particular, no
    /// pattern starts with `bytes`); true may be a false hit. Always true for
    /// fewer than `w` bytes.
    pub(crate) fn may_have_window(&self, bytes: &[u8]) -> bool {
        bytes.len() < self.w || self.bit(load(bytes, 0, self.w, self.key_mask)) != 0
    }

    #[inline(always)]
    fn bit(&self, key: u64) -> u64 {
        let (word, set) = slots(key, self.bits_log);
        u64::from(self.bits[word] & set == set)
    }

    /// Verifies the bitmap hits at positions `at` (in order) against the
    /// entries. Most hits are false (about 0.4% of sampled positions hit,
    /// mostly without an entry of their window), and each costs a cache miss in
    /// the bucket table and one in the entries: the input streamed between two
    /// hits evicts both. Loading every hit's bucket bounds first, then reading
    /// the entries, keeps these loads independent of each other, so the CPU
    /// overlaps them instead of waiting on each hit's misses in turn.
    #[inline(never)]
    fn verify(&self, set: &SecretSet, buf: &[u8], at: &[usize], out: &mut Vec<Match>) {
        let mut found = [(0u64, 0u32, 0u32); HIT_BATCH];
        for (f, &i) in found.iter_mut().zip(at) {
            let key = load(buf, i, self.w, self.key_mask);
            let b = (key.wrapping_mul(HASH_MUL) >> self.bucket_shift) as usize;
            *f = (key, self.buckets[b], self.buckets[b + 1]);
        }
        for (&(key, lo, hi), &i) in found.iter().zip(at) {
            self.probe(set, buf, i, key, lo as usize..hi as usize, out);
        }
    }

    /// Checks the entries `bucket` of the window `key` at `buf[i..]`.
    #[inline(always)]
    fn probe(
        &self,
        set: &SecretSet,
        buf: &[u8],
        i: usize,
        key: u64,
        bucket: std::ops::Range<usize>,
        out: &mut Vec<Match>,
    ) {
        let w = self.w;
        let fp = self.fingerprint;
        let want = fp.of((key.wrapping_mul(HASH_MUL) >> 32) as u32);
        for &e in &self.entries[bucket] {
            if fp.fingerprint(e) != want {
                continue;
            }
            let e = fp.offset(e);
            if load(set.arena(), e as usize, w, self.key_mask) != key {
                continue;
            }
            self.extend(set, buf, i, e, out);
        }
    }

    /// Reports the run of the pattern holding arena offset `e` whose window at
    /// `e` equals (up to case folding) the one at `buf[i..]`.
    #[inline(never)]
    fn extend(&self, set: &SecretSet, buf: &[u8], i: usize, e: u32, out: &mut Vec<Match>) {
        let (w, k) = (self.w, self.k);
        let (id, j) = set.pattern_at(e);
        let pat = set.pattern(id);
        // A hex pattern is stored in lower case and matches in any case.
        let fold = set.is_hex(id);
        let same = |a: u8, b: u8| a == b || fold && a.to_ascii_lowercase() == b;
        let equal = |a: &[u8], b: &[u8]| a.iter().zip(b).all(|(&x, &y)| same(x, y));
        if pat.len() < self.piece {
            let Some(start) = i.checked_sub(j) else {
                return;
            };
            let end = start + pat.len();
            if end <= buf.len() && equal(&buf[start..end], pat) {
                out.push(Match {
                    start,
                    end,
                    pattern: id,
                });
            }
            return;
        }
        // Keys are folded: the window itself is compared here.
        if !equal(&buf[i..i + w], &pat[j..j + w]) {
            return;
        }
        // The run reaching back over the previous sampled position was
        // reported from there.
        if i >= k && j >= k && equal(&buf[i - k..i], &pat[j - k..j]) {
            return;
        }
        let back = (1..=i.min(j))
            .find(|&t| !same(buf[i - t], pat[j - t]))
            .map_or(i.min(j), |t| t - 1);
        let ahead = buf[i + w..]
            .iter()
            .zip(&pat[j + w..])
            .take_while(|(&a, &b)| same(a, b))
            .count();
        if back + w + ahead >= self.piece {
            out.push(Match {
                start: i - back,
                end: i + w + ahead,
                pattern: id,
            });
        }
    }
}

/// The sampling step of the default piece length (12 bytes: 6-byte windows),
/// which has its own instantiations of the scan loop.
const DEFAULT_STEP: usize = 7;

/// How many bitmap hits [`WindowIndex::verify`] takes at once.
const HIT_BATCH: usize = 32;

/// Sampled positions whose bitmap bits are set, not yet verified.
struct Hits {
    at: [usize; HIT_BATCH],
    n: usize,
}

impl Default for Hits {
    fn default() -> Self {
        Hits {
            at: [0; HIT_BATCH],
            n: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretSetBuilder;

    /// The grouped build gives exactly the index of the plain definition: the
    /// bitmap of every window key, and per bucket its windows in arena order.
    #[test]
    fn build_equals_the_plain_definition() {
        let mut next = crate::xorshift(0x9e37_79b9_7f4a_7c15);
        for (secrets, min_length, piece) in [(3, 4, 64), (40, 6, 12), (3_000, 6, 12), (500, 16, 16)]
        {
            let mut b = SecretSetBuilder::new()
                .min_length(min_length)
                .piece_length(piece);
            for n in 0..secrets {
                let len = 8 + (next() % 30) as usize;
                let v: Vec<u8> = (0..len).map(|_| (next() % 256) as u8).collect();
                b.add(format!("s{n}"), &v);
            }
            let set = b.build().0;
            let ix = &set.index;
            let windows: Vec<u32> = (0..set.pattern_count())
                .flat_map(|id| {
                    let (off, len) = set.spans_for_tests()[id];
                    off..off + window_count(len as usize, ix.piece, ix.w, ix.k) as u32
                })
                .collect();
            let key = |e: u32| load(set.arena(), e as usize, ix.w, ix.key_mask);
            let bucket = |e: u32| (key(e).wrapping_mul(HASH_MUL) >> ix.bucket_shift) as usize;
            let mut want = windows.clone();
            want.sort_by_key(|&e| bucket(e));
            let offsets: Vec<u32> = ix
                .entries
                .iter()
                .map(|&e| ix.fingerprint.offset(e))
                .collect();
            assert_eq!(offsets, want, "{secrets} secrets");
            for &e in &ix.entries {
                let top = (key(ix.fingerprint.offset(e)).wrapping_mul(HASH_MUL) >> 32) as u32;
                assert_eq!(
                    ix.fingerprint.fingerprint(e),
                    ix.fingerprint.of(top),
                    "{secrets} secrets"
                );
            }
            let mut buckets = vec![0u32; ix.buckets.len()];
            for &e in &windows {
                buckets[bucket(e) + 1] += 1;
            }
            for i in 1..buckets.len() {
                buckets[i] += buckets[i - 1];
            }
            assert_eq!(ix.buckets, buckets, "{secrets} secrets");
            assert_eq!(
                ix.bits,
                bitmap(windows.iter().map(|&e| key(e)), ix.bits_log)
            );
        }
    }

    /// `may_match` is false only where `find_all` finds nothing, on short
    /// buffers around planted patterns, cut ones and random bytes, for piece
    /// lengths that give every window width and step.
    #[test]
    fn may_match_is_false_only_where_nothing_is_found() {
        let mut next = crate::xorshift(0x51ed_270b_2a6f_1d3c);
        let alnum = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        for piece in [8, 12, 13, 16, 64] {
            let mut b = SecretSetBuilder::new().min_length(4).piece_length(piece);
            for n in 0..30 {
                let len = 6 + (next() % 30) as usize;
                let v: Vec<u8> = (0..len).map(|_| alnum[next() as usize % 62]).collect();
                b.add(format!("s{n}"), &v);
            }
            let set = b.build().0;
            let patterns = set.patterns_for_reference();
            let (mut found_some, mut ruled_out) = (0, 0);
            for _ in 0..3_000 {
                let mut buf: Vec<u8> = (0..next() % 40)
                    .map(|_| alnum[next() as usize % 62])
                    .collect();
                if next().is_multiple_of(2) {
                    let p = &patterns[next() as usize % patterns.len()];
                    // Whole (a pattern shorter than the piece matches only
                    // so) or cut anywhere.
                    let (a, e) = if next().is_multiple_of(2) {
                        (0, p.len())
                    } else {
                        let a = next() as usize % p.len();
                        (a, a + 1 + next() as usize % (p.len() - a))
                    };
                    let at = next() as usize % (buf.len() + 1);
                    buf.splice(at..at, p[a..e].iter().copied());
                }
                let mut found = Vec::new();
                set.index.find_all(&set, &buf, &mut found);
                if set.index.may_match(&buf) {
                    found_some += usize::from(!found.is_empty());
                } else {
                    assert!(found.is_empty(), "piece {piece}: ruled out a match");
                    ruled_out += 1;
                }
            }
            assert!(
                found_some > 100 && ruled_out > 100,
                "piece {piece}: both kinds tried"
            );
        }
    }

    /// An entry gives back its offset and its window's fingerprint for every
    /// arena size, from one that leaves most of the `u32` to the fingerprint to
    /// one that needs all 32 bits (no fingerprint, every entry passes).
    #[test]
    fn an_entry_holds_its_offset_and_fingerprint() {
        let tops = [0u32, 1, 0x8000_0000, 0xdead_beef, u32::MAX];
        for (arena_len, bucket_log) in [(1, 1), (200_000, 18), (1 << 21, 21), (usize::MAX, 26)] {
            let fp = Fingerprint::new(arena_len, bucket_log);
            let max_off = u32::try_from(arena_len - 1).unwrap_or(u32::MAX);
            for top in tops {
                for off in [0, max_off / 2, max_off] {
                    let e = fp.entry(top, off);
                    assert_eq!(fp.offset(e), off, "{arena_len} {bucket_log} {top:#x} {off}");
                    assert_eq!(fp.fingerprint(e), fp.of(top));
                }
            }
            // The fingerprint is the hash bits right below the bucket's.
            assert_eq!(fp.bits, (32 - fp.offset_bits).min(32 - bucket_log));
            if fp.bits > 0 {
                let below = 0x8000_0000u32 >> bucket_log;
                assert_eq!(fp.of(below), 1 << (fp.bits - 1));
                assert_eq!(
                    fp.of(!0 << (32 - bucket_log)),
                    0,
                    "bucket bits are not in it"
                );
            }
        }
    }

    /// Every bitmap size and both window kinds (full 8-byte keys, masked shorter
    /// ones) have their own instantiation of the scan loop: each must find exactly
    /// what a naive search finds, at every alignment of the sampled positions.
    #[test]
    fn every_instantiation_finds_every_occurrence() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alnum = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        for min_length in [4, 9, 12, 13, 16] {
            let mut b = SecretSetBuilder::new().min_length(min_length);
            for n in 0..6 {
                let len = min_length + (next() % 12) as usize;
                let v: Vec<u8> = (0..len).map(|_| alnum[next() as usize % 62]).collect();
                b.add(format!("s{n}"), &v);
            }
            // Patterns shorter than the piece length match whole.
            let mut set = b.piece_length(64).build().0;
            let patterns = set.patterns_for_reference();
            let mut text = Vec::new();
            while text.len() < 20_000 {
                if next() % 40 == 0 {
                    text.extend_from_slice(&patterns[next() as usize % patterns.len()]);
                } else {
                    text.push(alnum[next() as usize % 62]);
                }
            }
            let mut expected = Vec::new();
            for (id, p) in patterns.iter().enumerate() {
                for start in 0..=text.len() - p.len() {
                    if text[start..].starts_with(p) {
                        expected.push((start, start + p.len(), id));
                    }
                }
            }
            expected.sort_unstable();
            assert!(expected.len() > 100, "the text holds planted patterns");
            for log in MIN_BITS_LOG..=MAX_BITS_LOG {
                let index = &set.index;
                let keys: Vec<u64> = (index.entries.iter())
                    .map(|&e| index.fingerprint.offset(e) as usize)
                    .map(|e| load(set.arena(), e, index.w, index.key_mask))
                    .collect();
                set.index.bits = bitmap(keys.into_iter(), log);
                set.index.bits_log = log;
                for skip in 0..8 {
                    let buf = &text[skip..];
                    let mut found = Vec::new();
                    set.index.find_all(&set, buf, &mut found);
                    let mut found: Vec<_> = found
                        .iter()
                        .map(|m| (m.start + skip, m.end + skip, m.pattern))
                        .collect();
                    found.sort_unstable();
                    let want: Vec<_> = expected.iter().filter(|e| e.0 >= skip).copied().collect();
                    assert_eq!(
                        found, want,
                        "min_length {min_length}, bits_log {log}, skip {skip}"
                    );
                }
            }
        }
    }
}
