//! Process hardening shared by every role that holds secrets.

use std::sync::atomic::{AtomicU8, Ordering};

use tracing::warn;

/// 0: not tried, then a [`MemoryLock`] as `MemoryLock as u8 + 1`.
static MODE: AtomicU8 = AtomicU8::new(0);

/// How much of the process's memory [`lock_memory`] could lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MemoryLock {
    /// Everything, current and future (`mlockall`).
    All = 0,
    /// Heap blocks up to the size of a locked arena ([`crate::locked_arena`]);
    /// the rest (stacks, code, blocks beyond the arena) is not locked.
    Partial = 1,
    /// Nothing: the memlock limit leaves too little, or locking failed.
    Nothing = 2,
}

/// What [`lock_memory`] achieved (`None`: not tried).
pub fn memory_locked() -> Option<MemoryLock> {
    match MODE.load(Ordering::Relaxed) {
        1 => Some(MemoryLock::All),
        2 => Some(MemoryLock::Partial),
        3 => Some(MemoryLock::Nothing),
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

/// Keeps secrets out of swap as far as the process is allowed to: with
/// `CAP_IPC_LOCK` or an unlimited `RLIMIT_MEMLOCK`, locks all current and future
/// pages; otherwise (Pod Security "restricted") locks a heap arena as large as
/// the limit allows and serves heap blocks from it while it has room. One log
/// line says which; failure is not fatal, because most swapless container hosts
/// do not need it.
pub fn lock_memory() -> MemoryLock {
    let mode = try_lock_memory();
    MODE.store(mode as u8 + 1, Ordering::Relaxed);
    mode
}

fn try_lock_memory() -> MemoryLock {
    use nix::sys::resource::{getrlimit, Resource, RLIM_INFINITY};
    let limit = getrlimit(Resource::RLIMIT_MEMLOCK).map_or(0, |(soft, _)| soft);
    // With MCL_FUTURE, an allocation past RLIMIT_MEMLOCK fails outright; only ask for
    // it when the limit cannot be hit.
    if limit == RLIM_INFINITY || has_ipc_lock() {
        match lock_all() {
            Ok(()) => return MemoryLock::All,
            Err(e) => warn!(error = %e, "mlockall failed; locking a heap arena instead"),
        }
    }
    let already = proc_status_kib("VmLck").unwrap_or(0).saturating_mul(1024);
    let budget = usize::try_from(limit.saturating_sub(already)).unwrap_or(usize::MAX);
    match crate::locked_arena::arm(budget) {
        Ok(bytes) => {
            warn!(
                memlock_limit_bytes = limit,
                locked_arena_bytes = bytes,
                "memory partly locked: no IPC_LOCK and a limited RLIMIT_MEMLOCK (e.g. Pod Security restricted), so heap blocks come from a locked arena of the limit's size while it has room; the rest may reach swap if the node has any (metrics shroud_memory_locked_bytes, shroud_memory_unlocked_bytes_total)"
            );
            MemoryLock::Partial
        }
        Err(e) => {
            warn!(
                memlock_limit_bytes = limit,
                error = %e,
                "memory not locked: no IPC_LOCK and RLIMIT_MEMLOCK leaves no room for a locked arena; secrets may reach swap if the node has any (metric shroud_memory_locked 0)"
            );
            MemoryLock::Nothing
        }
    }
}

fn lock_all() -> nix::Result<()> {
    use nix::sys::mman::{mlockall, MlockAllFlags};
    // MCL_ONFAULT: lock pages as they are touched instead of faulting in every
    // reserved stack and arena up front, which would multiply the RSS.
    mlockall(MlockAllFlags::from_bits_retain(
        libc::MCL_CURRENT | libc::MCL_FUTURE | libc::MCL_ONFAULT,
    ))
}

/// `CAP_IPC_LOCK` in <linux/capability.h> (the libc crate does not export it).
const CAP_IPC_LOCK: u32 = 14;

/// Whether the effective capability set holds `CAP_IPC_LOCK` (root without it,
/// e.g. under `--cap-drop IPC_LOCK`, is limited like anyone else).
fn has_ipc_lock() -> bool {
    proc_status_field("CapEff")
        .and_then(|hex| u64::from_str_radix(&hex, 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_IPC_LOCK) != 0)
}

/// A `kB` field of `/proc/self/status` (`VmLck`, `VmRSS`, ...).
pub fn proc_status_kib(field: &str) -> Option<u64> {
    proc_status_field(field)?
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()
}

/// The value of `field` in `/proc/self/status`, trimmed.
fn proc_status_field(field: &str) -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| {
        let value = l.strip_prefix(field)?.strip_prefix(':')?;
        Some(value.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_status_fields() {
        assert!(super::proc_status_kib("VmRSS").is_some_and(|kib| kib > 0));
        assert!(super::proc_status_kib("VmLck").is_some());
        assert_eq!(super::proc_status_kib("NoSuchField"), None);
    }
}
