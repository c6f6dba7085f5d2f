//! exec's side of the files it shares with the agent (docs/ARCHITECTURE.md,
//! "Rotation handshake"): its acknowledgement `.shroud/acks/<id>` and the exit
//! marker `.shroud/exited`. Both are written to a temporary name and renamed, so
//! the agent never reads a partial file. The ack file in place is always locked
//! (`flock`, exclusive) by its exec, which is how the agent tells a live exec from
//! the file of one that was killed outright (SIGKILL, OOM) and could not remove it:
//! the kernel drops the lock with the process.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
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
    write_atomically_then(path, content, drop)
}

/// [`write_atomically`], handing the written temporary file to `prepare` before
/// it is renamed into place; returns what `prepare` made of it.
fn write_atomically_then<T>(
    path: &Path,
    content: &[u8],
    prepare: impl FnOnce(File) -> T,
) -> io::Result<T> {
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
        let prepared = prepare(f);
        fs::rename(&tmp, path)?;
        Ok(prepared)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// This process's acknowledgement file, locked while this value lives; removed
/// on drop (before the lock is released, so the agent never sees it unlocked).
#[derive(Debug)]
pub struct Ack {
    path: PathBuf,
    written: Option<u64>,
    lock: Option<Flock<File>>,
}

impl Ack {
    /// A new, random id under `<dir>/.shroud/acks/`. Nothing is written yet.
    pub fn new(dir: &Path) -> Ack {
        let id = format!("{:016x}", rand::thread_rng().gen::<u64>());
        Ack {
            path: dir.join(ACKS_DIR).join(id),
            written: None,
            lock: None,
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
        // Locked before the rename, so the file at the ack path is never
        // unlocked while this exec lives; the previous file's lock goes with it.
        // Best effort: on a filesystem without flock the agent cannot take the
        // probe lock either, and keeps treating the file as a live exec's.
        self.lock = write_atomically_then(&self.path, format!("{generation}\n").as_bytes(), |f| {
            Flock::lock(f, FlockArg::LockExclusiveNonblock)
                .inspect_err(|(_, e)| tracing::debug!(error = %e, "cannot lock the ack file"))
                .ok()
        })?;
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

/// Whether the ack file at `path` was left by an exec that is gone: nobody holds
/// its lock (the probe takes a shared lock and drops it at once). Any doubt (the
/// file cannot be opened, the filesystem has no flock) counts as alive.
pub fn ack_is_stale(path: &Path) -> bool {
    let Ok(f) = File::open(path) else {
        return false;
    };
    Flock::lock(f, FlockArg::LockSharedNonblock).is_ok()
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
        assert!(!ack_is_stale(&path), "locked after each replacement");
        drop(ack);
        assert!(!path.exists());
        // A file nobody locks: what a killed exec leaves behind.
        fs::write(&path, "4\n").unwrap();
        assert!(ack_is_stale(&path));
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
