//! Watching the secrets directory: waiting for the agent's ready marker, and
//! reloading the redaction set when the agent publishes new values.
//!
//! Directories are watched, never single files: the agent replaces files by
//! rename, and Kubernetes swaps a `..data` symlink, and a watch on a file follows
//! the old inode. Both `<dir>` and `<dir>/.shroud` are watched (non-recursively),
//! and every event only triggers a cheap metadata fingerprint; the set is
//! reloaded when the fingerprint changed.

use std::ffi::OsString;
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use zeroize::Zeroizing;

use super::Rotated;
use crate::contract::{Ack, META_DIR, READY_FILE, VALUES_FILE};
use crate::live::LiveSet;
use crate::secrets_source::{Sources, Values};

/// How long a value that disappeared from the sources stays masked here when
/// the values file does not carry the agent's window (`retain-ms`): directories
/// without an agent (a plain Kubernetes Secret volume), where a workload may
/// still print a value it read before the rotation, and agents that predate it.
pub const RETAIN_SEEN: Duration = Duration::from_secs(600);

/// Why watching failed.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The directory could not be watched (missing, unreadable, out of watches).
    #[error("cannot watch {path}")]
    Watch {
        /// The directory.
        path: PathBuf,
        /// What notify reported.
        source: notify::Error,
    },
    /// A path on the way to the directory exists but is not a directory.
    #[error("{path} is not a directory")]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// `--wait-ready` gave up.
    #[error("{path} did not appear within {timeout:?} (is the shroud agent running and writing to this directory?)")]
    ReadyTimeout {
        /// The ready marker.
        path: PathBuf,
        /// The `--ready-timeout`.
        timeout: Duration,
    },
}

enum Msg {
    Changed,
    Shutdown,
}

/// A notify watcher on `<dir>` and, once it exists, `<dir>/.shroud`.
struct DirWatch {
    dir: PathBuf,
    watcher: RecommendedWatcher,
    meta_watched: bool,
}

impl DirWatch {
    fn new(dir: &Path, tx: Sender<Msg>) -> Result<DirWatch, WatchError> {
        let err = |source| WatchError::Watch {
            path: dir.to_path_buf(),
            source,
        };
        let mut watcher = notify::recommended_watcher(move |event| {
            if is_change(&event) {
                let _ = tx.send(Msg::Changed);
            }
        })
        .map_err(err)?;
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(err)?;
        let mut w = DirWatch {
            dir: dir.to_path_buf(),
            watcher,
            meta_watched: false,
        };
        w.watch_meta();
        Ok(w)
    }

    /// Adds the `.shroud` watch once the directory exists (the agent may create
    /// it after exec started).
    fn watch_meta(&mut self) {
        if self.meta_watched {
            return;
        }
        let meta = self.dir.join(META_DIR);
        if meta.is_dir()
            && self
                .watcher
                .watch(&meta, RecursiveMode::NonRecursive)
                .is_ok()
        {
            self.meta_watched = true;
        }
    }
}

/// Waits until `<dir>/.shroud/ready` exists, at most `timeout`. `dir` itself
/// may not exist yet (exec and the agent started together): until it does, its
/// nearest existing ancestor is watched instead.
pub fn wait_ready(dir: &Path, timeout: Duration) -> Result<(), WatchError> {
    let (tx, rx) = mpsc::channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event| {
        if is_change(&event) {
            let _ = tx.send(());
        }
    })
    .map_err(|source| WatchError::Watch {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut watched: Vec<PathBuf> = Vec::new();
    let ready = dir.join(READY_FILE);
    let deadline = Instant::now() + timeout;
    let mut announced = false;
    let mut announced_marker = false;
    loop {
        if !announced && !dir.is_dir() {
            tracing::info!(dir = %dir.display(), "waiting for the secrets directory to appear");
            announced = true;
        }
        // Arm the watches for what exists now, and look again until that stops
        // changing: a level created before its parent's watch was armed is found
        // by the second look, one created after is an event. Then check: a marker
        // written in between is seen either by the check or as an event.
        loop {
            let mut changed = false;
            for path in ready_watch_targets(dir)? {
                if watched.contains(&path) {
                    continue;
                }
                changed = true;
                match watcher.watch(&path, RecursiveMode::NonRecursive) {
                    Ok(()) => watched.push(path),
                    // Removed again since we looked: look again.
                    Err(e) if is_not_found(&e) => {}
                    Err(source) => return Err(WatchError::Watch { path, source }),
                }
            }
            if !changed {
                break;
            }
        }
        if ready.exists() {
            return Ok(());
        }
        // Says why the command has not started (an agent still rendering, or
        // still starting its gateways), once the watches are armed: from here
        // on a new marker is seen.
        if !announced_marker && dir.is_dir() {
            tracing::info!(marker = %ready.display(), "waiting for the agent's ready marker");
            announced_marker = true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(()) => {}
            Err(RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
            Err(_) => {
                return Err(WatchError::ReadyTimeout {
                    path: ready,
                    timeout,
                })
            }
        }
    }
}

/// Whether an event can mean the directory's contents changed. inotify also
/// reports opens and reads (notify watches `IN_OPEN`), and our own response to an
/// event, listing the directory and reading its files, is opens and reads: acting
/// on those kept the watch thread in a loop that used a whole core. A close after
/// writing still counts (the end of an in-place rewrite); errors count too (a
/// lost event must lead to a look, not to nothing).
fn is_change(event: &notify::Result<notify::Event>) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    match event {
        Ok(e) => match e.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
            EventKind::Access(_) => false,
            _ => true,
        },
        Err(_) => true,
    }
}

fn is_not_found(e: &notify::Error) -> bool {
    match &e.kind {
        notify::ErrorKind::PathNotFound => true,
        notify::ErrorKind::Io(io) => io.kind() == io::ErrorKind::NotFound,
        _ => false,
    }
}

/// The directories whose changes can bring `<dir>/.shroud/ready` into being:
/// `dir` and `dir/.shroud` when they exist, else `dir`'s nearest existing
/// ancestor (which must be a directory).
fn ready_watch_targets(dir: &Path) -> Result<Vec<PathBuf>, WatchError> {
    if dir.is_dir() {
        let mut targets = vec![dir.to_path_buf()];
        let meta = dir.join(META_DIR);
        if meta.is_dir() {
            targets.push(meta);
        }
        return Ok(targets);
    }
    let mut at = dir;
    loop {
        // `exists` follows symlinks: a dangling link counts as missing and its
        // parent is watched (its target appearing elsewhere is only noticed at
        // the next event there; exec does not chase link targets).
        if at.exists() {
            if at.is_dir() {
                return Ok(vec![at.to_path_buf()]);
            }
            return Err(WatchError::NotADirectory {
                path: at.to_path_buf(),
            });
        }
        at = match at.parent() {
            Some(p) if p.as_os_str().is_empty() => Path::new("."),
            Some(p) => p,
            None => Path::new("/"),
        };
    }
}

/// Metadata of one file, enough to notice a replacement or rewrite.
type FileStamp = (OsString, u64, u64, u64, i64, i64, i64, i64);

/// What the directory looked like, split into the rendered files (whose change
/// is a rotation the command may need to act on) and the values file (whose
/// change alone is step 2 of the handshake: swap and acknowledge).
#[derive(Debug, Default, PartialEq, Eq, Clone)]
pub struct Fingerprint {
    rendered: Vec<FileStamp>,
    values: Option<FileStamp>,
}

fn stamp(name: OsString, path: &Path) -> Option<FileStamp> {
    let m = std::fs::metadata(path).ok()?;
    // A directory is a pki secret, replaced as a whole (new inode) on re-issue.
    (m.is_file() || m.is_dir()).then(|| {
        (
            name,
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
        )
    })
}

/// Fingerprints the value files of `dir` (the files `Sources::load` reads).
pub fn fingerprint(dir: &Path) -> Fingerprint {
    let mut rendered: Vec<FileStamp> = crate::secrets_source::walk::list(dir)
        .map(|listing| {
            listing
                .files
                .into_iter()
                .filter_map(|(name, path)| stamp(name.into(), &path))
                .collect()
        })
        .unwrap_or_default();
    rendered.sort();
    Fingerprint {
        rendered,
        values: stamp(VALUES_FILE.into(), &dir.join(VALUES_FILE)),
    }
}

/// Reloads the redaction set when the secrets directory changes; stops on drop.
#[derive(Debug)]
pub struct SecretsWatcher {
    tx: Sender<Msg>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Msg::Changed => "Changed",
            Msg::Shutdown => "Shutdown",
        })
    }
}

/// What the watcher needs to reload and acknowledge.
#[derive(Debug)]
pub struct Reload {
    /// Where values come from (`--secret-file`s and the directory).
    pub sources: Sources,
    /// `--min-length` and `--piece-length`.
    pub lengths: shroud_redactor::Lengths,
    /// The set to swap.
    pub live: Arc<LiveSet>,
    /// The values the set in `live` was built from.
    pub current: Values,
    /// The acknowledgement to update after each swap.
    pub ack: Ack,
    /// The fingerprint taken before the set now in `live` was loaded.
    pub loaded: Fingerprint,
}

impl SecretsWatcher {
    /// Starts watching `dir`. Events are buffered from here on, so call this
    /// before fingerprinting and loading the initial set, then [`Self::run`].
    pub fn watch(dir: &Path) -> Result<(SecretsWatcher, PendingWatch), WatchError> {
        let (tx, rx) = mpsc::channel();
        let watch = DirWatch::new(dir, tx.clone())?;
        Ok((
            SecretsWatcher { tx, thread: None },
            PendingWatch { watch, rx },
        ))
    }

    /// Starts the reload thread: sends [`Rotated`] to `rotations` after each
    /// swap that changed the rendered files.
    pub fn run(
        &mut self,
        pending: PendingWatch,
        reload: Reload,
        rotations: Sender<Rotated>,
    ) -> io::Result<()> {
        let thread = std::thread::Builder::new()
            .name("shroud-watch".into())
            .spawn(move || reload_loop(pending, reload, rotations))?;
        self.thread = Some(thread);
        Ok(())
    }
}

impl Drop for SecretsWatcher {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A started watch whose events are waiting for [`SecretsWatcher::run`].
#[derive(Debug)]
pub struct PendingWatch {
    watch: DirWatch,
    rx: Receiver<Msg>,
}

impl std::fmt::Debug for DirWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirWatch").field("dir", &self.dir).finish()
    }
}

/// A value no longer in the sources, still masked until `until`.
struct Retained {
    name: String,
    value: Zeroizing<Vec<u8>>,
    until: Instant,
}

fn reload_loop(pending: PendingWatch, mut reload: Reload, rotations: Sender<Rotated>) {
    let PendingWatch { mut watch, rx } = pending;
    let dir = watch.dir.clone();
    let mut retained: Vec<Retained> = Vec::new();
    loop {
        let expiry = retained.iter().map(|r| r.until).min();
        let msg = match expiry {
            Some(t) => match rx.recv_timeout(t.saturating_duration_since(Instant::now())) {
                Ok(msg) => msg,
                Err(RecvTimeoutError::Timeout) => {
                    // Forget expired values; the sources did not change.
                    retained.retain(|r| r.until > Instant::now());
                    swap(&reload, &retained);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            },
            None => match rx.recv() {
                Ok(msg) => msg,
                Err(_) => return,
            },
        };
        let mut shutdown = matches!(msg, Msg::Shutdown);
        // Coalesce a burst of events (a rename is several) into one check.
        while let Ok(more) = rx.try_recv() {
            shutdown |= matches!(more, Msg::Shutdown);
        }
        if shutdown {
            return;
        }
        watch.watch_meta();
        let now = fingerprint(&dir);
        if now == reload.loaded {
            continue;
        }
        let new = match reload.sources.read(reload.lengths.min) {
            Ok(values) => {
                // Tell of what is newly skipped or weak only (a file left as
                // it was is not worth a warning at every rotation).
                let was_skipped = |p: &Path| reload.current.skipped.iter().any(|s| s.path == p);
                let skipped: Vec<_> = values
                    .skipped
                    .iter()
                    .filter(|s| !was_skipped(&s.path))
                    .collect();
                for s in skipped {
                    crate::report::warn_skipped(std::slice::from_ref(s));
                }
                let weak: Vec<_> = values
                    .weak
                    .iter()
                    .filter(|w| !reload.current.weak.contains(w))
                    .cloned()
                    .collect();
                crate::report::warn_weak(&weak, &Default::default());
                values
            }
            // Keep the current set; the next event retries.
            Err(e) => {
                tracing::warn!(error = %e, "cannot reload secrets; keeping the current set");
                continue;
            }
        };
        let agent_retains = new.retain.is_some();
        let until = Instant::now() + new.retain.unwrap_or(RETAIN_SEEN);
        let old = std::mem::replace(&mut reload.current, new);
        let is_current = |v: &[u8]| reload.current.values.iter().any(|(_, c)| c.as_slice() == v);
        retained.retain(|r| r.until > Instant::now() && !is_current(&r.value));
        for (name, value) in old.values {
            // The agent kept it (as `NAME.retired`) for its whole window already.
            if agent_retains && name.ends_with(".retired") {
                continue;
            }
            if !is_current(&value) && !retained.iter().any(|r| r.value == value) {
                retained.push(Retained {
                    name: format!("{name}.seen"),
                    value,
                    until,
                });
            }
        }
        let generation = swap(&reload, &retained);
        if let Some(generation) = generation {
            if let Err(e) = reload.ack.write(generation) {
                tracing::warn!(path = %reload.ack.path().display(), error = %e, "cannot write the rotation acknowledgement");
            }
        }
        tracing::info!(generation = ?generation, "redaction set reloaded");
        let rendered_changed = now.rendered != reload.loaded.rendered;
        reload.loaded = now;
        if rendered_changed {
            let _ = rotations.send(Rotated { generation });
        }
    }
}

/// Builds the set from the current and retained values and swaps it in.
fn swap(reload: &Reload, retained: &[Retained]) -> Option<u64> {
    let (set, loaded) = reload.current.build(
        reload.lengths,
        retained
            .iter()
            .map(|r| (r.name.as_str(), r.value.as_slice())),
    );
    let base = reload
        .current
        .values
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()));
    let retained_values = retained
        .iter()
        .map(|r| (r.name.as_str(), r.value.as_slice()));
    reload
        .live
        .store_based(set, reload.lengths, base.chain(retained_values));
    crate::report::warn_report(&loaded.report, reload.lengths.min);
    loaded.generation
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_sees_replacements_but_not_bookkeeping() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("token"), "one").unwrap();
        std::fs::create_dir_all(d.join(".shroud/acks")).unwrap();
        let before = fingerprint(d);
        // exec's and the agent's own files do not count.
        std::fs::write(d.join(".shroud/acks/abc"), "1\n").unwrap();
        std::fs::write(d.join(".shroud/exited"), "0\n").unwrap();
        std::fs::write(d.join(".token.tmp-0123456789abcdef"), "x").unwrap();
        std::fs::create_dir(d.join("..2026_12_07_10_00_00.1")).unwrap();
        assert_eq!(fingerprint(d), before);
        // A dotfile is a value (`.dockerconfigjson`), so it counts.
        std::fs::write(d.join(".env"), "A=b").unwrap();
        assert_ne!(fingerprint(d), before);
        std::fs::remove_file(d.join(".env")).unwrap();
        // A replacement by rename does, even with the same size.
        std::fs::write(d.join(".token.tmp"), "two").unwrap();
        std::fs::rename(d.join(".token.tmp"), d.join("token")).unwrap();
        let after = fingerprint(d);
        assert_ne!(after.rendered, before.rendered);
        assert_eq!(after.values, None);
        std::fs::write(d.join(VALUES_FILE), "shroud-values 1\ngeneration 1\n").unwrap();
        let with_values = fingerprint(d);
        assert_eq!(with_values.rendered, after.rendered);
        assert!(with_values.values.is_some());
    }
}
