//! The trigger bytes of every view that is on, found for a whole buffer before
//! any view parses, as a bitmap the caller walks in order (one list for all
//! views, not one memchr loop per view interleaved with the parsing).
//!
//! Each 16 bytes are compared against every trigger byte at once with the
//! `wide` crate's `u8x16` (SSE2 `pcmpeqb` and `pmovmskb` on x86_64, which
//! the baseline target has: no runtime detection, no `-C target-cpu`, no
//! unsafe code here), and the 16-bit masks fill one 64-bit bitmap word per
//! 64 bytes. The number of compares is a constant per instantiation (one to
//! ten trigger bytes; today's views have nine, six for a set of random tokens),
//! so the loop keeps the splatted needles in registers. Unlike the `memchr3` passes it replaces (three bytes a pass, each
//! hit leaving the vector loop: 1.5–2 GB/s on the bench's log corpus, whose
//! lines each hold a line break), its cost does not depend on how often
//! triggers occur. The `memchr3` version is kept in the tests as a second
//! reference.

use wide::u8x16;

/// For each byte, the views (a bit per index in [`super::ALL`]) it triggers.
pub(crate) type ByteViews = [u16; 256];

/// The trigger bytes of a set's views.
#[derive(Clone, Debug)]
pub(crate) struct Finder {
    bytes: Vec<u8>,
    /// Whether each byte is a trigger (for the bytes after the last 16-byte
    /// block).
    is_trigger: [bool; 256],
}

impl Finder {
    /// Finds every byte `b` with `by_byte[b] != 0`.
    pub fn new(by_byte: &ByteViews) -> Finder {
        let is_trigger = by_byte.map(|v| v != 0);
        let bytes = (0..=255u8)
            .filter(|&b| is_trigger[usize::from(b)])
            .collect();
        Finder { bytes, is_trigger }
    }
}

/// Sets in `out` (cleared first) bit `i % 64` of word `i / 64` for every byte
/// `buf[i]` that `finder` finds, and for no other.
pub(crate) fn candidates(buf: &[u8], finder: &Finder, out: &mut Vec<u64>) {
    out.clear();
    out.resize(buf.len().div_ceil(64), 0);
    macro_rules! by_count {
        ($($n:literal)*) => {
            match finder.bytes.len() {
                0 => return,
                $($n => classify::<$n>(buf, &finder.bytes, out),)*
                _ => classify_any(buf, &finder.bytes, out),
            }
        };
    }
    by_count!(1 2 3 4 5 6 7 8 9 10);
    let done = buf.len() / 16 * 16;
    for (i, &b) in buf.iter().enumerate().skip(done) {
        if finder.is_trigger[usize::from(b)] {
            out[i / 64] |= 1 << (i % 64);
        }
    }
}

/// Fills `out` for the whole 16-byte blocks of `buf`, comparing each against
/// the `N` bytes of `bytes`.
fn classify<const N: usize>(buf: &[u8], bytes: &[u8], out: &mut [u64]) {
    let mut needles = [u8x16::ZERO; N];
    for (n, &b) in needles.iter_mut().zip(bytes) {
        *n = u8x16::splat(b);
    }
    fill(buf, out, |v| {
        needles
            .iter()
            .fold(u8x16::ZERO, |hit, &n| hit | v.simd_eq(n))
    });
}

/// [`classify`] for any number of trigger bytes.
fn classify_any(buf: &[u8], bytes: &[u8], out: &mut [u64]) {
    let needles: Vec<u8x16> = bytes.iter().map(|&b| u8x16::splat(b)).collect();
    fill(buf, out, |v| {
        needles
            .iter()
            .fold(u8x16::ZERO, |hit, &n| hit | v.simd_eq(n))
    });
}

/// Sets the bits of `out` for the whole 16-byte blocks of `buf` from `hits`
/// (a lane of all ones for a trigger byte); leaves the rest alone.
#[inline(always)]
fn fill(buf: &[u8], out: &mut [u64], hits: impl Fn(u8x16) -> u8x16) {
    let lane = |block: &[u8]| {
        let v = u8x16::new(block.try_into().expect("a 16-byte block"));
        u64::from(hits(v).to_bitmask())
    };
    let mut blocks = buf.chunks_exact(64);
    for (word, block) in out.iter_mut().zip(&mut blocks) {
        *word = lane(&block[..16])
            | lane(&block[16..32]) << 16
            | lane(&block[32..48]) << 32
            | lane(&block[48..]) << 48;
    }
    let rest = blocks.remainder();
    if let Some(word) = out.get_mut(buf.len() / 64) {
        for (j, block) in rest.chunks_exact(16).enumerate() {
            *word |= lane(block) << (16 * j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain loop [`candidates`] must agree with.
    fn scalar(buf: &[u8], by_byte: &ByteViews) -> Vec<u64> {
        let mut out = vec![0; buf.len().div_ceil(64)];
        for (i, &b) in buf.iter().enumerate() {
            if by_byte[usize::from(b)] != 0 {
                out[i / 64] |= 1 << (i % 64);
            }
        }
        out
    }

    /// The search [`candidates`] replaced: memchr's `memchr3`, three trigger
    /// bytes a pass.
    fn by_memchr3(buf: &[u8], by_byte: &ByteViews) -> Vec<u64> {
        let bytes: Vec<u8> = (0..=255u8)
            .filter(|&b| by_byte[usize::from(b)] != 0)
            .collect();
        let mut out = vec![0; buf.len().div_ceil(64)];
        for g in bytes.chunks(3) {
            let (a, b, c) = (g[0], g[g.len().min(2) - 1], g[g.len() - 1]);
            for i in memchr::memchr3_iter(a, b, c, buf) {
                out[i / 64] |= 1 << (i % 64);
            }
        }
        out
    }

    /// Every byte value at the start, middle and end of buffers around the
    /// vector and bitmap word sizes, for trigger sets of every size the
    /// instantiations cover and beyond: exactly the trigger bytes are
    /// flagged, as by the plain loop and by the `memchr3` passes.
    #[test]
    fn candidates_are_the_trigger_bytes() {
        let many: Vec<u8> = (0..=255u8).step_by(17).collect();
        for triggers in [
            &b"\x1b\\'\"&%+\n\r"[..],
            b"\x1b\\&%\n\r",
            b"\x00\x80\x90\xff~",
            b"\x00\xff\n\r",
            b"\n",
            b"",
            &many,
        ] {
            let mut by_byte = [0u16; 256];
            for &t in triggers {
                by_byte[usize::from(t)] = 1;
            }
            let finder = Finder::new(&by_byte);
            for b in 0..=255u8 {
                for len in [1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 79, 80, 128, 140] {
                    for at in [0, len / 2, len - 1] {
                        let mut buf = vec![b'a'; len];
                        buf[at] = b;
                        let mut got = vec![u64::MAX; 3];
                        candidates(&buf, &finder, &mut got);
                        let want = scalar(&buf, &by_byte);
                        assert_eq!(got, want, "byte {b:#x} at {at} of {len}");
                        assert_eq!(by_memchr3(&buf, &by_byte), want);
                    }
                }
            }
        }
    }

    /// Random buffers dense with trigger bytes, at every length up to a few
    /// words: the same bitmap as the plain loop.
    #[test]
    fn dense_random_buffers() {
        let mut by_byte = [0u16; 256];
        for &t in b"\x1b\\&%\n\r'\"+" {
            by_byte[usize::from(t)] = 1;
        }
        let finder = Finder::new(&by_byte);
        let alphabet = b"\x1b\\&%\n\r'\"+ab\xff";
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut got = Vec::new();
        for len in 0..300 {
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    alphabet[(seed % alphabet.len() as u64) as usize]
                })
                .collect();
            candidates(&buf, &finder, &mut got);
            assert_eq!(got, scalar(&buf, &by_byte), "length {len}");
        }
    }
}
