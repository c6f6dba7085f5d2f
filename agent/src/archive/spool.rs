//! A zip must be read from its end (the central directory), so a zip found inside
//! another archive is first copied into an unnamed temporary file (`$TMPDIR`,
//! unlinked from the start, gone when closed). Memory stays flat whatever its size.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek as _, SeekFrom};

/// Copies `input` to a new unnamed temporary file, rewound.
pub(crate) fn spool(input: &mut dyn Read) -> io::Result<BufReader<File>> {
    let mut file = tempfile::tempfile()?;
    io::copy(input, &mut file)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(BufReader::new(file))
}
