//! Acknowledgements: `<dir>/.shroud/acks/<id>`, one per live exec, holding the
//! values generation it has loaded (decimal and a newline). The agent publishes a
//! generation, waits until every live ack reports it, and only then renames the
//! new secret files into place.
//!
//! The stale-ack rule: an exec holds an exclusive `flock` on its ack file for as
//! long as it lives (taken on the temporary file before the rename, so the file in
//! place is never unlocked). The kernel drops the lock with the process, so an ack
//! file the agent can lock was left by an exec killed outright (SIGKILL, OOM): it
//! is not waited for, and it is removed at shutdown. Any doubt (the file cannot be
//! opened, the filesystem has no flock) counts as alive. The directory is
//! world-writable: anything there that is not a regular file (a FIFO, a
//! symlink, a directory) is not an ack; it is never opened in a way that could
//! block, never waited on, and removed when possible.

use std::fs::{self, File};
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::atomic::write_atomically;
use super::open::{open_regular, remove_planted, Links, OpenError};
use super::paths::ACKS_DIR;

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
        let id = format!("{:016x}", rand::random::<u64>());
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
        // Best effort: on a filesystem without flock the agent cannot take the
        // probe lock either, and keeps treating the file as a live exec's. The
        // previous file's lock goes with its value.
        self.lock = write_atomically(
            &self.path,
            format!("{generation}\n").as_bytes(),
            0o644,
            |f| {
                Flock::lock(f, FlockArg::LockExclusiveNonblock)
                    .inspect_err(|(_, e)| tracing::debug!(error = %e, "cannot lock the ack file"))
                    .ok()
            },
        )?;
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

/// What stands at an ack path.
enum Probe {
    /// A live exec's file (or one we cannot tell about: doubt counts as alive),
    /// open if it could be opened.
    Live(Option<File>),
    /// Left by an exec that is gone (nobody holds its lock), or removed since.
    Stale,
    /// Not a regular file: planted by the workload (a FIFO would block an
    /// `open()` forever); never waited on.
    Planted(OpenError),
}

fn probe(path: &Path) -> Probe {
    match open_regular(path, Links::Refuse) {
        // The probe takes a shared lock and drops it at once.
        Ok(f) => match Flock::lock(f, FlockArg::LockSharedNonblock) {
            Ok(_) => Probe::Stale,
            Err((f, _)) => Probe::Live(Some(f)),
        },
        Err(e) if e.is_not_regular() => Probe::Planted(e),
        Err(e) if e.is_not_found() => Probe::Stale,
        Err(_) => Probe::Live(None),
    }
}

/// Whether the ack file at `path` was left by an exec that is gone (nobody
/// holds its lock), or is not an ack at all (not a regular file).
pub fn ack_is_stale(path: &Path) -> bool {
    !matches!(probe(path), Probe::Live(_))
}

/// Every ack file under `<dir>` (id and path); dot-files are temporaries.
fn ack_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = fs::read_dir(dir.join(ACKS_DIR)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .filter(|(name, _)| !name.starts_with('.'))
        .collect()
}

/// The live execs' ack files under `<dir>`, open (when they could be opened),
/// not those of execs killed outright nor anything planted: waiting for one
/// of those would hold every rotation, and the agent's shutdown, for the full
/// timeout (or, opening a FIFO, forever). Planted entries are removed.
fn live_ack_files(dir: &Path) -> Vec<(String, PathBuf, Option<File>)> {
    let mut live = Vec::new();
    for (id, path) in ack_files(dir) {
        match probe(&path) {
            Probe::Live(f) => live.push((id, path, f)),
            Probe::Stale => {}
            Probe::Planted(e) => {
                tracing::warn!(error = %e, "ignoring and removing what was planted as an exec's acknowledgement");
                remove_planted(&path);
            }
        }
    }
    live
}

/// The live execs' ack files under `<dir>` (see [`live_ack_files`]).
pub fn live_acks(dir: &Path) -> Vec<(String, PathBuf)> {
    live_ack_files(dir)
        .into_iter()
        .map(|(id, path, _)| (id, path))
        .collect()
}

/// Removes the ack files of execs that are gone, and anything planted there.
pub fn remove_stale_acks(dir: &Path) {
    for (_, path) in ack_files(dir) {
        match probe(&path) {
            Probe::Live(_) => {}
            Probe::Stale => {
                let _ = fs::remove_file(path);
            }
            Probe::Planted(e) => {
                tracing::warn!(error = %e, "removing what was planted as an exec's acknowledgement");
                remove_planted(&path);
            }
        }
    }
}

/// The ids of live acks under `<dir>` whose generation is below `generation`.
/// An ack removed since the listing is an exec that has exited: not lagging.
pub fn lagging_acks(dir: &Path, generation: u64) -> Vec<String> {
    let mut lagging = Vec::new();
    for (id, path, file) in live_ack_files(dir) {
        let acked = file.and_then(|mut f| {
            let mut text = String::new();
            f.read_to_string(&mut text).ok()?;
            text.trim().parse::<u64>().ok()
        });
        match acked {
            Some(g) if g >= generation => {}
            None if !path.exists() => {}
            _ => lagging.push(id),
        }
    }
    lagging
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ack: &Ack) -> String {
        ack.path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

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
    fn lagging_counts_live_acks_below_the_generation_only() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(lagging_acks(d, 1).is_empty(), "no acks dir: nobody lags");
        let mut behind = Ack::new(d);
        behind.write(1).unwrap();
        let mut current = Ack::new(d);
        current.write(2).unwrap();
        // Left by a killed exec (unlocked), and an exec's temporary file.
        fs::write(d.join(ACKS_DIR).join("0123456789abcdef"), "1\n").unwrap();
        fs::write(d.join(ACKS_DIR).join(".x.tmp-1"), "1\n").unwrap();
        assert_eq!(lagging_acks(d, 2), vec![id(&behind)]);
        let mut live: Vec<_> = live_acks(d).into_iter().map(|(id, _)| id).collect();
        live.sort();
        let mut want = vec![id(&behind), id(&current)];
        want.sort();
        assert_eq!(live, want);
        remove_stale_acks(d);
        assert!(!d.join(ACKS_DIR).join("0123456789abcdef").exists());
        assert!(behind.path().exists() && current.path().exists());
        behind.write(2).unwrap();
        assert!(lagging_acks(d, 2).is_empty());

        // Planted by a workload: a FIFO, a symlink to a device, a directory.
        let acks = d.join(ACKS_DIR);
        nix::unistd::mkfifo(
            &acks.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o666),
        )
        .unwrap();
        std::os::unix::fs::symlink("/dev/null", acks.join("null")).unwrap();
        fs::create_dir(acks.join("dir")).unwrap();
        assert!(lagging_acks(d, 3).len() == 2, "only the two execs lag");
        assert!(!acks.join("fifo").exists() && !acks.join("dir").exists());
        assert!(fs::symlink_metadata(acks.join("null")).is_err());
        fs::create_dir(acks.join("dir")).unwrap();
        remove_stale_acks(d);
        assert!(!acks.join("dir").exists());
        assert_eq!(live_acks(d).len(), 2);
    }
}
