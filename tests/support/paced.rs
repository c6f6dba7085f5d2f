//! A workload that writes its lines with real pauses inside them (a shell sleeping
//! between two `printf`s), and the three ways its output reaches shroud: a pipe
//! into `shroud redact`, `shroud exec` over pipes, and `shroud exec` under a real
//! pseudo-terminal (`script`).

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::process::{under_pty, SpawnGuarded as _};
use crate::{run_with_input, shroud_bin, wait_with_deadline};

/// How the workload's output reaches shroud.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// `workload | shroud redact FLAGS`.
    RedactPipe,
    /// `shroud exec FLAGS -- workload`, output over pipes.
    ExecPipe,
    /// `shroud exec FLAGS -- workload` run by `script`: shroud's output is a
    /// terminal, so the workload gets its own pseudo-terminal.
    ExecPty,
}

/// Every [`Via`].
pub const ALL_VIAS: [Via; 3] = [Via::RedactPipe, Via::ExecPipe, Via::ExecPty];

/// One line written in two parts with a pause between them.
#[derive(Clone, Debug)]
pub struct PausedLine {
    /// Written first.
    pub head: Vec<u8>,
    /// Written after the pause, followed by a newline.
    pub tail: Vec<u8>,
}

impl PausedLine {
    /// `prefix` + `value` cut after `at` bytes.
    pub fn split(prefix: &[u8], value: &[u8], at: usize) -> Self {
        let mut head = prefix.to_vec();
        head.extend_from_slice(&value[..at]);
        PausedLine {
            head,
            tail: value[at..].to_vec(),
        }
    }
}

/// A shell script that writes each line's head, sleeps `pause`, then writes its
/// tail and a newline.
pub fn paced_script(lines: &[PausedLine], pause: Duration) -> Vec<u8> {
    let mut s = Vec::new();
    for l in lines {
        s.extend_from_slice(b"printf '%s' ");
        s.extend_from_slice(&sh_quote(&l.head));
        s.extend_from_slice(
            format!("; sleep {:.3}; printf '%s\\n' ", pause.as_secs_f64()).as_bytes(),
        );
        s.extend_from_slice(&sh_quote(&l.tail));
        s.push(b'\n');
    }
    s
}

/// `bytes` as one single-quoted shell word.
pub fn sh_quote(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![b'\''];
    for &b in bytes {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    out
}

/// Runs `sh script` with its output redacted by shroud `via` with `flags`, and
/// returns the output lines (a terminal's carriage returns removed).
pub fn run_paced(via: Via, flags: &[String], script: &Path) -> Vec<Vec<u8>> {
    let limit = Duration::from_secs(60);
    let out = match via {
        Via::RedactPipe => {
            let mut sh = Command::new("sh")
                .arg(script)
                .stdout(Stdio::piped())
                .spawn_guarded();
            let mut redact = Command::new(shroud_bin())
                .arg("redact")
                .args(flags)
                .stdin(sh.stdout.take().unwrap())
                .stdout(Stdio::piped())
                .spawn_guarded();
            let mut out = Vec::new();
            redact.stdout.take().unwrap().read_to_end(&mut out).unwrap();
            assert!(wait_with_deadline(&mut sh, limit).success());
            assert!(
                wait_with_deadline(&mut redact, limit).success(),
                "shroud redact failed"
            );
            out
        }
        Via::ExecPipe => {
            let mut cmd = Command::new(shroud_bin());
            cmd.arg("exec").args(flags).args(["--", "sh"]).arg(script);
            let done = run_with_input(&mut cmd, b"", limit);
            assert!(done.status.success(), "shroud exec: {}", done.err());
            done.stdout
        }
        Via::ExecPty => {
            let args = format!("exec {} -- sh {}", flags.join(" "), script.display());
            let (mut child, out, t) = under_pty(&args);
            let status = wait_with_deadline(&mut child, limit);
            drop(child.stdin.take());
            t.join().unwrap();
            assert!(
                status.success(),
                "shroud exec under a terminal: {}",
                out.text()
            );
            out.bytes()
        }
    };
    out.split(|&b| b == b'\n')
        .map(|l| {
            l.iter()
                .copied()
                .filter(|&b| b != b'\r')
                .collect::<Vec<u8>>()
        })
        .filter(|l| !l.is_empty())
        .collect()
}
