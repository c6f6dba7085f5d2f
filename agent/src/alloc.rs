//! A global allocator that overwrites every freed block with zeros, so that a
//! secret copied through a temporary `String`, `Vec` or serde buffer does not
//! survive in freed heap memory after rotation or shutdown.

use std::alloc::{GlobalAlloc, Layout, System};

/// [`System`] with zero-on-free, serving blocks from the locked arena
/// ([`crate::locked_arena`]) while one is armed and has room.
#[derive(Debug, Default, Clone, Copy)]
pub struct ZeroOnFree;

// SAFETY: every method forwards to `System`, or to the locked arena while it is
// armed, with the caller's layout; a block goes back to whichever allocator its
// address belongs to (the arena's range is fixed once armed, and System never
// hands out addresses inside that mapping). `dealloc` additionally writes zeros
// over exactly the `layout.size()` bytes it owns (see [`wipe`]) before handing
// them back. `realloc` uses the default (alloc, copy, dealloc), so the old block
// is zeroed too and may move between the arena and System.
unsafe impl GlobalAlloc for ZeroOnFree {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if crate::locked_arena::armed() {
            // SAFETY: GlobalAlloc callers never pass a zero size; armed checked.
            if let Some(block) = unsafe { crate::locked_arena::alloc(layout) } {
                return block.as_ptr();
            }
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if crate::locked_arena::armed() {
            // SAFETY: as in `alloc`.
            if let Some(block) = unsafe { crate::locked_arena::alloc(layout) } {
                // SAFETY: the block has `layout.size()` writable bytes; freed
                // arena blocks are wiped, but the allocator's own free-list
                // words may remain.
                unsafe { std::ptr::write_bytes(block.as_ptr(), 0, layout.size()) };
                return block.as_ptr();
            }
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by us with `layout`, so `layout.size()` bytes
        // are writable, and it came from the arena exactly when its address lies
        // inside it.
        unsafe {
            wipe(ptr, layout.size());
            if crate::locked_arena::contains(ptr) {
                crate::locked_arena::dealloc(ptr, layout)
            } else {
                System.dealloc(ptr, layout)
            }
        }
    }
}

/// Zeroes `len` bytes at `ptr` with one `memset`, then hands `ptr` to an empty
/// `asm!` block that may read memory: the compiler must assume the zeros are
/// looked at, so it cannot drop the stores as dead before the block is freed
/// (the barrier BoringSSL's `OPENSSL_cleanse` uses). A byte-by-byte volatile loop
/// does the same far slower, which showed in every start of `shroud exec`.
///
/// # Safety
///
/// `ptr` must be valid for writes of `len` bytes.
#[inline]
pub unsafe fn wipe(ptr: *mut u8, len: usize) {
    // SAFETY: the caller guarantees `len` writable bytes at `ptr`.
    unsafe { std::ptr::write_bytes(ptr, 0, len) };
    // SAFETY: the block is empty: it reads no register but `ptr`, writes nothing
    // and leaves the stack and flags alone. Without `nomem` the compiler assumes
    // it may read the memory `ptr` points to, which is the point.
    unsafe { std::arch::asm!("/* {0} */", in(reg) ptr, options(nostack, preserves_flags)) };
}

/// [`wipe`] for a slice: the same single `memset` and barrier, without `unsafe`
/// at the call site.
#[inline]
pub fn wipe_slice(buf: &mut [u8]) {
    // SAFETY: a `&mut [u8]` is valid for writes of its whole length.
    unsafe { wipe(buf.as_mut_ptr(), buf.len()) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wipe_slice_zeroes_exactly_the_slice() {
        let mut v = [0xAAu8; 64];
        wipe_slice(&mut v[1..63]);
        assert_eq!(v[0], 0xAA);
        assert!(v[1..63].iter().all(|&b| b == 0));
        assert_eq!(v[63], 0xAA);
        wipe_slice(&mut []);
    }

    #[test]
    fn wipe_zeroes_exactly_the_block() {
        let mut v = vec![0xAAu8; 4096 + 3];
        // SAFETY: the range lies inside `v`.
        unsafe { wipe(v.as_mut_ptr().add(1), 4096 + 1) };
        assert_eq!(v[0], 0xAA);
        assert!(v[1..4096 + 2].iter().all(|&b| b == 0));
        assert_eq!(v[4096 + 2], 0xAA);
    }
}
