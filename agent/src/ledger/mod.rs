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
use std::path::Path;

use crate::audit::AuditError;

/// A ledger file opened for appending.
#[derive(Debug)]
pub struct Ledger {
    file: File,
    seq: u64,
    head: String,
}

impl Ledger {
    /// Opens (creating it and its directory) the ledger at `path`; refuses one
    /// whose chain is broken.
    pub fn open(path: &Path) -> Result<Ledger, AuditError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| AuditError::Open {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let (file, summary) = crate::audit::chain::open_append(path)?;
        Ok(Ledger {
            file,
            seq: summary.records,
            head: summary.head,
        })
    }

    /// Appends `entry` as the next record.
    pub fn append(&mut self, entry: &Entry) -> std::io::Result<()> {
        let record = entry.record(self.seq, &self.head);
        self.head = crate::audit::chain::append(&mut self.file, &record)?;
        self.seq += 1;
        Ok(())
    }

    /// Flushes the file to disk.
    pub fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
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
