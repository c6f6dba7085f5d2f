//! The socket through which `shroud mask add` registers a value with the
//! supervisor of the command it runs under (`SHROUD_MASK_SOCKET`).
//!
//! It lives in a private directory (mode 0700, created by the supervisor) and
//! answers only peers with the supervisor's own uid or root (`SO_PEERCRED`).
//! One connection carries one value: the client writes it and shuts down its
//! writing side; the supervisor registers it with the live set (every later
//! byte of either stream is examined against a set that masks it) and only
//! then answers `ok`, so `shroud mask add` returning means the value is masked.

use std::io::{Read as _, Write as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use nix::sys::socket::{getsockopt, sockopt};
use zeroize::Zeroizing;

use crate::live::{LiveSet, Registered};

/// The variable that names the socket in the command's environment.
pub const ENV: &str = "SHROUD_MASK_SOCKET";

/// The largest value accepted.
pub const MAX_VALUE: usize = 64 * 1024;

/// Name under which values from `shroud mask add` are registered.
pub const NAME: &str = "mask-add";

/// The listening socket and its thread; dropping it closes both and removes
/// the directory.
#[derive(Debug)]
pub struct MaskSocket {
    path: PathBuf,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl MaskSocket {
    /// Creates the directory and the socket and starts answering.
    pub fn start(live: Arc<LiveSet>) -> std::io::Result<MaskSocket> {
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|d| d.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        // tempfile creates the directory with mode 0700.
        let dir = tempfile::Builder::new()
            .prefix("shroud-mask-")
            .tempdir_in(base)?;
        let path = dir.path().join("mask.sock");
        let listener = UnixListener::bind(&path)?;
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&stopping);
        let thread = std::thread::Builder::new()
            .name("shroud-mask-socket".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    match conn {
                        Ok(stream) => serve(stream, &live),
                        Err(e) => tracing::warn!(error = %e, "mask socket: accept failed"),
                    }
                }
            })?;
        Ok(MaskSocket {
            path,
            stopping,
            thread: Some(thread),
            _dir: dir,
        })
    }

    /// The socket's path, for the command's environment.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for MaskSocket {
    fn drop(&mut self) {
        // Wake the blocked accept with a connection of our own.
        self.stopping.store(true, Ordering::Release);
        if UnixStream::connect(&self.path).is_ok() {
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }
}

fn serve(mut stream: UnixStream, live: &LiveSet) {
    let answer = match allowed(&stream) {
        Err(e) => e,
        Ok(()) => receive(&mut stream, live),
    };
    let _ = stream.write_all(answer.as_bytes());
}

fn allowed(stream: &UnixStream) -> Result<(), String> {
    let creds = getsockopt(stream, sockopt::PeerCredentials)
        .map_err(|e| format!("error: cannot read the peer's credentials: {e}\n"))?;
    let own = nix::unistd::geteuid().as_raw();
    if creds.uid() == own || creds.uid() == 0 {
        Ok(())
    } else {
        tracing::warn!(
            uid = creds.uid(),
            "refused a mask registration from another user"
        );
        Err(format!(
            "error: uid {} may not register values here\n",
            creds.uid()
        ))
    }
}

fn receive(stream: &mut UnixStream, live: &LiveSet) -> String {
    let mut value = Zeroizing::new(Vec::new());
    let read = stream.take(MAX_VALUE as u64 + 1).read_to_end(&mut value);
    if let Err(e) = read {
        return format!("error: reading the value: {e}\n");
    }
    if value.len() > MAX_VALUE {
        return format!("error: the value is longer than {MAX_VALUE} bytes\n");
    }
    if value.ends_with(b"\n") {
        value.pop();
        if value.ends_with(b"\r") {
            value.pop();
        }
    }
    if value.is_empty() {
        return "error: the value is empty\n".to_string();
    }
    match live.register(NAME, &value) {
        Registered::Added | Registered::Known => "ok\n".to_string(),
        Registered::TooShort => format!(
            "error: the value is shorter than the minimum length ({} bytes) and would not be masked\n",
            live.min_length()
        ),
    }
}
