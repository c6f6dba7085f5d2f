//! The stop reasons that reach the engine from outside: signals (a thread reading
//! signal-hook's self-pipe) and the exec's exit marker (an inotify watch on
//! `.shroud/`, a directory watch so renames are seen).

use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;

use notify::{RecursiveMode, Watcher as _};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::engine::Wake;

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

/// Watches for `<meta>/exited`; keep the returned watcher alive. Sends
/// `Wake::ExitMarker` once it exists (also when it already does).
pub fn watch_exit_marker(
    meta: &Path,
    tx: Sender<Wake>,
) -> notify::Result<notify::RecommendedWatcher> {
    let marker: PathBuf = meta.join("exited");
    let check = marker.clone();
    let tx2 = tx.clone();
    let mut watcher = notify::recommended_watcher(move |_event: notify::Result<notify::Event>| {
        if check.exists() {
            let _ = tx2.send(Wake::ExitMarker);
        }
    })?;
    watcher.watch(meta, RecursiveMode::NonRecursive)?;
    if marker.exists() {
        let _ = tx.send(Wake::ExitMarker);
    }
    Ok(watcher)
}
