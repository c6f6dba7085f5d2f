//! The recursive walk of one file: detect each stream's format, open it, and
//! hand every leaf to the caller. A stream is walked to its end: what a parser
//! leaves after the end of what it understood (data after a tar's end blocks or
//! after the last compressed member) is walked as a stream of its own, named
//! `NAME@OFFSET`, so every byte is scanned as content, raw, or the walk fails.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::rc::Rc;

use super::embedded::Sniffer;
use super::format::{detect, Format, SNIFF_LEN};
use super::limits::{Budget, Consumed, Counted, LimitHit, Limits, Metered};
use super::members::Members;
use super::pushback::Pushback;
use super::spool::spool;
use crate::scanner::read_full;

/// Why a file's walk ended early. `at` names the innermost member concerned.
#[derive(Debug, thiserror::Error)]
pub enum Stop {
    /// A bound of [`Limits`] was hit: the rest of the file was not examined.
    #[error("{at}: incomplete: {hit}")]
    Limit {
        /// Where (`file!member`).
        at: String,
        /// Which bound.
        hit: LimitHit,
    },
    /// A stream could not be read or is not valid in the format its magic bytes
    /// announced (corrupt, truncated, encrypted, an unsupported zip method).
    #[error("{at}: {error}")]
    Unreadable {
        /// Where (`file!member`).
        at: String,
        /// What went wrong.
        error: String,
    },
    /// The leaf callback failed.
    #[error("{at}: {source}")]
    Leaf {
        /// Where (`file!member`).
        at: String,
        /// Its error.
        source: io::Error,
    },
}

/// Which part of a member a [`Walker`] hands to its callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// A leaf's content.
    Content,
    /// The name an archive entry is stored under (every entry: files,
    /// directories, links), so a value in a member's name is found too.
    Name,
}

/// Walks files under [`Limits`], one [`Walker::file`] call per top-level file.
/// `F` is called for every leaf with its name, [`Part::Content`], its content,
/// and a read-size hint (its length when known), and for every archive entry with
/// its name, [`Part::Name`] and the name's bytes; it returns how many bytes it
/// read.
pub struct Walker<F> {
    limits: Limits,
    pub(super) leaf: F,
    pub(super) budget: Rc<Budget>,
}

impl<F> std::fmt::Debug for Walker<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Walker")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl<F> Walker<F>
where
    F: FnMut(&str, Part, &mut dyn Read, Option<u64>) -> io::Result<u64>,
{
    /// A walker that calls `leaf` for every leaf.
    pub fn new(limits: Limits, leaf: F) -> Self {
        Walker {
            limits,
            leaf,
            budget: Budget::new(limits, None),
        }
    }

    /// Walks the file `name`, already open as `file`, with a fresh budget.
    pub fn file(&mut self, name: &str, mut file: File) -> Result<(), Stop> {
        let size = file.metadata().map(|m| m.len()).ok();
        self.budget = Budget::new(self.limits, size);
        let unreadable = |e: io::Error| Stop::Unreadable {
            at: name.to_string(),
            error: e.to_string(),
        };
        let mut head = zeroize::Zeroizing::new(vec![0u8; SNIFF_LEN]);
        let n = read_full(&mut file, &mut head).map_err(unreadable)?;
        file.rewind().map_err(unreadable)?;
        match detect(&head[..n]) {
            // Read in place: a top-level zip needs no copy.
            Format::Zip => {
                self.descend(name, 0)?;
                self.zip(name, BufReader::new(file), 1, true).map(|_| ())
            }
            _ => self.stream(name, &mut file, 0, size),
        }
    }

    /// A stream of unknown format at `depth`, walked to its end: each part a
    /// parser leaves (after zero padding) is recognised and walked in turn.
    pub(super) fn stream(
        &mut self,
        name: &str,
        input: &mut dyn Read,
        depth: u32,
        hint: Option<u64>,
    ) -> Result<(), Stop> {
        let mut src = Pushback::new(input);
        let mut at = name.to_string();
        let mut hint = hint;
        loop {
            let mut head = zeroize::Zeroizing::new(vec![0u8; SNIFF_LEN]);
            let n = read_full(&mut src, &mut head).map_err(|e| self.failed(&at, e))?;
            src.unread(&head[..n]);
            let format = detect(&head[..n]);
            if format == Format::Plain {
                return self.plain(&at, &mut src, depth, hint);
            }
            self.segment(&at, format, &mut src, depth)?;
            if !src.skip_zeros().map_err(|e| self.failed(&at, e))? {
                return Ok(());
            }
            at = format!("{name}@{}", src.position());
            hint = None;
            // A chain of many short parts is bounded like entries.
            self.entry(&at)?;
        }
    }

    /// A plain stream: scanned as bytes, and an archive found after a prefix
    /// (a launch script, a binary) is walked too.
    fn plain(
        &mut self,
        at: &str,
        input: &mut dyn Read,
        depth: u32,
        hint: Option<u64>,
    ) -> Result<(), Stop> {
        let mut sniffer = Sniffer::new(input);
        if let Err(e) = (self.leaf)(at, Part::Content, &mut sniffer, hint) {
            return Err(match self.budget.hit() {
                Some(hit) => Stop::Limit {
                    at: at.to_string(),
                    hit,
                },
                None => Stop::Leaf {
                    at: at.to_string(),
                    source: e,
                },
            });
        }
        match sniffer.into_spool() {
            Some((start, file)) => self.embedded(at, start, file, depth),
            None => Ok(()),
        }
    }

    /// One archive or compressed stream of `format` at the start of `src`,
    /// which is left positioned after its end.
    pub(super) fn segment(
        &mut self,
        at: &str,
        format: Format,
        src: &mut Pushback<'_>,
        depth: u32,
    ) -> Result<(), Stop> {
        self.descend(at, depth)?;
        let depth = depth + 1;
        match format {
            Format::Gzip | Format::Bzip2 | Format::Xz | Format::Zstd | Format::Lzma => {
                let (counted, consumed) = Counted::new(&mut *src);
                let members = Members::new(format, BufReader::new(counted))
                    .map_err(|e| self.failed(at, with_format(e, format.name())))?;
                let mut decoded =
                    Metered::new(members, self.budget.clone(), Consumed::Counter(consumed));
                self.stream(at, &mut decoded, depth, None)?;
                let buffered = decoded.into_inner().into_inner();
                let rest = zeroize::Zeroizing::new(buffered.buffer().to_vec());
                drop(buffered);
                src.unread(&rest);
                Ok(())
            }
            Format::Tar => self.tar(at, &mut *src, depth),
            Format::Zip => {
                let file = spool(src).map_err(|e| self.failed(at, e))?;
                self.zip(at, file, depth, true).map(|_| ())
            }
            Format::Ar => self.ar(at, src, depth),
            Format::Rpm => self.rpm(at, src, depth),
            Format::Cpio => self.cpio(at, src, depth),
            Format::SevenZ => Err(Stop::Unreadable {
                at: at.to_string(),
                error: "7z archives are not read (extract it and scan the files)".into(),
            }),
            Format::Plain => unreachable!("plain streams are leaves"),
        }
    }

    /// Hands the stored name of the entry `at` to the callback.
    pub(super) fn entry_name(&mut self, at: &str, stored: &[u8]) -> Result<(), Stop> {
        let mut input = stored;
        (self.leaf)(at, Part::Name, &mut input, Some(stored.len() as u64))
            .map(|_| ())
            .map_err(|source| Stop::Leaf {
                at: at.to_string(),
                source,
            })
    }

    pub(super) fn descend(&self, name: &str, depth: u32) -> Result<(), Stop> {
        self.budget.descend(depth).map_err(|hit| Stop::Limit {
            at: name.to_string(),
            hit,
        })
    }

    pub(super) fn entry(&self, name: &str) -> Result<(), Stop> {
        self.budget.entry().map_err(|hit| Stop::Limit {
            at: name.to_string(),
            hit,
        })
    }

    /// The [`Stop`] for an I/O error at `name`: a limit, if the error is one's
    /// consequence, or unreadable.
    pub(super) fn failed(&self, name: &str, e: io::Error) -> Stop {
        match self.budget.hit() {
            Some(hit) => Stop::Limit {
                at: name.to_string(),
                hit,
            },
            None => Stop::Unreadable {
                at: name.to_string(),
                error: e.to_string(),
            },
        }
    }

    /// A tar archive. Every entry's data is scanned whatever its type: GNU tar
    /// extracts unknown types as files, and sparse files are read expanded.
    fn tar(&mut self, name: &str, input: &mut dyn Read, depth: u32) -> Result<(), Stop> {
        let mut archive = tar::Archive::new(input);
        let entries = archive
            .entries()
            .map_err(|e| self.failed(name, with_format(e, "tar")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| self.failed(name, with_format(e, "tar")))?;
            self.entry(name)?;
            let stored = entry.path_bytes().into_owned();
            let member = format!("{name}!{}", String::from_utf8_lossy(&stored));
            self.entry_name(&member, &stored)?;
            let kind = entry.header().entry_type();
            let size = entry.size();
            if size == 0 && !(kind.is_file() || kind == tar::EntryType::Continuous) {
                continue;
            }
            self.stream(&member, &mut entry, depth, Some(size))?;
        }
        Ok(())
    }
}

/// An I/O error from a decoder or parser, saying which format it was reading.
pub(super) fn with_format(e: io::Error, format: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{format}: {e}"))
}
