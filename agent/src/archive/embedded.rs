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
    AC.get_or_init(|| {
        AhoCorasick::new(EMBEDDED.iter().map(|(m, _)| *m)).expect("fixed patterns build")
    })
}

/// The first plausible candidate in `window` (whose first byte is at stream
/// offset `base`) starting at or after `from`: its offset.
fn candidate(window: &[u8], base: u64, from: u64) -> Option<u64> {
    let mut best: Option<u64> = None;
    for m in magics().find_overlapping_iter(window) {
        let back = EMBEDDED[m.pattern().as_usize()].1;
        let Some(start) = (base + m.start() as u64).checked_sub(back as u64) else {
            continue;
        };
        if start < from || best.is_some_and(|b| b <= start) {
            continue;
        }
        // Check the header when the window holds enough of it.
        if let Some(rel) = start.checked_sub(base) {
            let head = &window[rel as usize..];
            if head.len() >= SNIFF_LEN && detect(&head[..SNIFF_LEN]) == Format::Plain {
                continue;
            }
        }
        best = Some(start);
    }
    best
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

impl Read for Sniffer<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let got = &buf[..n];
        if let Some((_, file)) = &mut self.spool {
            file.write_all(got)?;
        } else if n > 0 {
            let base = self.pos - self.tail.len() as u64;
            let mut window = zeroize::Zeroizing::new(Vec::with_capacity(self.tail.len() + n));
            window.extend_from_slice(&self.tail);
            window.extend_from_slice(got);
            if let Some(start) = candidate(&window, base, 0) {
                let mut file = tempfile::tempfile()?;
                file.write_all(&window[(start - base) as usize..])?;
                self.spool = Some((start, file));
            } else {
                let keep = window.len().saturating_sub(TAIL);
                self.tail.clear();
                self.tail.extend_from_slice(&window[keep..]);
            }
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// The next candidate at or after `from` in `file`.
fn next_candidate(file: &File, from: u64) -> io::Result<Option<u64>> {
    let mut chunk = zeroize::Zeroizing::new(vec![0u8; 1 << 20]);
    let mut base = from;
    loop {
        let n = read_full(&mut Section::new(file, base, u64::MAX), &mut chunk)?;
        if let Some(c) = candidate(&chunk[..n], base, from) {
            return Ok(Some(c));
        }
        if n < chunk.len() {
            return Ok(None);
        }
        base += (n - TAIL) as u64;
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
        while let Some(c) = next_candidate(&file, from).map_err(|e| self.failed(name, e))? {
            let at = format!("{name}@{}", start + c);
            let mut head = [0u8; SNIFF_LEN];
            let n = read_full(&mut Section::new(&file, c, len - c), &mut head)
                .map_err(|e| self.failed(name, e))?;
            let format = detect(&head[..n]);
            let tried = match format {
                Format::Plain => Ok(1),
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
                // Only bytes that looked like a header.
                Err(Stop::Unreadable { .. }) => c + 1,
                Err(stop) => return Err(stop),
            };
        }
        Ok(())
    }
}
