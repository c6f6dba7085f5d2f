//! The one place that waits for children. Every `waitpid` in a supervising
//! process goes through [`reap_all`]: as PID 1 (or a child subreaper) shroud
//! inherits orphans, and a second waiter (tokio's child reaper, `Child::wait`)
//! would steal exit statuses from it.
//!
//! Wait statuses are decoded here, from the raw `int`, for every signal number.
//! nix's `WaitStatus` converts the signal into its `Signal` enum, which has no
//! real-time signals (34–64): for a child killed by one, `waitpid` has already
//! reaped it when the conversion fails with EINVAL, and the status is lost.

use nix::errno::Errno;
use nix::unistd::Pid;

/// How a child changed state, decoded from a raw wait status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildStatus {
    /// It exited with this code.
    Exited(i32),
    /// A signal (any number, real-time ones included) killed it.
    Signaled(i32),
    /// Stopped or continued: still alive (only with WUNTRACED/WCONTINUED).
    Alive,
}

impl ChildStatus {
    /// Decodes the `int` `waitpid(2)` stores.
    pub fn decode(raw: libc::c_int) -> ChildStatus {
        if libc::WIFEXITED(raw) {
            ChildStatus::Exited(libc::WEXITSTATUS(raw))
        } else if libc::WIFSIGNALED(raw) {
            ChildStatus::Signaled(libc::WTERMSIG(raw))
        } else {
            ChildStatus::Alive
        }
    }

    /// The exit code a shell would report: the code, or 128+N for signal N;
    /// `None` while the child lives.
    pub fn exit_code(self) -> Option<i32> {
        match self {
            ChildStatus::Exited(code) => Some(code),
            ChildStatus::Signaled(signal) => Some(128 + signal),
            ChildStatus::Alive => None,
        }
    }
}

/// Collects every child that has exited, without blocking.
pub fn reap_all() -> Vec<(Pid, ChildStatus)> {
    let mut reaped = Vec::new();
    loop {
        let mut raw: libc::c_int = 0;
        // SAFETY: waitpid writes one int through the pointer, which points at a
        // live local.
        let pid = unsafe { libc::waitpid(-1, &mut raw, libc::WNOHANG) };
        match pid {
            0 => return reaped,
            p if p > 0 => reaped.push((Pid::from_raw(p), ChildStatus::decode(raw))),
            _ => match Errno::last() {
                Errno::ECHILD => return reaped,
                Errno::EINTR => {}
                e => {
                    tracing::warn!(error = %e, "waitpid failed");
                    return reaped;
                }
            },
        }
    }
}

/// Makes orphaned descendants re-parent to this process instead of PID 1, so they
/// are reaped here even when shroud is not PID 1.
pub fn become_subreaper() {
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::debug!(error = %e, "PR_SET_CHILD_SUBREAPER failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every signal number, real-time ones included, decodes to 128+N.
    #[test]
    fn decodes_every_signal_and_code() {
        for signal in 1..=64 {
            // The kernel's layout: termination signal in the low 7 bits.
            assert_eq!(ChildStatus::decode(signal).exit_code(), Some(128 + signal));
        }
        for code in [0, 1, 42, 255] {
            assert_eq!(ChildStatus::decode(code << 8).exit_code(), Some(code));
        }
        // Stopped by SIGSTOP: 0x7f in the low byte.
        assert_eq!(ChildStatus::decode((19 << 8) | 0x7f), ChildStatus::Alive);
        // Continued.
        assert_eq!(ChildStatus::decode(0xffff), ChildStatus::Alive);
    }
}
