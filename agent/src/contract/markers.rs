//! The two markers: `.shroud/ready` (the agent's first full render is done) and
//! `.shroud/exited` (the workload ended; exec writes its exit code). The agent
//! writes the ready marker through its own output (`agent::files`), so it is
//! wiped with everything else it wrote.

use std::fs;
use std::io;
use std::path::Path;

use super::atomic::write_atomically;
use super::paths::{EXITED_FILE, META_DIR, READY_FILE};

/// Writes `<dir>/.shroud/exited` holding `code` (decimal and a newline).
pub fn write_exit_marker(dir: &Path, code: i32) -> io::Result<()> {
    fs::create_dir_all(dir.join(META_DIR))?;
    write_atomically(
        &dir.join(EXITED_FILE),
        format!("{code}\n").as_bytes(),
        0o644,
        drop,
    )
}

/// Whether the agent has declared `<dir>` ready.
pub fn is_ready(dir: &Path) -> bool {
    dir.join(READY_FILE).exists()
}

/// Whether the workload in `<dir>` has ended.
pub fn has_exited(dir: &Path) -> bool {
    dir.join(EXITED_FILE).exists()
}

/// Removes markers an earlier agent left: a stale ready marker would lie to
/// probes, and a stale exit marker would make a restarted agent (a native
/// sidecar is restarted when it exits while the pod lives) shut down at once.
pub fn clear_markers(dir: &Path) {
    let _ = fs::remove_file(dir.join(READY_FILE));
    let _ = fs::remove_file(dir.join(EXITED_FILE));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_marker_holds_the_code() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!has_exited(dir.path()));
        write_exit_marker(dir.path(), 137).unwrap();
        let content = fs::read_to_string(dir.path().join(EXITED_FILE)).unwrap();
        assert_eq!(content, "137\n");
        assert!(has_exited(dir.path()));
    }

    #[test]
    fn stale_markers_are_cleared() {
        let dir = tempfile::tempdir().unwrap();
        write_exit_marker(dir.path(), 0).unwrap();
        fs::write(dir.path().join(READY_FILE), "").unwrap();
        assert!(is_ready(dir.path()));
        clear_markers(dir.path());
        assert!(!is_ready(dir.path()) && !has_exited(dir.path()));
    }
}
