//! The trigger bytes of every view that is on, found for a whole buffer before
//! any view parses, as a bitmap the caller walks in order (one list for all
//! views, not one memchr loop per view interleaved with the parsing).
//!
//! Each 16 bytes are compared against every trigger byte at once with the
//! `wide` crate's `u8x16` (SSE2 `pcmpeqb` and `pmovmskb` on x86_64, which
//! the baseline target has), and the 16-bit masks fill one 64-bit bitmap word
//! per 64 bytes. On a CPU with AVX2 (picked at run time) and at most eight
//! trigger bytes (six for a set of random tokens), [`nibbles`] looks each byte's
//! two nibbles up in two 16-entry tables instead, 32 bytes at a time, at the
//! same cost for any number of trigger bytes; with more, the same safe code as
//! the SSE2 pass is compiled with AVX2 enabled (LLVM pairs its 16-byte
//! compares). The tests run the SSE2 pass beside whichever runs on every
//! buffer. The `unsafe` here: the call after the feature check, and the
//! unaligned 32-byte loads. The number of compares is a constant per instantiation (one to
//! ten trigger bytes; today's views have nine, six for a set of random tokens),
//! so the loop keeps the splatted needles in registers. Unlike the `memchr3` passes it replaces (three bytes a pass, each
//! hit leaving the vector loop: 1.5–2 GB/s on the bench's log corpus, whose
//! lines each hold a line break), its cost does not depend on how often
//! triggers occur. The `memchr3` version is kept in the tests as a second
//! reference.
//!
//! A view may ask for its triggers only after a byte in a range
//! ([`super::View::after`]: the wrap view's line breaks after a base64 byte);
//! the byte before is tested in the same pass from a second load one byte
//! back, so a line break after a space is no candidate (a log line each).

use wide::u8x16;

/// For each byte, the views (a bit per index in [`super::ALL`]) it triggers.
pub(crate) type ByteViews = [u16; 256];

/// The trigger bytes of a set's views.
#[derive(Clone, Debug)]
pub(crate) struct Finder {
    /// Bytes found wherever they are.
    bytes: Vec<u8>,
    /// Bytes found only right after a byte in `after` (see [`super::View::after`]).
    after_bytes: Vec<u8>,
    after: (u8, u8),
    /// Whether each byte is found anywhere, or only after a byte in `after`
    /// (for the bytes after the last 16-byte block).
    is_trigger: [bool; 256],
    is_after: [bool; 256],
    /// The AVX2 pass's tables, built with the finder (None with more than
    /// eight trigger bytes).
    #[cfg(target_arch = "x86_64")]
    nibbles: Option<nibbles::Tables>,
}

impl Finder {
    /// Finds every byte `b` with `anywhere[b]`, and every `b` with
    /// `after_byte[b]` whose previous byte lies in `after` (inclusive; the
    /// first byte of a buffer has none).
    pub fn new(anywhere: &[bool; 256], after_byte: &[bool; 256], after: (u8, u8)) -> Finder {
        let is_after = std::array::from_fn(|b| after_byte[b] && !anywhere[b]);
        let pick =
            |t: &[bool; 256]| -> Vec<u8> { (0..=255u8).filter(|&b| t[usize::from(b)]).collect() };
        let (bytes, after_bytes) = (pick(anywhere), pick(&is_after));
        Finder {
            #[cfg(target_arch = "x86_64")]
            nibbles: nibbles::Tables::new(&bytes, &after_bytes, after),
            bytes,
            after_bytes,
            after,
            is_trigger: *anywhere,
            is_after,
        }
    }

    fn in_after(&self, b: u8) -> bool {
        (self.after.0..=self.after.1).contains(&b)
    }
}

/// Sets in `out` (cleared first) bit `i % 64` of word `i / 64` for every byte
/// `buf[i]` that `finder` finds, and for no other.
pub(crate) fn candidates(buf: &[u8], finder: &Finder, out: &mut Vec<u64>) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        #[allow(unsafe_code)]
        // SAFETY: `candidates_avx2` only needs the CPU to have AVX2, which was
        // just detected.
        unsafe {
            candidates_avx2(buf, finder, out);
        }
        return;
    }
    candidates_in(buf, finder, out);
}

/// [`candidates`] for CPUs with AVX2 (x86-64-v3): with at most eight trigger
/// bytes, a nibble lookup per 32 bytes ([`nibbles`]); else the same code as
/// [`candidates_in`], compiled with AVX2 enabled (LLVM pairs its 16-byte
/// compares).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn candidates_avx2(buf: &[u8], finder: &Finder, out: &mut Vec<u64>) {
    match &finder.nibbles {
        Some(t) => with_blocks(buf, finder, out, |buf, out| t.fill(buf, out)),
        None => candidates_in(buf, finder, out),
    }
}

/// [`candidates`] with the `wide` (SSE2 on x86_64) compares.
#[inline(always)]
fn candidates_in(buf: &[u8], finder: &Finder, out: &mut Vec<u64>) {
    with_blocks(buf, finder, out, |buf, out| {
        macro_rules! by_count {
            ($m:literal; $($n:literal)*) => {
                match finder.bytes.len() {
                    $($n => classify::<$n, $m>(buf, finder, out),)*
                    _ => classify_any(buf, finder, out),
                }
            };
        }
        match finder.after_bytes.len() {
            0 => by_count!(0; 1 2 3 4 5 6 7 8 9 10),
            1 => by_count!(1; 0 1 2 3 4 5 6 7 8 9 10),
            2 => by_count!(2; 0 1 2 3 4 5 6 7 8 9 10),
            _ => classify_any(buf, finder, out),
        }
    });
}

/// Clears `out` to a word per 64 bytes, has `blocks` fill the whole 16-byte
/// blocks (see [`each_word`]), then sets the first byte's bit and those of
/// the bytes after the last whole block.
#[inline(always)]
fn with_blocks(
    buf: &[u8],
    finder: &Finder,
    out: &mut Vec<u64>,
    blocks: impl FnOnce(&[u8], &mut [u64]),
) {
    out.clear();
    out.resize(buf.len().div_ceil(64), 0);
    if finder.bytes.is_empty() && finder.after_bytes.is_empty() {
        return;
    }
    blocks(buf, out);
    let done = buf.len() / 16 * 16;
    if done > 0 {
        // No byte before the first: found only if found anywhere.
        out[0] = out[0] & !1 | u64::from(finder.is_trigger[usize::from(buf[0])]);
    }
    for (i, &b) in buf.iter().enumerate().skip(done) {
        let after = || i > 0 && finder.in_after(buf[i - 1]);
        if finder.is_trigger[usize::from(b)] || finder.is_after[usize::from(b)] && after() {
            out[i / 64] |= 1 << (i % 64);
        }
    }
}

/// Fills `out` for the whole 16-byte blocks of `buf`, comparing each against
/// the `N` bytes found anywhere and the `M` found after a byte in range.
#[inline(always)]
fn classify<const N: usize, const M: usize>(buf: &[u8], finder: &Finder, out: &mut [u64]) {
    let anywhere: [u8x16; N] = splat(&finder.bytes).try_into().expect("N trigger bytes");
    let after: [u8x16; M] = splat(&finder.after_bytes)
        .try_into()
        .expect("M trigger bytes");
    fill::<M>(buf, finder.after, out, |v| {
        (any_of(v, &anywhere), any_of(v, &after))
    });
}

/// [`classify`] for any number of trigger bytes.
#[inline(always)]
fn classify_any(buf: &[u8], finder: &Finder, out: &mut [u64]) {
    let (anywhere, after) = (splat(&finder.bytes), splat(&finder.after_bytes));
    fill::<1>(buf, finder.after, out, |v| {
        (any_of(v, &anywhere), any_of(v, &after))
    });
}

/// Each byte as a vector of 16 copies of it.
fn splat(bytes: &[u8]) -> Vec<u8x16> {
    bytes.iter().map(|&b| u8x16::splat(b)).collect()
}

/// All ones in each lane of `v` equal to any of `needles`.
#[inline(always)]
fn any_of(v: u8x16, needles: &[u8x16]) -> u8x16 {
    needles
        .iter()
        .fold(u8x16::ZERO, |hit, &n| hit | v.simd_eq(n))
}

/// Sets the bits of `out` for the whole 16-byte blocks of `buf` from `hits`
/// (per lane, all ones for a byte found anywhere, and for one found only
/// after a byte in `after`); leaves the rest alone, and bit 0 to the caller.
/// With `M == 0` there are none of the second kind.
///
/// The byte before each is tested in the same pass, from a second load one
/// byte earlier (a range test: three vector operations and an `and`). A line
/// break after a space, which ends every line of many logs, then costs the
/// wrap view nothing: parsing it (a mispredicted branch and a call per line)
/// was most of what that view cost.
#[inline(always)]
fn fill<const M: usize>(
    buf: &[u8],
    after: (u8, u8),
    out: &mut [u64],
    hits: impl Fn(u8x16) -> (u8x16, u8x16),
) {
    let (lo, width) = (
        u8x16::splat(after.0),
        u8x16::splat(after.1.wrapping_sub(after.0)),
    );
    // A 64-byte word's bits from its bytes, `b[1..]`, and the byte before
    // them, `b[0]`: fixed offsets into an array, so no bounds checks.
    let word_of = |b: &[u8; 65]| -> u64 {
        let mut word = 0;
        for j in 0..4 {
            let v = u8x16::new(b[1 + 16 * j..17 + 16 * j].try_into().expect("16 bytes"));
            let (any, cond) = hits(v);
            let lane = if M == 0 {
                any
            } else {
                let prev = u8x16::new(b[16 * j..16 * j + 16].try_into().expect("16 bytes"));
                let in_range = (prev - lo).saturating_sub(width).simd_eq(u8x16::ZERO);
                any | cond & in_range
            };
            word |= u64::from(lane.to_bitmask()) << (16 * j);
        }
        word
    };
    each_word(buf, out, word_of);
}

/// Sets `out[w]` to `word_of` of 64-byte word `w` of `buf` and the byte before
/// it, for every whole word, and for the whole 16-byte blocks of a last,
/// partial one (from a padded copy; its other bits are left clear). The first
/// byte has no byte before it: itself stands in, and the caller sets its bit
/// from the bytes found anywhere alone.
#[inline(always)]
fn each_word(buf: &[u8], out: &mut [u64], word_of: impl Fn(&[u8; 65]) -> u64) {
    let words = buf.len() / 64;
    for (w, word) in out.iter_mut().enumerate().take(words) {
        let b = &buf[(w * 64).max(1) - 1..w * 64 + 64];
        *word = match <&[u8; 65]>::try_from(b) {
            Ok(b) => word_of(b),
            Err(_) => {
                let mut padded = [0u8; 65];
                padded[0] = buf[0];
                padded[1..].copy_from_slice(&buf[..64]);
                word_of(&padded)
            }
        };
    }
    // The whole 16-byte blocks of a last, partial word, from a padded copy.
    let rest = &buf[words * 64..];
    let blocks = rest.len() / 16;
    if blocks > 0 {
        let mut padded = [0u8; 65];
        padded[0] = buf[(words * 64).max(1) - 1];
        padded[1..1 + rest.len()].copy_from_slice(rest);
        out[words] = word_of(&padded) & ((1u64 << (16 * blocks)) - 1);
    }
}

/// The trigger pass for CPUs with AVX2, when there are at most eight trigger
/// bytes: each gets a bit, and two 16-entry tables hold, for every value of a
/// byte's low and high nibble, the bits of the triggers with that nibble
/// (`vpshufb` looks both up for 32 bytes at once). A byte is trigger `j` when
/// bit `j` is set in both lookups, so the test is exact, and its cost is the
/// same for one trigger byte or eight: two lookups, two `and`s and a compare
/// per 32 bytes, where the compares cost one per trigger byte per 16 bytes.
#[cfg(target_arch = "x86_64")]
mod nibbles {
    use std::arch::x86_64::{
        __m256i, _mm256_and_si256, _mm256_andnot_si256, _mm256_cmpeq_epi8, _mm256_loadu_si256,
        _mm256_movemask_epi8, _mm256_or_si256, _mm256_set1_epi8, _mm256_setzero_si256,
        _mm256_shuffle_epi8, _mm256_srli_epi16, _mm256_sub_epi8, _mm256_subs_epu8,
    };

    use super::each_word;

    #[derive(Clone, Debug)]
    pub(super) struct Tables {
        /// Per low nibble, the bits of the trigger bytes with it; repeated for
        /// the two 128-bit lanes `vpshufb` looks up in separately.
        lo: [u8; 32],
        /// Likewise per high nibble.
        hi: [u8; 32],
        /// The bits of the bytes found anywhere.
        any: u8,
        /// The bits of the bytes found only after a byte in `range`.
        after: u8,
        range: (u8, u8),
    }

    impl Tables {
        /// None with more than eight trigger bytes (one bit each).
        /// For the bytes found anywhere and those found only after a byte
        /// in `range`; None with more than eight in all (one bit each).
        pub(super) fn new(bytes: &[u8], after_bytes: &[u8], range: (u8, u8)) -> Option<Tables> {
            if bytes.len() + after_bytes.len() > 8 {
                return None;
            }
            let (mut lo, mut hi) = ([0u8; 32], [0u8; 32]);
            let (mut any, mut after) = (0u8, 0u8);
            for (j, &b) in bytes.iter().chain(after_bytes).enumerate() {
                let bit = 1u8 << j;
                if j < bytes.len() {
                    any |= bit;
                } else {
                    after |= bit;
                }
                for lane in [0, 16] {
                    lo[lane + usize::from(b & 15)] |= bit;
                    hi[lane + usize::from(b >> 4)] |= bit;
                }
            }
            Some(Tables {
                lo,
                hi,
                any,
                after,
                range,
            })
        }

        /// What `super::fill` does, for these trigger bytes.
        #[target_feature(enable = "avx2")]
        pub(super) fn fill(&self, buf: &[u8], out: &mut [u64]) {
            each_word(buf, out, |b| self.word(b));
        }

        /// The bits of the 64 bytes `b[1..]`, `b[0]` the byte before them.
        #[target_feature(enable = "avx2")]
        #[inline]
        fn word(&self, b: &[u8; 65]) -> u64 {
            let load = |at: usize| -> __m256i {
                debug_assert!(at + 32 <= b.len());
                #[allow(unsafe_code)]
                // SAFETY: `at + 32 <= 65` at every call below, so the 32 bytes
                // read lie inside `b`; the load is unaligned.
                unsafe {
                    _mm256_loadu_si256(b.as_ptr().add(at).cast())
                }
            };
            let table = |t: &[u8; 32]| -> __m256i {
                #[allow(unsafe_code)]
                // SAFETY: an unaligned load of the 32 bytes `t` refers to.
                unsafe {
                    _mm256_loadu_si256(t.as_ptr().cast())
                }
            };
            let (lo_t, hi_t) = (table(&self.lo), table(&self.hi));
            let nibble = _mm256_set1_epi8(0x0F);
            let zero = _mm256_setzero_si256();
            let mut word = 0u64;
            for h in 0..2 {
                let v = load(1 + 32 * h);
                let bits = _mm256_and_si256(
                    _mm256_shuffle_epi8(lo_t, _mm256_and_si256(v, nibble)),
                    _mm256_shuffle_epi8(hi_t, _mm256_and_si256(_mm256_srli_epi16::<4>(v), nibble)),
                );
                // Lane by lane: found anywhere, or found after a byte in
                // range; one `vpmovmskb` at the end.
                let any = _mm256_cmpeq_epi8(
                    _mm256_and_si256(bits, _mm256_set1_epi8(self.any as i8)),
                    zero,
                );
                let mut hit = _mm256_andnot_si256(any, _mm256_set1_epi8(-1));
                if self.after != 0 {
                    let after = _mm256_cmpeq_epi8(
                        _mm256_and_si256(bits, _mm256_set1_epi8(self.after as i8)),
                        zero,
                    );
                    let prev = load(32 * h);
                    let off = _mm256_subs_epu8(
                        _mm256_sub_epi8(prev, _mm256_set1_epi8(self.range.0 as i8)),
                        _mm256_set1_epi8(self.range.1.wrapping_sub(self.range.0) as i8),
                    );
                    let in_range = _mm256_cmpeq_epi8(off, zero);
                    hit = _mm256_or_si256(hit, _mm256_andnot_si256(after, in_range));
                }
                // Opaque to LLVM: it otherwise turns the two masks into one
                // vector of 64 booleans, which AVX2 has no register for, and
                // rebuilds it a byte at a time (2x slower than the SSE2 pass).
                let mask = std::hint::black_box(_mm256_movemask_epi8(hit) as u32);
                word |= u64::from(mask) << (32 * h);
            }
            word
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`super::candidates`] (AVX2 where the CPU has it), checked against the
    /// same code compiled for the baseline target: both are tested on any CPU.
    fn candidates(buf: &[u8], finder: &Finder, out: &mut Vec<u64>) {
        super::candidates(buf, finder, out);
        let mut base = Vec::new();
        candidates_in(buf, finder, &mut base);
        assert_eq!(*out, base, "the baseline build agrees");
    }

    fn table(bytes: &[u8]) -> [bool; 256] {
        let mut t = [false; 256];
        for &b in bytes {
            t[usize::from(b)] = true;
        }
        t
    }

    /// The plain loop [`candidates`] must agree with.
    fn scalar(buf: &[u8], anywhere: &[u8], after_bytes: &[u8], after: (u8, u8)) -> Vec<u64> {
        let mut out = vec![0; buf.len().div_ceil(64)];
        for (i, &b) in buf.iter().enumerate() {
            let prev_in_range = i > 0 && (after.0..=after.1).contains(&buf[i - 1]);
            if anywhere.contains(&b) || after_bytes.contains(&b) && prev_in_range {
                out[i / 64] |= 1 << (i % 64);
            }
        }
        out
    }

    /// The search [`candidates`] replaced: memchr's `memchr3`, three trigger
    /// bytes a pass (bytes found anywhere only).
    fn by_memchr3(buf: &[u8], bytes: &[u8]) -> Vec<u64> {
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
            let finder = Finder::new(&table(triggers), &[false; 256], (0, 255));
            for b in 0..=255u8 {
                for len in [1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 79, 80, 128, 140] {
                    for at in [0, len / 2, len - 1] {
                        let mut buf = vec![b'a'; len];
                        buf[at] = b;
                        let mut got = vec![u64::MAX; 3];
                        candidates(&buf, &finder, &mut got);
                        let want = scalar(&buf, triggers, b"", (0, 255));
                        assert_eq!(got, want, "byte {b:#x} at {at} of {len}");
                        assert_eq!(by_memchr3(&buf, triggers), want);
                    }
                }
            }
        }
    }

    /// A byte found only after a byte in range: every value of the byte
    /// before it, with the pair at every position around the vector and word
    /// edges, for one and two such bytes beside any number found anywhere
    /// (fails if the byte before is not looked at, or looked at one block or
    /// one word off).
    #[test]
    fn after_bytes_need_a_byte_in_range_before() {
        let many: Vec<u8> = (0..=255u8).step_by(17).filter(|&b| b != b'\n').collect();
        for (anywhere, after_bytes, range) in [
            (&b"\x1b\\&%"[..], &b"\n\r"[..], (b'+', b'z')),
            (b"\x1b\\&%\r", b"\n", (b'+', b'z')),
            (b"", b"\n\r", (b'+', b'z')),
            (b"", b"\n", (0, 255)),
            (b"\x1b", b"\n\r", (0, 0)),
            (&many, b"\n", (b'a', b'a')),
        ] {
            let finder = Finder::new(&table(anywhere), &table(after_bytes), range);
            for prev in 0..=255u8 {
                for len in [2, 16, 17, 18, 63, 64, 65, 66, 80, 129, 140] {
                    for at in [1, 15, 16, 17, 63, 64, 65, 79, 80, len / 2, len - 1] {
                        if at >= len {
                            continue;
                        }
                        for &t in after_bytes {
                            let mut buf = vec![b' '; len];
                            buf[at - 1] = prev;
                            buf[at] = t;
                            let mut got = vec![u64::MAX; 3];
                            candidates(&buf, &finder, &mut got);
                            let want = scalar(&buf, anywhere, after_bytes, range);
                            assert_eq!(got, want, "{prev:#x} then {t:#x} at {at} of {len}");
                        }
                    }
                }
            }
            // At the start of a buffer there is no byte before.
            for &t in after_bytes {
                let mut buf = vec![b'a'; 70];
                buf[0] = t;
                let mut got = Vec::new();
                candidates(&buf, &finder, &mut got);
                assert_eq!(got, scalar(&buf, anywhere, after_bytes, range));
            }
        }
    }

    /// Random buffers dense with trigger bytes, at every length up to a few
    /// words: the same bitmap as the plain loop.
    #[test]
    fn dense_random_buffers() {
        let anywhere = b"\x1b\\&%'\"+";
        let alphabet = b"\x1b\\&%\n\r'\"+ab \xff";
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut got = Vec::new();
        for (after_bytes, range) in [(&b""[..], (0, 255)), (b"\n\r", (b'+', b'z'))] {
            let mut any = anywhere.to_vec();
            if after_bytes.is_empty() {
                any.extend_from_slice(b"\n\r");
            }
            let finder = Finder::new(&table(&any), &table(after_bytes), range);
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
                assert_eq!(got, scalar(&buf, &any, after_bytes, range), "length {len}");
            }
        }
    }
}
