//! VU linear memories made by the runner instead of wasmtime, so that a VU about to wait a
//! long time can pack its memory away and give the pages back (`hibernate`), and unpack
//! it when the wait ends.
//!
//! wasmtime maps a plan's memory image copy-on-write into each VU's memory, but does not say
//! where a memory lives, so nothing outside it can free an idle VU's pages. For plans whose
//! data segments are small (`layout`), the runner makes the memories itself
//! (`Config::with_host_memory`): a reservation of the size wasmtime asks for plus its guard,
//! inaccessible beyond the memory's current size; wasmtime copies the data segments in.
//! A memory is matched to its VU as a stack is (`stacks`): wasmtime makes a store's memories
//! synchronously while instantiating, inside one poll of the VU's instantiation call, on the
//! worker thread running the VU.
//!
//! Hibernating reads which pages are resident (`mincore`: exact for a private anonymous
//! mapping on a machine without swap), packs the ones that are not all zero (`pack`), and
//! drops them all (`MADV_DONTNEED`, after which they read as zeroes). Waking writes the kept
//! pages back. With swap on, a page the kernel swapped out reads as not resident, so the
//! runner does not hibernate memories then: the kernel pages idle memory out itself.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use wasmtime::{LinearMemory, MemoryCreator, MemoryType};

use super::pack::{Kept, References, is_zero};
use super::stack_arena::page_size;
use crate::limits::HIBERNATE_MAX_PAGES;

/// Makes the linear memories of every store of the engine.
#[derive(Debug, Default)]
pub struct Memories {
    references: Arc<References>,
}

thread_local! {
    /// The memories made on this thread since the last [`forget_made`].
    static MADE: RefCell<Vec<Arc<Region>>> = const { RefCell::new(Vec::new()) };
}

/// Forgets memories made on this thread outside a VU's call (by `describe`).
pub fn forget_made() {
    MADE.with(|made| made.borrow_mut().clear());
}

/// Moves the memories made on this thread since [`forget_made`] into `into`, in the order
/// they were made.
pub fn take_made(into: &mut Vec<Arc<Region>>) {
    MADE.with(|made| into.append(&mut made.borrow_mut()));
}

// SAFETY: every memory is a fresh zero-filled private anonymous mapping of the reservation
// and guard asked for, accessible up to its size; it moves only when it grows past the
// reservation, which wasmtime allows only when the memory type says it may move.
unsafe impl MemoryCreator for Memories {
    fn new_memory(
        &self,
        _ty: MemoryType,
        minimum: usize,
        _maximum: Option<usize>,
        reserved: Option<usize>,
        guard: usize,
    ) -> Result<Box<dyn LinearMemory>, String> {
        let region = Arc::new(Region::new(minimum, reserved, guard, self.references.clone())?);
        MADE.with(|made| made.borrow_mut().push(region.clone()));
        Ok(Box::new(Memory(region)))
    }
}

/// One linear memory: `capacity` reserved bytes then `guard` inaccessible ones, the first
/// `size` bytes readable and writable. Shared between wasmtime's `Memory` and the VU.
#[derive(Debug)]
pub struct Region {
    base: AtomicUsize,
    size: AtomicUsize,
    capacity: AtomicUsize,
    guard: usize,
    references: Arc<References>,
}

/// `n` rounded up to whole pages.
fn pages_for(n: usize) -> usize {
    n.div_ceil(page_size()) * page_size()
}

/// A reservation of `len` bytes, inaccessible, at an address of the kernel's choice.
fn reserve(len: usize) -> Result<usize, String> {
    // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(format!("cannot reserve {len} bytes for a VU memory: {}", std::io::Error::last_os_error()));
    }
    Ok(base as usize)
}

/// Makes `[from, to)` of a reservation readable and writable (both page-aligned).
fn open(from: usize, to: usize) -> Result<(), String> {
    if to <= from {
        return Ok(());
    }
    // SAFETY: the range lies inside a reservation owned by the caller.
    let done = unsafe { libc::mprotect(from as *mut libc::c_void, to - from, libc::PROT_READ | libc::PROT_WRITE) };
    if done != 0 {
        return Err(format!("cannot make a VU memory accessible: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

impl Region {
    fn new(minimum: usize, reserved: Option<usize>, guard: usize, references: Arc<References>) -> Result<Self, String> {
        let capacity = pages_for(reserved.unwrap_or(minimum).max(minimum));
        let base = reserve(capacity + guard)?;
        let region = Self {
            base: AtomicUsize::new(base),
            size: AtomicUsize::new(minimum),
            capacity: AtomicUsize::new(capacity),
            guard,
            references,
        };
        // On failure `region` is dropped, which unmaps the reservation.
        open(base, base + pages_for(minimum))?;
        Ok(region)
    }

    /// Grows the accessible part to `new_size`, moving the memory to a reservation twice
    /// as large when it does not fit.
    fn grow_to(&self, new_size: usize) -> Result<(), String> {
        let (base, size, capacity) = (self.base(), self.size.load(Ordering::Relaxed), self.capacity());
        if new_size <= capacity {
            open(base + pages_for(size), base + pages_for(new_size))?;
            self.size.store(new_size, Ordering::Relaxed);
            return Ok(());
        }
        let new_capacity = pages_for(new_size).max(capacity.saturating_mul(2));
        let new_base = reserve(new_capacity + self.guard)?;
        let used = pages_for(size);
        if used > 0 {
            // SAFETY: moves the accessible pages of this memory, which nothing runs on
            // during a grow, over the start of the new reservation; both ranges are ours.
            let moved = unsafe {
                libc::mremap(
                    base as *mut libc::c_void,
                    used,
                    used,
                    libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                    new_base as *mut libc::c_void,
                )
            };
            if moved == libc::MAP_FAILED {
                let e = std::io::Error::last_os_error();
                // SAFETY: the new reservation was made above and nothing refers to it.
                unsafe { libc::munmap(new_base as *mut libc::c_void, new_capacity + self.guard) };
                return Err(format!("cannot move a growing VU memory: {e}"));
            }
        }
        // SAFETY: the old reservation, whose pages were moved out; nothing refers to it now.
        unsafe { libc::munmap(base as *mut libc::c_void, capacity + self.guard) };
        self.base.store(new_base, Ordering::Relaxed);
        self.capacity.store(new_capacity, Ordering::Relaxed);
        open(new_base + used, new_base + pages_for(new_size))?;
        self.size.store(new_size, Ordering::Relaxed);
        Ok(())
    }

    fn base(&self) -> usize {
        self.base.load(Ordering::Relaxed)
    }

    fn capacity(&self) -> usize {
        self.capacity.load(Ordering::Relaxed)
    }

    /// Packs the memory's resident pages and gives them back to the kernel; `place` is the
    /// memory's place among its instance's memories. `None` (and nothing given back) when
    /// the kernel cannot say which pages are resident, or more than `HIBERNATE_MAX_PAGES`
    /// are.
    ///
    /// # Safety
    ///
    /// No call into the memory's store may be running, and none may start before `wake`.
    unsafe fn hibernate(&self, place: usize) -> Option<Packed> {
        let page = page_size();
        let (base, len) = (self.base(), pages_for(self.size.load(Ordering::Relaxed)));
        let mut resident = vec![0u8; len / page];
        // SAFETY: the accessible part of a mapping this region owns; `resident` has one
        // byte per page of it.
        if len == 0 || unsafe { libc::mincore(base as *mut libc::c_void, len, resident.as_mut_ptr()) } != 0 {
            return None;
        }
        let touched: Vec<usize> = (0..resident.len()).filter(|&i| resident[i] & 1 == 1).collect();
        let (&first, &last) = (touched.first()?, touched.last()?);
        if touched.len() > HIBERNATE_MAX_PAGES {
            return None;
        }
        let pages = touched
            .into_iter()
            .filter_map(|i| {
                // SAFETY: a resident page of the accessible part, which by this method's
                // contract nothing writes meanwhile.
                let bytes = unsafe { std::slice::from_raw_parts((base + i * page) as *const u8, page) };
                (!is_zero(bytes)).then(|| (i, self.references.pack((place, i), bytes)))
            })
            .collect();
        // SAFETY: pages of the accessible part, packed above; they read as zeroes afterwards.
        unsafe {
            libc::madvise((base + first * page) as *mut libc::c_void, (last + 1 - first) * page, libc::MADV_DONTNEED)
        };
        Some(Packed(pages))
    }

    /// Writes `packed` back.
    ///
    /// # Safety
    ///
    /// As for `hibernate`, and `packed` must be what `hibernate` returned for this region.
    unsafe fn wake(&self, packed: &Packed) {
        let (page, base) = (page_size(), self.base());
        for (i, kept) in &packed.0 {
            // SAFETY: a page of the accessible part, which cannot have shrunk or moved
            // since `hibernate`, as no call ran.
            let bytes = unsafe { std::slice::from_raw_parts_mut((base + i * page) as *mut u8, page) };
            kept.unpack(bytes);
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: the reservation made in `new` (or `grow_to`); this is its last owner.
        unsafe { libc::munmap(self.base() as *mut libc::c_void, self.capacity() + self.guard) };
    }
}

/// What wasmtime holds: the memory its instance uses.
struct Memory(Arc<Region>);

// SAFETY: `as_ptr` is the start of `byte_size` accessible bytes followed by the rest of the
// reservation and the guard; the base moves only past `byte_capacity`.
unsafe impl LinearMemory for Memory {
    fn byte_size(&self) -> usize {
        self.0.size.load(Ordering::Relaxed)
    }

    fn byte_capacity(&self) -> usize {
        self.0.capacity()
    }

    fn grow_to(&mut self, new_size: usize) -> wasmtime::Result<()> {
        self.0.grow_to(new_size).map_err(wasmtime::Error::msg)
    }

    fn as_ptr(&self) -> *mut u8 {
        self.0.base() as *mut u8
    }
}

/// One memory's pages while its VU hibernates: (page index, page) for every page that was
/// resident and not all zero.
#[derive(Debug)]
pub struct Packed(Vec<(usize, Kept)>);

impl Packed {
    #[cfg(test)]
    /// Bytes the packed pages keep of their own (the plan's shared references left out).
    pub fn own_bytes(&self) -> usize {
        self.0.iter().map(|(_, kept)| kept.own_bytes()).sum()
    }
}

/// Whether the machine swaps: then `mincore` cannot see every page a memory holds.
fn swap_on() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        let Ok(meminfo) = std::fs::read_to_string("/proc/meminfo") else { return true };
        let total = meminfo.lines().find_map(|l| l.strip_prefix("SwapTotal:"));
        total.is_none_or(|kib| kib.trim().trim_end_matches("kB").trim() != "0")
    })
}

/// A VU's linear memories (those the runner made), and their pages while it hibernates.
#[derive(Debug, Default)]
pub struct VuMemories {
    regions: Vec<Arc<Region>>,
    packed: Vec<Option<Packed>>,
}

impl VuMemories {
    /// Keeps the memories made on this thread since [`forget_made`].
    pub fn keep_made(&mut self) {
        take_made(&mut self.regions);
    }

    /// Packs the memories away and gives their pages back, unless swap is on. Call it only
    /// between calls into the VU's store, and [`VuMemories::wake`] before the next one.
    pub fn hibernate(&mut self) {
        if !self.packed.is_empty() || swap_on() {
            return;
        }
        // SAFETY: by this method's contract no call into the store runs until `wake`.
        self.packed = self.regions.iter().enumerate().map(|(place, r)| unsafe { r.hibernate(place) }).collect();
    }

    /// Writes back what [`VuMemories::hibernate`] packed; does nothing if it did not.
    pub fn wake(&mut self) {
        for (region, packed) in self.regions.iter().zip(std::mem::take(&mut self.packed)) {
            if let Some(packed) = packed {
                // SAFETY: `hibernate`'s contract still holds, and `packed` is this region's.
                unsafe { region.wake(&packed) };
            }
        }
    }

    /// Bytes the VU's packed pages keep of their own, while it hibernates.
    #[cfg(test)]
    pub fn packed_bytes(&self) -> usize {
        self.packed.iter().flatten().map(Packed::own_bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn made() -> VuMemories {
        let mut memories = VuMemories::default();
        memories.keep_made();
        memories
    }

    fn bytes(region: &Region) -> &mut [u8] {
        // SAFETY: the accessible part of a region no instance uses.
        unsafe { std::slice::from_raw_parts_mut(region.base() as *mut u8, region.size.load(Ordering::Relaxed)) }
    }

    fn resident_pages(region: &Region) -> usize {
        let len = pages_for(region.size.load(Ordering::Relaxed));
        let mut resident = vec![0u8; len / page_size()];
        // SAFETY: as in `hibernate`.
        assert_eq!(unsafe { libc::mincore(region.base() as *mut libc::c_void, len, resident.as_mut_ptr()) }, 0);
        resident.iter().filter(|&&r| r & 1 == 1).count()
    }

    #[test]
    fn a_hibernated_memory_gives_its_pages_back_and_wakes_with_every_byte() {
        if swap_on() {
            eprintln!("skipped: this machine swaps, so memories do not hibernate");
            return;
        }
        let creator = Memories::default();
        forget_made();
        let _a = creator.new_memory(MemoryType::new(2, None), 2 << 16, None, Some(1 << 20), 1 << 16).expect("a");
        let _b = creator.new_memory(MemoryType::new(2, None), 2 << 16, None, Some(1 << 20), 1 << 16).expect("b");
        let (mut first, mut second) = (made(), VuMemories::default());
        second.regions = first.regions.split_off(1);
        let page = page_size();
        for memories in [&first, &second] {
            let mem = bytes(&memories.regions[0]);
            mem[..page].fill(3);
            mem[5 * page + 17] = 9;
            mem[9 * page] = 1;
            mem[9 * page] = 0;
        }
        bytes(&second.regions[0])[40] = 4;
        assert_eq!(resident_pages(&first.regions[0]), 3);
        // Reading the rest maps the kernel's zero page there, which counts as resident.
        let before: Vec<Vec<u8>> = [&first, &second].iter().map(|m| bytes(&m.regions[0]).to_vec()).collect();

        first.hibernate();
        second.hibernate();
        assert_eq!(resident_pages(&first.regions[0]), 0, "every page given back");
        assert_eq!(first.packed_bytes(), 0, "the first VU's pages are the references");
        assert_eq!(second.packed_bytes(), 4 + 8, "one word differs from the first VU's");
        first.wake();
        second.wake();
        assert_eq!(resident_pages(&first.regions[0]), 2, "the zero pages stay out");
        assert_eq!(bytes(&first.regions[0]), &before[0][..]);
        assert_eq!(bytes(&second.regions[0]), &before[1][..]);
    }

    #[test]
    fn a_memory_that_outgrows_its_reservation_moves_with_its_contents() {
        let creator = Memories::default();
        let mut memory =
            creator.new_memory(MemoryType::new(1, None), 1 << 16, None, Some(1 << 17), 1 << 16).expect("m");
        forget_made();
        // SAFETY: the first byte of the accessible part.
        unsafe { memory.as_ptr().write(42) };
        memory.grow_to(2 << 16).expect("within the reservation");
        assert_eq!(memory.byte_capacity(), 1 << 17);
        memory.grow_to(3 << 16).expect("past it");
        assert!(memory.byte_capacity() >= 3 << 16);
        assert_eq!(memory.byte_size(), 3 << 16);
        // SAFETY: the first and last bytes of the accessible part.
        unsafe {
            assert_eq!(memory.as_ptr().read(), 42);
            memory.as_ptr().add((3 << 16) - 1).write(1);
        }
    }
}
