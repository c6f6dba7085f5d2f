//! Process hardening shared by every role that holds secrets.

use std::sync::atomic::{AtomicU8, Ordering};

use tracing::warn;

/// 0: not tried, 1: locked, 2: not locked.
static LOCKED: AtomicU8 = AtomicU8::new(0);

/// Whether [`lock_memory`] locked the process's memory (`None`: not tried).
pub fn memory_locked() -> Option<bool> {
    match LOCKED.load(Ordering::Relaxed) {
        1 => Some(true),
        2 => Some(false),
        _ => None,
    }
}

/// Disables core dumps and ptrace attachment by non-root processes
/// (`PR_SET_DUMPABLE` 0 also makes `/proc/PID/mem` readable by root only), and sets
/// the core size limit to zero for good measure.
pub fn no_dumps() {
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        warn!(error = %e, "could not clear PR_SET_DUMPABLE");
    }
    if let Err(e) = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0) {
        warn!(error = %e, "could not set RLIMIT_CORE to 0");
    }
}

/// Locks all current and future pages in memory so secrets never reach swap.
/// Needs CAP_IPC_LOCK or a sufficient RLIMIT_MEMLOCK; failure is logged, not fatal,
/// because most swapless container hosts do not need it.
pub fn lock_memory() -> bool {
    let locked = try_lock_memory();
    LOCKED.store(if locked { 1 } else { 2 }, Ordering::Relaxed);
    locked
}

fn try_lock_memory() -> bool {
    use nix::sys::mman::{mlockall, MlockAllFlags};
    use nix::sys::resource::{getrlimit, Resource, RLIM_INFINITY};
    // With MCL_FUTURE, an allocation past RLIMIT_MEMLOCK fails outright; only ask for
    // it when the limit cannot be hit (root has CAP_IPC_LOCK in its bounding set in
    // every setup we ship; others get an unlimited limit from IPC_LOCK).
    let limit = getrlimit(Resource::RLIMIT_MEMLOCK).map(|(soft, _)| soft);
    let unlimited = matches!(limit, Ok(soft) if soft == RLIM_INFINITY);
    if !unlimited && !nix::unistd::geteuid().is_root() {
        // Pod Security "restricted" forbids IPC_LOCK: then the limit (often
        // 64 KiB or 8 MiB) is smaller than the process, and locking only part of
        // it under MCL_FUTURE would make later allocations fail.
        warn!(
            memlock_limit_bytes = limit.unwrap_or(0),
            "memory not locked: RLIMIT_MEMLOCK is limited and there is no IPC_LOCK (e.g. Pod Security restricted); secrets may reach swap if the node has any (metric shroud_memory_locked 0)"
        );
        return false;
    }
    // MCL_ONFAULT: lock pages as they are touched instead of faulting in every
    // reserved stack and arena up front, which would multiply the RSS.
    let flags =
        MlockAllFlags::from_bits_retain(libc::MCL_CURRENT | libc::MCL_FUTURE | libc::MCL_ONFAULT);
    match mlockall(flags) {
        Ok(()) => true,
        Err(e) => {
            warn!(error = %e, "mlockall failed; secrets may be swapped out (grant IPC_LOCK)");
            false
        }
    }
}
