//! exec's side of the files it shares with the agent (docs/ARCHITECTURE.md,
//! "Rotation handshake"): its acknowledgement `.shroud/acks/<id>` and the exit
//! marker `.shroud/exited`. Both are written to a temporary name and renamed, so
//! the agent never reads a partial file.

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use rand::Rng as _;

use crate::secrets_source::META_DIR;

/// Directory of acknowledgements inside the secrets directory.
pub const ACKS_DIR: &str = ".shroud/acks";
/// The exit marker inside the secrets directory.
pub const EXITED_FILE: &str = ".shroud/exited";
/// The agent's readiness marker inside the secrets directory.
pub const READY_FILE: &str = ".shroud/ready";

/// Writes `content` to `path` through a temporary file in the same directory
/// (O_EXCL|O_NOFOLLOW, mode 0644) and a rename.
pub fn write_atomically(path: &Path, content: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(
        ".{name}.tmp-{:016x}",
        rand::thread_rng().gen::<u64>()
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(content)?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// This process's acknowledgement file; removed on drop.
#[derive(Debug)]
pub struct Ack {
    path: PathBuf,
    written: Option<u64>,
}

impl Ack {
    /// A new, random id under `<dir>/.shroud/acks/`. Nothing is written yet.
    pub fn new(dir: &Path) -> Ack {
        let id = format!("{:016x}", rand::thread_rng().gen::<u64>());
        Ack {
            path: dir.join(ACKS_DIR).join(id),
            written: None,
        }
    }

    /// Where the acknowledgement is written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records that `generation` is in force. Call only after the `LiveSet` swap.
    pub fn write(&mut self, generation: u64) -> io::Result<()> {
        if self.written == Some(generation) {
            return Ok(());
        }
        if let Some(acks) = self.path.parent() {
            fs::create_dir_all(acks)?;
        }
        write_atomically(&self.path, format!("{generation}\n").as_bytes())?;
        self.written = Some(generation);
        Ok(())
    }
}

impl Drop for Ack {
    fn drop(&mut self) {
        if self.written.is_some() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Writes `<dir>/.shroud/exited` holding `code` (decimal and a newline).
pub fn write_exit_marker(dir: &Path, code: i32) -> io::Result<()> {
    fs::create_dir_all(dir.join(META_DIR))?;
    write_atomically(&dir.join(EXITED_FILE), format!("{code}\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_is_written_replaced_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut ack = Ack::new(dir.path());
        ack.write(3).unwrap();
        let path = ack.path().to_path_buf();
        assert_eq!(fs::read_to_string(&path).unwrap(), "3\n");
        ack.write(4).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "4\n");
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
        drop(ack);
        assert!(!path.exists());
    }

    #[test]
    fn exit_marker_holds_the_code() {
        let dir = tempfile::tempdir().unwrap();
        write_exit_marker(dir.path(), 137).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join(EXITED_FILE)).unwrap(),
            "137\n"
        );
    }
}
