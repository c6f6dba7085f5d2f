//! The trigger bytes of every view that is on, found for a whole buffer before
//! any view parses, as a bitmap the caller walks in order (one list for all
//! views, not one memchr loop per view interleaved with the parsing).
//!
//! The bytes are found by memchr's vectorised `memchr3`, three trigger bytes a
//! pass (today's nine take three passes); no unsafe code here. Measured on the
//! bench's log corpus (thread CPU time, load average 10–18, bench profile
//! without LTO): this pass runs at about 1.9 GB/s, a plain byte-table loop at
//! 1.5, an aho-corasick `packed` searcher over the single bytes at 1.3, and the
//! hand-written AVX2 nibble classifier it replaces at 5–7 (dropped to keep the
//! crate free of `unsafe` intrinsics). `memchr3` is slowed by how often
//! triggers occur (a line break per line, quotes in JSON), not by the bytes
//! between them.

/// For each byte, the views (a bit per index in [`super::ALL`]) it triggers.
pub(crate) type ByteViews = [u16; 256];

/// The trigger bytes of a set's views in groups of three, one `memchr3` pass
/// each (a short group repeats a byte).
#[derive(Clone, Debug)]
pub(crate) struct Finder {
    groups: Vec<[u8; 3]>,
}

impl Finder {
    /// Finds every byte `b` with `by_byte[b] != 0`.
    pub fn new(by_byte: &ByteViews) -> Finder {
        let bytes: Vec<u8> = (0..=255u8)
            .filter(|&b| by_byte[usize::from(b)] != 0)
            .collect();
        let groups = bytes
            .chunks(3)
            .map(|g| [g[0], g[g.len().min(2) - 1], g[g.len() - 1]])
            .collect();
        Finder { groups }
    }
}

/// Sets in `out` (cleared first) bit `i % 64` of word `i / 64` for every byte
/// `buf[i]` that `finder` finds, and for no other.
pub(crate) fn candidates(buf: &[u8], finder: &Finder, out: &mut Vec<u64>) {
    out.clear();
    out.resize(buf.len().div_ceil(64), 0);
    for &[a, b, c] in &finder.groups {
        for i in memchr::memchr3_iter(a, b, c, buf) {
            out[i / 64] |= 1 << (i % 64);
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

    /// Every byte value at the start, middle and end of buffers around the
    /// vector and bitmap word sizes, for trigger sets of every group shape
    /// (full, two, one, none): exactly the trigger bytes are flagged.
    #[test]
    fn candidates_are_the_trigger_bytes() {
        for triggers in [
            &b"\x1b\\'\"&%+\n\r"[..],
            b"\x00\x80\x90\xff~",
            b"\x00\xff\n\r",
            b"\n",
            b"",
        ] {
            let mut by_byte = [0u16; 256];
            for &t in triggers {
                by_byte[usize::from(t)] = 1;
            }
            let finder = Finder::new(&by_byte);
            for b in 0..=255u8 {
                for len in [1, 15, 31, 32, 33, 63, 64, 65, 128, 140] {
                    for at in [0, len / 2, len - 1] {
                        let mut buf = vec![b'a'; len];
                        buf[at] = b;
                        let mut got = Vec::new();
                        candidates(&buf, &finder, &mut got);
                        assert_eq!(got, scalar(&buf, &by_byte), "byte {b:#x} at {at} of {len}");
                    }
                }
            }
        }
    }
}
