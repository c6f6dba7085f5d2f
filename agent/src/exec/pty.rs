//! The pseudo-terminal given to the command when shroud's own stdout is a
//! terminal: opening it with our window size, keeping the size in step, and,
//! when our stdin is a terminal too, putting it in raw mode (so keys, Ctrl-C
//! included, reach the command's terminal unchanged) and copying it to the pty.

use std::io::{self, IsTerminal as _};
use std::os::fd::{AsFd as _, AsRawFd as _, BorrowedFd, OwnedFd};
use std::sync::Arc;

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::pty::{openpty, Winsize};
use nix::sys::termios::{self, OutputFlags, SetArg, Termios};
use nix::unistd::Pid;

/// Both sides of a new pseudo-terminal.
#[derive(Debug)]
pub struct Pty {
    /// What shroud reads the command's output from and writes its input to.
    pub master: OwnedFd,
    /// The command's terminal; shroud keeps one descriptor open so the master
    /// does not hang up between a restart's stop and start.
    pub slave: OwnedFd,
}

/// Opens a pty sized like our terminal. `stdin_on_pty` says whether our stdin (a
/// terminal, then put in raw mode) is copied to it. When it is not, our terminal
/// keeps its own `\n` → `\r\n` translation, so the pty's is switched off (or
/// every line would end in `\r\r\n`).
pub fn open(stdin_on_pty: bool) -> io::Result<Pty> {
    let size = our_window_size();
    let pair = openpty(size.as_ref(), None)?;
    for fd in [&pair.master, &pair.slave] {
        fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    }
    fcntl(
        pair.master.as_raw_fd(),
        FcntlArg::F_SETFL(OFlag::O_NONBLOCK),
    )?;
    if !stdin_on_pty {
        let mut t = termios::tcgetattr(&pair.slave)?;
        t.output_flags.remove(OutputFlags::ONLCR);
        termios::tcsetattr(&pair.slave, SetArg::TCSANOW, &t)?;
    }
    Ok(Pty {
        master: pair.master,
        slave: pair.slave,
    })
}

/// Whether our stdin goes through the pty: only when it is a terminal itself. A
/// file or pipe read through a terminal's line discipline would be changed (long
/// lines cut, control bytes turned into signals, a last line without `\n` never
/// delivered), so the command reads it directly instead.
pub fn stdin_on_pty() -> bool {
    io::stdin().is_terminal()
}

/// The window size of whichever of our stdout or stdin is a terminal.
fn our_window_size() -> Option<Winsize> {
    [io::stdout().as_raw_fd(), io::stdin().as_raw_fd()]
        .into_iter()
        .find_map(|fd| {
            let mut ws = Winsize {
                ws_row: 0,
                ws_col: 0,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            // SAFETY: TIOCGWINSZ writes one `struct winsize` to the pointer, which
            // points at a live, correctly laid out value (nix's Winsize is libc's).
            let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws as *mut Winsize) };
            (rc == 0 && ws.ws_row > 0).then_some(ws)
        })
}

/// Copies our terminal's size to the pty; the kernel then sends SIGWINCH to the
/// pty's foreground process group, so the signal itself is not forwarded.
pub fn sync_window_size(master: BorrowedFd<'_>) {
    if let Some(ws) = our_window_size() {
        // SAFETY: TIOCSWINSZ reads one `struct winsize` from a live value.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws as *const Winsize) };
    }
}

/// The pty's foreground process group (where a terminal delivers Ctrl-C).
pub fn foreground_group(master: BorrowedFd<'_>) -> Option<Pid> {
    nix::unistd::tcgetpgrp(master)
        .ok()
        .filter(|p| p.as_raw() > 0)
}

/// Our terminal in raw mode while alive; restored on drop.
#[derive(Debug)]
pub struct RawMode {
    saved: Termios,
    /// shroud's log lines go to a terminal too and are written with `\r\n`.
    logs_crlf: bool,
}

/// Puts stdin's terminal in raw mode, when stdin is a terminal. While it is,
/// shroud's own log lines on a terminal stderr end in `\r\n` (raw mode turns
/// off the terminal's own translation).
pub fn raw_stdin() -> Option<RawMode> {
    let stdin = io::stdin();
    if !stdin.is_terminal() {
        return None;
    }
    let saved = termios::tcgetattr(stdin.as_fd()).ok()?;
    let mut raw = saved.clone();
    termios::cfmakeraw(&mut raw);
    // Before the switch: a line caught in between gets a harmless extra `\r`
    // rather than none.
    let logs_crlf = io::stderr().is_terminal();
    crate::logging::set_raw_terminal(logs_crlf);
    if termios::tcsetattr(stdin.as_fd(), SetArg::TCSADRAIN, &raw).is_err() {
        crate::logging::set_raw_terminal(false);
        return None;
    }
    Some(RawMode { saved, logs_crlf })
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(io::stdin().as_fd(), SetArg::TCSADRAIN, &self.saved);
        if self.logs_crlf {
            crate::logging::set_raw_terminal(false);
        }
    }
}

/// Copies our stdin (a terminal in raw mode) to the pty master until stdin ends
/// or `stop` becomes readable.
pub fn spawn_stdin_copier(master: Arc<OwnedFd>, stop: Arc<OwnedFd>) -> io::Result<()> {
    std::thread::Builder::new()
        .name("shroud-stdin".into())
        .spawn(move || {
            let stdin = io::stdin();
            let input = stdin.as_fd();
            let mut buf = [0u8; 4096];
            loop {
                let mut fds = [
                    PollFd::new(input, PollFlags::POLLIN),
                    PollFd::new(stop.as_fd(), PollFlags::POLLIN),
                ];
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => return,
                }
                if fds[1].revents().is_some_and(|r| !r.is_empty()) {
                    return;
                }
                match nix::unistd::read(input.as_raw_fd(), &mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        if crate::pump::write_all(master.as_fd(), &buf[..n]).is_err() {
                            return;
                        }
                    }
                    Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                    Err(_) => return,
                }
            }
        })?;
    Ok(())
}
