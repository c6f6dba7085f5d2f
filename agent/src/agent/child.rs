//! `shroud run`'s supervision of the wrapped command: spawn it with the secrets
//! directory, pump its stdout and stderr through the redactor with the in-process
//! [`LiveSet`], and report its exit code to the engine. Kept small and separate so
//! the exec role's supervisor can replace it.

use std::io;
use std::os::fd::AsFd as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::engine::Wake;
use crate::live::LiveSet;
use crate::pump::{pump, PumpConfig, StreamCounters};

/// How long output from grandchildren that still hold the pipes is drained after
/// the command exits.
const DRAIN: Duration = Duration::from_secs(2);

/// A handle to signal the running command (0 when not running).
#[derive(Debug, Clone, Default)]
pub struct ChildPid(Arc<AtomicI32>);

impl ChildPid {
    /// Sends `sig` to the command, if it is running.
    pub fn signal(&self, sig: i32) {
        let pid = self.0.load(Ordering::Acquire);
        if pid > 0 {
            if let Ok(s) = Signal::try_from(sig) {
                let _ = kill(Pid::from_raw(pid), s);
            }
        }
    }
}

/// Why the command could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start `{program}`: {source}")]
pub struct SpawnError {
    /// The program.
    pub program: String,
    /// The OS error.
    pub source: io::Error,
    /// 126 (not executable) or 127 (not found), as a shell would.
    pub code: i32,
}

/// Starts `command` and returns its pid handle; its exit code arrives on `tx` as
/// `Wake::ChildExited` once its output is drained.
pub fn spawn(
    command: &[String],
    secrets_dir: &Path,
    live: Arc<LiveSet>,
    pump_config: PumpConfig,
    tx: Sender<Wake>,
) -> Result<ChildPid, SpawnError> {
    let mut child = Command::new(&command[0])
        .args(&command[1..])
        .env("SHROUD_SECRETS_DIR", secrets_dir)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| SpawnError {
            program: command[0].clone(),
            code: if source.kind() == io::ErrorKind::NotFound {
                127
            } else {
                126
            },
            source,
        })?;
    let pid = ChildPid::default();
    pid.0.store(child.id() as i32, Ordering::Release);
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let streams = [
        child.stdout.take().map(|s| s.as_fd().try_clone_to_owned()),
        child.stderr.take().map(|s| s.as_fd().try_clone_to_owned()),
    ];
    for (n, stream) in streams.into_iter().enumerate() {
        let Some(Ok(fd)) = stream else { continue };
        let live = live.clone();
        let cfg = pump_config.clone();
        let done = done_tx.clone();
        std::thread::Builder::new()
            .name(if n == 0 { "stdout" } else { "stderr" }.into())
            .spawn(move || {
                let counters = StreamCounters::default();
                let result = if n == 0 {
                    pump(fd.as_fd(), io::stdout().as_fd(), &live, &cfg, &counters)
                } else {
                    pump(fd.as_fd(), io::stderr().as_fd(), &live, &cfg, &counters)
                };
                if let Err(e) = result {
                    tracing::warn!(error = %e, "output stream failed");
                }
                drop(done);
            })
            .map_err(|source| SpawnError {
                program: command[0].clone(),
                code: 126,
                source,
            })?;
    }
    drop(done_tx);
    let handle = pid.clone();
    std::thread::Builder::new()
        .name("wait".into())
        .spawn(move || {
            let code = match child.wait() {
                Ok(status) => {
                    use std::os::unix::process::ExitStatusExt as _;
                    status
                        .code()
                        .or_else(|| status.signal().map(|s| 128 + s))
                        .unwrap_or(1)
                }
                Err(_) => 1,
            };
            handle.0.store(0, Ordering::Release);
            // Both pumps end when every writer (the command and any grandchild
            // still holding the pipe) is gone; do not wait for stragglers forever.
            let _ = done_rx.recv_timeout(DRAIN);
            let _ = tx.send(Wake::ChildExited(code));
        })
        .map_err(|source| SpawnError {
            program: command[0].clone(),
            code: 126,
            source,
        })?;
    Ok(pid)
}
