//! The redacting copy loop between a file descriptor the workload writes to and
//! one of shroud's outputs.
//!
//! Bytes are written out as soon as the engine releases them; when the engine holds
//! a possible start of a secret and nothing arrives for the idle interval, the held
//! piece is released by the engine's rule. A set swapped into the [`LiveSet`] is
//! picked up after every read, before the bytes just read are examined.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use shroud_redactor::Redactor;

use crate::live::LiveSet;

/// Default idle interval after which a held piece is released.
pub const DEFAULT_IDLE: Duration = Duration::from_millis(50);

const READ_BUF: usize = 128 * 1024;

/// How a stream is redacted.
#[derive(Clone, Debug)]
pub struct PumpConfig {
    /// Written in place of each match.
    pub mask: Vec<u8>,
    /// Quiet time after which held bytes are released.
    pub idle: Duration,
}

impl Default for PumpConfig {
    fn default() -> Self {
        PumpConfig {
            mask: shroud_redactor::DEFAULT_MASK.to_vec(),
            idle: DEFAULT_IDLE,
        }
    }
}

/// Counters of one stream, readable from other threads (metrics).
#[derive(Debug, Default)]
pub struct StreamCounters {
    /// Bytes read from the workload.
    pub bytes: AtomicU64,
    /// Matches replaced by the mask.
    pub masked: AtomicU64,
}

/// How a pump ended.
#[derive(Debug, PartialEq, Eq)]
pub enum PumpEnd {
    /// The input reached end of file (or the pty's EIO when the last writer left).
    Eof,
    /// The output was closed by its reader.
    OutputClosed,
}

/// Copies `input` to `output` through the redactor until end of input.
pub fn pump(
    input: BorrowedFd<'_>,
    output: BorrowedFd<'_>,
    live: &LiveSet,
    config: &PumpConfig,
    counters: &StreamCounters,
) -> io::Result<PumpEnd> {
    grow_pipe(input);
    let mut swaps = live.swaps();
    let mut redactor = Redactor::new(live.load()).with_mask(config.mask.clone());
    let mut buf = zeroize::Zeroizing::new(vec![0u8; READ_BUF]);
    let mut out = Vec::with_capacity(READ_BUF + 1024);
    let idle = PollTimeout::try_from(config.idle).unwrap_or(PollTimeout::MAX);
    loop {
        if redactor.pending() > 0 {
            let mut fds = [PollFd::new(input, PollFlags::POLLIN)];
            match poll(&mut fds, idle) {
                Ok(0) => {
                    redactor.flush(&mut out);
                    if write_all(output, &out)? == PumpEnd::OutputClosed {
                        return Ok(PumpEnd::OutputClosed);
                    }
                    out.clear();
                    continue;
                }
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let n = match nix::unistd::read(input.as_raw_fd(), &mut buf) {
            Ok(n) => n,
            Err(Errno::EINTR | Errno::EAGAIN) => {
                wait_readable(input)?;
                continue;
            }
            // A pty master reads EIO once the last slave descriptor is closed.
            Err(Errno::EIO) => 0,
            Err(e) => return Err(e.into()),
        };
        let current = live.swaps();
        if current != swaps {
            swaps = current;
            redactor.set_secrets(live.load());
        }
        if n == 0 {
            redactor.finish(&mut out);
            let end = write_all(output, &out)?;
            record(&redactor, counters);
            return Ok(if end == PumpEnd::OutputClosed {
                end
            } else {
                PumpEnd::Eof
            });
        }
        redactor.write(&buf[..n], &mut out);
        record(&redactor, counters);
        if write_all(output, &out)? == PumpEnd::OutputClosed {
            return Ok(PumpEnd::OutputClosed);
        }
        out.clear();
    }
}

/// A larger pipe buffer means fewer wake-ups per byte for both the writer and us;
/// best effort (not a pipe, or over /proc/sys/fs/pipe-max-size for non-root).
fn grow_pipe(fd: BorrowedFd<'_>) {
    let _ = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
}

fn record(redactor: &Redactor, counters: &StreamCounters) {
    let s = redactor.stats();
    counters.bytes.store(s.bytes_in, Ordering::Relaxed);
    counters.masked.store(s.masked, Ordering::Relaxed);
}

fn wait_readable(fd: BorrowedFd<'_>) -> io::Result<()> {
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::NONE) {
        Ok(_) | Err(Errno::EINTR) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Writes all of `data`, waiting when the output is non-blocking and full.
pub fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> io::Result<PumpEnd> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
                let _ = poll(&mut fds, PollTimeout::NONE);
            }
            Err(Errno::EPIPE) => return Ok(PumpEnd::OutputClosed),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(PumpEnd::Eof)
}
