//! The host stacks guest calls run on, and giving their memory back while a VU is idle.
//!
//! wasmtime runs every async guest call on a fiber, and a `Store` keeps its fiber's stack
//! between calls. Guest code plus the host's HTTP path touch 12-16 KiB of that stack (40 KiB
//! before the connect future was boxed, see `client`; measured with `mincore`), and those
//! pages would stay resident for the life of the VU: with thousands of VUs sitting in long
//! wait times, stacks were a third of the runner's memory. These stacks are guarded like
//! wasmtime's own (each in the room below its VU's memory where the runner maps the plan's
//! image, `memories::take_room`, else its own mapping, or carved from shared arenas when the
//! kernel's map limit binds: `stack_arena`, `layout`), but each one is shared (`Arc`) with the VU that
//! uses it, so the VU can drop the stack's pages (`madvise(MADV_DONTNEED)`) before a long
//! wait. The next call faults them back in, zeroed.
//!
//! Lending one resident stack to whichever VU runs next would save those faults, but cannot
//! work with wasmtime 48: it reads a custom stack's range once, when the store first makes
//! its fiber stack (`FiberStack::from_custom`), and the store keeps that stack for life, so a
//! store's stack cannot move (tried: the second call of a VU given another's stack crashed).
//!
//! A stack is matched to its VU by the thread it was made on: wasmtime creates a store's
//! stack synchronously inside the first poll of that store's first call, on the worker
//! thread running the VU, so the VU's call wrapper (`load::call`) looks for a stack made
//! during each poll of the call.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ops::Range;
use std::sync::Arc;

use wasmtime::{StackCreator, StackMemory};

use super::give_back::{give_back, give_back_queued};
use super::memories;
use super::stack_arena::{self, page_size};

/// Makes the fiber stacks of every store of the engine.
#[derive(Debug)]
pub struct Stacks {
    /// Carve stacks from arenas (`Layout::stacks`) where the kernel allows.
    pub carve: bool,
}

/// One stack: a guard page at the bottom, then the usable stack. In the room below its VU's
/// memory (`memories::take_room`) where the VU offers one, else carved from an arena
/// (`stack_arena`) when the layout asks and the kernel allows, else a mapping of its own.
#[derive(Debug)]
struct Region {
    base: usize,
    len: usize,
    page: usize,
    place: Place,
}

/// Where a stack's pages come from, and so what dropping it does.
#[derive(Debug)]
enum Place {
    /// A mapping of its own, unmapped on drop.
    Own,
    /// Carved from an arena, given back to it on drop.
    Carved,
    /// The room below a VU memory, unmapped with that memory's reservation once neither
    /// the memory nor the stack holds it.
    Room { _memory: Arc<memories::Region> },
}

impl Region {
    fn new(size: usize, carve: bool) -> anyhow::Result<Self> {
        let page = page_size();
        if let Some((room, memory)) = memories::take_room(size) {
            return Ok(Self { base: room.start, len: room.len(), page, place: Place::Room { _memory: memory } });
        }
        let usable = size.div_ceil(page).max(1) * page;
        let len = usable + page;
        if carve && let Some(base) = stack_arena::take(len, page)? {
            return Ok(Self { base, len, page, place: Place::Carved });
        }
        // SAFETY: a fresh private anonymous mapping at an address of the kernel's choice.
        let base = unsafe {
            libc::mmap(std::ptr::null_mut(), len, libc::PROT_NONE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
        };
        if base == libc::MAP_FAILED {
            anyhow::bail!("cannot map a {len}-byte VU stack: {}", std::io::Error::last_os_error());
        }
        let region = Self { base: base as usize, len, page, place: Place::Own };
        // SAFETY: the range lies inside the mapping just made; only the guard page stays
        // inaccessible.
        let made_usable = unsafe {
            libc::mprotect(region.usable().start as *mut libc::c_void, usable, libc::PROT_READ | libc::PROT_WRITE)
        };
        if made_usable != 0 {
            anyhow::bail!("cannot make a VU stack writable: {}", std::io::Error::last_os_error());
        }
        Ok(region)
    }

    fn usable(&self) -> Range<usize> {
        self.base + self.page..self.base + self.len
    }

    /// Gives the usable pages back to the kernel; they read as zeroes afterwards.
    fn empty(&self) {
        // SAFETY: the usable part of a live stack that, by the callers' contract, nothing
        // runs on.
        unsafe { give_back(&[self.usable()]) };
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // A range queued to be given back may lie in this stack, which another VU takes or
        // the kernel unmaps below (a room goes with its memory, which sees to it then).
        match self.place {
            Place::Carved => {
                give_back_queued();
                // The next stack taken from the arena starts zeroed, like a new mapping.
                self.empty();
                stack_arena::give_back(self.base);
            }
            Place::Own => {
                give_back_queued();
                // SAFETY: the mapping was made in `new` and this is its last owner.
                unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
            }
            Place::Room { .. } => {}
        }
    }
}

/// What wasmtime holds: the stack it runs a store's calls on.
struct Stack(Arc<Region>);

// SAFETY: `top` is the page-aligned end of the usable range; the guard page below it is
// inaccessible.
unsafe impl StackMemory for Stack {
    fn top(&self) -> *mut u8 {
        self.0.usable().end as *mut u8
    }

    fn range(&self) -> Range<usize> {
        self.0.usable()
    }

    fn guard_range(&self) -> Range<*mut u8> {
        self.0.base as *mut u8..(self.0.base + self.0.page) as *mut u8
    }
}

thread_local! {
    /// The stack made on this thread since the last [`Capture`] poll looked.
    static MADE: RefCell<Option<Arc<Region>>> = const { RefCell::new(None) };
}

// SAFETY: every stack is fresh and zero-filled with a guard page below it: a mapping of its
// own, a part of an arena given back zeroed, or a room below a memory (`memories::take_room`:
// the memfd's hole, mapped only by that room, which is taken once).
unsafe impl StackCreator for Stacks {
    fn new_stack(&self, size: usize, _zeroed: bool) -> wasmtime::Result<Box<dyn StackMemory>> {
        let region = Arc::new(Region::new(size, self.carve).map_err(|e| wasmtime::Error::msg(e.to_string()))?);
        MADE.with(|made| *made.borrow_mut() = Some(region.clone()));
        Ok(Box::new(Stack(region)))
    }
}

/// A VU's hold on the stack its store runs on.
#[derive(Debug, Default)]
pub struct VuStack(Option<Arc<Region>>);

impl VuStack {
    /// The stack's usable pages, to give back to the kernel (`give_back`) between calls
    /// into the VU's store (no call future of that store alive): the stack holds nothing
    /// then, and the next call starts on fresh zeroed pages.
    pub fn usable(&self) -> Option<Range<usize>> {
        self.0.as_ref().map(|region| region.usable())
    }

    /// Forgets a stack made on this thread outside a VU's call (by `describe`).
    pub fn forget_made() {
        MADE.with(|made| made.borrow_mut().take());
    }

    /// Keeps the stack made on this thread since [`VuStack::forget_made`], if any: call it
    /// right after polling the VU's call, before another task runs on the thread.
    pub fn keep_made(&mut self) {
        if let Some(region) = MADE.with(|made| made.borrow_mut().take()) {
            self.0 = Some(region);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_released_stack_reads_back_as_zeroes_and_stays_usable() {
        let stack = Stacks { carve: false }.new_stack(64 * 1024, false).expect("stack");
        let range = stack.range();
        assert_eq!(stack.top() as usize, range.end);
        assert_eq!(range.len(), 64 * 1024);
        let held = VuStack(MADE.with(|made| made.borrow_mut().take()));
        assert!(held.0.is_some(), "the new stack is noted for the VU that made it");
        let word = (range.end - 64) as *mut u64;
        // SAFETY: inside the usable range of a stack nothing runs on.
        unsafe { word.write_volatile(0xfeed) };
        // SAFETY: nothing runs on the stack.
        unsafe { give_back(&[held.usable().expect("a stack")]) };
        // SAFETY: as above.
        assert_eq!(unsafe { word.read_volatile() }, 0);
        unsafe { word.write_volatile(7) };
        assert_eq!(unsafe { word.read_volatile() }, 7);
    }

    /// Whether touching `addr` kills a child process with SIGSEGV.
    fn faults(addr: usize) -> bool {
        // SAFETY: the child only reads one byte and exits; the parent waits for it.
        unsafe {
            match libc::fork() {
                0 => {
                    std::ptr::read_volatile(addr as *const u8);
                    libc::_exit(0)
                }
                -1 => panic!("fork failed"),
                child => {
                    let mut status = 0;
                    libc::waitpid(child, &mut status, 0);
                    libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSEGV
                }
            }
        }
    }

    #[test]
    fn a_stack_in_the_room_below_its_memory_is_guarded_zeroed_and_outlives_the_memory() {
        use wasmtime::{MemoryCreator, MemoryType};
        let size = 64 * 1024;
        let creator = memories::Memories::new(Some(&[1; 100]), Some(size));
        // No memory made on this thread since `forget_made`: a stack of its own.
        memories::forget_made();
        let own = Stacks { carve: false }.new_stack(size, false).expect("stack");
        let memory = creator.new_memory(MemoryType::new(1, None), 1 << 16, None, Some(1 << 20), 1 << 16).expect("m");
        let base = memory.as_ptr() as usize;
        assert_ne!(own.range().end, base);
        // Made after the memory, as wasmtime makes a store's: in its room, which is taken once.
        let stack = Stacks { carve: false }.new_stack(size, false).expect("stack");
        let (range, page) = (stack.range(), page_size());
        assert_ne!(Stacks { carve: false }.new_stack(size, false).expect("stack").range(), range);
        let mut vu = memories::VuMemories::default();
        vu.keep_made();
        assert_eq!(range, base - size..base, "the stack ends where the memory starts");
        assert_eq!(stack.guard_range(), (base - size - page) as *mut u8..(base - size) as *mut u8);
        assert!(faults(base - size - 1), "the guard page below it faults");
        // SAFETY: the memory's first byte, which maps the image.
        assert_eq!(unsafe { (base as *const u8).read_volatile() }, 1);
        let word = (range.end - 8) as *mut u64;
        // SAFETY: inside the stack's usable range, zero-filled, which nothing runs on.
        assert_eq!(unsafe { word.read_volatile() }, 0);
        unsafe { word.write_volatile(0xfeed) };
        assert_eq!(unsafe { (base as *const u8).read_volatile() }, 1, "the memory is untouched");
        // SAFETY: nothing runs on the stack.
        unsafe { give_back(std::slice::from_ref(&range)) };
        assert_eq!(unsafe { word.read_volatile() }, 0, "given back, it reads as zeroes");
        // The memory gone, the stack's pages stay mapped for as long as it lives.
        drop((memory, vu));
        unsafe { word.write_volatile(7) };
        assert_eq!(unsafe { word.read_volatile() }, 7);
        memories::forget_made();
        MADE.with(|made| made.borrow_mut().take());
    }

    #[test]
    fn carved_stacks_are_guarded_and_reused_zeroed() {
        if !stack_arena::guards_supported() {
            eprintln!("skipped: this kernel has no MADV_GUARD_INSTALL");
            return;
        }
        let first = Stacks { carve: true }.new_stack(64 * 1024, false).expect("stack");
        let second = Stacks { carve: true }.new_stack(64 * 1024, false).expect("stack");
        let (a, b) = (first.range(), second.range());
        assert!(faults(first.guard_range().start as usize), "the guard page below a stack faults");
        assert!(!faults(a.end - 8), "the stack itself does not");
        let word = (b.end - 8) as *mut u64;
        // SAFETY: inside the usable range of a stack nothing runs on.
        unsafe { word.write_volatile(0xfeed) };
        drop(second);
        MADE.with(|made| made.borrow_mut().take());
        let again = Stacks { carve: true }.new_stack(64 * 1024, false).expect("stack");
        MADE.with(|made| made.borrow_mut().take());
        // Only this test carves stacks in this binary, so the one given back is the one taken.
        assert_eq!(again.range(), b, "a stack given back is reused");
        // SAFETY: as above.
        assert_eq!(unsafe { word.read_volatile() }, 0, "a reused stack starts zeroed");
        assert!(faults(again.guard_range().start as usize), "and keeps its guard");
        assert_ne!(a, again.range());
    }
}
