//! Starting the command: with pipes or a pseudo-terminal as its stdio, in the
//! right process group, and with a shell's 126/127 for commands that cannot run.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};

use nix::errno::Errno;
use nix::unistd::Pid;

/// Why the command could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// No such file (exit 127, like a shell).
    #[error("cannot run `{command}`: command not found")]
    NotFound {
        /// argv[0].
        command: String,
    },
    /// The file exists but cannot be executed (exit 126).
    #[error("cannot run `{command}`: not executable ({source})")]
    NotExecutable {
        /// argv[0].
        command: String,
        /// The OS error.
        source: io::Error,
    },
    /// Anything else (out of processes, descriptors…).
    #[error("cannot start `{command}`")]
    Other {
        /// argv[0].
        command: String,
        /// The OS error.
        source: io::Error,
    },
}

impl SpawnError {
    /// The exit code a shell uses for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            SpawnError::NotFound { .. } => 127,
            SpawnError::NotExecutable { .. } => 126,
            SpawnError::Other { .. } => 1,
        }
    }
}

/// What the command's stdio is connected to.
#[derive(Debug)]
pub enum ChildIo<'a> {
    /// stdin inherited; stdout and stderr to these pipe write ends.
    Pipes {
        /// Write end of the stdout pipe.
        stdout: &'a OwnedFd,
        /// Write end of the stderr pipe.
        stderr: &'a OwnedFd,
        /// Put the command in a process group of its own (signals to the group
        /// reach its children too). Off when stdin is a terminal, because a
        /// background group would be stopped by SIGTTIN when it reads.
        own_group: bool,
    },
    /// stdout and stderr (and stdin, when `stdin_on_pty`) on this pty slave,
    /// which becomes the controlling terminal of a new session led by the command.
    Pty {
        /// The slave side.
        slave: &'a OwnedFd,
        /// stdin on the pty too; otherwise the command inherits shroud's stdin
        /// (a file or pipe, which a terminal's line discipline would alter).
        stdin_on_pty: bool,
    },
}

/// Starts `argv` with `env` added to the inherited environment and returns its pid. The caller owns reaping it (see
/// [`super::reaper`]): the `std::process::Child` is dropped unwaited on purpose.
pub fn spawn(
    argv: &[OsString],
    env: &[(OsString, OsString)],
    io: ChildIo<'_>,
) -> Result<Pid, SpawnError> {
    let name = argv
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).envs(env.iter().map(|(k, v)| (k, v)));
    let clone = |fd: &OwnedFd| fd.try_clone().map(Stdio::from);
    let wrap = |source: io::Error| SpawnError::Other {
        command: name.clone(),
        source,
    };
    match io {
        ChildIo::Pipes {
            stdout,
            stderr,
            own_group,
        } => {
            cmd.stdin(Stdio::inherit())
                .stdout(clone(stdout).map_err(wrap)?)
                .stderr(clone(stderr).map_err(wrap)?);
            if own_group {
                cmd.process_group(0);
            }
        }
        ChildIo::Pty {
            slave,
            stdin_on_pty,
        } => {
            let stdin = if stdin_on_pty {
                clone(slave).map_err(wrap)?
            } else {
                Stdio::inherit()
            };
            cmd.stdin(stdin)
                .stdout(clone(slave).map_err(wrap)?)
                .stderr(clone(slave).map_err(wrap)?);
            // SAFETY: runs in the forked child before exec and only makes the
            // async-signal-safe calls setsid(2) and ioctl(2).
            unsafe {
                cmd.pre_exec(|| {
                    nix::unistd::setsid()?;
                    // stdout is the slave by now (std dup2s stdio before pre_exec).
                    if libc::ioctl(io::stdout().as_raw_fd(), libc::TIOCSCTTY, 0) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
    }
    die_with_parent(&mut cmd);
    match cmd.spawn() {
        Ok(child) => Ok(Pid::from_raw(child.id() as i32)),
        Err(e) => Err(classify(name, e)),
    }
}

/// A command whose supervisor is gone (SIGKILL, OOM kill) would go on running
/// with its output unredacted or nowhere, and with secrets it may no longer
/// hold: it is killed with its supervisor. The death signal is tied to the
/// spawning thread, which is the supervisor's and lives until the command has
/// been reaped; it is cleared for the command's own children, so a daemon that
/// double-forks is not affected.
pub(super) fn die_with_parent(cmd: &mut Command) {
    let parent = nix::unistd::getpid();
    // SAFETY: runs in the forked child before exec and only makes the
    // async-signal-safe calls prctl(2), getppid(2) and _exit(2).
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The supervisor died between fork and prctl: nothing will send
            // the signal now.
            if libc::getppid() != parent.as_raw() {
                libc::_exit(137);
            }
            Ok(())
        });
    }
}

fn classify(command: String, source: io::Error) -> SpawnError {
    match source.raw_os_error().map(Errno::from_raw) {
        Some(Errno::ENOENT | Errno::ENOTDIR) => SpawnError::NotFound { command },
        Some(Errno::EACCES | Errno::EPERM | Errno::ENOEXEC | Errno::EISDIR | Errno::ETXTBSY) => {
            SpawnError::NotExecutable { command, source }
        }
        _ => SpawnError::Other { command, source },
    }
}
