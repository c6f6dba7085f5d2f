//! The redacting copy loop between a file descriptor the workload writes to and
//! one of shroud's outputs.
//!
//! Bytes are written out as soon as the engine releases them; when the engine holds
//! a possible start of a secret and nothing arrives for the idle interval, the held
//! piece is released by the engine's rule (masked from the minimum length on) and
//! kept as context, so a secret that continues after the pause is still masked. In
//! strict mode nothing is released at a pause. A set swapped into the [`LiveSet`] is
//! picked up after every read, before the bytes just read are examined.

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use shroud_redactor::detect::DetectorSet;
use shroud_redactor::Piece;
use std::sync::Arc;

pub use crate::addmask::AddMask;
use crate::live::LiveSet;
use crate::stages::Stages;

/// Default idle interval after which a held piece is released.
pub const DEFAULT_IDLE: Duration = Duration::from_millis(50);

/// How often a stream with no input checks for a swapped secret set.
const SWAP_CHECK_MS: u16 = 500;

const READ_BUF: usize = 128 * 1024;
/// How many reads a stopped pump still makes to drain what is already there.
const MAX_READS_AFTER_STOP: usize = 64;

/// How a stream is redacted.
#[derive(Clone, Debug)]
pub struct PumpConfig {
    /// Written in place of each match.
    pub mask: Vec<u8>,
    /// Quiet time after which held bytes are released.
    pub idle: Duration,
    /// Never release held bytes at an idle flush (only when resolved or at end).
    pub strict: bool,
    /// Credential detectors, run after the value matcher (`--detect`).
    pub detect: Option<Arc<DetectorSet>>,
    /// What `::add-mask::` lines do.
    pub add_mask: AddMask,
}

impl Default for PumpConfig {
    fn default() -> Self {
        PumpConfig {
            mask: shroud_redactor::DEFAULT_MASK.to_vec(),
            idle: DEFAULT_IDLE,
            strict: false,
            detect: None,
            add_mask: AddMask::Off,
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
    /// The stop descriptor became readable; what the input held then was drained.
    Stopped,
}

/// Copies `input` to `output` through the redactor until end of input.
pub fn pump(
    input: BorrowedFd<'_>,
    output: BorrowedFd<'_>,
    live: &LiveSet,
    config: &PumpConfig,
    counters: &StreamCounters,
) -> io::Result<PumpEnd> {
    pump_until(input, output, live, config, counters, None)
}

/// [`pump`], which also ends when `stop` becomes readable (a pipe written or
/// closed by whoever decides that waiting for end of input is over, e.g. the drain
/// timeout of `shroud exec` when a grandchild keeps the pipe open). On stop, what
/// the input holds at that moment is still read and written, then the held piece
/// is released by the end-of-stream rule. `input` should be non-blocking, so that
/// a stop is noticed while no data arrives; the copy loop itself polls only when a
/// read would block, so the fast path costs nothing extra.
pub fn pump_until(
    input: BorrowedFd<'_>,
    output: BorrowedFd<'_>,
    live: &LiveSet,
    config: &PumpConfig,
    counters: &StreamCounters,
    stop: Option<BorrowedFd<'_>>,
) -> io::Result<PumpEnd> {
    let mut stopping = false;
    // After a stop, a writer that never pauses must not keep us here forever.
    let mut reads_after_stop = 0usize;
    grow_pipe(input);
    let mut swaps = live.swaps();
    let mut stages = Stages::new(live, config);
    let mut buf = ReadBuf(vec![0u8; READ_BUF]);
    let idle = PollTimeout::try_from(config.idle).unwrap_or(PollTimeout::MAX);
    loop {
        // A flush keeps the released piece as context but leaves nothing pending,
        // so this waits once per pause; strict mode never flushes.
        if stages.flushable() > 0 && !stopping && !config.strict {
            match wait_readable(input, stop, idle) {
                Ok(Readiness::Stop) => stopping = true,
                Ok(Readiness::Timeout) => {
                    if stages.flush(output)? == PumpEnd::OutputClosed {
                        return Ok(PumpEnd::OutputClosed);
                    }
                    continue;
                }
                Ok(Readiness::Input) => {}
                Err(e) => return Err(e),
            }
        }
        let read = if stopping && reads_after_stop >= MAX_READS_AFTER_STOP {
            Ok(0)
        } else {
            reads_after_stop += usize::from(stopping);
            nix::unistd::read(input.as_raw_fd(), &mut buf.0)
        };
        let n = match read {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) if stopping => 0,
            Err(Errno::EAGAIN) => {
                match wait_readable(input, stop, PollTimeout::from(SWAP_CHECK_MS))? {
                    Readiness::Stop => stopping = true,
                    // A quiet stream must not keep a replaced set, and the retired
                    // values in it, alive: pick up swaps while waiting too.
                    Readiness::Timeout => {
                        let current = live.swaps();
                        if current != swaps {
                            swaps = current;
                            stages.set_secrets(live.load());
                        }
                    }
                    Readiness::Input => {}
                }
                continue;
            }
            // A pty master reads EIO once the last slave descriptor is closed.
            Err(Errno::EIO) => 0,
            Err(e) => return Err(e.into()),
        };
        let current = live.swaps();
        if current != swaps {
            swaps = current;
            stages.set_secrets(live.load());
        }
        if n == 0 {
            let end = stages.finish(output, live)?;
            stages.record(counters);
            return Ok(if end == PumpEnd::OutputClosed {
                end
            } else if stopping {
                PumpEnd::Stopped
            } else {
                PumpEnd::Eof
            });
        }
        let end = stages.write(&buf.0[..n], output, live, &mut swaps)?;
        stages.record(counters);
        // The bytes just copied may hold a secret; do not keep them around until
        // a later read happens to overwrite them (a retired value must leave memory).
        crate::alloc::wipe_slice(&mut buf.0[..n]);
        if end == PumpEnd::OutputClosed {
            return Ok(PumpEnd::OutputClosed);
        }
    }
}

/// The read buffer, wiped when dropped. Not `Zeroizing`: its byte-by-byte
/// volatile loop over 128 KiB per stream showed in every start of `shroud exec`;
/// [`crate::alloc::wipe`] writes the same zeros with one `memset`.
struct ReadBuf(Vec<u8>);

impl Drop for ReadBuf {
    fn drop(&mut self) {
        crate::alloc::wipe_slice(&mut self.0);
    }
}

/// Writes the redactor's output pieces with `writev`, so unchanged input is
/// written straight from the read buffer instead of being copied first.
pub(crate) fn write_pieces(
    fd: BorrowedFd<'_>,
    input: &[u8],
    own: &[u8],
    pieces: &[Piece],
) -> io::Result<PumpEnd> {
    const IOV_MAX: usize = 1024;
    for group in pieces.chunks(IOV_MAX) {
        let mut slices: Vec<IoSlice<'_>> = group
            .iter()
            .map(|p| match p {
                Piece::Input(r) => IoSlice::new(&input[r.clone()]),
                Piece::Own(r) => IoSlice::new(&own[r.clone()]),
            })
            .collect();
        if write_all_vectored(fd, &mut slices)? == PumpEnd::OutputClosed {
            return Ok(PumpEnd::OutputClosed);
        }
    }
    Ok(PumpEnd::Eof)
}

/// Writes `slices` in order with `writev` (the stages' output: ranges of the
/// read buffer, masks and released bytes).
pub(crate) fn write_slices<'a>(
    fd: BorrowedFd<'_>,
    slices: impl Iterator<Item = &'a [u8]>,
) -> io::Result<PumpEnd> {
    const IOV_MAX: usize = 1024;
    let mut group: Vec<IoSlice<'_>> = Vec::with_capacity(16);
    for s in slices.filter(|s| !s.is_empty()) {
        group.push(IoSlice::new(s));
        if group.len() == IOV_MAX {
            if write_all_vectored(fd, &mut group)? == PumpEnd::OutputClosed {
                return Ok(PumpEnd::OutputClosed);
            }
            group.clear();
        }
    }
    write_all_vectored(fd, &mut group)
}

/// A larger pipe buffer means fewer wake-ups per byte for both the writer and us;
/// best effort (not a pipe, or over /proc/sys/fs/pipe-max-size for non-root).
fn grow_pipe(fd: BorrowedFd<'_>) {
    let _ = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
}

#[derive(Debug, PartialEq, Eq)]
enum Readiness {
    Input,
    Stop,
    Timeout,
}

/// Waits until `input` is readable (or at end), `stop` is readable, or `timeout`.
/// Input wins over stop so that a stop never loses data already there.
fn wait_readable(
    input: BorrowedFd<'_>,
    stop: Option<BorrowedFd<'_>>,
    timeout: PollTimeout,
) -> io::Result<Readiness> {
    // The second slot repeats `input` when there is no stop descriptor; only the
    // first `n` are polled.
    let mut fds = [
        PollFd::new(input, PollFlags::POLLIN),
        PollFd::new(stop.unwrap_or(input), PollFlags::POLLIN),
    ];
    let n = if stop.is_some() { 2 } else { 1 };
    let fds = &mut fds[..n];
    match poll(fds, timeout) {
        Ok(0) => Ok(Readiness::Timeout),
        Ok(_) => {
            let ready = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
            if ready(&fds[0]) {
                Ok(Readiness::Input)
            } else {
                Ok(Readiness::Stop)
            }
        }
        Err(Errno::EINTR) => Ok(Readiness::Input),
        Err(e) => Err(e.into()),
    }
}

/// Writes all of `data`, waiting when the output is non-blocking and full.
pub fn write_all(fd: BorrowedFd<'_>, data: &[u8]) -> io::Result<PumpEnd> {
    write_all_vectored(fd, &mut [IoSlice::new(data)])
}

/// Writes every slice in order with `writev`, resuming after partial writes and
/// waiting when a non-blocking output is full.
fn write_all_vectored(fd: BorrowedFd<'_>, slices: &mut [IoSlice<'_>]) -> io::Result<PumpEnd> {
    let mut iov = slices;
    IoSlice::advance_slices(&mut iov, 0);
    while !iov.is_empty() {
        match nix::sys::uio::writev(fd, iov) {
            Ok(n) => IoSlice::advance_slices(&mut iov, n),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd as _;
    use std::time::Instant;

    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    use shroud_redactor::SecretSetBuilder;

    fn live(secret: &[u8]) -> LiveSet {
        let mut b = SecretSetBuilder::new();
        b.add("s", secret);
        LiveSet::new(b.build().0)
    }

    #[test]
    fn stop_drains_what_is_there_and_releases_the_held_piece() {
        let live = live(b"correct-horse-battery");
        let (input_r, input_w) = nix::unistd::pipe().unwrap();
        fcntl(input_r.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
        let (out_r, out_w) = nix::unistd::pipe().unwrap();
        let (stop_r, stop_w) = nix::unistd::pipe().unwrap();
        // A writer that keeps the input open; the last bytes are a proper prefix of
        // the secret, so the engine holds them.
        nix::unistd::write(&input_w, b"x correct-horse-battery y correct-h").unwrap();
        let config = PumpConfig {
            idle: Duration::from_secs(60),
            ..PumpConfig::default()
        };
        let start = Instant::now();
        drop(stop_w);
        let end = pump_until(
            input_r.as_fd(),
            out_w.as_fd(),
            &live,
            &config,
            &StreamCounters::default(),
            Some(stop_r.as_fd()),
        )
        .unwrap();
        assert_eq!(end, PumpEnd::Stopped);
        assert!(start.elapsed() < Duration::from_secs(5));
        drop(out_w);
        let mut out = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            let n = nix::unistd::read(out_r.as_raw_fd(), &mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        // The held piece is at least min_length bytes: masked by the end rule.
        assert_eq!(out, b"x [REDACTED] y [REDACTED]");
        drop(input_w);
    }

    /// A stream larger than the read buffer: secrets across a read's end and
    /// across later reads are masked; nothing is lost or reordered.
    #[test]
    fn a_busy_stream_across_many_reads_is_exact() {
        const SECRET: &[u8] = b"correct-horse-battery";
        let live = live(SECRET);
        let mut input = vec![b'.'; READ_BUF - 5];
        input.extend_from_slice(SECRET);
        for i in 0..20_000 {
            input.extend_from_slice(format!("line {i} ").as_bytes());
            if i % 97 == 0 {
                input.extend_from_slice(SECRET);
            }
        }
        let secret = String::from_utf8_lossy(SECRET).into_owned();
        let expected = String::from_utf8_lossy(&input).replace(&secret, "[REDACTED]");
        let (input_r, input_w) = nix::unistd::pipe().unwrap();
        let (out_r, out_w) = nix::unistd::pipe().unwrap();
        let writer = std::thread::spawn(move || {
            let mut f = std::fs::File::from(input_w);
            std::io::Write::write_all(&mut f, &input).unwrap();
        });
        let reader = std::thread::spawn(move || {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut std::fs::File::from(out_r), &mut out).unwrap();
            out
        });
        let end = pump_until(
            input_r.as_fd(),
            out_w.as_fd(),
            &live,
            &PumpConfig::default(),
            &StreamCounters::default(),
            None,
        )
        .unwrap();
        assert_eq!(end, PumpEnd::Eof);
        drop(out_w);
        writer.join().unwrap();
        let out = reader.join().unwrap();
        assert!(out == expected.as_bytes(), "output differs");
    }
    /// Runs `pump_until` on its own thread; `None` when it has not returned
    /// within a generous bound (the pump hangs).
    fn pump_in_thread(
        live: LiveSet,
        input: std::os::fd::OwnedFd,
        output: std::os::fd::OwnedFd,
        config: PumpConfig,
    ) -> std::sync::mpsc::Receiver<io::Result<PumpEnd>> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let end = pump_until(
                input.as_fd(),
                output.as_fd(),
                &live,
                &config,
                &StreamCounters::default(),
                None,
            );
            let _ = tx.send(end);
        });
        rx
    }

    const HANG: Duration = Duration::from_secs(20);

    /// Reads `fd` until `want` bytes came or `HANG` passed.
    fn read_until(fd: BorrowedFd<'_>, want: usize) -> Vec<u8> {
        let deadline = Instant::now() + HANG;
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while out.len() < want {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            if ms == 0 || poll(&mut fds, PollTimeout::from(ms)).unwrap() == 0 {
                break;
            }
            let n = nix::unistd::read(fd.as_raw_fd(), &mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    /// The output's reader goes away while the input stays open and quiet (a
    /// blocking input, as `shroud redact`'s stdin): the pump ends at its next
    /// write instead of waiting for input that never comes. (A design that reads
    /// on another thread must still be able to end here: docs/redact.md,
    /// "Reading on a second thread".)
    #[test]
    fn a_closed_output_ends_the_pump_while_the_input_stays_open() {
        let (input_r, input_w) = nix::unistd::pipe().unwrap();
        let (out_r, out_w) = nix::unistd::pipe().unwrap();
        drop(out_r);
        let done = pump_in_thread(
            live(b"correct-horse-battery"),
            input_r,
            out_w,
            PumpConfig::default(),
        );
        nix::unistd::write(&input_w, b"hello\n").unwrap();
        let end = done.recv_timeout(HANG).expect("the pump hangs");
        assert_eq!(end.unwrap(), PumpEnd::OutputClosed);
        drop(input_w);
    }

    /// A write that fails for another reason ends the pump with the error, also
    /// while the input stays open.
    #[test]
    fn a_write_error_ends_the_pump_with_the_error() {
        let (input_r, input_w) = nix::unistd::pipe().unwrap();
        // The read end of a pipe: every write fails with EBADF.
        let (out_r, _out_w) = nix::unistd::pipe().unwrap();
        let done = pump_in_thread(
            live(b"correct-horse-battery"),
            input_r,
            out_r,
            PumpConfig::default(),
        );
        nix::unistd::write(&input_w, b"hello\n").unwrap();
        let end = done.recv_timeout(HANG).expect("the pump hangs");
        assert_eq!(end.unwrap_err().raw_os_error(), Some(Errno::EBADF as i32));
        drop(input_w);
    }

    /// Everything the input held at its end is written, in order, before the
    /// pump ends: the end of file does not overtake bytes still to be read or
    /// redacted. The input is complete and closed before the pump starts.
    #[test]
    fn end_of_file_with_chunks_in_flight_loses_nothing() {
        const SECRET: &[u8] = b"correct-horse-battery";
        let (input_r, input_w) = nix::unistd::pipe().unwrap();
        // Room for several reads, where the system allows it; the whole input
        // must fit, as it is written before the pump starts.
        let room = nix::fcntl::fcntl(input_w.as_raw_fd(), FcntlArg::F_SETPIPE_SZ(1 << 20))
            .or_else(|_| nix::fcntl::fcntl(input_w.as_raw_fd(), FcntlArg::F_GETPIPE_SZ))
            .unwrap();
        let room = usize::try_from(room).unwrap() - 64;
        let mut input = Vec::new();
        let mut i = 0u64;
        while input.len() < room - 64 {
            input.extend_from_slice(format!("{i:08} ").as_bytes());
            if i.is_multiple_of(1001) {
                input.extend_from_slice(SECRET);
            }
            i += 1;
        }
        let secret = String::from_utf8_lossy(SECRET).into_owned();
        let expected = String::from_utf8_lossy(&input).replace(&secret, "[REDACTED]");
        let writer = std::thread::spawn(move || {
            let mut f = std::fs::File::from(input_w);
            std::io::Write::write_all(&mut f, &input).unwrap();
        });
        let (out_r, out_w) = nix::unistd::pipe().unwrap();
        let reader = std::thread::spawn(move || {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut std::fs::File::from(out_r), &mut out).unwrap();
            out
        });
        writer.join().unwrap();
        let done = pump_in_thread(live(SECRET), input_r, out_w, PumpConfig::default());
        assert_eq!(
            done.recv_timeout(HANG).expect("the pump hangs").unwrap(),
            PumpEnd::Eof
        );
        let out = reader.join().unwrap();
        assert_eq!(out.len(), expected.len());
        assert!(out == expected.as_bytes(), "output differs");
    }

    /// An output that is read slowly, a few bytes at a time, while the input is
    /// written in small pieces: the output is exact and in order.
    #[test]
    fn a_slow_output_gets_every_byte_in_order() {
        let (input_r, input_w) = nix::unistd::pipe().unwrap();
        let (out_r, out_w) = nix::unistd::pipe().unwrap();
        let mut input = Vec::new();
        for i in 0..200_000u32 {
            input.extend_from_slice(format!("{i} ").as_bytes());
        }
        let expected = input.clone();
        let writer = std::thread::spawn(move || {
            let mut f = std::fs::File::from(input_w);
            for piece in input.chunks(777) {
                std::io::Write::write_all(&mut f, piece).unwrap();
            }
        });
        let done = pump_in_thread(
            live(b"correct-horse-battery"),
            input_r,
            out_w,
            PumpConfig::default(),
        );
        let mut out = Vec::new();
        let mut buf = [0u8; 97];
        let mut f = std::fs::File::from(out_r);
        loop {
            let n = std::io::Read::read(&mut f, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        writer.join().unwrap();
        assert_eq!(done.recv_timeout(HANG).unwrap().unwrap(), PumpEnd::Eof);
        assert!(out == expected, "output differs");
    }

    /// A held possible start of a secret is released at a pause while the input
    /// stays open, and what continues it after the pause is still masked.
    #[test]
    fn a_pause_with_the_input_open_releases_the_held_piece() {
        let (input_r, input_w) = nix::unistd::pipe().unwrap();
        let (out_r, out_w) = nix::unistd::pipe().unwrap();
        let config = PumpConfig {
            idle: Duration::from_millis(20),
            ..PumpConfig::default()
        };
        let done = pump_in_thread(live(b"correct-horse-battery"), input_r, out_w, config);
        nix::unistd::write(&input_w, b"x correct-h").unwrap();
        let want = b"x [REDACTED]";
        assert_eq!(read_until(out_r.as_fd(), want.len()), want);
        // The secret continues after the pause: still masked.
        nix::unistd::write(&input_w, b"orse-battery y").unwrap();
        drop(input_w);
        assert_eq!(done.recv_timeout(HANG).unwrap().unwrap(), PumpEnd::Eof);
        assert_eq!(read_until(out_r.as_fd(), usize::MAX), b" y");
    }

    /// In strict mode a pause releases nothing.
    #[test]
    fn strict_mode_holds_across_a_pause() {
        let (input_r, input_w) = nix::unistd::pipe().unwrap();
        let (out_r, out_w) = nix::unistd::pipe().unwrap();
        let config = PumpConfig {
            idle: Duration::from_millis(1),
            strict: true,
            ..PumpConfig::default()
        };
        let done = pump_in_thread(live(b"correct-horse-battery"), input_r, out_w, config);
        nix::unistd::write(&input_w, b"x correct-h").unwrap();
        // What is decided is written; the held piece is not, however long the pause.
        assert_eq!(read_until(out_r.as_fd(), 2), b"x ");
        let mut fds = [PollFd::new(out_r.as_fd(), PollFlags::POLLIN)];
        assert_eq!(poll(&mut fds, PollTimeout::from(200u16)).unwrap(), 0);
        nix::unistd::write(&input_w, b"orse-battery y").unwrap();
        drop(input_w);
        assert_eq!(done.recv_timeout(HANG).unwrap().unwrap(), PumpEnd::Eof);
        assert_eq!(read_until(out_r.as_fd(), usize::MAX), b"[REDACTED] y");
    }
}
