//! The stop reasons that reach the engine from outside: signals (a thread reading
//! signal-hook's self-pipe) and the exec's exit marker (an inotify watch on
//! `.shroud/`, a directory watch so renames are seen).

use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;

use notify::{RecursiveMode, Watcher as _};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::engine::Wake;
use crate::contract::{self, META_DIR};

/// Sends `Wake::Signal` for every SIGTERM and SIGINT from now on.
pub fn forward_signals(tx: Sender<Wake>) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if tx.send(Wake::Signal(sig)).is_err() {
                    break;
                }
            }
        })?;
    Ok(())
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
