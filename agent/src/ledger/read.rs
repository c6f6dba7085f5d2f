//! Loading a ledger for `shroud verify`: the chain first, then each record.

use std::fs::File;
use std::io::{BufRead as _, BufReader, Seek as _};
use std::path::{Path, PathBuf};

use super::Entry;
use crate::audit::{verify, Broken, VerifyError};

/// Why a ledger cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The file could not be read.
    #[error("cannot read ledger {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The hash chain is broken: records were edited, removed, inserted or moved.
    #[error("ledger {path} is broken at {broken}")]
    Broken {
        /// The file.
        path: PathBuf,
        /// Where and why.
        broken: Broken,
    },
    /// An intact record that is not an artifact record.
    #[error("ledger {path}: line {line} is not an artifact record: {reason}")]
    Record {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Checks the chain of the ledger at `path` and returns its entries in order.
pub fn load(path: &Path) -> Result<Vec<Entry>, LedgerError> {
    let read = |source| LedgerError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(read)?;
    match verify(BufReader::new(&file)) {
        Ok(_) => {}
        Err(VerifyError::Read(e)) => return Err(read(e)),
        Err(VerifyError::Broken(broken)) => {
            return Err(LedgerError::Broken {
                path: path.to_path_buf(),
                broken,
            })
        }
    }
    file.rewind().map_err(read)?;
    let mut entries = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(read)?;
        let record = |reason: String| LedgerError::Record {
            path: path.to_path_buf(),
            line: i as u64 + 1,
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| record(e.to_string()))?;
        if value.get("event").and_then(|e| e.as_str()) != Some("artifact") {
            return Err(record("its event is not \"artifact\"".into()));
        }
        entries.push(serde_json::from_value(value).map_err(|e| record(e.to_string()))?);
    }
    Ok(entries)
}
