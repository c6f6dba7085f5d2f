//! Helpers for tests that watch a running process: own it so that it dies with
//! the test ([`Guarded`]), collect its output as it arrives and await a
//! condition on it, signal it, and simulate the agent's side of a secrets
//! directory.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use shroud_redactor::values_file::ValuesFile;
use zeroize::Zeroizing;

use crate::{require_tool, shroud_bin};

/// A spawned child that is killed (SIGKILL) and reaped when dropped, so a test
/// that fails (panics) part-way never leaves it running: an agent holding
/// leases, a `run` and its command, a psql loop. Derefs to the [`Child`], so
/// `&mut guarded` goes wherever `&mut Child` does.
#[derive(Debug)]
pub struct Guarded(Option<Child>);

impl Guarded {
    /// Takes ownership of `child`.
    pub fn new(child: Child) -> Guarded {
        Guarded(Some(child))
    }

    /// Gives the child up (no longer killed on drop).
    pub fn into_inner(mut self) -> Child {
        self.0.take().expect("a guarded child")
    }

    /// [`Child::wait_with_output`]: waits for the exit, collecting the piped
    /// output.
    pub fn wait_with_output(self) -> std::io::Result<std::process::Output> {
        self.into_inner().wait_with_output()
    }
}

impl std::ops::Deref for Guarded {
    type Target = Child;
    fn deref(&self) -> &Child {
        self.0.as_ref().expect("a guarded child")
    }
}

impl std::ops::DerefMut for Guarded {
    fn deref_mut(&mut self) -> &mut Child {
        self.0.as_mut().expect("a guarded child")
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            // Both are no-ops for a child already waited for.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `Command::spawn` into a [`Guarded`] child.
pub trait SpawnGuarded {
    /// Spawns the command; panics when it cannot be started.
    fn spawn_guarded(&mut self) -> Guarded;
}

impl SpawnGuarded for Command {
    fn spawn_guarded(&mut self) -> Guarded {
        match self.spawn() {
            Ok(child) => Guarded::new(child),
            Err(e) => panic!("cannot start {:?}: {e}", self.get_program()),
        }
    }
}

/// The bytes so far and whether the stream has ended.
type Progress = Mutex<(Vec<u8>, bool)>;

/// Everything a reader has produced so far, awaitable.
#[derive(Debug, Clone, Default)]
pub struct Collected {
    inner: Arc<(Progress, Condvar)>,
}

impl Collected {
    /// Reads `r` on a thread until end of file.
    pub fn spawn(mut r: impl Read + Send + 'static) -> (Collected, JoinHandle<()>) {
        let c = Collected::default();
        let c2 = c.clone();
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            loop {
                let n = r.read(&mut buf).unwrap_or(0);
                let (lock, cv) = &*c2.inner;
                let mut g = lock.lock().unwrap();
                if n == 0 {
                    g.1 = true;
                    cv.notify_all();
                    return;
                }
                g.0.extend_from_slice(&buf[..n]);
                cv.notify_all();
            }
        });
        (c, t)
    }

    /// A copy of what arrived so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.inner.0.lock().unwrap().0.clone()
    }

    /// What arrived so far, as lossy text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }

    /// Waits until `cond` holds for the text so far; panics after `limit` with
    /// what arrived.
    pub fn wait_for(&self, what: &str, limit: Duration, cond: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + limit;
        let (lock, cv) = &*self.inner;
        let mut g = lock.lock().unwrap();
        loop {
            let text = String::from_utf8_lossy(&g.0);
            if cond(&text) {
                return;
            }
            let now = Instant::now();
            if now >= deadline || g.1 {
                panic!(
                    "waited {limit:?} for {what}{}; output so far:\n{text}",
                    if g.1 { " (stream ended)" } else { "" }
                );
            }
            g = cv.wait_timeout(g, deadline - now).unwrap().0;
        }
    }

    /// Waits until `needle` occurs `count` times.
    pub fn wait_count(&self, needle: &str, count: usize, limit: Duration) {
        self.wait_for(&format!("{count}× `{needle}`"), limit, |t| {
            t.matches(needle).count() >= count
        });
    }
}

/// Sends `signal` to `child`.
pub fn signal(child: &Child, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
}

/// Polls `cond` until it holds, at most `limit`.
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Replaces `path` with `content` the way the agent does (temp file + rename).
pub fn replace_file(path: &Path, content: &[u8]) {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Publishes `<dir>/.shroud/values` with `generation` and `values`, atomically.
pub fn publish_values(dir: &Path, generation: u64, values: &[(&str, &[u8])]) {
    std::fs::create_dir_all(dir.join(".shroud")).unwrap();
    let file = ValuesFile {
        generation,
        retain: None,
        values: values
            .iter()
            .map(|(n, v)| (n.to_string(), Zeroizing::new(v.to_vec())))
            .collect(),
    };
    replace_file(&dir.join(".shroud/values"), &file.to_bytes());
}

/// The generations in every `<dir>/.shroud/acks/*` file.
pub fn acks(dir: &Path) -> Vec<u64> {
    let Ok(entries) = std::fs::read_dir(dir.join(".shroud/acks")) else {
        return vec![];
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|s| s.strip_suffix('\n').and_then(|s| s.parse().ok()))
        .collect()
}

/// CPU time (user + system, all threads) a live process has used so far, from
/// `/proc/PID/stat` (fields 14 and 15, in clock ticks of 10 ms).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name (field 2) may hold spaces; the fields after it are plain.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

/// CPU time `pid` uses during `window` of wall time. The window is the
/// measurement itself (a busy loop shows as about `window` seconds), not a wait
/// for an event.
pub fn cpu_used_during(pid: u32, window: Duration) -> f64 {
    let before = cpu_seconds(pid);
    std::thread::sleep(window);
    cpu_seconds(pid) - before
}

/// A finished process with its wall time and peak resident memory.
#[derive(Debug)]
pub struct Measured {
    /// Status and output.
    pub finished: crate::Finished,
    /// From spawn to exit.
    pub elapsed: Duration,
    /// The child's peak RSS in KiB (`ru_maxrss` from `wait4`).
    pub peak_rss_kib: u64,
}

/// Runs `cmd` to completion (stdin empty, output collected) and measures it with
/// `wait4`; kills it and fails after `limit`.
pub fn run_measured(cmd: &mut std::process::Command, limit: Duration) -> Measured {
    use std::process::Stdio;
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let start = std::time::Instant::now();
    // Reaped below with wait4 (for its rusage), not through `Child`.
    #[allow(clippy::zombie_processes)]
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .expect("spawning process");
    let pid = child.id() as libc::pid_t;
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(limit).is_err() {
            // SAFETY: kill(2) on our own unreaped child's pid, which cannot be reused before wait4.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            return true;
        }
        false
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to locals; pid is our child, reaped only here.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    let elapsed = start.elapsed();
    let _ = done_tx.send(());
    let killed = watchdog.join().unwrap();
    assert!(!killed, "process did not exit within {limit:?}");
    let read = |mut f: std::fs::File| {
        use std::io::Seek as _;
        f.rewind().unwrap();
        let mut v = Vec::new();
        f.read_to_end(&mut v).unwrap();
        v
    };
    use std::os::unix::process::ExitStatusExt as _;
    Measured {
        finished: crate::Finished {
            status: std::process::ExitStatus::from_raw(status),
            stdout: read(out),
            stderr: read(err),
        },
        elapsed,
        peak_rss_kib: usage.ru_maxrss as u64,
    }
}

/// Runs shroud under `script`, which gives it a real pseudo-terminal.
pub fn under_pty(shroud_args: &str) -> (Guarded, Collected, JoinHandle<()>) {
    under_pty_env(shroud_args, &[])
}

/// [`under_pty`] with extra environment variables for shroud.
pub fn under_pty_env(
    shroud_args: &str,
    env: &[(&str, &str)],
) -> (Guarded, Collected, JoinHandle<()>) {
    require_tool("script", "apt-get install bsdutils");
    // `exec`: without it a shell that does not replace itself with its last
    // command (dash, when SHELL is unset) stays in the terminal's foreground group
    // and dies of a Ctrl-C meant for shroud, and script reports its status.
    let mut child = Command::new("script")
        .envs(env.iter().copied())
        .env("SHELL", "/bin/sh")
        .args([
            "-qec",
            &format!("exec {} {shroud_args}", shroud_bin().display()),
            "/dev/null",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn_guarded();
    let (out, t) = Collected::spawn(child.stdout.take().unwrap());
    (child, out, t)
}
