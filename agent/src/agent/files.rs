//! The output directory: tmpfs check, atomic writes (`contract::atomic`: temp
//! file created with O_CREAT|O_EXCL|O_NOFOLLOW, then renamed; a directory of
//! files built under a temp name, then exchanged with the old one in one
//! `renameat2`), ownership and mode, and wiping (overwrite with zeros, then
//! unlink) of everything shroud wrote.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use super::render::Rendered;
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

/// A directory of files built under a temporary name, waiting to replace
/// `<dir>/<name>` as one unit.
#[derive(Debug)]
pub struct StagedDir {
    tmp: PathBuf,
    dest: PathBuf,
}

/// What a secret was staged as: one file, or a directory of files.
#[derive(Debug)]
pub enum StagedOutput {
    /// `<dir>/<name>`.
    File(Staged),
    /// `<dir>/<name>/`.
    Dir(StagedDir),
}

/// The output directory and the record of every file shroud put in it.
#[derive(Debug)]
pub struct Output {
    dir: PathBuf,
    uid: Option<u32>,
    gid: Option<u32>,
    mode: u32,
    written: BTreeSet<PathBuf>,
    /// Directories shroud made (staged or in place), removed after their files.
    dirs: BTreeSet<PathBuf>,
}

/// A directory's mode for files of `mode`: searchable where readable, and
/// writable by its owner (who could chmod it anyway) so that it can be renamed
/// and emptied without root.
fn dir_mode(mode: u32) -> u32 {
    mode | ((mode & 0o444) >> 2) | 0o200
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
            dirs: BTreeSet::new(),
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

    /// Builds a new directory holding `files` (name, bytes) under a temporary
    /// name next to `<dir>/<name>`; [`Output::commit_output`] puts it in place.
    pub fn stage_dir(
        &mut self,
        name: &str,
        files: &[(&str, &[u8])],
    ) -> Result<StagedDir, FilesError> {
        let tmp = self
            .dir
            .join(format!(".{name}.tmp-{:016x}", rand::random::<u64>()));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&tmp)
            .map_err(io_err("cannot create", &tmp))?;
        self.dirs.insert(tmp.clone());
        let result = (|| {
            // The directory is private until it is swapped in: files written
            // in it are complete before anyone can reach them.
            for (file, bytes) in files {
                self.write(&tmp.join(file), bytes)?;
            }
            if self.uid.is_some() || self.gid.is_some() {
                std::os::unix::fs::chown(&tmp, self.uid, self.gid)
                    .map_err(io_err("cannot chown", &tmp))?;
            }
            fs::set_permissions(&tmp, fs::Permissions::from_mode(dir_mode(self.mode)))
                .map_err(io_err("cannot chmod", &tmp))
        })();
        if let Err(e) = result {
            self.wipe_dir(&tmp);
            return Err(e);
        }
        Ok(StagedDir {
            dest: self.dir.join(name),
            tmp,
        })
    }

    /// Stages what a secret rendered to, under its name.
    pub fn stage_rendered(&mut self, name: &str, r: &Rendered) -> Result<StagedOutput, FilesError> {
        match r {
            Rendered::File(bytes) => self.stage(Path::new(name), bytes).map(StagedOutput::File),
            Rendered::Dir(files) => {
                let files: Vec<(&str, &[u8])> =
                    files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
                self.stage_dir(name, &files).map(StagedOutput::Dir)
            }
        }
    }

    /// Puts a staged file or directory in place.
    pub fn commit_output(&mut self, staged: StagedOutput) -> Result<(), FilesError> {
        match staged {
            StagedOutput::File(f) => self.commit(f),
            StagedOutput::Dir(d) => self.commit_dir(d),
        }
    }

    /// Puts a staged directory in place: a plain rename the first time, then an
    /// atomic exchange with the directory in place (`renameat2(RENAME_EXCHANGE)`),
    /// so a reader resolving `<dir>/<name>` finds either the old set of files or
    /// the new one, never a mix and never nothing. The old one is then wiped.
    fn commit_dir(&mut self, staged: StagedDir) -> Result<(), FilesError> {
        let StagedDir { tmp, dest } = staged;
        let exists = fs::symlink_metadata(&dest).is_ok();
        let renamed = if exists {
            nix::fcntl::renameat2(
                None,
                tmp.as_path(),
                None,
                dest.as_path(),
                nix::fcntl::RenameFlags::RENAME_EXCHANGE,
            )
            .map_err(io::Error::from)
        } else {
            fs::rename(&tmp, &dest)
        };
        renamed.map_err(io_err("cannot rename", &dest))?;
        let moved: Vec<PathBuf> = self
            .written
            .iter()
            .filter(|p| p.parent() == Some(tmp.as_path()))
            .cloned()
            .collect();
        for p in moved {
            self.written.remove(&p);
            if let Some(file) = p.file_name() {
                self.written.insert(dest.join(file));
            }
        }
        self.dirs.insert(dest);
        if exists {
            // `tmp` now names the old directory (or file).
            self.wipe_dir(&tmp);
        } else {
            self.dirs.remove(&tmp);
        }
        Ok(())
    }

    /// Wipes every file in `path` and removes it; a plain file is wiped as such.
    fn wipe_dir(&mut self, path: &Path) -> bool {
        self.dirs.remove(path);
        match fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return self.wipe(path),
            Err(_) => return true,
        }
        // Emptying needs write permission on the directory (not root).
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o700));
        let mut ok = true;
        if let Ok(entries) = fs::read_dir(path) {
            for e in entries.filter_map(Result::ok) {
                ok &= self.wipe(&e.path());
            }
        }
        match fs::remove_dir(path) {
            Ok(()) => ok,
            Err(e) if e.kind() == io::ErrorKind::NotFound => ok,
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "cannot remove directory");
                false
            }
        }
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

    /// Wipes a file (or a directory of files) by its name in the output directory.
    pub fn wipe_name(&mut self, name: &str) -> bool {
        let p = self.dir.join(name);
        if self.dirs.contains(&p) {
            return self.wipe_dir(&p);
        }
        self.wipe(&p)
    }

    /// Wipes every file shroud wrote, then removes its directories. Returns how
    /// many files.
    pub fn wipe_all(&mut self) -> usize {
        let all: Vec<PathBuf> = self.written.iter().cloned().collect();
        for p in &all {
            self.wipe(p);
        }
        let dirs: Vec<PathBuf> = self.dirs.iter().cloned().collect();
        for d in dirs.iter().rev() {
            self.wipe_dir(d);
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

    #[test]
    fn a_directory_is_replaced_as_one_unit_and_wiped() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("out");
        let mut out = Output::open(&OutputConfig {
            dir: dir.clone(),
            require_tmpfs: false,
            uid: None,
            gid: None,
            mode: 0o440,
        })
        .unwrap();
        let tls = dir.join("tls");
        let st = out
            .stage_dir("tls", &[("tls.crt", b"crt-1"), ("tls.key", b"key-1")])
            .unwrap();
        assert!(!tls.exists());
        out.commit_output(StagedOutput::Dir(st)).unwrap();
        assert_eq!(fs::read(tls.join("tls.key")).unwrap(), b"key-1");
        assert_eq!(
            fs::metadata(&tls).unwrap().permissions().mode() & 0o777,
            0o750
        );
        let old_ino = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&tls).unwrap());
        let st = out
            .stage_dir("tls", &[("tls.crt", b"crt-2"), ("tls.key", b"key-2")])
            .unwrap();
        out.commit_output(StagedOutput::Dir(st)).unwrap();
        assert_eq!(fs::read(tls.join("tls.crt")).unwrap(), b"crt-2");
        assert_eq!(fs::read(tls.join("tls.key")).unwrap(), b"key-2");
        assert_ne!(
            std::os::unix::fs::MetadataExt::ino(&fs::metadata(&tls).unwrap()),
            old_ino,
            "replaced by another directory, not rewritten in place"
        );
        let left: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left.len(), 2, "old directory not removed: {left:?}");
        assert_eq!(out.wipe_all(), 2);
        assert!(!tls.exists());
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
