//! One pass over a buffer for the trigger bytes of every view that is on,
//! instead of one memchr pass per view: on ordinary text most of the views'
//! cost was those passes (a line break every hundred bytes for `wrap` and
//! `pty`, each found by its own memchr call).
//!
//! With AVX2, 32 bytes at a time are classified by their two nibbles (two
//! table lookups and an `and`, as in simdjson's character classes): the tables
//! give a superset of the trigger bytes (exact while the triggers' high nibbles
//! are distinct modulo 8, as today's are), and each candidate is confirmed by a
//! 256-entry table, so the result never depends on the path taken.

/// For each byte, the views (a bit per index in [`super::ALL`]) it triggers.
pub(crate) type ByteViews = [u16; 256];

/// The nibble tables of a trigger set (see the module docs).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Classes {
    lo: [u8; 16],
    hi: [u8; 16],
}

impl Classes {
    /// Tables that flag every byte `b` with `by_byte[b] != 0` (and maybe others).
    pub fn new(by_byte: &ByteViews) -> Classes {
        let mut c = Classes {
            lo: [0; 16],
            hi: [0; 16],
        };
        for (b, &views) in by_byte.iter().enumerate() {
            if views != 0 {
                c.lo[b & 15] |= 1 << ((b >> 4) & 7);
            }
        }
        for (h, bit) in c.hi.iter_mut().enumerate() {
            *bit = 1 << (h & 7);
        }
        c
    }
}

/// Sets in `out` (cleared first) bit `i % 64` of word `i / 64` for every byte
/// `buf[i]` with `by_byte[b] != 0`, and maybe for some others (see the module
/// docs: the caller confirms each by `by_byte`). Two passes (this one, then the
/// caller's over the set bits) keep the vector loop free of calls and spills.
pub(crate) fn candidates(buf: &[u8], classes: &Classes, by_byte: &ByteViews, out: &mut Vec<u64>) {
    out.clear();
    out.resize(buf.len().div_ceil(64), 0);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above), the one
        // requirement of this `target_feature` function.
        #[allow(unsafe_code)]
        let done = unsafe { avx2::candidates(buf, classes, out) };
        scalar(buf, done, by_byte, out);
        return;
    }
    scalar(buf, 0, by_byte, out);
}

fn scalar(buf: &[u8], from: usize, by_byte: &ByteViews, out: &mut [u64]) {
    for (i, &b) in buf.iter().enumerate().skip(from) {
        if by_byte[usize::from(b)] != 0 {
            out[i / 64] |= 1 << (i % 64);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use std::arch::x86_64::{
        __m256i, _mm256_and_si256, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8,
        _mm256_set1_epi8, _mm256_setzero_si256, _mm256_shuffle_epi8, _mm256_srli_epi16,
    };

    use super::Classes;

    /// A 16-byte table in both 128-bit lanes (`vpshufb` looks up per lane).
    #[target_feature(enable = "avx2")]
    fn table(t: &[u8; 16]) -> __m256i {
        let mut both = [0u8; 32];
        both[..16].copy_from_slice(t);
        both[16..].copy_from_slice(t);
        // SAFETY: `both` is 32 readable bytes; the load is unaligned.
        unsafe { _mm256_loadu_si256(both.as_ptr().cast()) }
    }

    /// The candidates of every whole 64-byte block of `buf`, into `out` (one
    /// word per block); returns where the blocks end.
    #[target_feature(enable = "avx2")]
    pub(super) fn candidates(buf: &[u8], c: &Classes, out: &mut [u64]) -> usize {
        let (lo, hi) = (table(&c.lo), table(&c.hi));
        let nibble = _mm256_set1_epi8(0x0f);
        let zero = _mm256_setzero_si256();
        let flags = |v: __m256i| -> u64 {
            let l = _mm256_shuffle_epi8(lo, _mm256_and_si256(v, nibble));
            let h = _mm256_shuffle_epi8(hi, _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble));
            let none = _mm256_cmpeq_epi8(_mm256_and_si256(l, h), zero);
            u64::from(!(_mm256_movemask_epi8(none) as u32))
        };
        let blocks = buf.chunks_exact(64);
        let done = buf.len() - blocks.remainder().len();
        for (block, word) in blocks.zip(out.iter_mut()) {
            // SAFETY: `block` is 64 readable bytes; both loads are unaligned.
            let (a, b) = unsafe {
                (
                    _mm256_loadu_si256(block.as_ptr().cast()),
                    _mm256_loadu_si256(block.as_ptr().add(32).cast()),
                )
            };
            *word = flags(a) | flags(b) << 32;
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte value at every offset of a block and in the tail: the vector
    /// path flags every trigger byte, and no other ASCII byte where the
    /// triggers' high nibbles differ modulo 8 (today's views).
    #[test]
    fn candidates_are_the_trigger_bytes() {
        for (triggers, exact) in [
            (&b"\x1b\\'\"&%+\n\r"[..], true),
            (b"\x00\x80\x90\xff~", false),
            (b"", true),
        ] {
            let mut by_byte = [0u16; 256];
            for &t in triggers {
                by_byte[usize::from(t)] = 1;
            }
            let classes = Classes::new(&by_byte);
            for b in 0..=255u8 {
                for len in [1, 63, 64, 65, 128, 140] {
                    for at in [0, len / 2, len - 1] {
                        let mut buf = vec![b'a'; len];
                        buf[at] = b;
                        let mut got = Vec::new();
                        candidates(&buf, &classes, &by_byte, &mut got);
                        let mut want = vec![0; len.div_ceil(64)];
                        scalar(&buf, 0, &by_byte, &mut want);
                        if exact && b < 0x80 {
                            assert_eq!(got, want, "byte {b:#x} at {at} of {len}");
                        } else {
                            let missed: Vec<u64> =
                                want.iter().zip(&got).map(|(w, g)| w & !g).collect();
                            assert!(
                                missed.iter().all(|&m| m == 0),
                                "byte {b:#x} at {at} of {len}"
                            );
                        }
                    }
                }
            }
        }
    }
}
