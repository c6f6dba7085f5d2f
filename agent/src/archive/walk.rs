//! The recursive walk of one file: detect each stream's format, open it, and
//! hand every leaf to the caller.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::rc::Rc;

use super::format::{detect, Format, SNIFF_LEN};
use super::limits::{Budget, Consumed, Counted, LimitHit, Limits, Metered};
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
    leaf: F,
    budget: Rc<Budget>,
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
                self.zip(name, BufReader::new(file), 1)
            }
            format => self.known(name, format, &mut file, 0, size),
        }
    }

    /// A stream of unknown format at `depth`.
    fn stream(
        &mut self,
        name: &str,
        input: &mut dyn Read,
        depth: u32,
        hint: Option<u64>,
    ) -> Result<(), Stop> {
        let mut head = zeroize::Zeroizing::new(vec![0u8; SNIFF_LEN]);
        let n = read_full(input, &mut head).map_err(|e| self.failed(name, e))?;
        head.truncate(n);
        let format = detect(&head);
        let mut chained = io::Cursor::new(&head[..]).chain(input);
        self.known(name, format, &mut chained, depth, hint)
    }

    /// A stream of known format at `depth` (0: the file itself).
    fn known(
        &mut self,
        name: &str,
        format: Format,
        input: &mut dyn Read,
        depth: u32,
        hint: Option<u64>,
    ) -> Result<(), Stop> {
        if format == Format::Plain {
            return match (self.leaf)(name, Part::Content, input, hint) {
                Ok(_) => Ok(()),
                Err(e) => Err(match self.budget.hit() {
                    Some(hit) => Stop::Limit {
                        at: name.to_string(),
                        hit,
                    },
                    None => Stop::Leaf {
                        at: name.to_string(),
                        source: e,
                    },
                }),
            };
        }
        self.descend(name, depth)?;
        let depth = depth + 1;
        let (mut counted, consumed) = Counted::new(input);
        let decoded: Box<dyn Read + '_> = match format {
            Format::Gzip => Box::new(flate2::read::MultiGzDecoder::new(counted)),
            Format::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(counted)),
            Format::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(counted)),
            Format::Zstd => Box::new(
                zstd::stream::read::Decoder::new(counted).map_err(|e| self.failed(name, e))?,
            ),
            Format::Tar => return self.tar(name, counted, depth),
            Format::Zip => {
                let file = spool(&mut counted).map_err(|e| self.failed(name, e))?;
                return self.zip(name, file, depth);
            }
            Format::Plain => unreachable!("handled above"),
        };
        let mut r = Metered::new(decoded, self.budget.clone(), Consumed::Counter(consumed));
        self.stream(name, &mut r, depth, None)
    }

    /// Hands the stored name of the entry `at` to the callback.
    fn entry_name(&mut self, at: &str, stored: &[u8]) -> Result<(), Stop> {
        let mut input = stored;
        (self.leaf)(at, Part::Name, &mut input, Some(stored.len() as u64))
            .map(|_| ())
            .map_err(|source| Stop::Leaf {
                at: at.to_string(),
                source,
            })
    }

    fn descend(&self, name: &str, depth: u32) -> Result<(), Stop> {
        self.budget.descend(depth).map_err(|hit| Stop::Limit {
            at: name.to_string(),
            hit,
        })
    }

    fn entry(&self, name: &str) -> Result<(), Stop> {
        self.budget.entry().map_err(|hit| Stop::Limit {
            at: name.to_string(),
            hit,
        })
    }

    /// The [`Stop`] for an I/O error at `name`: a limit, if the error is one's
    /// consequence, or unreadable.
    fn failed(&self, name: &str, e: io::Error) -> Stop {
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

    fn tar(&mut self, name: &str, input: impl Read, depth: u32) -> Result<(), Stop> {
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
            if !(kind.is_file() || kind == tar::EntryType::Continuous) {
                continue;
            }
            let size = entry.size();
            self.stream(&member, &mut entry, depth, Some(size))?;
        }
        Ok(())
    }

    fn zip<R: Read + Seek>(&mut self, name: &str, input: R, depth: u32) -> Result<(), Stop> {
        let zip_err = |w: &Self, at: &str, e: zip::result::ZipError| match e {
            zip::result::ZipError::Io(io) => w.failed(at, io),
            other => Stop::Unreadable {
                at: at.to_string(),
                error: format!("zip: {other}"),
            },
        };
        let mut archive = zip::ZipArchive::new(input).map_err(|e| zip_err(self, name, e))?;
        for i in 0..archive.len() {
            self.entry(name)?;
            let stored = archive.name_for_index(i).map(str::to_owned);
            let at = match &stored {
                Some(n) => format!("{name}!{n}"),
                None => name.to_string(),
            };
            if let Some(n) = &stored {
                self.entry_name(&at, n.as_bytes())?;
            }
            let mut file = archive.by_index(i).map_err(|e| zip_err(self, &at, e))?;
            if file.is_dir() {
                continue;
            }
            let size = file.size();
            if file.compression() == zip::CompressionMethod::Stored {
                self.stream(&at, &mut file, depth, Some(size))?;
            } else {
                let consumed = Consumed::Fixed(file.compressed_size());
                let mut r = Metered::new(&mut file, self.budget.clone(), consumed);
                self.stream(&at, &mut r, depth, Some(size))?;
            }
        }
        Ok(())
    }
}

/// An I/O error from a decoder or parser, saying which format it was reading.
fn with_format(e: io::Error, format: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{format}: {e}"))
}
