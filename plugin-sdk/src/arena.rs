//! The batch arena: the allocator behind every plugin component built with
//! this SDK (feature `batch-arena`, on by default).
//!
//! Why: when the host hands a batch to `on-events`, the canonical ABI calls
//! the guest's `realloc` once for every string and list of every event, and
//! the guest frees them all again when the batch is dropped. With a general
//! purpose allocator that is two allocator operations per field, and they
//! dominate a detector's cost. Here, allocations made *outside* an export's
//! body (the host lowering the arguments, wit-bindgen lowering the results)
//! are bump-allocated from an arena that is reset at the end of each export
//! body; frees of arena memory are no-ops. So are the values the SDK
//! builds for the body alone (`in_arena`): the list of views that
//! `on-packed-events` reads from its buffer, and the owned copies handed to
//! a detector that reads no views. Allocations made by the
//! detector's own code run on the system allocator as usual, so state kept
//! across calls is unaffected.
//!
//! Soundness rests on two facts the SDK guarantees: the batch is only lent
//! to detectors (`&[Event]`, or views that borrow the packed buffer for the
//! call), so nothing from it outlives the call except by copy; and a
//! component instance is single-threaded and never re-entered.

#![allow(unsafe_code, reason = "a global allocator is unsafe by definition")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;

const MIN_CHUNK: usize = 64 << 10;
const MAX_CHUNKS: usize = 16;

struct State {
    /// True outside export bodies: allocations go to the arena.
    arena_mode: bool,
    /// The next free byte of the chunk being filled. Kept beside `limit`
    /// rather than recomputed from the chunk table so that an allocation
    /// while the chunk has room is an add and two comparisons (the decode of
    /// a batch makes a few dozen per event). Invariant: with no chunk both
    /// are 0; else `base <= cursor <= limit == base + cap` of the last chunk.
    cursor: usize,
    /// The end of the chunk being filled (see `cursor`).
    limit: usize,
    /// (base, capacity) of each chunk; the last one is being filled.
    chunks: [(usize, usize); MAX_CHUNKS],
    n: usize,
    /// Arena-mode allocations since the last reset that the chunks could
    /// not take and went to `System` instead (see [`discard`]).
    fallbacks: usize,
}

/// The SDK's global allocator on wasm32 (see the module docs).
pub struct BatchArena(UnsafeCell<State>);

// SAFETY: a component instance runs on one thread and is never re-entered.
unsafe impl Sync for BatchArena {}

impl BatchArena {
    /// An empty arena in arena mode.
    pub const fn new() -> Self {
        Self(UnsafeCell::new(State {
            arena_mode: true,
            cursor: 0,
            limit: 0,
            chunks: [(0, 0); MAX_CHUNKS],
            n: 0,
            fallbacks: 0,
        }))
    }

    #[allow(
        clippy::mut_from_ref,
        reason = "single-threaded, never re-entered: no aliasing &mut"
    )]
    fn state(&self) -> &mut State {
        // SAFETY: see `unsafe impl Sync`; no reference outlives one call.
        unsafe { &mut *self.0.get() }
    }
}

impl Default for BatchArena {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg_attr(
    not(all(target_arch = "wasm32", feature = "batch-arena")),
    allow(
        dead_code,
        reason = "the global allocator only on wasm32; tested natively"
    )
)]
impl State {
    fn contains(&self, p: usize) -> bool {
        self.chunks[..self.n]
            .iter()
            .any(|&(base, cap)| p >= base && p < base + cap)
    }

    /// Bump-allocates `layout` from the chunk being filled, else from a new
    /// chunk, else (no chunk can be had) from `System`, counted.
    #[inline]
    fn bump(&mut self, layout: Layout) -> *mut u8 {
        debug_assert!(layout.size() != 0, "GlobalAlloc is never asked for 0 bytes");
        let mask = layout.align() - 1;
        if let Some(start) = self.cursor.checked_add(mask).map(|p| p & !mask)
            && start <= self.limit
            && layout.size() <= self.limit - start
        {
            self.cursor = start + layout.size();
            return start as *mut u8;
        }
        self.grow(layout)
    }

    /// There is no chunk yet, or the one being filled has no room for
    /// `layout`: opens a new one (twice the last, at least `MIN_CHUNK`,
    /// always room for `layout`). When no chunk can be had (`MAX_CHUNKS`
    /// reached, or `System` refuses), `layout` comes from `System` and is
    /// counted in `fallbacks`; `cursor` and `limit` still describe the last
    /// chunk.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, layout: Layout) -> *mut u8 {
        if self.n < MAX_CHUNKS {
            let last = if self.n > 0 {
                self.chunks[self.n - 1].1
            } else {
                0
            };
            let cap = MIN_CHUNK
                .max(layout.size() + layout.align())
                .max(last.saturating_mul(2));
            if let Ok(chunk) = Layout::from_size_align(cap, 16) {
                // SAFETY: `cap` is non-zero.
                let base = unsafe { System.alloc(chunk) };
                if !base.is_null() {
                    self.chunks[self.n] = (base as usize, cap);
                    self.n += 1;
                    // It fits: aligning moves `start` less than `align` past
                    // `base`, and `cap >= size + align`. Nothing overflows,
                    // since `System` handed out `base + cap` bytes.
                    let mask = layout.align() - 1;
                    let start = (base as usize + mask) & !mask;
                    self.cursor = start + layout.size();
                    self.limit = base as usize + cap;
                    return start as *mut u8;
                }
            }
        }
        self.fallbacks += 1;
        // SAFETY: the caller's layout is valid and non-zero-sized.
        unsafe { System.alloc(layout) }
    }

    /// Frees every chunk but the largest, which is kept for the next call.
    fn reset(&mut self) {
        if self.n > 1 {
            let keep = self.chunks[self.n - 1];
            for &(base, cap) in &self.chunks[..self.n - 1] {
                // SAFETY: allocated in `grow` with this layout.
                unsafe {
                    System.dealloc(base as *mut u8, Layout::from_size_align_unchecked(cap, 16))
                };
            }
            self.chunks[0] = keep;
            self.n = 1;
        }
        (self.cursor, self.limit) = match self.chunks[..self.n].last() {
            Some(&(base, cap)) => (base, base + cap),
            None => (0, 0),
        };
        self.fallbacks = 0;
    }
}

// SAFETY: every pointer handed out is either from `System` (and returned to
// it) or inside a live arena chunk (never handed to `System`); arena memory
// is only reused after `leave_export`, when nothing refers to it any more.
unsafe impl GlobalAlloc for BatchArena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let s = self.state();
        if s.arena_mode {
            s.bump(layout)
        } else {
            // SAFETY: forwarded contract.
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !self.state().contains(ptr as usize) {
            // SAFETY: not arena memory, so it came from `System`.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if self.state().contains(ptr as usize) {
            // SAFETY: `new_size` is non-zero and valid for the alignment (caller's contract).
            let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
            // SAFETY: as above.
            let new = unsafe { self.alloc(new_layout) };
            if !new.is_null() {
                // SAFETY: both regions are valid for the copied length and distinct.
                unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
            }
            new
        } else {
            // SAFETY: not arena memory, so it came from `System`.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }
}

#[cfg(all(target_arch = "wasm32", feature = "batch-arena"))]
#[global_allocator]
static ALLOCATOR: BatchArena = BatchArena::new();

/// Entering an export body: the detector's allocations use the heap.
#[inline]
pub(crate) fn enter_export() {
    #[cfg(all(target_arch = "wasm32", feature = "batch-arena"))]
    {
        ALLOCATOR.state().arena_mode = false;
    }
}

/// Runs `f` with the arena on inside an export body: for values that live
/// exactly as long as the body, such as the events `on-packed-events`
/// decodes from its buffer. They are then bump-allocated like the canonical
/// ABI's lifting instead of costing a `malloc` and a `free` per string and
/// list (most of a packed batch's decode), and are reclaimed by the reset
/// at [`leave_export`]. The caller must end their life before that (drop
/// them, or [`discard`] them), and lend them only by reference (the module docs' soundness argument).
#[inline]
pub(crate) fn in_arena<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(all(target_arch = "wasm32", feature = "batch-arena"))]
    {
        ALLOCATOR.state().arena_mode = true;
        let r = f();
        ALLOCATOR.state().arena_mode = false;
        r
    }
    #[cfg(not(all(target_arch = "wasm32", feature = "batch-arena")))]
    {
        f()
    }
}

/// Ends the life of a value built by [`in_arena`], before
/// [`leave_export`]. When every arena-mode allocation since the last reset
/// came from the arena's chunks, the value is forgotten: the reset reclaims
/// its memory, and dropping it would walk every string and list of a batch
/// only to call frees that do nothing (as costly as a good part of the
/// decode). Otherwise (the arena could not grow and some of it is `System`
/// memory) it is dropped as usual.
#[inline]
pub(crate) fn discard<T>(value: T) {
    #[cfg(all(target_arch = "wasm32", feature = "batch-arena"))]
    {
        if ALLOCATOR.state().fallbacks == 0 {
            std::mem::forget(value);
            return;
        }
    }
    drop(value);
}

/// Leaving an export body, after its arguments are dropped: the arena is
/// reset and takes the next lowering.
#[inline]
pub(crate) fn leave_export() {
    #[cfg(all(target_arch = "wasm32", feature = "batch-arena"))]
    {
        let s = ALLOCATOR.state();
        s.reset();
        s.arena_mode = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bumps_frees_nothing_in_the_arena_and_resets() {
        let arena = BatchArena::new();
        let small = Layout::from_size_align(10, 1).unwrap();
        // SAFETY: valid layouts; pointers are only compared and written within their size.
        unsafe {
            let a = arena.alloc(small);
            let b = arena.alloc(Layout::from_size_align(8, 8).unwrap());
            assert!(!a.is_null() && !b.is_null());
            assert_eq!(b as usize % 8, 0, "alignment honoured");
            assert!(arena.state().contains(a as usize) && arena.state().contains(b as usize));
            // A large allocation opens a second, bigger chunk.
            let big = arena.alloc(Layout::from_size_align(MIN_CHUNK * 3, 1).unwrap());
            assert!(arena.state().contains(big as usize));
            assert_eq!(arena.state().n, 2);
            arena.dealloc(a, small); // no-op
            let grown = arena.realloc(a, small, 20);
            assert!(arena.state().contains(grown as usize));
            // Outside the arena (inside an export body) memory is the system's.
            arena.state().arena_mode = false;
            let heap = arena.alloc(small);
            assert!(!arena.state().contains(heap as usize));
            arena.dealloc(heap, small);
            arena.state().reset();
            arena.state().arena_mode = true;
            let (base, cap) = arena.state().chunks[0];
            assert_eq!(
                (arena.state().n, arena.state().cursor, arena.state().limit),
                (1, base, base + cap),
                "the largest chunk is kept, empty"
            );
            assert!(arena.state().chunks[0].1 >= MIN_CHUNK * 3);
        }
    }

    #[test]
    fn allocations_are_aligned_disjoint_and_inside_the_chunks() {
        let arena = BatchArena::new();
        let mut taken: Vec<(usize, usize)> = Vec::new();
        // A fixed pseudo-random walk of sizes and alignments, some larger
        // than what is left of a chunk and some larger than a chunk.
        let mut x = 0x9e37_79b9_u32;
        for round in 0..2 {
            for _ in 0..4000 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let align = 1usize << (x % 13);
                let size = match x % 97 {
                    0 => MIN_CHUNK + (x as usize % 5000),
                    1..=9 => 1 + (x as usize % 9000),
                    _ => 1 + (x as usize % 64),
                };
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: a valid, non-zero layout; the pointer is only compared.
                let p = unsafe { arena.alloc(layout) } as usize;
                assert_ne!(p, 0);
                assert_eq!(p % align, 0, "{size} bytes at alignment {align}");
                let s = arena.state();
                assert!(
                    s.chunks[..s.n]
                        .iter()
                        .any(|&(base, cap)| p >= base && p + size <= base + cap),
                    "inside one chunk"
                );
                taken.push((p, p + size));
            }
            assert_eq!(arena.state().fallbacks, 0);
            taken.sort_unstable();
            assert!(
                taken.windows(2).all(|w| w[0].1 <= w[1].0),
                "round {round}: no two allocations overlap"
            );
            taken.clear();
            arena.state().reset();
        }
    }

    #[test]
    fn an_allocation_the_chunks_cannot_take_is_counted_and_the_reset_clears_it() {
        let arena = BatchArena::new();
        // No chunk of this size can be had, so `bump` hands it to `System`,
        // which refuses it too: what `discard` must then not forget.
        let huge = Layout::from_size_align(isize::MAX as usize / 2, 1).unwrap();
        // SAFETY: a valid layout; the (null) result is only compared.
        let p = unsafe { arena.alloc(huge) };
        assert!(p.is_null());
        assert_eq!(arena.state().fallbacks, 1);
        arena.state().reset();
        assert_eq!(arena.state().fallbacks, 0);
    }
}
