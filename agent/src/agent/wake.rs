//! The stop reasons that reach the engine from outside: signals (a subscription
//! to the process's signal owner, `crate::signals`) and the exec's exit marker (an inotify watch on
//! `.shroud/`, a directory watch so renames are seen).

use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;

use nix::sys::signal::Signal;
use notify::{RecursiveMode, Watcher as _};

use super::engine::Wake;
use crate::contract::{self, META_DIR};
use crate::signals::{self, Subscription};

/// Sends `Wake::Signal` for every SIGTERM and SIGINT while the subscription
/// lives and no other subscriber (exec's supervisor) has taken over.
pub fn forward_signals(tx: Sender<Wake>) -> std::io::Result<Subscription> {
    let stops = [Signal::SIGTERM, Signal::SIGINT];
    signals::subscribe(
        &stops,
        Box::new(move |info| {
            if stops.contains(&info.signal) {
                let _ = tx.send(Wake::Signal(info.signal as i32));
            }
        }),
    )
}

/// Watches `<dir>/.shroud` for the exit marker; keep the returned watcher alive.
/// Sends `Wake::ExitMarker` once it exists (also when it already does).
pub fn watch_exit_marker(
    dir: &Path,
    tx: Sender<Wake>,
) -> notify::Result<notify::RecommendedWatcher> {
    let check: PathBuf = dir.to_path_buf();
    let tx2 = tx.clone();
    let mut watcher = notify::recommended_watcher(move |_event: notify::Result<notify::Event>| {
        if contract::has_exited(&check) {
            let _ = tx2.send(Wake::ExitMarker);
        }
    })?;
    watcher.watch(&dir.join(META_DIR), RecursiveMode::NonRecursive)?;
    if contract::has_exited(dir) {
        let _ = tx.send(Wake::ExitMarker);
    }
    Ok(watcher)
}
