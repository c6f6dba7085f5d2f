//! Catching the signals shroud forwards (and SIGCHLD) and turning them into
//! events for the supervisor loop.
//!
//! A handler installed with `SA_SIGINFO` writes the signal number, `si_code` and
//! sender pid into a process-wide self-pipe (one `write(2)` of 12 bytes, which is
//! atomic and async-signal-safe); one reader thread turns records into
//! [`SignalInfo`] values and hands them to whoever is subscribed. Unlike a
//! `signalfd`, this works whatever other threads exist and whatever their signal
//! masks are, which matters when `shroud run` calls the supervisor from inside a
//! process that already has a runtime going. `si_code` is what lets the supervisor
//! tell a terminal's Ctrl-C (`SI_KERNEL`, already delivered to the whole
//! foreground process group) from a `kill(2)`.

use std::os::fd::{AsRawFd as _, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, OnceLock};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::Pid;

/// Signals forwarded to the command.
pub const FORWARDED: [Signal; 7] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// One caught signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalInfo {
    /// The signal.
    pub signal: Signal,
    /// `si_code`: `SI_USER` for kill(2), `SI_KERNEL` for a terminal's keys.
    pub code: i32,
    /// The sender, when `kill(2)` sent it.
    pub sender: Option<Pid>,
}

impl SignalInfo {
    /// True when the kernel generated it (a terminal's Ctrl-C, Ctrl-\, resize or
    /// hangup), which the terminal already delivered to its foreground group.
    pub fn from_terminal(&self) -> bool {
        self.code == libc::SI_KERNEL
    }
}

/// Receives every caught signal (on the reader thread).
pub type Subscriber = Box<dyn Fn(SignalInfo) + Send>;

static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);
const RECORD: usize = 12;

struct SelfPipe {
    subscriber: Mutex<Option<Subscriber>>,
    // Kept open for the life of the process so a late handler never writes to a
    // closed (or reused) descriptor.
    _write: OwnedFd,
}

static SELF_PIPE: OnceLock<SelfPipe> = OnceLock::new();

extern "C" fn on_signal(signo: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: errno is thread-local; saving and restoring it keeps the interrupted
    // code's errno intact across our write(2).
    let errno = unsafe { *libc::__errno_location() };
    let (code, pid) = if info.is_null() {
        (0, 0)
    } else {
        // SAFETY: the kernel passes a valid siginfo_t for SA_SIGINFO handlers;
        // si_pid is meaningful for SI_USER/SI_QUEUE and SIGCHLD and 0 otherwise.
        unsafe { ((*info).si_code, (*info).si_pid()) }
    };
    let mut rec = [0u8; RECORD];
    rec[0..4].copy_from_slice(&signo.to_ne_bytes());
    rec[4..8].copy_from_slice(&code.to_ne_bytes());
    rec[8..12].copy_from_slice(&pid.to_ne_bytes());
    let fd = PIPE_WRITE.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: `fd` is the self-pipe's write end, open for the process's life;
        // write(2) is async-signal-safe. A full pipe drops the record (the pipe is
        // non-blocking), which only loses a signal when 5000 are queued unread.
        unsafe { libc::write(fd, rec.as_ptr().cast(), RECORD) };
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

fn self_pipe() -> std::io::Result<&'static SelfPipe> {
    if let Some(p) = SELF_PIPE.get() {
        return Ok(p);
    }
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    nix::fcntl::fcntl(
        write.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )?;
    let pipe = SelfPipe {
        subscriber: Mutex::new(None),
        _write: write,
    };
    let raw_write: RawFd = pipe._write.as_raw_fd();
    if SELF_PIPE.set(pipe).is_err() {
        // Another thread won the race; ours is dropped with its descriptors.
        return Ok(SELF_PIPE.get().expect("set"));
    }
    PIPE_WRITE.store(raw_write, Ordering::Relaxed);
    std::thread::Builder::new()
        .name("shroud-signals".into())
        .spawn(move || read_records(read))?;
    Ok(SELF_PIPE.get().expect("set"))
}

fn read_records(read: OwnedFd) {
    let mut rec = [0u8; RECORD];
    loop {
        let mut got = 0;
        while got < RECORD {
            match nix::unistd::read(read.as_raw_fd(), &mut rec[got..]) {
                Ok(0) => return,
                Ok(n) => got += n,
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => return,
            }
        }
        let num = |i: usize| i32::from_ne_bytes(rec[i..i + 4].try_into().expect("4 bytes"));
        let Ok(signal) = Signal::try_from(num(0)) else {
            continue;
        };
        let pid = num(8);
        let info = SignalInfo {
            signal,
            code: num(4),
            sender: (pid > 0).then(|| Pid::from_raw(pid)),
        };
        let pipe = SELF_PIPE.get().expect("set before the thread starts");
        if let Some(deliver) = pipe.subscriber.lock().expect("not poisoned").as_ref() {
            deliver(info);
        }
    }
}

/// The handlers of one supervision: while alive, every forwarded signal and every
/// SIGCHLD is sent to its subscriber; dropping it restores the previous handlers.
#[derive(Debug)]
pub struct SignalGuard {
    previous: Vec<(Signal, SigAction)>,
}

/// Subscribes `deliver` to the caught signals and installs the handlers.
pub fn catch(deliver: Subscriber) -> std::io::Result<SignalGuard> {
    let pipe = self_pipe()?;
    *pipe.subscriber.lock().expect("not poisoned") = Some(deliver);
    let action = |extra: SaFlags| {
        SigAction::new(
            SigHandler::SigAction(on_signal),
            SaFlags::SA_SIGINFO | SaFlags::SA_RESTART | extra,
            SigSet::empty(),
        )
    };
    let mut previous = Vec::new();
    for (signal, extra) in FORWARDED
        .iter()
        .map(|s| (*s, SaFlags::empty()))
        .chain([(Signal::SIGCHLD, SaFlags::SA_NOCLDSTOP)])
    {
        // SAFETY: `on_signal` is async-signal-safe (it only reads an atomic and the
        // siginfo, and calls write(2)).
        let old = unsafe { sigaction(signal, &action(extra)) }?;
        previous.push((signal, old));
    }
    Ok(SignalGuard { previous })
}

impl Drop for SignalGuard {
    fn drop(&mut self) {
        for (signal, old) in self.previous.drain(..).rev() {
            // SAFETY: restores the disposition that was in place before `catch`.
            let _ = unsafe { sigaction(signal, &old) };
        }
        if let Some(pipe) = SELF_PIPE.get() {
            *pipe.subscriber.lock().expect("not poisoned") = None;
        }
    }
}
