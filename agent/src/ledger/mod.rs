//! The artifact ledger: one JSON line per artifact that passed `shroud scan` and
//! was signed with a transit key, hash-chained exactly like the audit trail
//! (`seq`, `prev`, `hash`; checked by [`crate::audit::verify`]).
//!
//! The signature covers [`signed_message`]: the artifact's name, its SHA-256,
//! the time and the signing identity, so none of them can be changed without
//! Vault noticing; the chain makes removing, reordering or editing records
//! visible.

mod entry;
mod read;

pub use entry::{signed_message, Entry, Identity};
pub use read::{load, LedgerError};

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::audit::AuditError;

/// A ledger to append to. An existing file is opened (and its chain checked) by
/// [`Ledger::open`]; a missing one is created, with its directory, by the first
/// [`Ledger::append`], so a scan that signs nothing leaves no file behind.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    opened: Option<Opened>,
}

/// The open file and the chain's state after its last record.
#[derive(Debug)]
struct Opened {
    file: File,
    seq: u64,
    head: String,
}

impl Opened {
    fn open(path: &Path) -> Result<Opened, AuditError> {
        let (file, summary) = crate::audit::chain::open_append(path)?;
        Ok(Opened {
            file,
            seq: summary.records,
            head: summary.head,
        })
    }
}

impl Ledger {
    /// The ledger at `path`: opened for appending if it exists (a broken chain
    /// is refused), to be created on the first append if not.
    pub fn open(path: &Path) -> Result<Ledger, AuditError> {
        let opened = match path.symlink_metadata() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            _ => Some(Opened::open(path)?),
        };
        Ok(Ledger {
            path: path.to_path_buf(),
            opened,
        })
    }

    /// Appends `entry` as the next record, creating the file (and its
    /// directory) first if it does not exist yet.
    pub fn append(&mut self, entry: &Entry) -> Result<(), AuditError> {
        let opened = match &mut self.opened {
            Some(opened) => opened,
            None => {
                if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| AuditError::Open {
                        path: dir.to_path_buf(),
                        source,
                    })?;
                }
                self.opened.insert(Opened::open(&self.path)?)
            }
        };
        let record = entry.record(opened.seq, &opened.head);
        opened.head = crate::audit::chain::append(&mut opened.file, &record).map_err(|source| {
            AuditError::Write {
                path: self.path.clone(),
                source,
            }
        })?;
        opened.seq += 1;
        Ok(())
    }

    /// Flushes the file to disk (nothing to do when nothing was appended).
    pub fn sync(&self) -> std::io::Result<()> {
        match &self.opened {
            Some(opened) => opened.file.sync_data(),
            None => Ok(()),
        }
    }
}

/// SHA-256 (lowercase hex) of everything `input` yields.
pub fn sha256_of(input: &mut impl std::io::Read) -> std::io::Result<String> {
    use sha2::{Digest as _, Sha256};
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match input.read(&mut buf) {
            Ok(0) => return Ok(hex::encode(hasher.finalize())),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
