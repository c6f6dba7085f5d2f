//! The supervisor loop: one thread that starts the command, receives every
//! event (signals, SIGCHLD, rotations, timers) from one channel, and decides.

use std::io::IsTerminal as _;
use std::os::fd::AsFd as _;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tracing::{debug, info, warn};

use super::on_change::{self, FileHooks};
use super::output::{Outputs, PumpDone};
use super::reaper::{self, reap_all};
use super::spawn::{spawn, ChildIo, SpawnError};
use super::{pty, ExecOptions, OnRotate, Rotated};
use crate::contract;
use crate::error::{exit_code, Exit};
use crate::live::LiveSet;
use crate::signals::{self, SignalInfo, FORWARDED};

/// Quiet time after a rotation before `--on-rotate` acts, so that the agent's
/// renames of several files cause one signal or restart, not several.
const ROTATE_SETTLE: Duration = Duration::from_millis(200);

#[derive(Debug)]
enum Event {
    Signal(SignalInfo),
    Rotated(Rotated),
}

/// Runs `opts.command` to completion; see the module docs of [`super`].
pub fn supervise(
    mut opts: ExecOptions,
    live: Arc<LiveSet>,
    rotations: Option<Receiver<Rotated>>,
) -> anyhow::Result<i32> {
    if opts.command.is_empty() {
        return Err(crate::error::usage(anyhow::anyhow!("no command given after `--`")).into());
    }
    let (tx, rx) = mpsc::channel();
    let signal_tx = tx.clone();
    let caught: Vec<Signal> = FORWARDED.into_iter().chain([Signal::SIGCHLD]).collect();
    let _signals = signals::subscribe(
        &caught,
        Box::new(move |info| {
            let _ = signal_tx.send(Event::Signal(info));
        }),
    )?;
    if let Some(rotations) = rotations {
        forward_rotations(rotations, tx.clone())?;
    }
    reaper::become_subreaper();
    // `shroud mask add` in the command registers values here.
    // Not fatal: a scratch image may have no temporary directory at all, and the
    // command must still run (without `shroud mask add`).
    let mask_socket = match super::mask_socket::MaskSocket::start(Arc::clone(&live)) {
        Ok(socket) => {
            opts.env.push((
                super::mask_socket::ENV.into(),
                socket.path().as_os_str().to_owned(),
            ));
            Some(socket)
        }
        Err(e) => {
            warn!(error = %e, "cannot create the mask socket; `shroud mask add` is unavailable to the command");
            None
        }
    };

    let use_pty = super::uses_pty(opts.tty);
    let (done_tx, done_rx) = mpsc::channel();
    let mut outputs = if use_pty {
        Outputs::pty(&live, &opts.pump, &opts.counters, &done_tx)?
    } else {
        let own_group = !std::io::stdin().is_terminal();
        Outputs::pipes(own_group, &live, &opts.pump, &opts.counters, &done_tx)?
    };
    drop(done_tx);
    let raw_mode = if use_pty { pty::raw_stdin() } else { None };

    let hooks = opts.on_change.take();
    let result = Supervisor::new(&opts, &outputs, hooks).run(&rx);

    outputs.close_writers();
    drain(outputs, &done_rx, opts.drain_timeout);
    drop(raw_mode);
    drop(mask_socket);
    reap_all();
    let code = match &result {
        Ok(code) => *code,
        Err(e) => exit_code(e),
    };
    if let Some(dir) = &opts.exit_marker {
        if let Err(e) = contract::write_exit_marker(dir, code) {
            warn!(dir = %dir.display(), error = %e, "cannot write the exit marker");
        }
    }
    result
}

fn forward_rotations(rotations: Receiver<Rotated>, tx: Sender<Event>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("shroud-rotations".into())
        .spawn(move || {
            for r in rotations {
                if tx.send(Event::Rotated(r)).is_err() {
                    return;
                }
            }
        })?;
    Ok(())
}

/// Waits for every pump to reach end of file, at most `timeout`, then stops the
/// rest (they still write out what is buffered).
fn drain(outputs: Outputs, done: &Receiver<PumpDone>, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut left = outputs.pump_count();
    while left > 0 {
        match done.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(_) => left -= 1,
            Err(_) => break,
        }
    }
    outputs.stop_and_join();
}

/// The running command.
#[derive(Debug, Clone, Copy)]
struct Child {
    pid: Pid,
    /// In a process group (pipes) or session (pty) of its own.
    own_group: bool,
}

struct Supervisor<'a> {
    opts: &'a ExecOptions,
    outputs: &'a Outputs,
    child: Option<Child>,
    /// When the first SIGTERM/SIGINT was forwarded (for escalation).
    first_stop: Option<Instant>,
    /// A restart is under way: the command was sent SIGTERM and is started again
    /// when it exits.
    restarting: bool,
    /// When a restart escalates to SIGKILL.
    kill_at: Option<Instant>,
    /// When the settled rotation action is due.
    rotate_at: Option<Instant>,
    /// `--on-change`: the files' last contents and their commands.
    hooks: Option<FileHooks>,
    /// `--on-change` commands running: pid, file name, when to kill it.
    running: Vec<(Pid, String, Instant)>,
}

impl<'a> Supervisor<'a> {
    fn new(opts: &'a ExecOptions, outputs: &'a Outputs, hooks: Option<FileHooks>) -> Self {
        Supervisor {
            opts,
            outputs,
            child: None,
            first_stop: None,
            restarting: false,
            kill_at: None,
            rotate_at: None,
            hooks,
            running: Vec::new(),
        }
    }

    fn start(&mut self) -> Result<(), SpawnError> {
        let io = self.outputs.child_io().expect("writers open while running");
        let own_group = match io {
            ChildIo::Pipes { own_group, .. } => own_group,
            ChildIo::Pty { .. } => true,
        };
        let pid = spawn(&self.opts.command, &self.opts.env, io)?;
        debug!(pid = pid.as_raw(), "command started");
        self.child = Some(Child { pid, own_group });
        Ok(())
    }

    fn run(mut self, rx: &Receiver<Event>) -> anyhow::Result<i32> {
        self.start().map_err(spawn_exit)?;
        loop {
            let hook_due = self.running.iter().map(|(_, _, t)| *t).min();
            let deadline = [self.kill_at, self.rotate_at, hook_due]
                .into_iter()
                .flatten()
                .min();
            let event = match deadline {
                Some(d) => match rx.recv_timeout(d.saturating_duration_since(Instant::now())) {
                    Ok(e) => Some(e),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => unreachable!("we hold a sender"),
                },
                None => Some(rx.recv().expect("we hold a sender")),
            };
            match event {
                None => self.on_timer(),
                Some(Event::Rotated(r)) => {
                    match r.generation {
                        Some(generation) => {
                            info!(generation, action = %self.opts.on_rotate, "secrets rotated")
                        }
                        None => info!(action = %self.opts.on_rotate, "secrets rotated"),
                    }
                    self.rotate_at.get_or_insert(Instant::now() + ROTATE_SETTLE);
                }
                Some(Event::Signal(info)) if info.signal == Signal::SIGCHLD => {
                    if let Some(code) = self.on_sigchld()? {
                        self.stop_hooks();
                        return Ok(code);
                    }
                }
                Some(Event::Signal(info)) => self.forward(info),
            }
        }
    }

    fn child(&self) -> Child {
        self.child.expect("started")
    }

    /// Reaps everything; returns the exit code once the command has ended for good.
    fn on_sigchld(&mut self) -> anyhow::Result<Option<i32>> {
        let child = self.child();
        for (pid, status) in reap_all() {
            if pid != child.pid {
                if let Some(at) = self.running.iter().position(|(p, _, _)| *p == pid) {
                    let (_, name, _) = self.running.swap_remove(at);
                    match status.exit_code() {
                        Some(0) => info!(file = %name, "--on-change command done"),
                        code => warn!(file = %name, code, "--on-change command failed"),
                    }
                } else {
                    debug!(pid = pid.as_raw(), "reaped an orphan");
                }
                continue;
            }
            let Some(code) = status.exit_code() else {
                continue;
            };
            if self.restarting {
                info!(code, "command stopped for restart; starting it again");
                self.restarting = false;
                self.kill_at = None;
                self.first_stop = None;
                self.start().map_err(spawn_exit)?;
                return Ok(None);
            }
            debug!(code, "command exited");
            return Ok(Some(code));
        }
        Ok(None)
    }

    fn on_timer(&mut self) {
        let now = Instant::now();
        if self.kill_at.is_some_and(|t| t <= now) {
            self.kill_at = None;
            warn!(grace = ?self.opts.kill_grace, "command did not stop within the kill grace; sending SIGKILL");
            self.send(self.kill_target(), Signal::SIGKILL);
        }
        if self.rotate_at.is_some_and(|t| t <= now) {
            self.rotate_at = None;
            self.apply_rotation();
            self.run_hooks();
        }
        let mut overdue = Vec::new();
        for (pid, name, at) in &mut self.running {
            if *at <= now {
                warn!(file = %name, timeout = ?on_change::COMMAND_TIMEOUT, "--on-change command still running; killing it");
                // Not again before it is reaped.
                *at = now + on_change::COMMAND_TIMEOUT;
                overdue.push(*pid);
            }
        }
        for pid in overdue {
            self.send_hook(pid, Signal::SIGKILL);
        }
    }

    /// Starts the `--on-change` commands whose file has new contents.
    fn run_hooks(&mut self) {
        let Some(hooks) = self.hooks.as_mut() else {
            return;
        };
        let due = hooks.changed();
        if due.is_empty() {
            return;
        }
        let Some(io) = self.outputs.child_io() else {
            return;
        };
        let (stdout, stderr) = match io {
            ChildIo::Pipes { stdout, stderr, .. } => (stdout, stderr),
            ChildIo::Pty { slave, .. } => (slave, slave),
        };
        for hook in due {
            match on_change::spawn(&hook, &self.opts.env, stdout, stderr) {
                Ok(pid) => {
                    info!(file = %hook.name, pid = pid.as_raw(), "file changed; running its --on-change command");
                    self.running.push((
                        pid,
                        hook.name,
                        Instant::now() + on_change::COMMAND_TIMEOUT,
                    ));
                }
                Err(e) => {
                    warn!(file = %hook.name, origin = %hook.origin, error = %e, "cannot run the --on-change command")
                }
            }
        }
    }

    /// The command has ended: its reload commands have nothing left to tell.
    fn stop_hooks(&mut self) {
        for (pid, _, _) in &self.running {
            self.send_hook(*pid, Signal::SIGTERM);
        }
    }

    fn send_hook(&self, pid: Pid, signal: Signal) {
        // Its whole group: `sh -c` may have started children.
        self.send(Pid::from_raw(-pid.as_raw()), signal);
    }

    fn apply_rotation(&mut self) {
        let child = self.child();
        match self.opts.on_rotate {
            OnRotate::None => {}
            OnRotate::Signal(signal) => self.send(child.pid, signal),
            OnRotate::Restart if !self.restarting => {
                self.restarting = true;
                self.kill_at = Some(Instant::now() + self.opts.kill_grace);
                self.send(child.pid, Signal::SIGTERM);
            }
            OnRotate::Restart => {}
        }
    }

    fn forward(&mut self, info: SignalInfo) {
        let child = self.child();
        let signal = info.signal;
        if signal == Signal::SIGWINCH {
            if let Some(master) = self.outputs.master() {
                // The kernel signals the pty's foreground group itself.
                pty::sync_window_size(master.as_fd());
                return;
            }
        }
        if info.from_terminal() && !child.own_group {
            // The terminal delivered it to its whole foreground group, which
            // includes the command: forwarding would deliver it twice.
            return;
        }
        let terminal_like = matches!(
            signal,
            Signal::SIGINT | Signal::SIGQUIT | Signal::SIGHUP | Signal::SIGWINCH
        );
        let target = if terminal_like {
            self.group_target()
        } else {
            child.pid
        };
        debug!(
            signal = signal.as_str(),
            target = target.as_raw(),
            "forwarding signal"
        );
        self.send(target, signal);
        if matches!(signal, Signal::SIGTERM | Signal::SIGINT) {
            // A stop asked for from outside wins over a restart in progress
            // (its SIGKILL timer included, unless the stop has one of its own).
            self.restarting = false;
            if self.first_stop.is_none() {
                self.kill_at = None;
            }
            match self.first_stop {
                Some(t) if t.elapsed() >= self.opts.kill_grace => {
                    warn!(
                        signal = signal.as_str(),
                        "second stop signal after the kill grace; sending SIGKILL"
                    );
                    self.send(self.kill_target(), Signal::SIGKILL);
                }
                Some(_) => {}
                None => {
                    self.first_stop = Some(Instant::now());
                    if let Some(notice) = &self.opts.stop_notice {
                        let _ = notice.send(Instant::now());
                    }
                    if self.opts.kill_after_grace {
                        self.kill_at = Some(Instant::now() + self.opts.kill_grace);
                    }
                }
            }
        }
    }

    /// Where a terminal would deliver SIGINT & co: the pty's foreground group, the
    /// command's own group, or (sharing ours) the command alone.
    fn group_target(&self) -> Pid {
        let child = self.child();
        if let Some(fg) = self
            .outputs
            .master()
            .and_then(|m| pty::foreground_group(m.as_fd()))
        {
            return Pid::from_raw(-fg.as_raw());
        }
        if child.own_group {
            Pid::from_raw(-child.pid.as_raw())
        } else {
            child.pid
        }
    }

    fn kill_target(&self) -> Pid {
        let child = self.child();
        if child.own_group {
            Pid::from_raw(-child.pid.as_raw())
        } else {
            child.pid
        }
    }

    fn send(&self, target: Pid, signal: Signal) {
        if let Err(e) = kill(target, signal) {
            debug!(signal = signal.as_str(), target = target.as_raw(), error = %e, "could not signal");
        }
    }
}

fn spawn_exit(e: SpawnError) -> anyhow::Error {
    Exit {
        code: e.exit_code(),
        message: e.to_string(),
    }
    .into()
}
