//! The sampled-window prefilter.
//!
//! Every pattern is at least `min_len = w + k - 1` bytes long, so wherever a pattern
//! occurs, exactly one of the positions `0, k, 2k, …` falls within its first `k`
//! bytes, and the `w`-byte window there lies inside the pattern. The index stores,
//! for every pattern, its windows at offsets `0..k`; the scanner hashes only the
//! window at every k-th position of the input, and checks a candidate byte-for-byte
//! only when a bitmap and then the exact window key agree. With 16-byte secrets this
//! is one lookup every 9 input bytes, which is what makes it faster than running an
//! automaton over every byte.

use zeroize::Zeroize;

use crate::set::SecretSet;

const HASH_MUL: u64 = 0x9E37_79B9_7F4A_7C15;

#[derive(Clone, Copy, Zeroize)]
struct Entry {
    key: u64,
    pattern: u32,
    offset: u32,
}

/// A verified occurrence of a pattern in a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Match {
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
    /// Which pattern (see [`SecretSet::pattern_info`]).
    pub pattern: usize,
}

pub(crate) struct WindowIndex {
    /// Window width in bytes (1..=8); 0 for an empty set.
    w: usize,
    /// Sampling step.
    k: usize,
    key_mask: u64,
    bits: Vec<u64>,
    bits_shift: u32,
    buckets: Vec<u32>,
    bucket_shift: u32,
    entries: Vec<Entry>,
}

impl Zeroize for WindowIndex {
    fn zeroize(&mut self) {
        self.bits.zeroize();
        self.entries.zeroize();
    }
}

#[inline(always)]
fn load(buf: &[u8], i: usize, w: usize, mask: u64) -> u64 {
    if let Some(bytes) = buf.get(i..i + 8) {
        let mut a = [0u8; 8];
        a.copy_from_slice(bytes);
        u64::from_le_bytes(a) & mask
    } else {
        let mut a = [0u8; 8];
        a[..w].copy_from_slice(&buf[i..i + w]);
        u64::from_le_bytes(a)
    }
}

impl WindowIndex {
    pub(crate) fn build(arena: &[u8], spans: &[(u32, u32)], min_len: usize) -> Self {
        if spans.is_empty() {
            return WindowIndex {
                w: 0,
                k: 1,
                key_mask: 0,
                bits: Vec::new(),
                bits_shift: 0,
                buckets: vec![0, 0],
                bucket_shift: 63,
                entries: Vec::new(),
            };
        }
        let w = min_len.saturating_sub(2).clamp(1, 8);
        let k = min_len + 1 - w;
        let key_mask = if w == 8 {
            u64::MAX
        } else {
            (1u64 << (8 * w)) - 1
        };

        let mut entries = Vec::with_capacity(spans.len() * k);
        for (id, &(off, len)) in spans.iter().enumerate() {
            let pat = &arena[off as usize..(off + len) as usize];
            for j in 0..k {
                entries.push(Entry {
                    key: load(pat, j, w, key_mask),
                    pattern: id as u32,
                    offset: j as u32,
                });
            }
        }
        let bits_log = (entries.len() * 16)
            .next_power_of_two()
            .trailing_zeros()
            .clamp(10, 26);
        let bucket_log = entries
            .len()
            .next_power_of_two()
            .trailing_zeros()
            .clamp(1, 26);
        let bits_shift = 64 - bits_log;
        let bucket_shift = 64 - bucket_log;
        let mut bits = vec![0u64; (1usize << bits_log) / 64];
        for e in &entries {
            let b = (e.key.wrapping_mul(HASH_MUL) >> bits_shift) as usize;
            bits[b >> 6] |= 1 << (b & 63);
        }
        // Group entries by bucket in place (no second copy: this is the build's
        // memory peak with many secrets), then record where each bucket starts.
        let bucket_of = |e: &Entry| (e.key.wrapping_mul(HASH_MUL) >> bucket_shift) as usize;
        entries.sort_unstable_by_key(bucket_of);
        let mut buckets = vec![0u32; (1usize << bucket_log) + 1];
        for e in &entries {
            buckets[bucket_of(e) + 1] += 1;
        }
        for i in 1..buckets.len() {
            buckets[i] += buckets[i - 1];
        }
        WindowIndex {
            w,
            k,
            key_mask,
            bits,
            bits_shift,
            buckets,
            bucket_shift,
            entries,
        }
    }

    /// Appends every occurrence of every pattern that lies wholly inside `buf`.
    /// Each occurrence is reported once; the order is by sampled position.
    pub(crate) fn find_all(&self, set: &SecretSet, buf: &[u8], out: &mut Vec<Match>) {
        let (w, k) = (self.w, self.k);
        if w == 0 || buf.len() < w {
            return;
        }
        let mut i = 0;
        // Fast path: four sampled positions per round, each an unaligned 8-byte
        // load, a multiply and a bit test; the branch is taken only on a bitmap hit.
        if buf.len() >= 8 + 3 * k {
            let fast_end = buf.len() - 8 - 3 * k;
            while i <= fast_end {
                let keys = [
                    self.key_at(buf, i),
                    self.key_at(buf, i + k),
                    self.key_at(buf, i + 2 * k),
                    self.key_at(buf, i + 3 * k),
                ];
                let hit =
                    self.bit(keys[0]) | self.bit(keys[1]) | self.bit(keys[2]) | self.bit(keys[3]);
                if hit != 0 {
                    for (j, &key) in keys.iter().enumerate() {
                        if self.bit(key) != 0 {
                            self.probe(set, buf, i + j * k, key, out);
                        }
                    }
                }
                i += 4 * k;
            }
        }
        let last = buf.len() - w;
        while i <= last {
            let key = load(buf, i, w, self.key_mask);
            if self.bit(key) != 0 {
                self.probe(set, buf, i, key, out);
            }
            i += k;
        }
    }

    #[inline(always)]
    fn key_at(&self, buf: &[u8], i: usize) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&buf[i..i + 8]);
        u64::from_le_bytes(a) & self.key_mask
    }

    #[inline(always)]
    fn bit(&self, key: u64) -> u64 {
        let b = (key.wrapping_mul(HASH_MUL) >> self.bits_shift) as usize;
        self.bits[b >> 6] & (1 << (b & 63))
    }

    #[inline(never)]
    fn probe(&self, set: &SecretSet, buf: &[u8], i: usize, key: u64, out: &mut Vec<Match>) {
        let b = (key.wrapping_mul(HASH_MUL) >> self.bucket_shift) as usize;
        let (lo, hi) = (self.buckets[b] as usize, self.buckets[b + 1] as usize);
        for e in &self.entries[lo..hi] {
            if e.key != key {
                continue;
            }
            let Some(start) = i.checked_sub(e.offset as usize) else {
                continue;
            };
            let pat = set.pattern(e.pattern as usize);
            let end = start + pat.len();
            if end <= buf.len() && &buf[start..end] == pat {
                out.push(Match {
                    start,
                    end,
                    pattern: e.pattern as usize,
                });
            }
        }
    }
}
