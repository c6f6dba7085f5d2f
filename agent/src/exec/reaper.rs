//! The one place that waits for children. Every `waitpid` in a supervising
//! process goes through [`reap_all`]: as PID 1 (or a child subreaper) shroud
//! inherits orphans, and a second waiter (tokio's child reaper, `Child::wait`)
//! would steal exit statuses from it.

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Collects every child that has exited, without blocking.
pub fn reap_all() -> Vec<(Pid, WaitStatus)> {
    let mut reaped = Vec::new();
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return reaped,
            Ok(status) => {
                if let Some(pid) = status.pid() {
                    reaped.push((pid, status));
                }
            }
            Err(Errno::EINTR) => {}
            Err(e) => {
                tracing::warn!(error = %e, "waitpid failed");
                return reaped;
            }
        }
    }
}

/// The exit code a shell would report: the code, or 128+N for signal N.
pub fn exit_code(status: &WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(*code),
        WaitStatus::Signaled(_, signal, _) => Some(128 + *signal as i32),
        _ => None,
    }
}

/// Makes orphaned descendants re-parent to this process instead of PID 1, so they
/// are reaped here even when shroud is not PID 1.
pub fn become_subreaper() {
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::debug!(error = %e, "PR_SET_CHILD_SUBREAPER failed");
    }
}
