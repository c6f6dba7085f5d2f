//! A hash-chained JSON-lines file opened for appending: the audit trail and the
//! artifact ledger share it (and [`super::verify`] checks both).

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use serde::Serialize;

use super::record::{seal, sha256_hex};
use super::sink::AuditError;
use super::verify::{verify, Summary, VerifyError};

/// Opens (creating, mode 0600) the chain file at `path` for appending, after
/// checking the chain already in it; returns the file and that chain's state.
pub(crate) fn open_append(path: &Path) -> Result<(File, Summary), AuditError> {
    let open_err = |source| AuditError::Open {
        path: path.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(open_err)?;
    let summary = match verify(BufReader::new(&file)) {
        Ok(s) => s,
        Err(VerifyError::Read(e)) => return Err(open_err(e)),
        Err(VerifyError::Broken(broken)) => {
            return Err(AuditError::Broken {
                path: path.to_path_buf(),
                broken,
            })
        }
    };
    Ok((file, summary))
}

/// Seals `record` (whose `prev` the caller set to `head`) and appends it as one
/// line in one write; returns the new head.
pub(crate) fn append(file: &mut File, record: &impl Serialize) -> std::io::Result<String> {
    let mut line = seal(record);
    let head = sha256_hex(line.as_bytes());
    line.push('\n');
    file.write_all(line.as_bytes())?;
    Ok(head)
}
