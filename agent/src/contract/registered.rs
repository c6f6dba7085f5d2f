//! Values an exec registered at run time (`shroud mask add`, `::add-mask::`, its
//! environment), handed to the agent so that every other exec of the pod masks
//! them too: `<dir>/.shroud/registered-<id>`, one file per exec (the values-file
//! format, generation 0), written atomically on every registration and removed
//! when the exec ends. The agent merges every such file into the next values
//! generation. The files are read with a size bound: the directory is shared
//! with the workload, and a hostile file can at most make more text masked.

use std::fs;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::{write_atomically, ValuesFile, META_DIR};

/// The file name prefix inside `.shroud/`.
pub const PREFIX: &str = "registered-";

/// The most bytes read from one file.
pub const MAX_FILE: u64 = 1 << 20;

/// A named value, zeroized on drop.
pub type Named = (String, Zeroizing<Vec<u8>>);

/// Where exec `id` writes its registered values.
pub fn path(dir: &Path, id: &str) -> PathBuf {
    dir.join(META_DIR).join(format!("{PREFIX}{id}"))
}

/// Replaces exec `id`'s file with `values` (mode 0640: the agent may run as
/// another user of the pod's group).
pub fn write(dir: &Path, id: &str, values: &[Named]) -> io::Result<()> {
    let file = ValuesFile {
        generation: 0,
        retain: None,
        values: values.to_vec(),
    };
    write_atomically(&path(dir, id), &file.to_bytes(), 0o640, drop)
}

/// Overwrites exec `id`'s file with zeros and removes it.
pub fn remove(dir: &Path, id: &str) {
    wipe(&path(dir, id));
}

fn wipe(p: &Path) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let opened = fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(p);
    if let Ok(mut f) = opened {
        if let Ok(meta) = f.metadata() {
            if meta.is_file() {
                let _ = f.write_all(&vec![0u8; meta.len().min(MAX_FILE) as usize]);
                let _ = f.sync_data();
            }
        }
    }
    let _ = fs::remove_file(p);
}

/// Every registered value in the directory, in file-name order; unreadable or
/// malformed files are skipped, and those of execs that are gone (their ack's
/// lock is free) are wiped.
pub fn read_all(dir: &Path) -> Vec<Named> {
    let Ok(entries) = fs::read_dir(dir.join(META_DIR)) else {
        return Vec::new();
    };
    let mut names: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            Some((name.strip_prefix(PREFIX)?.to_string(), e.path()))
        })
        .collect();
    names.sort();
    let mut out: Vec<Named> = Vec::new();
    for (id, p) in names {
        // An exec killed outright left its file: its values go with it.
        if super::ack_is_stale(&dir.join(super::ACKS_DIR).join(&id)) {
            wipe(&p);
            continue;
        }
        let mut bytes = Zeroizing::new(Vec::new());
        let Ok(f) = fs::File::open(&p) else { continue };
        if f.take(MAX_FILE).read_to_end(&mut bytes).is_err() {
            continue;
        }
        let Ok(file) = ValuesFile::parse(&bytes) else {
            continue;
        };
        for (name, value) in file.values {
            if !out.iter().any(|(_, v)| *v == value) {
                out.push((format!("{name}.registered"), value));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_values_are_read_back_deduplicated_and_removed() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join(META_DIR)).unwrap();
        // Execs "a" and "b" are alive: each holds the lock on its ack file (a
        // file without a live ack is an exec's that is gone, and is wiped).
        fs::create_dir_all(d.path().join(super::super::ACKS_DIR)).unwrap();
        let _alive: Vec<_> = ["a", "b"]
            .iter()
            .map(|id| {
                let f = fs::File::create(d.path().join(super::super::ACKS_DIR).join(id)).unwrap();
                nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).unwrap()
            })
            .collect();
        let v = |s: &str| Zeroizing::new(s.as_bytes().to_vec());
        write(d.path(), "a", &[("mask-add".into(), v("minted-1234567"))]).unwrap();
        write(
            d.path(),
            "b",
            &[
                ("add-mask".into(), v("minted-1234567")),
                ("env:X_TOKEN".into(), v("tok-7654321")),
            ],
        )
        .unwrap();
        fs::write(
            d.path().join(META_DIR).join("registered-junk"),
            "not a values file",
        )
        .unwrap();
        let all = read_all(d.path());
        let values: Vec<&[u8]> = all.iter().map(|(_, v)| v.as_slice()).collect();
        assert_eq!(values, vec![&b"minted-1234567"[..], b"tok-7654321"]);
        assert_eq!(all[0].0, "mask-add.registered");
        remove(d.path(), "a");
        remove(d.path(), "b");
        assert!(read_all(d.path()).is_empty());
    }

    #[test]
    fn a_gone_execs_file_is_wiped() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join(super::super::ACKS_DIR)).unwrap();
        let v = Zeroizing::new(b"minted-1234567".to_vec());
        write(d.path(), "gone", &[("mask-add".into(), v)]).unwrap();
        // Its ack exists and nobody holds its lock: the exec was killed.
        fs::write(d.path().join(super::super::ACKS_DIR).join("gone"), "3\n").unwrap();
        assert!(read_all(d.path()).is_empty());
        assert!(!path(d.path(), "gone").exists());
    }
}
