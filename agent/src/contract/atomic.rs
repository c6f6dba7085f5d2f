//! The one atomic write: a new temporary file next to the destination, created
//! with `O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC` (nothing planted there is followed
//! or reused), filled, then renamed over the destination. The temporary name is
//! a dot-file, which every reader of the directory skips.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

/// A temporary file next to its destination, waiting to be renamed over it.
#[derive(Debug)]
pub struct Staged {
    file: File,
    tmp: PathBuf,
    dest: PathBuf,
}

impl Staged {
    /// Creates `.<name>.tmp-<random>` next to `dest`, empty, with `mode`.
    pub fn create(dest: &Path, mode: u32) -> io::Result<Staged> {
        let dir = dest.parent().unwrap_or(Path::new("."));
        let name = dest.file_name().unwrap_or_default().to_string_lossy();
        let tmp = dir.join(format!(".{name}.tmp-{:016x}", rand::random::<u64>()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        Ok(Staged {
            file,
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    /// The open temporary file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The temporary file's path.
    pub fn tmp(&self) -> &Path {
        &self.tmp
    }

    /// Where it goes.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Renames the file into place; returns the still-open file.
    pub fn commit(self) -> io::Result<File> {
        self.commit_with(|f| f)
    }

    /// Hands the open file to `prepare` (e.g. to lock it), then renames it into
    /// place, so the file at `dest` is prepared from its first moment.
    pub fn commit_with<T>(self, prepare: impl FnOnce(File) -> T) -> io::Result<T> {
        let prepared = prepare(self.file);
        fs::rename(&self.tmp, &self.dest)?;
        Ok(prepared)
    }
}

/// Writes `content` to `path` through a [`Staged`] file with `mode`; on failure
/// the temporary file is removed. Returns the open file (see
/// [`Staged::commit_with`] for `prepare`).
pub fn write_atomically<T>(
    path: &Path,
    content: &[u8],
    mode: u32,
    prepare: impl FnOnce(File) -> T,
) -> io::Result<T> {
    let staged = Staged::create(path, mode)?;
    let tmp = staged.tmp().to_path_buf();
    let result = (|| {
        (&staged.file).write_all(content)?;
        staged.commit_with(prepare)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        fs::write(&p, "old").unwrap();
        write_atomically(&p, b"new", 0o640, drop).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn staged_file_is_invisible_until_committed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        let staged = Staged::create(&p, 0o600).unwrap();
        staged.file().write_all(b"v").unwrap();
        assert!(!p.exists());
        assert!(staged
            .tmp()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".f.tmp-"));
        staged.commit().unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"v");
    }

    #[test]
    fn failed_rename_removes_the_temporary() {
        let d = tempfile::tempdir().unwrap();
        // A directory in the way makes the rename fail.
        let p = d.path().join("dir");
        fs::create_dir(&p).unwrap();
        fs::write(p.join("x"), "").unwrap();
        assert!(write_atomically(&p, b"v", 0o600, drop).is_err());
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
