//! A heap arena locked in RAM, for a process that may not lock all of its memory.
//!
//! Without `IPC_LOCK` and with a limited `RLIMIT_MEMLOCK` (Pod Security
//! "restricted"), `mlockall` would either fail or make every allocation past the
//! limit fail. Instead [`arm`] maps one region as large as the limit allows and
//! locks it; the global allocator ([`crate::alloc::ZeroOnFree`]) then serves heap
//! blocks from it while it has room and from the unlocked system heap once it is
//! full, counting what spilled. Secrets live on the heap (values, rendered files,
//! the redaction set), so they stay out of swap as far as the limit allows.

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use spinning_top::RawSpinlock;
use talc::source::Manual;
use talc::TalcLock;

/// The allocator over the locked region. A spinlock, not a parking mutex: a
/// parking lock may allocate its wait queue, which would re-enter this allocator.
/// It has no fork handler, which is fine because nothing allocates between
/// `fork` and `exec` (std's `Command` and our `pre_exec` hooks do not).
static HEAP: TalcLock<RawSpinlock, Manual> = TalcLock::new(Manual);
/// First byte of the locked region; 0 until [`arm`] succeeds.
static START: AtomicUsize = AtomicUsize::new(0);
/// One past the last byte of the locked region; 0 until [`arm`] succeeds.
static END: AtomicUsize = AtomicUsize::new(0);
/// Bytes of heap blocks served unlocked because the arena was full.
static SPILLED_BYTES: AtomicU64 = AtomicU64::new(0);
/// Heap blocks served unlocked because the arena was full.
static SPILLED_BLOCKS: AtomicU64 = AtomicU64::new(0);
/// Bytes of the arena handed out and not yet freed.
static USED_BYTES: AtomicUsize = AtomicUsize::new(0);

/// The largest region worth reserving: far more heap than any role needs; a
/// larger (but finite) limit does not need a larger arena.
pub const MAX_ARENA_BYTES: usize = 64 << 20;

/// Why no arena could be locked.
#[derive(Debug, thiserror::Error)]
pub enum ArenaError {
    /// The memlock budget is below the smallest arena worth having.
    #[error("RLIMIT_MEMLOCK leaves {0} bytes, too few for a locked arena")]
    TooSmall(usize),
    /// An arena is already in place (arming twice would orphan the first).
    #[error("a locked arena is already armed")]
    AlreadyArmed,
    /// `mmap` refused the region.
    #[error("mmap of {bytes} bytes for the locked arena: {source}")]
    Map {
        /// Size asked for.
        bytes: usize,
        /// The OS error.
        source: nix::Error,
    },
    /// `mlock2` refused the region (limit lowered meanwhile, or a seccomp filter).
    #[error("mlock2 of {bytes} bytes for the locked arena: {source}")]
    Lock {
        /// Size asked for.
        bytes: usize,
        /// The OS error.
        source: nix::Error,
    },
}

/// Figures for metrics and the start-up log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ArenaStats {
    /// Size of the locked region (0: not armed).
    pub locked_bytes: usize,
    /// Bytes of it currently handed out.
    pub used_bytes: usize,
    /// Bytes of heap blocks served unlocked because the arena was full.
    pub spilled_bytes: u64,
    /// Heap blocks served unlocked because the arena was full.
    pub spilled_blocks: u64,
}

/// Maps and locks an arena of `budget` bytes (rounded down to whole pages, capped
/// at [`MAX_ARENA_BYTES`]) and routes heap allocations to it. Returns its size.
///
/// Pages are locked on first touch (`MLOCK_ONFAULT`): the whole range counts
/// against the limit at once, but resident memory grows only with use.
pub fn arm(budget: usize) -> Result<usize, ArenaError> {
    let page = page_size();
    let bytes = budget.min(MAX_ARENA_BYTES) / page * page;
    if bytes < talc::min_first_heap_size::<talc::DefaultBinning>() + page {
        return Err(ArenaError::TooSmall(budget));
    }
    if END.load(Ordering::Acquire) != 0 {
        return Err(ArenaError::AlreadyArmed);
    }
    let len = std::num::NonZeroUsize::new(bytes).ok_or(ArenaError::TooSmall(budget))?;
    // SAFETY: an anonymous private mapping at an address of the kernel's choosing
    // aliases nothing.
    let base = unsafe {
        nix::sys::mman::mmap_anonymous(
            None,
            len,
            nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_WRITE,
            nix::sys::mman::MapFlags::MAP_PRIVATE,
        )
    }
    .map_err(|source| ArenaError::Map { bytes, source })?;
    // SAFETY: `base..base+bytes` is the mapping just made.
    let rc = unsafe { libc::mlock2(base.as_ptr(), bytes, libc::MLOCK_ONFAULT) };
    if rc != 0 {
        let source = nix::Error::last();
        // SAFETY: the mapping is ours and nothing points into it yet.
        let _ = unsafe { nix::sys::mman::munmap(base, bytes) };
        return Err(ArenaError::Lock { bytes, source });
    }
    let start = base.as_ptr().cast::<u8>();
    // SAFETY: the region is valid for reads and writes, owned by the arena from
    // now on and never unmapped; the heap was never claimed before (END was 0).
    let claimed = unsafe { HEAP.lock().claim(start, bytes) };
    if claimed.is_none() {
        return Err(ArenaError::TooSmall(budget));
    }
    START.store(start as usize, Ordering::Release);
    END.store(start as usize + bytes, Ordering::Release);
    Ok(bytes)
}

/// Whether heap blocks go to the arena.
#[inline]
pub fn armed() -> bool {
    END.load(Ordering::Acquire) != 0
}

/// Whether `ptr` was handed out by the arena.
#[inline]
pub fn contains(ptr: *mut u8) -> bool {
    let p = ptr as usize;
    // Acquire pairs with the Release store of END in `arm`, which comes after
    // START's: a thread that sees the end also sees the start (a zero start
    // would send System's blocks to the arena). A plain load on x86.
    let end = END.load(Ordering::Acquire);
    p < end && p >= START.load(Ordering::Relaxed)
}

/// A block from the arena, or `None` when it is full (counted as spilled; the
/// caller then takes unlocked memory).
///
/// # Safety
///
/// `layout` has a non-zero size; the arena is armed.
#[inline]
pub unsafe fn alloc(layout: Layout) -> Option<NonNull<u8>> {
    // SAFETY: the caller guarantees a non-zero size.
    let block = unsafe { HEAP.lock().try_allocate(layout) };
    match block {
        Some(_) => {
            USED_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        None => {
            SPILLED_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
            SPILLED_BLOCKS.fetch_add(1, Ordering::Relaxed);
        }
    }
    block
}

/// Returns a block to the arena.
///
/// # Safety
///
/// `ptr` came from [`alloc`] with this `layout` and is not used afterwards.
#[inline]
pub unsafe fn dealloc(ptr: *mut u8, layout: Layout) {
    // SAFETY: forwarded from the caller.
    unsafe { HEAP.lock().deallocate(ptr, layout) };
    USED_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
}

/// Current figures.
pub fn stats() -> ArenaStats {
    let end = END.load(Ordering::Acquire);
    ArenaStats {
        locked_bytes: end.saturating_sub(START.load(Ordering::Acquire)),
        used_bytes: USED_BYTES.load(Ordering::Relaxed),
        spilled_bytes: SPILLED_BYTES.load(Ordering::Relaxed),
        spilled_blocks: SPILLED_BLOCKS.load(Ordering::Relaxed),
    }
}

fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|p| usize::try_from(p).ok())
        .unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One test owns the process-wide arena (tests run in threads of one process).
    #[test]
    fn serves_until_full_then_spills_and_reuses_freed_blocks() {
        assert!(matches!(arm(100), Err(ArenaError::TooSmall(100))));
        let bytes = arm(64 * 1024).expect("64 KiB is within the default RLIMIT_MEMLOCK");
        assert_eq!(bytes, 64 * 1024);
        assert!(matches!(arm(64 * 1024), Err(ArenaError::AlreadyArmed)));
        let layout = Layout::from_size_align(4096, 16).unwrap();
        let mut blocks = Vec::new();
        // SAFETY: non-zero size; armed above.
        while let Some(b) = unsafe { alloc(layout) } {
            assert!(contains(b.as_ptr()));
            assert_eq!(b.as_ptr() as usize % 16, 0);
            blocks.push(b);
        }
        assert!(blocks.len() >= 14, "{} blocks", blocks.len());
        let s = stats();
        assert_eq!(s.locked_bytes, bytes);
        assert_eq!(s.used_bytes, blocks.len() * 4096);
        assert_eq!((s.spilled_blocks, s.spilled_bytes), (1, 4096));
        let freed = blocks.pop().unwrap();
        // SAFETY: from `alloc` with `layout`, not used again.
        unsafe { dealloc(freed.as_ptr(), layout) };
        // SAFETY: as above.
        let again = unsafe { alloc(layout) }.expect("the freed block is reused");
        assert!(contains(again.as_ptr()));
        assert!(!contains(std::ptr::null_mut()));
        let mut outside = 0u8;
        assert!(!contains(&mut outside));
    }
}
