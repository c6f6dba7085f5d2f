//! Supervising the workload: `shroud exec`, and the exec half of `shroud run`.
//!
//! [`supervise`] starts the command with its stdout and stderr piped through the
//! redactor (or on a pseudo-terminal when shroud's stdout is a terminal), forwards
//! signals, reaps every child (it is the only waiter in the process), acts on
//! rotations, drains the output when the command ends, and returns the exit code
//! shroud should exit with.
//!
//! # Library API (for `shroud run`)
//!
//! ```text
//! let live = Arc::new(LiveSet::new(initial_set));
//! let (rotated, rotations) = std::sync::mpsc::channel::<Rotated>();
//! // keep `rotated`; after swapping `live` and renaming the new files into place:
//! //     live.store(new_set); rotated.send(Rotated { generation: Some(n) })
//! let code = exec::supervise(ExecOptions::new(argv), live, Some(rotations))?;
//! ```
//!
//! - `supervise` blocks the calling thread until the command has exited and its
//!   output is drained. It returns `Ok(code)` (the command's code, 128+N for
//!   signal N) or an [`crate::error::Exit`] error with 127/126 when the command
//!   cannot be started.
//! - While it runs it owns SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2,
//!   SIGWINCH and SIGCHLD (previous handlers are restored on return) and does all
//!   `waitpid` calls: nothing else in the process may wait for children (no
//!   `tokio::process`, no `std::process::Command::status/output`) while it runs.
//! - A [`Rotated`] message triggers `--on-rotate` (after a short settle delay that
//!   coalesces bursts) and the `--on-change` commands of the files whose
//!   contents changed. The caller swaps the `LiveSet` itself, before sending.
//! - [`ExecOptions::exit_marker`] (`Some(secrets_dir)`) writes
//!   `<dir>/.shroud/exited` at the end; `shroud run` leaves it `None`.
//! - Directory watching and acknowledgements are not part of `supervise`: `shroud
//!   exec` runs a [`watch::SecretsWatcher`] that swaps the set, writes the ack and
//!   sends [`Rotated`] into the same channel.

pub mod mask_socket;
pub mod on_change;
pub mod output;
pub mod pty;
pub mod reaper;
pub mod rotate;
pub mod spawn;
mod supervisor;
pub mod watch;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use output::OutputCounters;
pub use rotate::OnRotate;
pub use supervisor::supervise;

use crate::pump::PumpConfig;

/// A new redaction set is in force (and, with an agent, the new files are in
/// place): apply `--on-rotate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotated {
    /// The values-file generation now loaded, when there is one.
    pub generation: Option<u64>,
}

/// When the child gets a pseudo-terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TtyMode {
    /// When shroud's stdout is a terminal.
    Auto,
    /// Always.
    Always,
    /// Never: separate pipes for stdout and stderr.
    Never,
}

/// How to supervise the command.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Program and arguments; must not be empty.
    pub command: Vec<OsString>,
    /// Variables added to the command's environment (shroud's own is inherited);
    /// never secret values. Set here, not with `std::env::set_var`, which is
    /// unsound while other threads may read the environment.
    pub env: Vec<(OsString, OsString)>,
    /// When the command gets a pseudo-terminal.
    pub tty: TtyMode,
    /// Mask and idle interval for both streams.
    pub pump: PumpConfig,
    /// What to do on [`Rotated`].
    pub on_rotate: OnRotate,
    /// `--on-change`: commands run when their file got new contents (checked
    /// at each settled [`Rotated`]).
    pub on_change: Option<on_change::FileHooks>,
    /// How long to keep reading output from descendants after the command exited.
    pub drain_timeout: Duration,
    /// How long after a forwarded SIGTERM/SIGINT a second one escalates to
    /// SIGKILL; also how long a restart waits before SIGKILL.
    pub kill_grace: Duration,
    /// Send SIGKILL once `kill_grace` has passed after the first forwarded
    /// SIGTERM/SIGINT, without waiting for a second one (`shroud run`: nothing
    /// else will, and the wipe and revocation must still fit the grace the
    /// container runtime gives).
    pub kill_after_grace: bool,
    /// Told the time of the first forwarded SIGTERM/SIGINT (`shroud run`: the
    /// agent's shutdown deadline starts then).
    pub stop_notice: Option<std::sync::mpsc::Sender<Instant>>,
    /// Write `<dir>/.shroud/exited` with the exit code at the end.
    pub exit_marker: Option<PathBuf>,
    /// Byte and mask counters of the two streams (for metrics).
    pub counters: Arc<OutputCounters>,
}

/// Whether `mode` gives the command a pseudo-terminal in this process (then all
/// output is counted in [`OutputCounters::stdout`], label it `tty`).
pub fn uses_pty(mode: TtyMode) -> bool {
    use std::io::IsTerminal as _;
    match mode {
        TtyMode::Always => true,
        TtyMode::Never => false,
        TtyMode::Auto => std::io::stdout().is_terminal(),
    }
}

impl ExecOptions {
    /// Defaults of the `shroud exec` flags for `command`.
    pub fn new(command: Vec<OsString>) -> ExecOptions {
        ExecOptions {
            command,
            env: Vec::new(),
            tty: TtyMode::Auto,
            pump: PumpConfig::default(),
            on_rotate: OnRotate::None,
            on_change: None,
            drain_timeout: Duration::from_secs(2),
            kill_grace: Duration::from_secs(10),
            kill_after_grace: false,
            stop_notice: None,
            exit_marker: None,
            counters: Arc::default(),
        }
    }
}
