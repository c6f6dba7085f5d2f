//! Archive-bomb bounds: how deep, how many entries, how many decompressed bytes,
//! and how much more a compressed stream may yield than it consumes.
//!
//! Counting happens in the readers ([`Metered`]) as bytes come out, so a bomb is
//! stopped after at most one buffer past the limit, whatever its headers claim.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

/// A compressed stream's output is not held to the ratio before this many bytes:
/// small, very repetitive files (a page of zeros) are legitimate.
const RATIO_GRACE: u64 = 1 << 20;

/// The bounds of one top-level file's walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Archives and compressed streams opened inside one another.
    pub max_depth: u32,
    /// Bytes produced by decompression, summed over every compressed stream and
    /// compressed zip entry inside one file.
    pub max_bytes: u64,
    /// Decompressed bytes per compressed byte (after the first MiB): per stream,
    /// and for everything decompressed in a file against the file's size (which
    /// stops a bomb nested in a bomb at its first layer's size).
    pub max_ratio: u64,
    /// Tar and zip entries, summed over every archive inside one file.
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 10,
            max_bytes: 4 << 30,
            max_ratio: 250,
            max_entries: 100_000,
        }
    }
}

/// Which bound a walk hit. The message names the flag that raises it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitHit {
    /// Nested deeper than `max_depth`.
    #[error("archives nested more than {0} deep (--max-depth)")]
    Depth(u32),
    /// More than `max_bytes` decompressed.
    #[error("more than {0} bytes decompressed (--max-bytes)")]
    Bytes(u64),
    /// A stream, or the file, expanded more than `max_ratio` times.
    #[error("compressed data expanded more than {0} times (--max-ratio)")]
    Ratio(u64),
    /// More than `max_entries` entries.
    #[error("more than {0} archive entries (--max-entries)")]
    Entries(u64),
}

/// What one top-level file's walk has used so far; shared by its readers.
#[derive(Debug)]
pub(crate) struct Budget {
    limits: Limits,
    /// The top-level file's size, when known.
    file_size: Option<u64>,
    bytes: Cell<u64>,
    entries: Cell<u64>,
    hit: Cell<Option<LimitHit>>,
}

impl Budget {
    pub(crate) fn new(limits: Limits, file_size: Option<u64>) -> Rc<Budget> {
        Rc::new(Budget {
            limits,
            file_size,
            bytes: Cell::new(0),
            entries: Cell::new(0),
            hit: Cell::new(None),
        })
    }

    /// The first bound hit, if any: an I/O error seen after it is its consequence.
    pub(crate) fn hit(&self) -> Option<LimitHit> {
        self.hit.get()
    }

    fn trip(&self, hit: LimitHit) -> LimitHit {
        if self.hit.get().is_none() {
            self.hit.set(Some(hit));
        }
        hit
    }

    /// How many archive entries were counted so far.
    pub(crate) fn entries(&self) -> u64 {
        self.entries.get()
    }

    /// Counts one archive entry.
    pub(crate) fn entry(&self) -> Result<(), LimitHit> {
        let n = self.entries.get() + 1;
        self.entries.set(n);
        if n > self.limits.max_entries {
            return Err(self.trip(LimitHit::Entries(self.limits.max_entries)));
        }
        Ok(())
    }

    /// Checks that one more level may be opened below `depth`.
    pub(crate) fn descend(&self, depth: u32) -> Result<(), LimitHit> {
        if depth >= self.limits.max_depth {
            return Err(self.trip(LimitHit::Depth(self.limits.max_depth)));
        }
        Ok(())
    }

    fn produced(&self, n: u64, stream_out: u64, stream_in: u64) -> Result<(), LimitHit> {
        let total = self.bytes.get() + n;
        self.bytes.set(total);
        if total > self.limits.max_bytes {
            return Err(self.trip(LimitHit::Bytes(self.limits.max_bytes)));
        }
        let over = |out: u64, input: u64| {
            out > RATIO_GRACE && out > input.saturating_mul(self.limits.max_ratio)
        };
        if over(stream_out, stream_in) || self.file_size.is_some_and(|f| over(total, f)) {
            return Err(self.trip(LimitHit::Ratio(self.limits.max_ratio)));
        }
        Ok(())
    }
}

/// Counts the bytes a decoder consumes.
#[derive(Debug)]
pub(crate) struct Counted<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Counted<R> {
    /// The reader and a handle on its count.
    pub(crate) fn new(inner: R) -> (Self, Rc<Cell<u64>>) {
        let count = Rc::new(Cell::new(0));
        (
            Counted {
                inner,
                count: count.clone(),
            },
            count,
        )
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// How many compressed bytes a [`Metered`] stream has consumed.
#[derive(Debug)]
pub(crate) enum Consumed {
    /// Counted as the decoder reads.
    Counter(Rc<Cell<u64>>),
    /// Known in advance (a zip entry's compressed size).
    Fixed(u64),
}

/// A decompressed stream held to the [`Budget`]: fails with the [`LimitHit`] as
/// its error once a bound is passed.
#[derive(Debug)]
pub(crate) struct Metered<R> {
    inner: R,
    budget: Rc<Budget>,
    consumed: Consumed,
    produced: u64,
}

impl<R: Read> Metered<R> {
    pub(crate) fn new(inner: R, budget: Rc<Budget>, consumed: Consumed) -> Self {
        Metered {
            inner,
            budget,
            consumed,
            produced: 0,
        }
    }

    /// The decoder, to reach what it has not consumed.
    pub(crate) fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(hit) = self.budget.hit() {
            return Err(io::Error::other(hit));
        }
        let n = self.inner.read(buf)?;
        self.produced += n as u64;
        let consumed = match &self.consumed {
            Consumed::Counter(c) => c.get(),
            Consumed::Fixed(n) => *n,
        };
        self.budget
            .produced(n as u64, self.produced, consumed)
            .map_err(io::Error::other)?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(r: &mut impl Read) -> io::Result<u64> {
        io::copy(r, &mut io::sink())
    }

    #[test]
    fn ratio_counts_after_the_grace_and_trips_once() {
        let budget = Budget::new(
            Limits {
                max_ratio: 10,
                ..Limits::default()
            },
            None,
        );
        // 1 MiB from 1 byte is within the grace.
        let mut ok = Metered::new(
            io::repeat(0).take(RATIO_GRACE),
            budget.clone(),
            Consumed::Fixed(1),
        );
        assert_eq!(drain(&mut ok).unwrap(), RATIO_GRACE);
        let mut bomb = Metered::new(
            io::repeat(0).take(100 << 20),
            budget.clone(),
            Consumed::Fixed(1 << 10),
        );
        let e = drain(&mut bomb).unwrap_err();
        assert_eq!(e.to_string(), LimitHit::Ratio(10).to_string());
        assert_eq!(budget.hit(), Some(LimitHit::Ratio(10)));
    }

    #[test]
    fn bytes_entries_and_depth_are_bounded() {
        let budget = Budget::new(
            Limits {
                max_bytes: 1000,
                max_entries: 2,
                max_depth: 3,
                max_ratio: 1_000_000,
            },
            None,
        );
        assert!(budget.descend(2).is_ok());
        assert_eq!(budget.descend(3), Err(LimitHit::Depth(3)));
        let budget = Budget::new(
            Limits {
                max_bytes: 1000,
                max_entries: 2,
                ..Limits::default()
            },
            None,
        );
        assert!(budget.entry().is_ok() && budget.entry().is_ok());
        assert_eq!(budget.entry(), Err(LimitHit::Entries(2)));
        let budget = Budget::new(
            Limits {
                max_bytes: 1000,
                ..Limits::default()
            },
            None,
        );
        let (src, count) = Counted::new(io::repeat(1).take(5000));
        let mut m = Metered::new(src, budget.clone(), Consumed::Counter(count));
        assert!(drain(&mut m).is_err());
        assert_eq!(budget.hit(), Some(LimitHit::Bytes(1000)));
    }

    #[test]
    fn the_whole_file_is_held_to_the_ratio_too() {
        // Each stream expands 100x (under 250), but the file of 10 KiB has
        // produced far more than 250 times its size.
        let budget = Budget::new(Limits::default(), Some(10 << 10));
        let mut outer = Metered::new(
            io::repeat(0).take(8 << 20),
            budget.clone(),
            Consumed::Fixed(80 << 10),
        );
        assert!(drain(&mut outer).is_err());
        assert_eq!(budget.hit(), Some(LimitHit::Ratio(250)));
    }
}
