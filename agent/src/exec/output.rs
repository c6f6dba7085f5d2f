//! The command's output side: the pipes (or the pty) it writes to, one redacting
//! pump thread per stream, and the drain at the end.
//!
//! shroud keeps its own copy of the write ends (the pty slave) until the command
//! has exited for the last time, so a restart reuses the same streams and a pump
//! only sees end of file once every writer (the command, its grandchildren and
//! shroud) is gone. Past the drain timeout the pumps are told to stop: they write
//! out what is already buffered and end.

use std::io;
use std::os::fd::{AsFd as _, AsRawFd as _, OwnedFd};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;

use nix::fcntl::{fcntl, FcntlArg, OFlag};

use super::pty::{self, Pty};
use super::spawn::ChildIo;
use crate::live::LiveSet;
use crate::pump::{pump_until, PumpConfig, PumpEnd, StreamCounters};

/// Which of shroud's outputs a pump writes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// fd 1.
    Stdout,
    /// fd 2.
    Stderr,
}

/// A broadcast "stop now": a pipe whose write end is closed to fire, so every
/// poller sees it at once and keeps seeing it.
#[derive(Debug)]
pub struct Stop {
    read: Arc<OwnedFd>,
    write: Option<OwnedFd>,
}

impl Stop {
    /// A stop that has not fired.
    pub fn new() -> io::Result<Stop> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        Ok(Stop {
            read: Arc::new(read),
            write: Some(write),
        })
    }

    /// What to poll.
    pub fn handle(&self) -> Arc<OwnedFd> {
        Arc::clone(&self.read)
    }

    /// Fires.
    pub fn fire(&mut self) {
        self.write = None;
    }
}

/// How the command's output is connected.
#[derive(Debug)]
enum Writers {
    Pipes {
        stdout: OwnedFd,
        stderr: OwnedFd,
        own_group: bool,
    },
    Pty {
        slave: OwnedFd,
        master: Arc<OwnedFd>,
        stdin_on_pty: bool,
    },
}

/// The output streams of one supervision.
#[derive(Debug)]
pub struct Outputs {
    writers: Option<Writers>,
    pumps: Vec<JoinHandle<()>>,
    stop: Stop,
}

/// Counters for the two streams (in pty mode everything is counted as stdout).
/// Each is an `Arc` so it can be handed to `telemetry::Metrics::attach_stream`.
#[derive(Debug, Default)]
pub struct OutputCounters {
    /// The command's stdout (or its terminal).
    pub stdout: Arc<StreamCounters>,
    /// The command's stderr.
    pub stderr: Arc<StreamCounters>,
}

/// Sent by a pump when its stream has ended.
#[derive(Debug)]
pub struct PumpDone(pub Stream);

impl Outputs {
    /// Two pipes and two pumps; `own_group` as in [`ChildIo::Pipes`].
    pub fn pipes(
        own_group: bool,
        live: &Arc<LiveSet>,
        config: &PumpConfig,
        counters: &Arc<OutputCounters>,
        done: &Sender<PumpDone>,
    ) -> io::Result<Outputs> {
        let stop = Stop::new()?;
        let mut pumps = Vec::new();
        let mut ends = Vec::new();
        for stream in [Stream::Stdout, Stream::Stderr] {
            let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
            fcntl(read.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
            pumps.push(start_pump(
                stream,
                Arc::new(read),
                live,
                config,
                counters,
                &stop,
                done,
            )?);
            ends.push(write);
        }
        let stderr = ends.pop().expect("two pipes");
        let stdout = ends.pop().expect("two pipes");
        Ok(Outputs {
            writers: Some(Writers::Pipes {
                stdout,
                stderr,
                own_group,
            }),
            pumps,
            stop,
        })
    }

    /// A pseudo-terminal, its pump (to stdout) and, when our stdin is a
    /// terminal, the stdin copier (otherwise the command reads our stdin itself).
    pub fn pty(
        live: &Arc<LiveSet>,
        config: &PumpConfig,
        counters: &Arc<OutputCounters>,
        done: &Sender<PumpDone>,
    ) -> io::Result<Outputs> {
        let stop = Stop::new()?;
        let stdin_on_pty = pty::stdin_on_pty();
        let Pty { master, slave } = pty::open(stdin_on_pty)?;
        let master = Arc::new(master);
        let pumps = vec![start_pump(
            Stream::Stdout,
            Arc::clone(&master),
            live,
            config,
            counters,
            &stop,
            done,
        )?];
        if stdin_on_pty {
            pty::spawn_stdin_copier(Arc::clone(&master), stop.handle())?;
        }
        Ok(Outputs {
            writers: Some(Writers::Pty {
                slave,
                master,
                stdin_on_pty,
            }),
            pumps,
            stop,
        })
    }

    /// How to connect the next incarnation of the command; `None` once closed.
    pub fn child_io(&self) -> Option<ChildIo<'_>> {
        match self.writers.as_ref()? {
            Writers::Pipes {
                stdout,
                stderr,
                own_group,
            } => Some(ChildIo::Pipes {
                stdout,
                stderr,
                own_group: *own_group,
            }),
            Writers::Pty {
                slave,
                stdin_on_pty,
                ..
            } => Some(ChildIo::Pty {
                slave,
                stdin_on_pty: *stdin_on_pty,
            }),
        }
    }

    /// The pty master, in pty mode.
    pub fn master(&self) -> Option<&OwnedFd> {
        match self.writers.as_ref()? {
            Writers::Pty { master, .. } => Some(master),
            Writers::Pipes { .. } => None,
        }
    }

    /// How many pumps run (how many [`PumpDone`] to expect).
    pub fn pump_count(&self) -> usize {
        self.pumps.len()
    }

    /// Closes shroud's write ends: the pumps end once the last other writer goes.
    pub fn close_writers(&mut self) {
        self.writers = None;
    }

    /// Tells the pumps to stop and waits for them.
    pub fn stop_and_join(mut self) {
        self.writers = None;
        self.stop.fire();
        for pump in self.pumps.drain(..) {
            let _ = pump.join();
        }
    }
}

fn start_pump(
    stream: Stream,
    input: Arc<OwnedFd>,
    live: &Arc<LiveSet>,
    config: &PumpConfig,
    counters: &Arc<OutputCounters>,
    stop: &Stop,
    done: &Sender<PumpDone>,
) -> io::Result<JoinHandle<()>> {
    let live = Arc::clone(live);
    let config = config.clone();
    let counters = Arc::clone(counters);
    let stop = stop.handle();
    let done = done.clone();
    std::thread::Builder::new()
        .name(format!("shroud-{stream:?}").to_lowercase())
        .spawn(move || {
            let (out, err) = (io::stdout(), io::stderr());
            let (output, c) = match stream {
                Stream::Stdout => (out.as_fd(), &counters.stdout),
                Stream::Stderr => (err.as_fd(), &counters.stderr),
            };
            match pump_until(
                input.as_fd(),
                output,
                &live,
                &config,
                c,
                Some(stop.as_fd()),
            ) {
                Ok(PumpEnd::Stopped) => {
                    tracing::warn!(stream = ?stream, "drain timeout: a descendant still holds the output open; stopped reading it");
                }
                Ok(_) => {}
                Err(e) => tracing::error!(stream = ?stream, error = %e, "copying output failed"),
            }
            // Close our read end now, so writers get EPIPE rather than block.
            drop(input);
            let _ = done.send(PumpDone(stream));
        })
}
