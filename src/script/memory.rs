//! What the process holds on the heap, counted by a thin global allocator around the
//! system's, so the script sandbox can bound a script's memory wherever its values
//! live (variables, closures' captures, curried arguments, module globals): Rhai's
//! own limits only see one string, array or map at a time. The program installs
//! [`Counting`] (the binary does); a library user that does not gets no memory
//! bound, and [`counting`] tells.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes currently allocated through the global allocator.
static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting live bytes.
pub struct Counting;

// SAFETY: every call is forwarded unchanged to `System`; only a counter is kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (see `alloc`).
        unsafe { System.dealloc(ptr, layout) };
        ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; `ptr` came from `System` with `layout`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                ALLOCATED.fetch_add(new_size - layout.size(), Ordering::Relaxed);
            } else {
                ALLOCATED.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

// The library's own unit tests count too; a program installs it itself (the binary
// does in main.rs), so the library never imposes an allocator on its users.
#[cfg(test)]
#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes the process holds on the heap right now (0 when the program did not
/// install [`Counting`] as its global allocator: see [`counting`]).
pub fn allocated() -> usize {
    ALLOCATED.load(Ordering::Relaxed)
}

/// Whether this program counts its heap: it declared
/// `#[global_allocator] static A: Counting = Counting;`. Without it a script's
/// memory cannot be bounded (`--max-memory` has nothing to measure).
pub fn counting() -> bool {
    let probe = std::hint::black_box(Box::new([0u8; 64]));
    let seen = allocated() >= 64;
    drop(probe);
    seen
}

/// Tests that allocate large blocks take turns, so each sees only its own.
#[cfg(test)]
pub(crate) static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_are_counted_while_they_live() {
        let _turn = HEAVY.lock();
        // Other tests allocate at the same time: a 64 MiB block stands well above them.
        let before = allocated();
        let block = std::hint::black_box(vec![1u8; 64 << 20]);
        assert!(allocated() >= before + (48 << 20), "counted");
        drop(block);
        assert!(allocated() < before + (48 << 20), "released");
        assert!(counting(), "the tests install the counting allocator");
    }
}
