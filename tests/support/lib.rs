//! Shared helpers for the end-to-end tests: find the built `shroud` binary, make a
//! real tmpfs, pick free ports, spawn processes and await them with deadlines.
//!
//! Prerequisites that are missing make a test fail with a message that says how to
//! get them (`scripts/test` installs and builds everything); nothing is skipped.

pub mod apiserver;
pub mod app;
pub mod decoded;
pub mod http;
pub mod openbao;
pub mod paced;
pub mod pgwire;
pub mod pod_security;
pub mod postgres;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The `shroud` binary built by `cargo build` (SHROUD_BIN overrides).
pub fn shroud_bin() -> PathBuf {
    if let Ok(p) = std::env::var("SHROUD_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join("target"));
    let bin = target.join("debug").join("shroud");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p shroud-agent` first (scripts/test does)",
        bin.display()
    );
    bin
}

/// A `Command` for the shroud binary.
pub fn shroud() -> Command {
    Command::new(shroud_bin())
}

/// Requires a tool on PATH, failing with how to install it.
pub fn require_tool(tool: &str, how: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let p = dir.join(tool);
        if p.is_file() {
            return p;
        }
    }
    panic!("prerequisite `{tool}` not found on PATH; install it with: {how} (scripts/test does)");
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real tmpfs mounted on a fresh temporary directory; unmounted on drop.
#[derive(Debug)]
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a small tmpfs. Needs root (CI runs as root).
    #[allow(clippy::new_without_default)]
    pub fn new() -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("running mount");
        assert!(
            status.success(),
            "mounting a tmpfs needs root (CI runs as root)"
        );
        Tmpfs { dir }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Waits for `child` to exit, killing it and failing after `limit`.
pub fn wait_with_deadline(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Output of a finished process.
#[derive(Debug)]
pub struct Finished {
    /// Exit status.
    pub status: ExitStatus,
    /// Everything written to stdout.
    pub stdout: Vec<u8>,
    /// Everything written to stderr.
    pub stderr: Vec<u8>,
}

impl Finished {
    /// Stdout as lossy text.
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    /// Stderr as lossy text.
    pub fn err(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Runs `cmd` with `stdin` as input, collecting both outputs, within `limit`.
pub fn run_with_input(cmd: &mut Command, stdin: &[u8], limit: Duration) -> Finished {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning process");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        use std::io::Write as _;
        let _ = input.write_all(&data);
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let status = wait_with_deadline(&mut child, limit);
    writer.join().unwrap();
    Finished {
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

/// Writes `value` to a new file in `dir` and returns its path.
pub fn secret_file(dir: &Path, name: &str, value: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, value).unwrap();
    p
}

/// True when `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

pub mod process;
pub use process::{Guarded, SpawnGuarded};
pub mod proxy;
pub mod registry;
pub mod stub;
pub mod token;
pub mod webhook;
pub mod world;

/// Polls `f` until it returns Some, failing after `limit` with `what` named.
pub fn until<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `shroud run --config cfg -- sh -c script`.
pub fn run_script(cfg: &Path, script: &str) -> Command {
    let mut cmd = shroud();
    cmd.arg("run")
        .arg("--config")
        .arg(cfg)
        .args(["--", "sh", "-c", script]);
    cmd
}

/// Spawns `cmd` with piped stdout and stderr and waits until `started` exists
/// (the command touches it once it is running); killed on drop.
pub fn spawn_started(cmd: &mut Command, started: &Path) -> process::Guarded {
    use process::SpawnGuarded as _;
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn_guarded();
    until(Duration::from_secs(20), "the command to start", || {
        started.exists().then_some(())
    });
    child
}

/// `KEY='…'` from an env-format file (the value is not echoed on failure).
pub fn env_value(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}='")))
        .map(|v| v.trim_end_matches('\''))
        .unwrap_or_else(|| panic!("{key} missing"))
        .to_string()
}
