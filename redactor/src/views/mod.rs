//! Decoded views of a stream: what a program's insertions (colour codes, for now)
//! hide. A view turns source bytes into decoded bytes, each with the source span
//! it came from; a unit found in the decoded bytes masks the source from its first
//! decoded byte's span to its last's. Decoding is prefix-stable: decoding a prefix
//! of the stream gives a prefix of the whole stream's decoded bytes, and the bytes
//! at the end that cannot be decided yet are reported as pending.

pub(crate) mod ansi;

use std::ops::Range;

/// One view of a buffer.
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    /// The decoded bytes.
    pub bytes: Vec<u8>,
    /// For each decoded byte, the source span it came from.
    pub spans: Vec<(u32, u32)>,
    /// Source ranges the view drops (a colour code).
    pub dropped: Vec<Range<usize>>,
    /// Where an undecided sequence at the end starts.
    pub pending: Option<usize>,
}

impl Decoded {
    /// The source range of decoded bytes `r`.
    pub fn source(&self, r: Range<usize>) -> Range<usize> {
        self.spans[r.start].0 as usize..self.spans[r.end - 1].1 as usize
    }

    /// The start of the dropped range strictly containing `pos`, if any: a
    /// position inside one is no place to start decoding.
    pub fn sync_before(&self, pos: usize) -> usize {
        let i = self.dropped.partition_point(|d| d.end <= pos);
        match self.dropped.get(i) {
            Some(d) if d.start < pos => d.start,
            _ => pos,
        }
    }
}
