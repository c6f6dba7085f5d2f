//! Archives after a prefix: a self-extracting jar is a launch script and a zip,
//! a makeself installer a script and a tar.gz, a `.run` or an installer binary
//! a program and an archive. A plain stream is scanned as bytes as it goes by,
//! and [`Sniffer`] watches the same bytes for the magic numbers of
//! [`EMBEDDED`]: from the first one on, what follows is copied to an unnamed
//! temporary file, and each candidate in it is then tried as the archive it
//! announces ([`Walker::embedded`]). A candidate that does not decode was only
//! bytes (already scanned); one that does is walked like any archive, named
//! `NAME@OFFSET`.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write as _};
use std::os::unix::fs::FileExt as _;
use std::sync::OnceLock;

use aho_corasick::AhoCorasick;

use super::format::{detect, Format, EMBEDDED, SNIFF_LEN};
use super::pushback::Pushback;
use super::walk::{Part, Stop, Walker};
use crate::scanner::read_full;

/// Bytes kept from before each read: a tar's magic sits 257 bytes after its
/// start, and a magic may straddle two reads.
const TAIL: usize = SNIFF_LEN + 16;

fn magics() -> &'static AhoCorasick {
    static AC: OnceLock<AhoCorasick> = OnceLock::new();
    // Leftmost-first keeps the prefilter (an overlapping search walks every
    // byte through the automaton, a third of a tar.gz scan's time); the magics
    // do not overlap one another.
    AC.get_or_init(|| {
        AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostFirst)
            .build(EMBEDDED.iter().map(|(m, _)| *m))
            .expect("fixed patterns build")
    })
}

/// The plausible candidates in `window` (whose first byte is at stream offset
/// `base`) starting at or after `from`, among the magics that end past
/// `window[..seen]`: their offsets, ascending.
fn candidates(window: &[u8], base: u64, from: u64, seen: usize) -> Vec<u64> {
    let mut found = Vec::new();
    for m in magics().find_iter(window) {
        if m.end() <= seen {
            continue;
        }
        let back = EMBEDDED[m.pattern().as_usize()].1;
        let Some(start) = (base + m.start() as u64).checked_sub(back as u64) else {
            continue;
        };
        if start < from {
            continue;
        }
        // Check the header when the window holds enough of it.
        if let Some(rel) = start.checked_sub(base) {
            let head = &window[rel as usize..];
            if head.len() >= SNIFF_LEN && detect(&head[..SNIFF_LEN]) == Format::Plain {
                continue;
            }
        }
        found.push(start);
    }
    found.sort_unstable();
    found.dedup();
    found
}

/// The first of [`candidates`].
fn candidate(window: &[u8], base: u64, from: u64, seen: usize) -> Option<u64> {
    candidates(window, base, from, seen).first().copied()
}

/// A 7z signature header: its CRC (bytes 8..12) covers the next 20 bytes.
fn seven_z_header_ok(head: &[u8]) -> bool {
    if head.len() < 32 {
        return false;
    }
    let mut crc = flate2::Crc::new();
    crc.update(&head[12..32]);
    crc.sum().to_le_bytes() == head[8..12]
}

/// A plain stream passing by, watched for embedded archives.
pub(crate) struct Sniffer<'a> {
    inner: &'a mut dyn Read,
    pos: u64,
    tail: zeroize::Zeroizing<Vec<u8>>,
    spool: Option<(u64, File)>,
}

impl<'a> Sniffer<'a> {
    pub(crate) fn new(inner: &'a mut dyn Read) -> Self {
        Sniffer {
            inner,
            pos: 0,
            tail: zeroize::Zeroizing::new(Vec::new()),
            spool: None,
        }
    }

    /// Where the first candidate is and everything from it on, if one was seen.
    pub(crate) fn into_spool(self) -> Option<(u64, File)> {
        self.spool
    }
}

impl Sniffer<'_> {
    /// Looks for a candidate in `got`, the bytes read at `self.pos`, or
    /// straddling them and the kept tail; spools from it when found.
    fn watch(&mut self, got: &[u8]) -> io::Result<()> {
        let tail_base = self.pos - self.tail.len() as u64;
        // Only a magic that starts in the tail and ends in `got` is new here.
        let mut join = zeroize::Zeroizing::new(self.tail.to_vec());
        join.extend_from_slice(&got[..got.len().min(16)]);
        let straddling = candidate(&join, tail_base, 0, self.tail.len());
        let start = match (straddling, candidate(got, self.pos, 0, 0)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(start) = start {
            let mut file = tempfile::tempfile()?;
            if start < self.pos {
                file.write_all(&self.tail[(start - tail_base) as usize..])?;
                file.write_all(got)?;
            } else {
                file.write_all(&got[(start - self.pos) as usize..])?;
            }
            self.spool = Some((start, file));
            return Ok(());
        }
        if got.len() >= TAIL {
            self.tail.clear();
            self.tail.extend_from_slice(&got[got.len() - TAIL..]);
        } else {
            self.tail.extend_from_slice(got);
            let drop = self.tail.len().saturating_sub(TAIL);
            self.tail.drain(..drop);
        }
        Ok(())
    }
}

impl Read for Sniffer<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some((_, file)) = &mut self.spool {
            file.write_all(&buf[..n])?;
        } else if n > 0 {
            self.watch(&buf[..n])?;
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// The candidates in a spooled file, found a chunk at a time (a binary can
/// hold thousands of false ones: each chunk is searched once).
struct Candidates<'f> {
    file: &'f File,
    /// Where the next chunk starts.
    next: u64,
    /// Candidates found in the chunks read so far, ascending.
    pending: std::collections::VecDeque<u64>,
    done: bool,
}

impl<'f> Candidates<'f> {
    fn new(file: &'f File) -> Self {
        Candidates {
            file,
            next: 0,
            pending: Default::default(),
            done: false,
        }
    }

    /// The first candidate at or after `from`.
    fn at_or_after(&mut self, from: u64) -> io::Result<Option<u64>> {
        let mut chunk = zeroize::Zeroizing::new(Vec::new());
        loop {
            while self.pending.front().is_some_and(|c| *c < from) {
                self.pending.pop_front();
            }
            if let Some(c) = self.pending.front() {
                return Ok(Some(*c));
            }
            if self.done {
                return Ok(None);
            }
            // Chunks overlap by TAIL bytes; a magic wholly inside the overlap
            // was found with the chunk before.
            let base = self.next.max(from.saturating_sub(TAIL as u64));
            let seen = if base == self.next && base > 0 {
                TAIL
            } else {
                0
            };
            chunk.resize(1 << 20, 0);
            let n = read_full(&mut Section::new(self.file, base, u64::MAX), &mut chunk)?;
            let last = self.pending.back().copied();
            let found = candidates(&chunk[..n], base, from, seen);
            self.pending
                .extend(found.into_iter().filter(|c| last.is_none_or(|l| *c > l)));
            if n < chunk.len() {
                self.done = true;
            } else {
                self.next = base + (n - TAIL) as u64;
            }
        }
    }
}

/// `len` bytes of a file from `start`, as a reader of its own.
pub(crate) struct Section<'f> {
    file: &'f File,
    start: u64,
    len: u64,
    pos: u64,
}

impl<'f> Section<'f> {
    pub(crate) fn new(file: &'f File, start: u64, len: u64) -> Self {
        Section {
            file,
            start,
            len,
            pos: 0,
        }
    }
}

impl Read for Section<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = self.len.saturating_sub(self.pos).min(buf.len() as u64) as usize;
        if room == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..room], self.start + self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Section<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(self.pos)
    }
}

impl<F> Walker<F>
where
    F: FnMut(&str, Part, &mut dyn Read, Option<u64>) -> io::Result<u64>,
{
    /// The candidates in `file`, which holds the plain stream `name` from
    /// offset `start` on (its bytes already scanned).
    pub(super) fn embedded(
        &mut self,
        name: &str,
        start: u64,
        file: File,
        depth: u32,
    ) -> Result<(), Stop> {
        let len = file.metadata().map_err(|e| self.failed(name, e))?.len();
        let mut from = 0;
        let mut candidates = Candidates::new(&file);
        while let Some(c) = candidates
            .at_or_after(from)
            .map_err(|e| self.failed(name, e))?
        {
            let entries = self.budget.entries();
            let at = format!("{name}@{}", start + c);
            let mut head = [0u8; SNIFF_LEN];
            let n = read_full(&mut Section::new(&file, c, len - c), &mut head)
                .map_err(|e| self.failed(name, e))?;
            let format = detect(&head[..n]);
            let tried = match format {
                Format::Plain => Ok(1),
                // Its start header carries a CRC: a match is a 7z (unread),
                // not bytes that happen to hold the magic.
                Format::SevenZ if seven_z_header_ok(&head[..n]) => {
                    return Err(Stop::Unreadable {
                        at,
                        error: "7z archives are not read (extract it and scan the files)".into(),
                    })
                }
                Format::SevenZ => Ok(1),
                Format::Zip => {
                    self.descend(&at, depth)?;
                    let section = BufReader::new(Section::new(&file, c, len - c));
                    self.zip(&at, section, depth + 1, false)
                }
                format => {
                    let mut section = Section::new(&file, c, len - c);
                    let mut input: &mut dyn Read = &mut section;
                    let mut src = Pushback::new(&mut input);
                    self.segment(&at, format, &mut src, depth)
                        .map(|_| src.position())
                }
            };
            from = match tried {
                Ok(used) => c + used.max(1),
                // Only bytes that looked like a header; but an archive that
                // listed entries before failing was one.
                Err(Stop::Unreadable { .. }) if self.budget.entries() == entries => c + 1,
                Err(stop) => return Err(stop),
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sniff(data: &[u8], read: usize) -> Option<(u64, Vec<u8>)> {
        struct Small<'a>(&'a [u8], usize);
        impl Read for Small<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(self.1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut src = Small(data, read);
        let mut s = Sniffer::new(&mut src);
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        s.into_spool().map(|(at, mut f)| {
            let mut spooled = Vec::new();
            f.rewind().unwrap();
            f.read_to_end(&mut spooled).unwrap();
            (at, spooled)
        })
    }

    /// The first magic is found at every read size, also across reads, and
    /// everything from it on is spooled; text with none spools nothing.
    #[test]
    fn the_first_candidate_is_found_across_reads() {
        let mut data = b"#!/bin/sh\nexec tail -c +64 \"$0\" | tar -xz\nexit 0\n".to_vec();
        let at = data.len();
        data.extend_from_slice(&[0x1f, 0x8b, 0x08, 0x00, 1, 2, 3, 4, 0, 3]);
        data.extend_from_slice(&[7u8; 600]);
        for read in [1, 2, 3, 7, 64, 4096] {
            let (start, spooled) = sniff(&data, read).expect("found");
            assert_eq!(start, at as u64, "read {read}");
            assert_eq!(spooled, &data[at..], "read {read}");
        }
        assert!(sniff(&[b'x'; 5000], 100).is_none());
    }

    /// A tar's magic sits 257 bytes into its header: the candidate starts there.
    #[test]
    fn a_tar_candidate_starts_at_its_header() {
        let mut header = tar::Header::new_ustar();
        header.set_path("a.txt").unwrap();
        header.set_size(0);
        header.set_cksum();
        let mut data = vec![b'.'; 1000];
        data.extend_from_slice(header.as_bytes());
        data.extend_from_slice(&[0u8; 1024]);
        for read in [1, 100, 300, 4096] {
            let (start, _) = sniff(&data, read).expect("found");
            assert_eq!(start, 1000, "read {read}");
        }
    }
}
