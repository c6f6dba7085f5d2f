//! The process's one signal owner. signal-hook's origin-aware iterator runs on
//! one thread for the life of the process; each caught signal, with its origin
//! (`si_code`, sender), goes to whoever is subscribed now: the agent's stop
//! channel, or exec's supervisor while it runs the command. Handing over between
//! them loses nothing: [`hold`] queues signals until the next [`subscribe`],
//! which receives them first. No handler of ours runs in signal context, so
//! this module has no `unsafe`.
//!
//! A signal once registered stays caught for the life of the process (signal-hook
//! cannot restore the default action); with no subscriber it is dropped. Its
//! origin is what lets the supervisor tell a terminal's Ctrl-C (`SI_KERNEL`,
//! already delivered to the whole foreground process group) from a `kill(2)`.

use std::sync::Mutex;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::iterator::{Handle, SignalsInfo};
use signal_hook::low_level::siginfo::{Cause, Origin};

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
    /// Whether the kernel generated it (`si_code == SI_KERNEL`).
    pub kernel: bool,
    /// The sender, when a process sent it.
    pub sender: Option<Pid>,
}

impl SignalInfo {
    /// True when the kernel generated it (a terminal's Ctrl-C, Ctrl-\, resize or
    /// hangup), which the terminal already delivered to its foreground group.
    pub fn from_terminal(&self) -> bool {
        self.kernel
    }

    fn from_origin(origin: &Origin) -> Option<SignalInfo> {
        Some(SignalInfo {
            signal: Signal::try_from(origin.signal).ok()?,
            kernel: origin.cause == Cause::Kernel,
            sender: origin.process.map(|p| Pid::from_raw(p.pid)),
        })
    }
}

/// Receives every caught signal (on the signal thread; keep it short).
pub type Subscriber = Box<dyn Fn(SignalInfo) + Send>;

enum Slot {
    /// Nobody listens: signals are dropped.
    Empty,
    /// A handover is under way: signals wait for the next subscriber.
    Held(Vec<SignalInfo>),
    /// Subscription `id` receives them.
    Deliver(u64, Subscriber),
}

static SLOT: Mutex<Slot> = Mutex::new(Slot::Empty);
static HANDLE: Mutex<Option<Handle>> = Mutex::new(None);
static NEXT_ID: Mutex<u64> = Mutex::new(0);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking subscriber must not take signal delivery down with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts the signal thread on first use and makes sure `signals` are caught.
fn register(signals: &[Signal]) -> std::io::Result<()> {
    let mut handle = lock(&HANDLE);
    if handle.is_none() {
        let mut iter = SignalsInfo::<WithOrigin>::new(std::iter::empty::<i32>())?;
        *handle = Some(iter.handle());
        std::thread::Builder::new()
            .name("shroud-signals".into())
            .spawn(move || {
                for origin in iter.forever() {
                    if let Some(info) = SignalInfo::from_origin(&origin) {
                        dispatch(info);
                    }
                }
            })?;
    }
    let handle = handle.as_ref().expect("set above");
    for s in signals {
        handle.add_signal(*s as i32)?;
    }
    Ok(())
}

fn dispatch(info: SignalInfo) {
    match &mut *lock(&SLOT) {
        Slot::Empty => tracing::debug!(signal = info.signal.as_str(), "signal with no subscriber"),
        Slot::Held(queue) => queue.push(info),
        Slot::Deliver(_, deliver) => deliver(info),
    }
}

/// A subscription; dropping it stops delivery (unless another has replaced it).
#[derive(Debug)]
#[must_use = "dropping the subscription stops delivery"]
pub struct Subscription {
    id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut slot = lock(&SLOT);
        if matches!(&*slot, Slot::Deliver(id, _) if *id == self.id) {
            *slot = Slot::Empty;
        }
    }
}

/// Catches `signals` (in addition to those already caught) and makes `deliver`
/// the one receiver of every caught signal, replacing any other; signals held
/// by [`hold`] are delivered to it first.
pub fn subscribe(signals: &[Signal], deliver: Subscriber) -> std::io::Result<Subscription> {
    register(signals)?;
    let id = {
        let mut next = lock(&NEXT_ID);
        *next += 1;
        *next
    };
    let mut slot = lock(&SLOT);
    if let Slot::Held(queue) = &mut *slot {
        for info in queue.drain(..) {
            deliver(info);
        }
    }
    *slot = Slot::Deliver(id, deliver);
    Ok(Subscription { id })
}

/// Starts a handover: from now until the next [`subscribe`], caught signals are
/// kept for the new subscriber instead of going to the current one.
pub fn hold() {
    let mut slot = lock(&SLOT);
    if !matches!(&*slot, Slot::Held(_)) {
        *slot = Slot::Held(Vec::new());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    const WAIT: Duration = Duration::from_secs(10);

    /// One test for the whole process-wide owner: the steps share its state.
    #[test]
    fn delivers_with_origin_holds_across_a_handover_and_stops_on_drop() {
        let (first_tx, first) = mpsc::channel();
        let sub = subscribe(
            &[Signal::SIGUSR1],
            Box::new(move |i| first_tx.send(i).unwrap()),
        )
        .unwrap();
        nix::sys::signal::raise(Signal::SIGUSR1).unwrap();
        let got = first.recv_timeout(WAIT).unwrap();
        assert_eq!(got.signal, Signal::SIGUSR1);
        assert!(!got.from_terminal(), "raise(3) is not the terminal");
        // raise(3) is tgkill: the sender is this process.
        assert_eq!(got.sender, Some(nix::unistd::getpid()));

        // A handover: what arrives in between goes to the next subscriber.
        hold();
        register(&[Signal::SIGUSR2]).unwrap();
        nix::sys::signal::kill(nix::unistd::getpid(), Signal::SIGUSR2).unwrap();
        // Wait until the signal thread has queued it.
        let deadline = std::time::Instant::now() + WAIT;
        while !matches!(&*lock(&SLOT), Slot::Held(q) if !q.is_empty()) {
            assert!(std::time::Instant::now() < deadline, "never held");
            std::thread::yield_now();
        }
        assert!(first.try_recv().is_err(), "the old subscriber got it");
        let (second_tx, second) = mpsc::channel();
        let sub2 = subscribe(&[], Box::new(move |i| second_tx.send(i).unwrap())).unwrap();
        assert_eq!(second.recv_timeout(WAIT).unwrap().signal, Signal::SIGUSR2);

        // The replaced subscription's drop does not end the new one.
        drop(sub);
        nix::sys::signal::raise(Signal::SIGUSR1).unwrap();
        assert_eq!(second.recv_timeout(WAIT).unwrap().signal, Signal::SIGUSR1);
        drop(sub2);
        assert!(matches!(&*lock(&SLOT), Slot::Empty));
    }
}
