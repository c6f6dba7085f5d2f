//! The output directory, held as a descriptor: opened once with
//! `O_DIRECTORY|O_NOFOLLOW`, and every create, rename, wipe and unlink done
//! relative to it (`openat`, `renameat`, `unlinkat`), so a directory moved
//! aside or replaced by a symlink never redirects a secret elsewhere. Before
//! each publication [`Output::check`] re-reads the filesystem type (`fstatfs`)
//! and compares the configured path with the descriptor: a deleted directory is
//! created again, a replaced one refuses every write. Files are written to a
//! temp name (`O_CREAT|O_EXCL|O_NOFOLLOW`) and renamed; a directory of files
//! (a pki certificate) is built under a temp name and exchanged with the one in
//! place in one `renameat2`. Wiping overwrites with zeros, then unlinks, every
//! file and directory shroud wrote, through the descriptor.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, renameat, renameat2, AtFlags, OFlag, RenameFlags};
use nix::sys::stat::{fchmodat, fstat, mkdirat, FchmodatFlags, Mode};
use nix::unistd::{unlinkat, UnlinkatFlags};

use super::render::Rendered;
use crate::config::OutputConfig;
use crate::contract::{ACKS_DIR, EXITED_FILE, META_DIR, READY_FILE};

/// Takes ownership of a descriptor that `open`/`openat` just returned (nix 0.29
/// hands out raw descriptors): the one place this module needs `unsafe`.
fn owned(raw: std::os::fd::RawFd) -> OwnedFd {
    // SAFETY: every caller passes the descriptor open(2)/openat(2) returned a
    // moment before; nothing else holds or closes it, so it gets one owner.
    unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) }
}

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
    /// The configured path no longer leads to the directory shroud holds open
    /// (replaced by a symlink or another directory).
    #[error("[output] dir {dir} was replaced ({now}); nothing is published there until the original directory is back, and its files stay where the agent opened them")]
    Replaced {
        /// The directory.
        dir: PathBuf,
        /// What is at the path now.
        now: &'static str,
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

fn errno_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(Errno) -> FilesError + 'a {
    move |e| io_err(what, path)(io::Error::from(e))
}

const TMPFS_MAGIC: i64 = 0x0102_1994;
const RAMFS_MAGIC: i64 = 0x8584_58f6;

/// Ok when `dir` is on tmpfs or ramfs; Err carries the filesystem magic.
pub fn check_tmpfs(dir: &Path) -> Result<(), FilesError> {
    let f = File::open(dir).map_err(io_err("cannot open", dir))?;
    check_tmpfs_fd(&OwnedFd::from(f), dir)
}

/// Ok when the filesystem `fd` is on is tmpfs or ramfs; Err carries the magic.
pub(crate) fn check_tmpfs_fd(fd: &OwnedFd, dir: &Path) -> Result<(), FilesError> {
    let st = nix::sys::statfs::fstatfs(fd).map_err(errno_err("statfs", dir))?;
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
/// Both names are relative to the output directory.
#[derive(Debug)]
pub struct Staged {
    tmp: PathBuf,
    dest: PathBuf,
}

/// A directory of files built under a temporary name, waiting to replace
/// `<dir>/<name>` as one unit. Both names are relative to the output directory.
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

/// A directory's mode for files of `mode`: searchable where readable, and
/// writable by its owner (who could chmod it anyway) so that it can be renamed
/// and emptied without root.
fn dir_mode(mode: u32) -> u32 {
    mode | ((mode & 0o444) >> 2) | 0o200
}

/// What [`Output::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirState {
    /// The path still leads to the directory held open.
    Same,
    /// The directory was gone and has been created again, empty: everything
    /// must be published again.
    Recreated,
}

/// The output directory and the record of every file shroud put in it.
#[derive(Debug)]
pub struct Output {
    dir: PathBuf,
    fd: OwnedFd,
    /// (st_dev, st_ino) of the directory held open.
    id: (u64, u64),
    require_tmpfs: bool,
    uid: Option<u32>,
    gid: Option<u32>,
    mode: u32,
    /// Relative to the directory.
    written: BTreeSet<PathBuf>,
    /// Directories shroud made (staged or in place), relative; removed after
    /// their files.
    dirs: BTreeSet<PathBuf>,
}

/// Opens `dir` (creating it) as a directory descriptor and makes `.shroud/`
/// and `.shroud/acks/` in it.
fn open_dir(cfg: &OutputConfig) -> Result<(OwnedFd, (u64, u64)), FilesError> {
    let dir = &cfg.dir;
    fs::create_dir_all(dir).map_err(io_err("cannot create", dir))?;
    let raw = nix::fcntl::open(
        dir,
        OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno_err("cannot open", dir))?;
    let fd = owned(raw);
    if cfg.require_tmpfs {
        check_tmpfs_fd(&fd, dir)?;
    }
    for sub in [META_DIR, ACKS_DIR] {
        match mkdirat(Some(fd.as_raw_fd()), sub, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(errno_err("cannot create", &dir.join(sub))(e)),
        }
    }
    // Execs in other containers (other uids) drop their acks here; the sticky
    // bit keeps them from removing each other's.
    fchmodat(
        Some(fd.as_raw_fd()),
        ACKS_DIR,
        Mode::from_bits_truncate(0o1777),
        FchmodatFlags::NoFollowSymlink,
    )
    .or_else(|e| {
        // Linux has no lchmod: a plain chmod of what is a directory we just made.
        if e == Errno::EOPNOTSUPP || e == Errno::ENOTSUP {
            fchmodat(
                Some(fd.as_raw_fd()),
                ACKS_DIR,
                Mode::from_bits_truncate(0o1777),
                FchmodatFlags::FollowSymlink,
            )
        } else {
            Err(e)
        }
    })
    .map_err(errno_err("cannot chmod", &dir.join(ACKS_DIR)))?;
    let st = fstat(fd.as_raw_fd()).map_err(errno_err("cannot stat", dir))?;
    #[allow(clippy::unnecessary_cast)] // st_dev/st_ino widths differ between libcs
    let id = (st.st_dev as u64, st.st_ino as u64);
    Ok((fd, id))
}

impl Output {
    /// Creates the directory (and `.shroud/`, `.shroud/acks/`), holds it open
    /// and checks it is memory-backed.
    pub fn open(cfg: &OutputConfig) -> Result<Self, FilesError> {
        let (fd, id) = open_dir(cfg)?;
        let out = Output {
            dir: cfg.dir.clone(),
            fd,
            id,
            require_tmpfs: cfg.require_tmpfs,
            uid: cfg.uid,
            gid: cfg.gid,
            mode: cfg.mode,
            written: BTreeSet::new(),
            dirs: BTreeSet::new(),
        };
        // A stale ready marker from an earlier agent would lie to probes, and a
        // stale exit marker would make a restarted agent (a native sidecar is
        // restarted when it exits while the pod lives) shut down at once.
        let _ = out.unlink(Path::new(READY_FILE));
        let _ = out.unlink(Path::new(EXITED_FILE));
        Ok(out)
    }

    /// The output directory's configured path.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Before a publication: the filesystem is still memory-backed, and the
    /// configured path still leads to the directory held open. When the path
    /// is gone (deleted, or moved away), what shroud wrote there is wiped
    /// through the old descriptor and the directory is created again
    /// ([`DirState::Recreated`]: publish everything again). When something
    /// else is at the path, [`FilesError::Replaced`].
    pub fn check(&mut self, cfg: &OutputConfig) -> Result<DirState, FilesError> {
        if self.require_tmpfs {
            check_tmpfs_fd(&self.fd, &self.dir)?;
        }
        match fs::symlink_metadata(&self.dir) {
            Ok(m) if m.is_dir() && (m.dev(), m.ino()) == self.id => Ok(DirState::Same),
            Ok(m) => Err(FilesError::Replaced {
                dir: self.dir.clone(),
                now: if m.file_type().is_symlink() {
                    "now a symlink"
                } else if m.is_dir() {
                    "now another directory"
                } else {
                    "now not a directory"
                },
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.wipe_all();
                let (fd, id) = open_dir(cfg)?;
                self.fd = fd;
                self.id = id;
                Ok(DirState::Recreated)
            }
            Err(e) => Err(io_err("cannot stat", &self.dir)(e)),
        }
    }

    /// Writes `bytes` to a new temporary file next to `dest` (a file name in the
    /// output directory, or a path inside it), with the configured owner and mode.
    pub fn stage(&mut self, dest: &Path, bytes: &[u8]) -> Result<Staged, FilesError> {
        let parent = dest.parent().unwrap_or(Path::new(""));
        let base = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = parent.join(format!(".{base}.tmp-{:016x}", rand::random::<u64>()));
        let shown = self.dir.join(&tmp);
        let raw = openat(
            Some(self.fd.as_raw_fd()),
            &tmp,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(errno_err("cannot create", &shown))?;
        let mut f = File::from(owned(raw));
        self.written.insert(tmp.clone());
        let result = (|| {
            f.write_all(bytes)?;
            if self.uid.is_some() || self.gid.is_some() {
                std::os::unix::fs::fchown(&f, self.uid, self.gid)?;
            }
            use std::os::unix::fs::PermissionsExt as _;
            f.set_permissions(fs::Permissions::from_mode(self.mode))
        })();
        if let Err(e) = result {
            drop(f);
            self.wipe(&tmp);
            return Err(io_err("cannot write", &shown)(e));
        }
        Ok(Staged {
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    /// Renames a staged file into place.
    pub fn commit(&mut self, staged: Staged) -> Result<(), FilesError> {
        let fd = Some(self.fd.as_raw_fd());
        if let Err(e) = renameat(fd, &staged.tmp, fd, &staged.dest) {
            self.wipe(&staged.tmp);
            return Err(errno_err("cannot rename", &self.dir.join(&staged.dest))(e));
        }
        self.written.remove(&staged.tmp);
        self.written.insert(staged.dest);
        Ok(())
    }

    /// Stages and commits in one step.
    pub fn write(&mut self, dest: &Path, bytes: &[u8]) -> Result<(), FilesError> {
        let staged = self.stage(dest, bytes)?;
        self.commit(staged)
    }

    /// Builds a new directory holding `files` (name, bytes) under a temporary
    /// name next to `<dir>/<name>`; [`Output::commit_output`] puts it in place.
    pub fn stage_dir(
        &mut self,
        name: &str,
        files: &[(&str, &[u8])],
    ) -> Result<StagedDir, FilesError> {
        let tmp = PathBuf::from(format!(".{name}.tmp-{:016x}", rand::random::<u64>()));
        let shown = self.dir.join(&tmp);
        let fd = Some(self.fd.as_raw_fd());
        mkdirat(fd, &tmp, Mode::from_bits_truncate(0o700))
            .map_err(errno_err("cannot create", &shown))?;
        self.dirs.insert(tmp.clone());
        let result = (|| {
            // The directory is private until it is swapped in: files written
            // in it are complete before anyone can reach them.
            for (file, bytes) in files {
                self.write(&tmp.join(file), bytes)?;
            }
            if self.uid.is_some() || self.gid.is_some() {
                nix::unistd::fchownat(
                    fd,
                    &tmp,
                    self.uid.map(nix::unistd::Uid::from_raw),
                    self.gid.map(nix::unistd::Gid::from_raw),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(errno_err("cannot chown", &shown))?;
            }
            fchmodat(
                fd,
                &tmp,
                Mode::from_bits_truncate(dir_mode(self.mode)),
                FchmodatFlags::FollowSymlink,
            )
            .map_err(errno_err("cannot chmod", &shown))
        })();
        if let Err(e) = result {
            self.wipe_dir(&tmp);
            return Err(e);
        }
        Ok(StagedDir {
            tmp,
            dest: PathBuf::from(name),
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
        let fd = Some(self.fd.as_raw_fd());
        let exists = nix::sys::stat::fstatat(fd, &dest, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok();
        let renamed = if exists {
            renameat2(fd, &tmp, fd, &dest, RenameFlags::RENAME_EXCHANGE)
        } else {
            renameat(fd, &tmp, fd, &dest)
        };
        if let Err(e) = renamed {
            self.wipe_dir(&tmp);
            return Err(errno_err("cannot rename", &self.dir.join(&dest))(e));
        }
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

    /// Wipes every file in directory `rel` and removes it; a plain file is
    /// wiped as such.
    fn wipe_dir(&mut self, rel: &Path) -> bool {
        self.dirs.remove(rel);
        let fd = Some(self.fd.as_raw_fd());
        match nix::sys::stat::fstatat(fd, rel, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {}
            Ok(_) => return self.wipe(rel),
            Err(_) => return true,
        }
        // Emptying needs write permission on the directory (not root).
        let _ = fchmodat(
            fd,
            rel,
            Mode::from_bits_truncate(0o700),
            FchmodatFlags::FollowSymlink,
        );
        let mut ok = true;
        // Listed through a descriptor of the directory itself, opened relative
        // to the output directory's (nix's `dir` feature is not built).
        if let Ok(raw) = openat(
            fd,
            rel,
            OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            let d = owned(raw);
            let names: Vec<_> = fs::read_dir(format!("/proc/self/fd/{}", d.as_raw_fd()))
                .map(|it| it.filter_map(Result::ok).map(|e| e.file_name()).collect())
                .unwrap_or_default();
            for n in names {
                ok &= self.wipe(&rel.join(n));
            }
        }
        match unlinkat(fd, rel, UnlinkatFlags::RemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => ok,
            Err(e) => {
                tracing::error!(path = %self.dir.join(rel).display(), error = %e, "cannot remove directory");
                false
            }
        }
    }

    fn unlink(&self, rel: &Path) -> Result<(), Errno> {
        match unlinkat(Some(self.fd.as_raw_fd()), rel, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Takes charge of a file a previous agent wrote (a restart adopting its
    /// state): it is wiped at shutdown like the agent's own. Returns its content
    /// (None when it is missing, not a regular file, or unreadable).
    pub fn adopt(&mut self, rel: &Path) -> Option<zeroize::Zeroizing<Vec<u8>>> {
        let bytes = read_regular(&self.fd, rel)?;
        self.written.insert(rel.to_path_buf());
        Some(bytes)
    }

    /// Takes charge of a directory of files a previous agent wrote (a pki
    /// certificate), as [`Output::adopt`] does for a file. Returns its files
    /// (name, content), or None when `name` is not a directory (a symlink is
    /// not followed) or cannot be read.
    pub fn adopt_dir(&mut self, name: &str) -> Option<Vec<(String, zeroize::Zeroizing<Vec<u8>>)>> {
        let fd = Some(self.fd.as_raw_fd());
        let st = nix::sys::stat::fstatat(fd, name, AtFlags::AT_SYMLINK_NOFOLLOW).ok()?;
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            return None;
        }
        self.dirs.insert(PathBuf::from(name));
        let d = owned(
            openat(
                fd,
                name,
                OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .ok()?,
        );
        let names: Vec<String> = fs::read_dir(format!("/proc/self/fd/{}", d.as_raw_fd()))
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let mut files = Vec::with_capacity(names.len());
        for n in names {
            let rel = Path::new(name).join(&n);
            // Registered before reading: whatever is there is wiped at shutdown.
            self.written.insert(rel);
            let bytes = read_regular(&d, Path::new(&n))?;
            files.push((n, bytes));
        }
        Some(files)
    }

    /// Overwrites one file (relative to the directory) with zeros and removes
    /// it. Errors are logged: wiping goes on with the other files.
    pub fn wipe(&mut self, rel: &Path) -> bool {
        self.written.remove(rel);
        let ok = zero_fill(&self.fd, rel);
        match self.unlink(rel) {
            Ok(()) => ok,
            Err(e) => {
                tracing::error!(path = %self.dir.join(rel).display(), error = %e, "cannot remove file");
                false
            }
        }
    }

    /// Wipes a file (or a directory of files) by its name in the output directory.
    pub fn wipe_name(&mut self, name: &str) -> bool {
        if self.dirs.contains(Path::new(name)) {
            return self.wipe_dir(Path::new(name));
        }
        self.wipe(Path::new(name))
    }

    /// Wipes every file shroud wrote, then removes its directories, wherever
    /// the output directory now is. Returns how many files.
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

/// The content of regular file `rel` in directory `dir` (a symlink is not
/// followed); None when it is missing, not a regular file, or unreadable.
fn read_regular(dir: &impl AsRawFd, rel: &Path) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    let raw = openat(
        Some(dir.as_raw_fd()),
        rel,
        // The rules of contract::open_regular, relative to the held directory.
        OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let mut f = File::from(owned(raw));
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut bytes = zeroize::Zeroizing::new(Vec::new());
    std::io::Read::read_to_end(&mut f, &mut bytes).ok()?;
    Some(bytes)
}

/// Overwrites the file's current length with zeros, in place (not following a
/// symlink someone swapped in, not blocking on a FIFO someone planted, and
/// writing nothing to what is not a regular file). On tmpfs this overwrites
/// the very pages readers map; there is no journal or block remapping to
/// defeat it.
pub(crate) fn zero_fill(dir: &impl AsRawFd, rel: &Path) -> bool {
    let open = || {
        openat(
            Some(dir.as_raw_fd()),
            rel,
            OFlag::O_WRONLY
                | OFlag::O_NOFOLLOW
                | OFlag::O_NONBLOCK
                | OFlag::O_NOCTTY
                | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
    };
    let raw = match open() {
        Ok(fd) => fd,
        // Gone, or a FIFO nobody reads: nothing to zero.
        Err(Errno::ENOENT | Errno::ENXIO) => return true,
        Err(Errno::EACCES) => {
            // Mode 0400 and not root: make it writable for the owner first.
            if fchmodat(
                Some(dir.as_raw_fd()),
                rel,
                Mode::from_bits_truncate(0o600),
                FchmodatFlags::FollowSymlink,
            )
            .is_err()
            {
                return false;
            }
            match open() {
                Ok(fd) => fd,
                Err(_) => return false,
            }
        }
        Err(_) => return false,
    };
    let f = File::from(owned(raw));
    let len = match f.metadata() {
        Ok(m) if m.is_file() => m.len(),
        Ok(_) => return true,
        Err(_) => 0,
    };
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
    use std::os::unix::fs::PermissionsExt as _;

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
        use std::os::unix::fs::PermissionsExt as _;
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
        let old_ino = fs::metadata(&tls).unwrap().ino();
        let st = out
            .stage_dir("tls", &[("tls.crt", b"crt-2"), ("tls.key", b"key-2")])
            .unwrap();
        out.commit_output(StagedOutput::Dir(st)).unwrap();
        assert_eq!(fs::read(tls.join("tls.crt")).unwrap(), b"crt-2");
        assert_eq!(fs::read(tls.join("tls.key")).unwrap(), b"key-2");
        assert_ne!(
            fs::metadata(&tls).unwrap().ino(),
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

    #[test]
    fn a_successor_adopts_a_directory_as_it_is_and_wipes_it_at_the_end() {
        let d = tempfile::tempdir().unwrap();
        let tls = d.path().join("tls");
        {
            let mut first = output(d.path());
            let st = first
                .stage_dir("tls", &[("tls.crt", b"crt-1"), ("tls.key", b"key-1")])
                .unwrap();
            first.commit_output(StagedOutput::Dir(st)).unwrap();
            // Killed: nothing wiped.
        }
        let ino = fs::metadata(&tls).unwrap().ino();
        let mut second = output(d.path());
        let mut files = second.adopt_dir("tls").unwrap();
        files.sort_by(|a, b| a.0.cmp(&b.0));
        let files: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        assert_eq!(files, [("tls.crt", &b"crt-1"[..]), ("tls.key", b"key-1")]);
        assert_eq!(fs::metadata(&tls).unwrap().ino(), ino, "left in place");
        std::os::unix::fs::symlink(&tls, d.path().join("link")).unwrap();
        assert!(
            second.adopt_dir("link").is_none(),
            "a symlink is not followed"
        );
        assert!(second.adopt_dir("missing").is_none());
        assert_eq!(second.wipe_all(), 2);
        assert!(!tls.exists());
    }

    fn output(dir: &Path) -> Output {
        Output::open(&plain(dir.to_path_buf())).unwrap()
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
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(&target, dir.join("s")).unwrap();
        let out = output(&dir);
        assert!(!zero_fill(&out.fd, Path::new("s")));
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

    /// `dir` without the tmpfs check, mode 0400.
    fn plain(dir: PathBuf) -> OutputConfig {
        OutputConfig {
            dir,
            require_tmpfs: false,
            uid: None,
            gid: None,
            mode: 0o400,
        }
    }

    #[test]
    fn writes_go_through_the_descriptor_and_a_replaced_path_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let cfg = plain(d.path().join("out"));
        let mut out = Output::open(&cfg).unwrap();
        out.write(Path::new("a"), b"one").unwrap();
        // Moved aside, a symlink to elsewhere in its place.
        let aside = d.path().join("aside");
        let elsewhere = d.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        fs::rename(&cfg.dir, &aside).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &cfg.dir).unwrap();
        let e = out.check(&cfg).unwrap_err();
        assert!(
            e.to_string().contains("was replaced (now a symlink)"),
            "{e}"
        );
        out.write(Path::new("b"), b"two").unwrap();
        assert!(aside.join("b").exists());
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
        assert_eq!(out.wipe_all(), 2);
        assert!(!aside.join("a").exists() && !aside.join("b").exists());
        // Gone altogether: created again.
        fs::remove_file(&cfg.dir).unwrap();
        out.write(Path::new("c"), b"three").unwrap();
        assert_eq!(out.check(&cfg).unwrap(), DirState::Recreated);
        assert!(
            !aside.join("c").exists(),
            "wiped through the old descriptor"
        );
        out.write(Path::new("c"), b"three").unwrap();
        assert_eq!(fs::read(cfg.dir.join("c")).unwrap(), b"three");
        assert!(cfg.dir.join(".shroud/acks").is_dir());
        assert_eq!(out.check(&cfg).unwrap(), DirState::Same);
    }
}
