//! Opening a file in a directory that another uid can write (`.shroud/acks/`,
//! the markers, the values file, the secrets directory, the state directory).
//! Whoever can write there can plant a FIFO (an `open()` that never returns), a
//! symlink (to a device, to another user's file) or a directory where a file is
//! expected. Every such file is opened here: without blocking
//! (`O_NONBLOCK`: a FIFO opens at once), without a controlling terminal, not
//! inherited by children, by default without following a final symlink, and then
//! `fstat`ed on the descriptor: anything but a regular file is refused with an
//! error naming the path and what it is.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _};
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Whether a symlink as the last component is followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Links {
    /// Refused (`O_NOFOLLOW`): the files shroud itself writes are never links.
    Refuse,
    /// Followed, for `exec --secrets-dir` on a Kubernetes volume whose entries
    /// are symlinks into `..data`; the target must still be a regular file (it
    /// is `stat`ed before it is opened, so a link to a device is not opened).
    Follow,
}

/// Why a file in a shared directory was not opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The file could not be opened or read (missing, no permission, I/O).
    #[error("cannot open {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Something other than a regular file stands at the path.
    #[error("{path} is a {kind}, not a regular file: refused")]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is: `FIFO`, `symlink`, `directory`, `character device`, …
        kind: &'static str,
    },
}

impl OpenError {
    /// True when nothing is at the path.
    pub fn is_not_found(&self) -> bool {
        matches!(self, OpenError::Open { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }

    /// True when something was planted there that is not a regular file.
    pub fn is_not_regular(&self) -> bool {
        matches!(self, OpenError::NotRegular { .. })
    }
}

/// The kind of a non-regular file, for messages.
fn kind_of(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "directory"
    } else if t.is_symlink() {
        "symlink"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else {
        "special file"
    }
}

/// Opens `path` for reading if it is a regular file; see the module doc.
pub fn open_regular(path: &Path, links: Links) -> Result<File, OpenError> {
    let open_err = |source| OpenError::Open {
        path: path.to_path_buf(),
        source,
    };
    let not_regular = |kind| OpenError::NotRegular {
        path: path.to_path_buf(),
        kind,
    };
    let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
    match links {
        Links::Refuse => flags |= libc::O_NOFOLLOW,
        Links::Follow => {
            let meta = std::fs::metadata(path).map_err(open_err)?;
            if !meta.is_file() {
                return Err(not_regular(kind_of(meta.file_type())));
            }
        }
    }
    let file = match OpenOptions::new().read(true).custom_flags(flags).open(path) {
        Ok(f) => f,
        // O_NOFOLLOW on a symlink.
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(not_regular("symlink")),
        Err(e) => return Err(open_err(e)),
    };
    let meta = file.metadata().map_err(open_err)?;
    if !meta.is_file() {
        return Err(not_regular(kind_of(meta.file_type())));
    }
    Ok(file)
}

/// Reads the whole of `path` (see [`open_regular`]) into a zeroizing buffer.
pub fn read_regular(path: &Path, links: Links) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let mut file = open_regular(path, links)?;
    let mut buf = Zeroizing::new(Vec::new());
    file.read_to_end(&mut buf)
        .map_err(|source| OpenError::Open {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(buf)
}

/// Removes what was planted at `path` instead of a regular file: the entry
/// itself (a link is not followed), or an empty directory. Best effort.
pub fn remove_planted(path: &Path) {
    if std::fs::remove_file(path).is_err() {
        let _ = std::fs::remove_dir(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_open_and_nothing_blocks() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("file");
        std::fs::write(&file, "7\n").unwrap();
        assert_eq!(
            read_regular(&file, Links::Refuse).unwrap().as_slice(),
            b"7\n"
        );

        let fifo = d.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        let to_file = d.path().join("to-file");
        std::os::unix::fs::symlink(&file, &to_file).unwrap();
        let dir = d.path().join("dir");
        std::fs::create_dir(&dir).unwrap();
        for (path, links, kind) in [
            (&fifo, Links::Refuse, "FIFO"),
            (&fifo, Links::Follow, "FIFO"),
            (&link, Links::Refuse, "symlink"),
            (&link, Links::Follow, "character device"),
            (&to_file, Links::Refuse, "symlink"),
            (&dir, Links::Refuse, "directory"),
        ] {
            let e = open_regular(path, links).unwrap_err();
            assert!(e.is_not_regular(), "{e}");
            let text = e.to_string();
            assert!(
                text.contains(&path.display().to_string()) && text.contains(kind),
                "{text}"
            );
        }
        assert_eq!(
            read_regular(&to_file, Links::Follow).unwrap().as_slice(),
            b"7\n"
        );
        assert!(open_regular(&d.path().join("none"), Links::Refuse)
            .unwrap_err()
            .is_not_found());
        for p in [&fifo, &link, &dir] {
            remove_planted(p);
            assert!(std::fs::symlink_metadata(p).is_err(), "{}", p.display());
        }
        assert!(file.exists(), "a link's target is left alone");
    }
}
