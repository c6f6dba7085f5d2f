//! Which files of `--secrets-dir` hold values: every regular file in the tree,
//! dotfiles included (`.dockerconfigjson`, `.env`), each read exactly once.
//!
//! A mounted Kubernetes Secret or ConfigMap is `key -> ..data/key` with `..data
//! -> ..2026_12_07_…/`: the keys are followed (through `..data`, once) and the
//! `..`-entries themselves are Kubernetes' bookkeeping, not walked (that would
//! read every value twice); a file reached by two paths is read once. Skipped
//! without a word: `.shroud/` (the values file is read on its own) and the
//! agent's half-written `.<name>.tmp-<hex>` files. Every other file not read is
//! reported with its reason ([`Skipped`]).

use std::collections::HashSet;
use std::fmt;
use std::fs;
use std::io::{self, Read as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::contract::META_DIR;

/// Larger files are not read (Kubernetes caps a Secret at 1 MiB).
pub const MAX_FILE: u64 = 1 << 20;
/// Subdirectories deeper than this are not walked.
const MAX_DEPTH: usize = 8;
/// At most this many files are read from one directory tree.
const MAX_FILES: usize = 10_000;

/// Why a file of the directory was not read.
#[derive(Debug)]
pub enum SkipReason {
    /// Larger than [`MAX_FILE`].
    TooLarge(u64),
    /// A FIFO, socket or device (opening one could block or have effects).
    NotRegular,
    /// A symlink whose target is outside the directory.
    LeavesDirectory,
    /// A symlink whose target does not exist.
    Dangling,
    /// A subdirectory deeper than the walk goes.
    TooDeep,
    /// Past the number of files read from one directory.
    TooMany,
    /// Could not be opened or read.
    Unreadable(io::Error),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::TooLarge(n) => write!(f, "too large ({n} bytes; at most {MAX_FILE})"),
            SkipReason::NotRegular => f.write_str("not a regular file"),
            SkipReason::LeavesDirectory => f.write_str("a symlink leaving the directory"),
            SkipReason::Dangling => f.write_str("a symlink to nothing"),
            SkipReason::TooDeep => write!(f, "deeper than {MAX_DEPTH} directories"),
            SkipReason::TooMany => write!(f, "more than {MAX_FILES} files in the directory"),
            SkipReason::Unreadable(e) => write!(f, "unreadable: {e}"),
        }
    }
}

/// A file of the directory that was not read, and why.
#[derive(Debug)]
pub struct Skipped {
    /// The path, inside the directory.
    pub path: PathBuf,
    /// Why.
    pub reason: SkipReason,
}

/// The files to read: (name relative to the directory, path), in sorted order.
#[derive(Debug, Default)]
pub struct Listing {
    /// Files to read.
    pub files: Vec<(String, PathBuf)>,
    /// Files not read.
    pub skipped: Vec<Skipped>,
}

/// `.<name>.tmp-<16 hex>`: the agent's atomic write in progress.
fn is_staged_temp(name: &str) -> bool {
    name.starts_with('.')
        && name
            .rsplit_once(".tmp-")
            .is_some_and(|(_, hex)| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Lists the files of `dir` to read (see the module doc). Errors only when
/// `dir` itself cannot be read.
pub fn list(dir: &Path) -> io::Result<Listing> {
    let root = fs::canonicalize(dir)?;
    let root_meta = fs::metadata(&root)?;
    let mut listing = Listing::default();
    let mut dirs_seen = HashSet::from([(root_meta.dev(), root_meta.ino())]);
    let mut files_seen = HashSet::new();
    let mut stack = vec![(dir.to_path_buf(), String::new(), 0usize)];
    while let Some((path, prefix, depth)) = stack.pop() {
        let mut names: Vec<_> = match fs::read_dir(&path) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .map(|e| e.file_name())
                .collect(),
            Err(e) if depth == 0 => return Err(e),
            Err(e) => {
                listing.skipped.push(Skipped {
                    path,
                    reason: SkipReason::Unreadable(e),
                });
                continue;
            }
        };
        names.sort();
        let mut subdirs = Vec::new();
        for name in names {
            let name = name.to_string_lossy().into_owned();
            if name.starts_with("..") || is_staged_temp(&name) || (depth == 0 && name == META_DIR) {
                continue;
            }
            let file = path.join(&name);
            let rel = format!("{prefix}{name}");
            let skip = |reason| Skipped {
                path: file.clone(),
                reason,
            };
            let Ok(link) = fs::symlink_metadata(&file) else {
                continue; // removed since listed (a rotation)
            };
            if link.file_type().is_symlink() {
                match fs::canonicalize(&file) {
                    Ok(target) if target.starts_with(&root) => {}
                    Ok(_) => {
                        listing.skipped.push(skip(SkipReason::LeavesDirectory));
                        continue;
                    }
                    Err(_) => {
                        listing.skipped.push(skip(SkipReason::Dangling));
                        continue;
                    }
                }
            }
            let meta = match fs::metadata(&file) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    listing.skipped.push(skip(SkipReason::Unreadable(e)));
                    continue;
                }
            };
            if meta.is_dir() {
                if !dirs_seen.insert((meta.dev(), meta.ino())) {
                    continue; // reached before, by another path
                }
                if depth + 1 > MAX_DEPTH {
                    listing.skipped.push(skip(SkipReason::TooDeep));
                } else {
                    subdirs.push((file, format!("{rel}/"), depth + 1));
                }
            } else if !meta.is_file() {
                listing.skipped.push(skip(SkipReason::NotRegular));
            } else if meta.len() > MAX_FILE {
                listing.skipped.push(skip(SkipReason::TooLarge(meta.len())));
            } else if files_seen.insert((meta.dev(), meta.ino())) {
                if listing.files.len() >= MAX_FILES {
                    listing.skipped.push(skip(SkipReason::TooMany));
                } else {
                    listing.files.push((rel, file));
                }
            }
        }
        // Depth first, in sorted order.
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(listing)
}

/// Reads one listed file, checking again (on the open file) that it is regular
/// and small: it may have been replaced since it was listed.
pub fn read(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, SkipReason> {
    let file = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SkipReason::Unreadable(e)),
    };
    let meta = file.metadata().map_err(SkipReason::Unreadable)?;
    if !meta.is_file() {
        return Err(SkipReason::NotRegular);
    }
    let mut value = Zeroizing::new(Vec::with_capacity(meta.len() as usize));
    file.take(MAX_FILE + 1)
        .read_to_end(&mut value)
        .map_err(SkipReason::Unreadable)?;
    if value.len() as u64 > MAX_FILE {
        return Err(SkipReason::TooLarge(value.len() as u64));
    }
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A mounted Secret as the kubelet lays it out (atomic writer), plus the
    /// things a hostile or careless directory holds.
    fn projected_volume() -> tempfile::TempDir {
        let dir = tempfile::Builder::new()
            .prefix("walk")
            .tempdir_in("/dev/shm")
            .expect("a tmpfs at /dev/shm");
        let d = dir.path();
        let ts = d.join("..2026_12_07_10_00_00.123456789");
        fs::create_dir_all(ts.join("sub")).unwrap();
        fs::write(ts.join("token"), "tok-value-1\n").unwrap();
        fs::write(ts.join(".dockerconfigjson"), "{\"auths\":{}}").unwrap();
        fs::write(ts.join("sub/key"), "sub-value-2").unwrap();
        symlink("..2026_12_07_10_00_00.123456789", d.join("..data")).unwrap();
        for key in ["token", ".dockerconfigjson", "sub"] {
            symlink(format!("..data/{key}"), d.join(key)).unwrap();
        }
        fs::write(d.join(".env"), "A=env-value-3\n").unwrap();
        fs::create_dir_all(d.join("plain/nested")).unwrap();
        fs::write(d.join("plain/nested/file"), "nested-value-4").unwrap();
        symlink("token", d.join("alias")).unwrap();
        symlink(".", d.join("loop")).unwrap();
        symlink("/etc/hostname", d.join("escape")).unwrap();
        symlink("missing", d.join("dangling")).unwrap();
        nix::unistd::mkfifo(&d.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        fs::write(d.join("big"), vec![b'x'; MAX_FILE as usize + 1]).unwrap();
        fs::create_dir_all(d.join(".shroud/acks")).unwrap();
        fs::write(d.join(".shroud/acks/x"), "7").unwrap();
        fs::write(d.join(".token.tmp-0123456789abcdef"), "half").unwrap();
        dir
    }

    #[test]
    fn every_value_once_and_every_skip_named() {
        let dir = projected_volume();
        let listing = list(dir.path()).unwrap();
        let names: Vec<&str> = listing.files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                ".dockerconfigjson",
                ".env",
                "alias",
                "plain/nested/file",
                "sub/key"
            ],
            "each file once, by its first name in sorted order"
        );
        let values: Vec<Vec<u8>> = listing
            .files
            .iter()
            .map(|(_, p)| read(p).unwrap().unwrap().to_vec())
            .collect();
        assert_eq!(
            values
                .iter()
                .filter(|v| v.starts_with(b"tok-value"))
                .count(),
            1
        );
        let mut skipped: Vec<(String, String)> = listing
            .skipped
            .iter()
            .map(|s| {
                let name = s
                    .path
                    .strip_prefix(dir.path())
                    .unwrap()
                    .display()
                    .to_string();
                (name, s.reason.to_string())
            })
            .collect();
        skipped.sort();
        let reasons: Vec<(&str, &str)> = skipped
            .iter()
            .map(|(n, r)| (n.as_str(), r.split(' ').next().unwrap()))
            .collect();
        assert_eq!(
            reasons,
            [
                ("big", "too"),
                ("dangling", "a"),
                ("escape", "a"),
                ("fifo", "not")
            ]
        );
        assert!(skipped[2].1.contains("leaving the directory"));
    }

    #[test]
    fn a_file_swapped_for_a_fifo_after_listing_is_not_opened_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(matches!(read(&p), Err(SkipReason::NotRegular)));
        assert!(matches!(read(&dir.path().join("gone")), Ok(None)));
    }
}
