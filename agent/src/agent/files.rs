//! The output directory: tmpfs check, atomic writes (`contract::atomic`: temp
//! file created with O_CREAT|O_EXCL|O_NOFOLLOW, then renamed), ownership and
//! mode, and wiping (overwrite with zeros, then unlink) of every file shroud wrote.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crate::config::OutputConfig;
use crate::contract::{self, ACKS_DIR, META_DIR};

/// Why the output directory or a file in it could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The directory is on a disk-backed filesystem.
    #[error("[output] dir {dir} is not on tmpfs or ramfs (filesystem magic {magic:#x}); secrets would reach a disk. Mount a tmpfs there or set require_tmpfs = false")]
    NotTmpfs {
        /// The directory.
        dir: PathBuf,
        /// statfs f_type.
        magic: i64,
    },
    /// A filesystem operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> FilesError + 'a {
    move |source| FilesError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

const TMPFS_MAGIC: i64 = 0x0102_1994;
const RAMFS_MAGIC: i64 = 0x8584_58f6;

/// True when `dir` is on tmpfs or ramfs; Err carries the filesystem magic.
pub fn check_tmpfs(dir: &Path) -> Result<(), FilesError> {
    let st =
        nix::sys::statfs::statfs(dir).map_err(|e| io_err("statfs", dir)(io::Error::from(e)))?;
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between libcs
    let magic = st.filesystem_type().0 as i64;
    if magic == TMPFS_MAGIC || magic == RAMFS_MAGIC {
        Ok(())
    } else {
        Err(FilesError::NotTmpfs {
            dir: dir.to_path_buf(),
            magic,
        })
    }
}

/// A file written under a temporary name, waiting to be renamed into place.
pub use contract::Staged;

/// The output directory and the record of every file shroud put in it.
#[derive(Debug)]
pub struct Output {
    dir: PathBuf,
    uid: Option<u32>,
    gid: Option<u32>,
    mode: u32,
    written: BTreeSet<PathBuf>,
}

impl Output {
    /// Creates the directory (and `.shroud/`, `.shroud/acks/`) and checks it is
    /// memory-backed.
    pub fn open(cfg: &OutputConfig) -> Result<Self, FilesError> {
        fs::create_dir_all(&cfg.dir).map_err(io_err("cannot create", &cfg.dir))?;
        if cfg.require_tmpfs {
            check_tmpfs(&cfg.dir)?;
        }
        let meta = cfg.dir.join(META_DIR);
        fs::create_dir_all(&meta).map_err(io_err("cannot create", &meta))?;
        let acks = cfg.dir.join(ACKS_DIR);
        fs::create_dir_all(&acks).map_err(io_err("cannot create", &acks))?;
        // Execs in other containers (other uids) drop their acks here; the sticky
        // bit keeps them from removing each other's.
        fs::set_permissions(&acks, fs::Permissions::from_mode(0o1777))
            .map_err(io_err("cannot chmod", &acks))?;
        let out = Output {
            dir: cfg.dir.clone(),
            uid: cfg.uid,
            gid: cfg.gid,
            mode: cfg.mode,
            written: BTreeSet::new(),
        };
        contract::clear_markers(&out.dir);
        Ok(out)
    }

    /// The output directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `bytes` to a new temporary file next to `dest` (a file name in the
    /// output directory, or a path inside it), with the configured owner and mode.
    pub fn stage(&mut self, dest: &Path, bytes: &[u8]) -> Result<Staged, FilesError> {
        let dest = self.dir.join(dest);
        let staged = Staged::create(&dest, 0o600).map_err(io_err("cannot create", &dest))?;
        let tmp = staged.tmp().to_path_buf();
        self.written.insert(tmp.clone());
        let result = (|| {
            let mut f = staged.file();
            f.write_all(bytes)?;
            if self.uid.is_some() || self.gid.is_some() {
                std::os::unix::fs::fchown(f, self.uid, self.gid)?;
            }
            f.set_permissions(fs::Permissions::from_mode(self.mode))
        })();
        if let Err(e) = result {
            drop(staged);
            self.wipe(&tmp);
            return Err(io_err("cannot write", &tmp)(e));
        }
        Ok(staged)
    }

    /// Renames a staged file into place.
    pub fn commit(&mut self, staged: Staged) -> Result<(), FilesError> {
        let (tmp, dest) = (staged.tmp().to_path_buf(), staged.dest().to_path_buf());
        staged.commit().map_err(io_err("cannot rename", &dest))?;
        self.written.remove(&tmp);
        self.written.insert(dest);
        Ok(())
    }

    /// Stages and commits in one step.
    pub fn write(&mut self, dest: &Path, bytes: &[u8]) -> Result<(), FilesError> {
        let staged = self.stage(dest, bytes)?;
        self.commit(staged)
    }

    /// Overwrites one file with zeros and removes it. Errors are logged: wiping
    /// goes on with the other files.
    pub fn wipe(&mut self, path: &Path) -> bool {
        self.written.remove(path);
        let ok = zero_fill(path);
        match fs::remove_file(path) {
            Ok(()) => ok,
            Err(e) if e.kind() == io::ErrorKind::NotFound => ok,
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "cannot remove file");
                false
            }
        }
    }

    /// Wipes a file by its name in the output directory.
    pub fn wipe_name(&mut self, name: &str) -> bool {
        let p = self.dir.join(name);
        self.wipe(&p)
    }

    /// Wipes every file shroud wrote. Returns how many.
    pub fn wipe_all(&mut self) -> usize {
        let all: Vec<PathBuf> = self.written.iter().cloned().collect();
        for p in &all {
            self.wipe(p);
        }
        all.len()
    }
}

/// Overwrites the file's current length with zeros, in place (not following a
/// symlink someone swapped in). On tmpfs this overwrites the very pages readers
/// map; there is no journal or block remapping to defeat it.
fn zero_fill(path: &Path) -> bool {
    let open = || {
        OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
    };
    let f: File = match open() {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return true,
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            // Mode 0400 and not root: make it writable for the owner first.
            if fs::set_permissions(path, fs::Permissions::from_mode(0o600)).is_err() {
                return false;
            }
            match open() {
                Ok(f) => f,
                Err(_) => return false,
            }
        }
        Err(_) => return false,
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let zeros = vec![0u8; 64 * 1024];
    let mut left = len;
    let mut w = &f;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        if w.write_all(&zeros[..n]).is_err() {
            return false;
        }
        left -= n as u64;
    }
    let _ = f.sync_data();
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_commit_wipe() {
        let d = tempfile::tempdir().unwrap();
        let cfg = OutputConfig {
            dir: d.path().join("out"),
            require_tmpfs: false,
            uid: None,
            gid: None,
            mode: 0o400,
        };
        let mut out = Output::open(&cfg).unwrap();
        let st = out.stage(Path::new("a"), b"value-1").unwrap();
        assert!(!cfg.dir.join("a").exists());
        out.commit(st).unwrap();
        let p = cfg.dir.join("a");
        assert_eq!(fs::read(&p).unwrap(), b"value-1");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o400
        );
        out.write(Path::new(".shroud/values"), b"v").unwrap();
        assert_eq!(out.wipe_all(), 2);
        assert!(!p.exists());
        assert!(!cfg.dir.join(".shroud/values").exists());
    }

    #[test]
    fn owner_and_mode_are_applied() {
        if !nix::unistd::geteuid().is_root() {
            // chown to another user needs root; CI and scripts/test run as root.
            panic!("this test needs root (scripts/test runs as root)");
        }
        use std::os::unix::fs::MetadataExt as _;
        let d = tempfile::tempdir().unwrap();
        let cfg = OutputConfig {
            dir: d.path().join("out"),
            require_tmpfs: false,
            uid: Some(65534),
            gid: Some(65534),
            mode: 0o440,
        };
        let mut out = Output::open(&cfg).unwrap();
        out.write(Path::new("f"), b"v").unwrap();
        let m = fs::metadata(cfg.dir.join("f")).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o777), (65534, 65534, 0o440));
        assert_eq!(out.wipe_all(), 1);
    }

    fn output(dir: &Path) -> Output {
        Output::open(&OutputConfig {
            dir: dir.to_path_buf(),
            require_tmpfs: false,
            uid: None,
            gid: None,
            mode: 0o400,
        })
        .unwrap()
    }

    #[test]
    fn stage_replaces_a_symlink_in_the_way_and_never_writes_through_it() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("target");
        fs::write(&target, b"x").unwrap();
        let dir = d.path().join("out");
        let mut out = output(&dir);
        std::os::unix::fs::symlink(&target, dir.join("s")).unwrap();
        out.write(Path::new("s"), b"secret").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"x", "written through the link");
        let m = fs::symlink_metadata(dir.join("s")).unwrap();
        assert!(m.file_type().is_file(), "the link itself was replaced");
        assert_eq!(fs::read(dir.join("s")).unwrap(), b"secret");
    }

    #[test]
    fn wipe_refuses_to_follow_a_symlink() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("target");
        fs::write(&target, b"x").unwrap();
        let dir = d.path().join("out");
        let _out = output(&dir);
        std::os::unix::fs::symlink(&target, dir.join("s")).unwrap();
        assert!(!zero_fill(&dir.join("s")));
        assert_eq!(fs::read(&target).unwrap(), b"x");
    }

    /// The filesystem type of `path` according to /proc/self/mounts (the longest
    /// mount point containing it): a source independent of statfs.
    fn mount_type(path: &Path) -> String {
        let path = fs::canonicalize(path).unwrap();
        let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
        mounts
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                Some((PathBuf::from(f.get(1)?), f.get(2)?.to_string()))
            })
            .filter(|(mp, _)| path.starts_with(mp))
            .max_by_key(|(mp, _)| mp.as_os_str().len())
            .map(|(_, t)| t)
            .unwrap()
    }

    #[test]
    fn tmpfs_check_agrees_with_the_mount_table() {
        let shm = Path::new("/dev/shm");
        assert_eq!(
            mount_type(shm),
            "tmpfs",
            "this test needs /dev/shm on tmpfs"
        );
        check_tmpfs(shm).unwrap();
        let disk = Path::new(env!("CARGO_MANIFEST_DIR"));
        let fstype = mount_type(disk);
        assert!(
            !matches!(fstype.as_str(), "tmpfs" | "ramfs"),
            "this test needs the source tree on a disk filesystem, not {fstype}"
        );
        let e = check_tmpfs(disk).unwrap_err();
        assert!(e.to_string().contains("not on tmpfs"), "{e}");
    }
}
