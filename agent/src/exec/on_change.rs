//! `--on-change NAME=COMMAND`: a shell command run beside the supervised
//! command each time the file `NAME` of the secrets directory is re-rendered
//! with new contents (Vault Agent's `template { command }`, the injector's
//! `agent-inject-command-<name>`).
//!
//! Like consul-template, a command runs only when its file's bytes changed (a
//! rotation that rewrote the same bytes runs nothing), identical commands due
//! at once run once, and a command still running after [`COMMAND_TIMEOUT`] is
//! killed. Unlike it, the first render is not a change: the supervised command
//! starts after it, so there is nothing yet to tell.
//!
//! The previous contents are kept (zeroized on drop) to compare with: they are
//! values the redaction set holds anyway.

use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::unistd::Pid;
use zeroize::Zeroizing;

/// The shell that runs every command, as consul-template does on Unix.
pub const SHELL: &str = "/bin/sh";

/// How long a command may run before it is killed (consul-template's default
/// `command_timeout`).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Why an `--on-change` cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OnChangeError {
    /// Not `NAME=COMMAND`.
    #[error("`{0}`: expected NAME=COMMAND (NAME a file of --secrets-dir)")]
    Syntax(String),
    /// The name is not a plain file name.
    #[error("`{0}`: NAME must be a file name in --secrets-dir, not a path")]
    BadName(String),
    /// The command is empty.
    #[error("`{0}`: the command is empty")]
    Empty(String),
    /// An origin names a file that has no command.
    #[error("--on-change-origin {0}: there is no --on-change {0}=…")]
    OriginWithoutCommand(String),
    /// No shell in this container to run the command with.
    #[error("{origin}: this container has no {shell} to run the command `{command}` with; use an image with a shell, or drop it and use shroud.dev/on-rotate (a signal or a restart)")]
    NoShell {
        /// The flag or annotation the command came from.
        origin: String,
        /// The shell looked for.
        shell: String,
        /// The command (not a secret: it is in the pod spec).
        command: String,
    },
    /// `--on-change` without `--secrets-dir`.
    #[error("--on-change needs --secrets-dir")]
    NoDirectory,
}

/// One `--on-change NAME=COMMAND`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnChange {
    /// The file's name in the secrets directory.
    pub name: String,
    /// Run with `/bin/sh -c`.
    pub command: String,
    /// Where it came from, for errors: the flag, or the annotation the webhook
    /// read it from (`--on-change-origin`).
    pub origin: String,
}

impl std::str::FromStr for OnChange {
    type Err = OnChangeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, command) = s
            .split_once('=')
            .ok_or_else(|| OnChangeError::Syntax(s.to_string()))?;
        check_name(name)?;
        if command.trim().is_empty() {
            return Err(OnChangeError::Empty(s.to_string()));
        }
        Ok(OnChange {
            name: name.to_string(),
            command: command.to_string(),
            origin: format!("--on-change {name}"),
        })
    }
}

fn check_name(name: &str) -> Result<(), OnChangeError> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(OnChangeError::BadName(name.to_string()));
    }
    Ok(())
}

/// For clap: `NAME=COMMAND`.
pub fn parse_on_change(s: &str) -> Result<OnChange, String> {
    s.parse().map_err(|e: OnChangeError| e.to_string())
}

/// For clap: `NAME=ORIGIN` (`--on-change-origin`).
pub fn parse_origin(s: &str) -> Result<(String, String), String> {
    let (name, origin) = s
        .split_once('=')
        .filter(|(n, o)| check_name(n).is_ok() && !o.trim().is_empty())
        .ok_or_else(|| {
            format!("`{s}`: expected NAME=ORIGIN (the annotation the command came from)")
        })?;
    Ok((name.to_string(), origin.to_string()))
}

/// Applies `--on-change-origin NAME=ORIGIN` to the commands of `NAME`.
pub fn with_origins(
    mut hooks: Vec<OnChange>,
    origins: &[(String, String)],
) -> Result<Vec<OnChange>, OnChangeError> {
    for (name, origin) in origins {
        let mut found = false;
        for h in hooks.iter_mut().filter(|h| &h.name == name) {
            h.origin.clone_from(origin);
            found = true;
        }
        if !found {
            return Err(OnChangeError::OriginWithoutCommand(name.clone()));
        }
    }
    Ok(hooks)
}

/// Fails, naming the first command's origin, when `shell` cannot be run: a
/// container without a shell learns it at start, not at the first rotation.
pub fn check_shell(shell: &Path, hooks: &[OnChange]) -> Result<(), OnChangeError> {
    use std::os::unix::fs::PermissionsExt as _;
    let Some(first) = hooks.first() else {
        return Ok(());
    };
    let runnable = std::fs::metadata(shell)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false);
    if runnable {
        Ok(())
    } else {
        Err(OnChangeError::NoShell {
            origin: first.origin.clone(),
            shell: shell.display().to_string(),
            command: first.command.clone(),
        })
    }
}

/// The watched files' last contents and their commands.
#[derive(Clone)]
pub struct FileHooks {
    dir: PathBuf,
    hooks: Vec<(OnChange, Option<Zeroizing<Vec<u8>>>)>,
}

impl fmt::Debug for FileHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the contents.
        f.debug_struct("FileHooks")
            .field("dir", &self.dir)
            .field(
                "hooks",
                &self.hooks.iter().map(|(h, _)| h).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl FileHooks {
    /// Records what the files hold now: the contents the command started with.
    pub fn snapshot(dir: &Path, hooks: Vec<OnChange>) -> FileHooks {
        let hooks = hooks
            .into_iter()
            .map(|h| {
                let now = read(&dir.join(&h.name));
                (h, now)
            })
            .collect();
        FileHooks {
            dir: dir.to_path_buf(),
            hooks,
        }
    }

    /// The commands whose file now holds other bytes than last time (each
    /// distinct command once, in the order given), and remembers the new bytes.
    /// A file that vanished is not a change (the agent wipes at exit).
    pub fn changed(&mut self) -> Vec<OnChange> {
        let mut due: Vec<OnChange> = Vec::new();
        for (hook, last) in &mut self.hooks {
            let Some(now) = read(&self.dir.join(&hook.name)) else {
                continue;
            };
            if last.as_ref().map(|l| l.as_slice()) == Some(now.as_slice()) {
                continue;
            }
            *last = Some(now);
            if !due.iter().any(|d| d.command == hook.command) {
                due.push(hook.clone());
            }
        }
        due
    }
}

fn read(path: &Path) -> Option<Zeroizing<Vec<u8>>> {
    std::fs::read(path).ok().map(Zeroizing::new)
}

/// Starts `/bin/sh -c COMMAND` with its output on the supervised command's
/// streams (so it is masked the same way), stdin closed, in a process group
/// of its own, killed with its supervisor. The caller reaps it.
pub fn spawn(
    hook: &OnChange,
    env: &[(std::ffi::OsString, std::ffi::OsString)],
    stdout: &OwnedFd,
    stderr: &OwnedFd,
) -> io::Result<Pid> {
    let mut cmd = Command::new(SHELL);
    cmd.arg("-c")
        .arg(&hook.command)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("SHROUD_CHANGED_FILE", &hook.name)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout.try_clone()?))
        .stderr(Stdio::from(stderr.try_clone()?))
        .process_group(0);
    super::spawn::die_with_parent(&mut cmd);
    let child = cmd.spawn()?;
    Ok(Pid::from_raw(child.id() as i32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_name_and_command() {
        let h: OnChange = "db=kill -HUP 1".parse().unwrap();
        assert_eq!(h.name, "db");
        assert_eq!(h.command, "kill -HUP 1");
        assert_eq!(h.origin, "--on-change db");
        // Only the first `=` separates.
        let h: OnChange = "a.env=X=1 env".parse().unwrap();
        assert_eq!(h.command, "X=1 env");
        for bad in ["nocommand", "=cmd", "a/b=cmd", "..=cmd", "db=  "] {
            assert!(bad.parse::<OnChange>().is_err(), "{bad}");
        }
        let hooks = with_origins(
            vec![h],
            &[(
                "a.env".into(),
                "vault.hashicorp.com/agent-inject-command-a.env".into(),
            )],
        )
        .unwrap();
        assert_eq!(
            hooks[0].origin,
            "vault.hashicorp.com/agent-inject-command-a.env"
        );
        assert_eq!(
            with_origins(hooks, &[("other".into(), "x".into())]),
            Err(OnChangeError::OriginWithoutCommand("other".into()))
        );
    }

    #[test]
    fn a_missing_shell_is_an_error_naming_the_origin() {
        let hooks = with_origins(
            vec!["db=kill -HUP 1".parse().unwrap()],
            &[(
                "db".into(),
                "vault.hashicorp.com/agent-inject-command-db".into(),
            )],
        )
        .unwrap();
        let e = check_shell(Path::new("/nonexistent/sh"), &hooks).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("vault.hashicorp.com/agent-inject-command-db"),
            "{text}"
        );
        assert!(text.contains("/nonexistent/sh"), "{text}");
        // A directory or a file that cannot be executed is no shell either.
        assert!(check_shell(Path::new("/"), &hooks).is_err());
        let plain = tempfile::NamedTempFile::new().unwrap();
        assert!(check_shell(plain.path(), &hooks).is_err());
        assert!(check_shell(Path::new(SHELL), &hooks).is_ok());
        assert!(check_shell(Path::new("/nonexistent/sh"), &[]).is_ok());
    }

    #[test]
    fn only_new_contents_of_the_watched_file_are_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a"), "one").unwrap();
        std::fs::write(d.join("b"), "x").unwrap();
        let mut hooks = FileHooks::snapshot(
            d,
            vec![
                "a=echo a".parse().unwrap(),
                "b=echo b".parse().unwrap(),
                "c=echo a".parse().unwrap(),
            ],
        );
        assert!(hooks.changed().is_empty());
        // Rewritten with the same bytes (a new inode): nothing.
        std::fs::write(d.join(".a.tmp"), "one").unwrap();
        std::fs::rename(d.join(".a.tmp"), d.join("a")).unwrap();
        assert!(hooks.changed().is_empty());
        std::fs::write(d.join("a"), "two").unwrap();
        let due: Vec<String> = hooks.changed().into_iter().map(|h| h.name).collect();
        assert_eq!(due, ["a"]);
        assert!(hooks.changed().is_empty());
        // A file that appears is a change; the same command due twice runs once.
        std::fs::write(d.join("a"), "three").unwrap();
        std::fs::write(d.join("c"), "new").unwrap();
        let due: Vec<String> = hooks.changed().into_iter().map(|h| h.name).collect();
        assert_eq!(due, ["a"]);
        // A removed file is not.
        std::fs::remove_file(d.join("b")).unwrap();
        assert!(hooks.changed().is_empty());
        assert!(!format!("{hooks:?}").contains("three"));
    }
}
