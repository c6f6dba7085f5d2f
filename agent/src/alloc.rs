//! A global allocator that overwrites every freed block with zeros, so that a
//! secret copied through a temporary `String`, `Vec` or serde buffer does not
//! survive in freed heap memory after rotation or shutdown.

use std::alloc::{GlobalAlloc, Layout, System};

/// [`System`] with zero-on-free.
#[derive(Debug, Default, Clone, Copy)]
pub struct ZeroOnFree;

// SAFETY: every method forwards to `System` with the caller's layout; `dealloc`
// additionally writes zeros over exactly the `layout.size()` bytes it owns before
// handing them back. `realloc` uses the default (alloc, copy, dealloc), so the old
// block is zeroed too.
unsafe impl GlobalAlloc for ZeroOnFree {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by us with `layout`, so `layout.size()` bytes
        // are writable; volatile writes keep the compiler from eliding the wipe of
        // memory it knows is about to be freed.
        unsafe {
            for i in 0..layout.size() {
                std::ptr::write_volatile(ptr.add(i), 0);
            }
            System.dealloc(ptr, layout)
        }
    }
}
