//! VU linear memories made by the runner instead of wasmtime, so that a VU about to wait a
//! long time can pack its memory away and give the pages back (`hibernate`), and unpack
//! it when the wait ends.
//!
//! wasmtime maps a plan's memory image copy-on-write into each VU's memory, but does not say
//! where a memory lives, so nothing outside it can free an idle VU's pages. For plans whose
//! data segments are small (`layout`), the runner makes the memories itself
//! (`Config::with_host_memory`): a reservation of the size wasmtime asks for plus its guard,
//! inaccessible beyond the memory's current size. Where the plan's segments make one image
//! (`image`), the memory maps it copy-on-write from a shared memfd, as wasmtime's own
//! memories do, and wasmtime is given the plan with its segments emptied
//! (`image::without_active_data`), so that it does not write the same bytes over them. (If
//! it did, as it does when that rewrite fails, the pages would be the VU's own until the
//! runner found them equal to the image and dropped them: `release`, `hibernate`.)
//! The memfd is grown (as a hole, which reads as zeroes) to the memory's initial size, so that
//! the whole accessible part is one private mapping of it, made with the one `mmap` that maps
//! the image over the start of the reservation: mapping the image alone took an `mprotect`
//! more for the rest of the initial size, and one memory map more per VU. (Mapping the memfd
//! over the whole reservation would also save the reservation's own `mmap`, but the kernel
//! aligns a large anonymous mapping to 2 MiB and not a shared-memory one: measured, 2-2.5
//! KiB more page tables per idle VU at 10,000 VUs, the memories and stacks straddling
//! page-table pages.) A page the guest reads before writing it then comes from the memfd's
//! page cache (one zero page per place, shared by every VU) where an anonymous mapping would
//! map the kernel's zero page.
//! Once a first memory has hibernated, the pages it had written (`HotPages`) are written into
//! every memory made afterwards at once, instead of faulting in one by one.
//! Such a memory also keeps room for its VU's host stack right below it (`Region::room`,
//! [`take_room`]): the memfd starts with a hole the size of a stack, and the one `mmap`
//! maps it over the room and the memory, so the stack costs no `mmap`, `mprotect` or memory
//! map of its own, and its top pages share the memory's page-table page. Measured
//! (`tests/bench/start_ab.sh`, `release` builds, 10,000 VUs started at once on one core,
//! 5 alternating rounds): 1.30 against 1.47 s with first requests, 0.63 against 0.69 s
//! without; 16.4 against 19.4 system calls per VU (`start_counts.sh`), 2 memory maps per
//! VU against 4, the same RSS and page tables. Their reservations are taken in turn from
//! shared ones made for 64 at a time (`reserve_shared`): 15.4 system calls per VU, and
//! 0.59 against 0.61 s without first requests (5 rounds; with them, within the noise).
//! A memory is matched to its VU as a stack is (`stacks`): wasmtime makes a store's memories
//! synchronously while instantiating, inside one poll of the VU's instantiation call, on the
//! worker thread running the VU.
//!
//! Hibernating reads which pages the memory maps (`/proc/self/pagemap`: exact on a machine
//! without swap), drops those equal to the image or all zero beyond it, packs the
//! rest (`pack`), and gives them all back (`MADV_DONTNEED`, after which they read as the
//! image, or zeroes beyond it). Waking writes the packed pages back. With swap on, a page
//! the kernel swapped out reads as not resident, so the runner does not hibernate memories
//! then: the kernel pages idle memory out itself.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ops::Range;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use anyhow::Context as _;

use wasmtime::{LinearMemory, MemoryCreator, MemoryType};

use super::give_back::{give_back_queued, populate};
use super::pack::{Kept, References, is_zero};
use super::pagemap;
use super::stack_arena::page_size;
use crate::limits::HIBERNATE_MAX_PAGES;

/// Makes the linear memories of every store of the engine.
#[derive(Debug, Default)]
pub struct Memories {
    references: Arc<References>,
    image: Option<Arc<Image>>,
}

impl Memories {
    /// Memories whose first bytes are `image` (`image::PlanData::image`), if any. Where the
    /// kernel refuses the memfd, memories start empty instead and wasmtime's copy of the
    /// segments fills them: the same contents, without the sharing. With `stack_room`
    /// (a host stack's size), each memory that maps the image keeps room for its VU's host
    /// stack right below it (see [`take_room`]).
    pub fn new(image: Option<&[u8]>, stack_room: Option<usize>) -> Self {
        let stack = stack_room.map_or(0, pages_for);
        let image =
            image.filter(|bytes| !bytes.is_empty()).and_then(|bytes| Image::new(bytes, stack).ok()).map(Arc::new);
        Self { references: Arc::default(), image }
    }

    /// Whether the memories start as the image (the memfd was made).
    pub fn maps_image(&self) -> bool {
        self.image.is_some()
    }
}

/// A plan's memory image in a memfd, which every VU memory maps copy-on-write, and a
/// read-only view of it that hibernation compares pages with.
#[derive(Debug)]
struct Image {
    fd: OwnedFd,
    /// Bytes, in whole pages.
    len: usize,
    /// Bytes of hole before the image in the memfd (whole pages): the host stack that a
    /// memory keeps room for below it (`Region::room`) maps them, so that the stack and
    /// the memory are one mapping. 0 without rooms.
    stack: usize,
    /// The memfd's size: `stack + len`, grown (as a hole, which reads as zeroes and costs
    /// nothing) to cover the largest initial memory size mapped from it (`Image::cover`).
    file_len: Mutex<usize>,
    view: usize,
    /// The pages from the first to the last that hold data (not all zero): the ones
    /// wasmtime writes the segments over when it is given them.
    data: std::ops::Range<usize>,
    /// The pages the plan's VUs write in memories that map the image (only those: the plan
    /// then has one memory, and the pages worth writing in are the image's; for zero-filled
    /// pages a fault costs about what writing them in does, measured with host stacks).
    hot: HotPages,
}

impl Image {
    /// `bytes` in a memfd, after `stack` bytes (whole pages) of hole.
    fn new(bytes: &[u8], stack: usize) -> anyhow::Result<Self> {
        let len = pages_for(bytes.len());
        // SAFETY: the name is a NUL-terminated string; the new descriptor is owned below.
        let raw = unsafe { libc::memfd_create(c"wasmload-memory-image".as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            anyhow::bail!("cannot create a memory image: {}", std::io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let file = std::fs::File::from(fd.try_clone()?);
        file.set_len((stack + len) as u64).context("cannot size the memory image")?;
        // Only pages with data are written: the rest stay holes, which read as zeroes.
        let mut written: Option<(usize, usize)> = None;
        for (i, chunk) in bytes.chunks(page_size()).enumerate() {
            if !is_zero(chunk) {
                std::os::unix::fs::FileExt::write_all_at(&file, chunk, (stack + i * page_size()) as u64)
                    .context("cannot write the memory image")?;
                written = Some((written.map_or(i, |(first, _)| first), i));
            }
        }
        let data = written.map_or(0..0, |(first, last)| first..last + 1);
        let offset = libc::off_t::try_from(stack).context("cannot map the memory image")?;
        // SAFETY: a shared read-only view of the image's part of the memfd, unmapped on drop.
        let view =
            unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_SHARED, fd.as_raw_fd(), offset) };
        if view == libc::MAP_FAILED {
            anyhow::bail!("cannot map the memory image: {}", std::io::Error::last_os_error());
        }
        let file_len = Mutex::new(stack + len);
        Ok(Self { fd, len, stack, file_len, view: view as usize, data, hot: HotPages::default() })
    }

    /// Grows the memfd so that a memory of `len` bytes can map it whole after the stack's
    /// hole; `false` if the kernel refused. It never shrinks: memories map it.
    fn cover(&self, len: usize) -> bool {
        let len = self.stack + len;
        let mut file_len = self.file_len.lock().unwrap_or_else(PoisonError::into_inner);
        if *file_len >= len {
            return true;
        }
        let Ok(size) = libc::off_t::try_from(len) else { return false };
        // SAFETY: the memfd this image owns; growing it only adds a hole after the data.
        if unsafe { libc::ftruncate(self.fd.as_raw_fd(), size) } != 0 {
            return false;
        }
        *file_len = len;
        true
    }

    /// Page `i` of the image, if the image reaches it.
    fn page(&self, i: usize) -> Option<&[u8]> {
        let page = page_size();
        // SAFETY: a whole page inside the read-only view, which nothing writes and which
        // lives as long as `self`.
        (i * page < self.len).then(|| unsafe { std::slice::from_raw_parts((self.view + i * page) as *const u8, page) })
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        // SAFETY: the view made in `new`; nothing refers to it any more.
        unsafe { libc::munmap(self.view as *mut libc::c_void, self.len) };
    }
}

thread_local! {
    /// The memories made on this thread since the last [`forget_made`].
    static MADE: RefCell<Vec<Arc<Region>>> = const { RefCell::new(Vec::new()) };
}

/// Forgets memories made on this thread outside a VU's call (by `describe`).
pub fn forget_made() {
    MADE.with(|made| made.borrow_mut().clear());
}

/// Takes the room below the first memory made on this thread since [`forget_made`] for a
/// host stack of `size` bytes, if it is large enough: the room's range (a guard page, then
/// the stack, ending where the memory starts) and the memory that owns it, which stays
/// mapped as long as the stack holds it. A room is taken at most once. wasmtime makes a
/// store's stack as it instantiates (to run the start functions), in the same poll of the
/// VU's call as its memories, so the memory is the VU's own (checked with `strace`: of 300
/// VUs, none mapped a stack of its own).
pub fn take_room(size: usize) -> Option<(Range<usize>, Arc<Region>)> {
    let region = MADE.with(|made| made.borrow().first().cloned())?;
    let fits = region.room.len() >= pages_for(size) + page_size();
    (fits && !region.room_taken.swap(true, Ordering::Relaxed)).then(|| (region.room.clone(), region))
}

/// Moves the memories made on this thread since [`forget_made`] into `into`, in the order
/// they were made.
pub fn take_made(into: &mut Vec<Arc<Region>>) {
    MADE.with(|made| into.append(&mut made.borrow_mut()));
}

// SAFETY: every memory is a fresh private mapping of the reservation and guard asked for,
// accessible up to its size, reading as zeroes but where it maps the image (whose bytes
// wasmtime writes again where the plan's segments could not be emptied); it moves only when
// it grows past the reservation, which wasmtime allows only when the memory type says it may
// move.
unsafe impl MemoryCreator for Memories {
    fn new_memory(
        &self,
        _ty: MemoryType,
        minimum: usize,
        _maximum: Option<usize>,
        reserved: Option<usize>,
        guard: usize,
    ) -> Result<Box<dyn LinearMemory>, String> {
        let image = self.image.clone().filter(|image| image.len <= minimum);
        let region = Arc::new(Region::new(minimum, reserved, guard, self.references.clone(), image)?);
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
    /// Room for the VU's host stack right below the memory, where the memory's image maps
    /// (`Image::stack`): an inaccessible guard page, then the stack, which ends at the
    /// memory's first byte. Its `mmap` is the memory's, which saves the stack's own `mmap`
    /// and `mprotect`, its page tables and two memory maps. It stays in place if the memory
    /// moves. Empty where the memory maps no image.
    room: Range<usize>,
    room_taken: AtomicBool,
    /// Where the reservation made in `new` starts: `room.start`, or before it the
    /// inaccessible bytes that place the memory (see `Region::new`).
    reserved_at: usize,
    /// Inaccessible bytes reserved after the guard (see `Region::new`).
    tail: AtomicUsize,
    /// Bytes from `base` that map the image's memfd (as one mapping); anonymous after.
    file: AtomicUsize,
    references: Arc<References>,
    /// The image mapped at the start of the memory, with the pages the plan's VUs write,
    /// which are written in as the memory is made or grows.
    image: Option<Arc<Image>>,
}

/// The pages of a plan's memories that its VUs write (as runs of first page and count),
/// learned from the first memory to hibernate: the pages it had written that are not all
/// zero. Every memory made afterwards gets them at once (`MADV_POPULATE_WRITE`, all runs in
/// one call where the kernel allows: `give_back::populate`), instead of taking a page fault
/// on each as its VU first touches it, two where the VU reads an image page before writing
/// it (the read maps the image's page, the write copies it). Zero pages are left out, so a page the VU only reads costs nothing. Measured
/// (`release` builds, 10,000 VUs started at once on one core, 3 alternating runs): 0.64-0.69
/// against 0.73-0.77 s without first requests, 1.31-1.35 against 1.49-1.51 s with them;
/// 13.7 against 18.8 page faults and 106 against 115 µs of CPU per VU (`perf stat`).
#[derive(Debug, Default)]
struct HotPages(OnceLock<Vec<(usize, usize)>>);

/// The top pages of a VU's host stack that its first call writes, written in with the hot
/// pages where the stack is in the room below the memory (`Region::room`): counted with
/// `perf record -e page-faults -d` for a Rust plan, two, each of which faulted in once.
const STACK_HOT_PAGES: usize = 2;

/// The most pages [`HotPages`] writes into a new memory (256 KiB): where the first VU wrote
/// more, its VUs may differ too much for its pages to be worth giving every VU.
const HOT_PAGES_MAX: usize = 64;

impl HotPages {
    /// Learns `written` (ascending page indices), unless already learned; nothing if they
    /// are more than `HOT_PAGES_MAX`.
    fn learn(&self, written: &[usize]) {
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for &i in written.iter().take_while(|_| written.len() <= HOT_PAGES_MAX) {
            match runs.last_mut() {
                Some((first, count)) if *first + *count == i => *count += 1,
                _ => runs.push((i, 1)),
            }
        }
        let _ = self.0.set(runs);
    }

    fn learned(&self) -> bool {
        self.0.get().is_some()
    }

    /// Writes in the learned pages among `pages` of the memory at `base`, which must be
    /// accessible and not yet used: those of a memory just made, or just added by its growth
    /// (where the guest's heap grows). A kernel without `MADV_POPULATE_WRITE` (before Linux
    /// 5.14) refuses it, and the pages fault in as before.
    fn populate(&self, base: usize, pages: std::ops::Range<usize>, stack_top: Option<Range<usize>>) {
        let page = page_size();
        let hot = (self.0.get().into_iter().flatten())
            .map(|&(first, count)| first.max(pages.start)..(first + count).min(pages.end))
            .filter(|run| !run.is_empty())
            .map(|run| base + run.start * page..base + run.end * page);
        let ranges: Vec<Range<usize>> = stack_top.into_iter().chain(hot).collect();
        // SAFETY: accessible pages nothing uses yet (by the caller's contract); writing them
        // in leaves their contents as they read (the image, or zeroes).
        unsafe { populate(&ranges) };
    }
}

/// Where a memory with a room for its stack starts past a 2 MiB boundary (`Region::new`):
/// the stack's top 64 KiB and the memory's first 1.94 MiB then share a page-table page.
const ROOM_TOP: usize = 64 << 10;

/// Memory reservations made with one `mmap` (`reserve_shared`): 64 of 4 GiB take 0.2 % of
/// a process's address space.
const RESERVATIONS_AT_ONCE: usize = 64;

/// The span one page-table page maps on x86-64 and arm64 (4 KiB pages): the size of a huge
/// page, to which the kernel aligns anonymous mappings whose length is a multiple of it.
const HUGE_PAGE: usize = 2 << 20;

/// `n` rounded up to whole pages.
fn pages_for(n: usize) -> usize {
    n.div_ceil(page_size()) * page_size()
}

/// A reservation of `len` bytes, inaccessible, at an address of the kernel's choice (which
/// aligns a large anonymous mapping to 2 MiB).
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

/// A reservation of `len` bytes (a multiple of 2 MiB), inaccessible, for a memory with room
/// for its stack: the next `len` bytes of one shared reservation made for
/// `RESERVATIONS_AT_ONCE` of them, which saves each VU an `mmap` of its own (and the kernel
/// its search for a place). Each is unmapped on its own when its memory goes, as one made
/// alone would be; the rest of the shared one stays reserved for the next memories.
fn reserve_shared(len: usize) -> Result<usize, String> {
    static FREE: Mutex<Range<usize>> = Mutex::new(0..0);
    let mut free = FREE.lock().unwrap_or_else(PoisonError::into_inner);
    if free.len() < len {
        // Near the end of the address space, one at a time.
        let (at, count) = match reserve(len * RESERVATIONS_AT_ONCE) {
            Ok(at) => (at, RESERVATIONS_AT_ONCE),
            Err(_) => (reserve(len)?, 1),
        };
        if !free.is_empty() {
            // SAFETY: the unused end of the shared reservation made before; nothing uses it.
            unsafe { libc::munmap(free.start as *mut libc::c_void, free.len()) };
        }
        *free = at..at + len * count;
    }
    let at = free.start;
    free.start += len;
    Ok(at)
}

/// Moves the `len` bytes of one mapping at `from` over `to`, inside reservations this
/// module owns; `false` if the kernel refused.
fn move_pages(from: usize, to: usize, len: usize) -> bool {
    // SAFETY: both ranges lie in reservations of a memory that nothing runs on during a
    // grow; the pages keep their contents and protection.
    let moved = unsafe {
        libc::mremap(
            from as *mut libc::c_void,
            len,
            len,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            to as *mut libc::c_void,
        )
    };
    moved != libc::MAP_FAILED
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
    fn new(
        minimum: usize,
        reserved: Option<usize>,
        guard: usize,
        references: Arc<References>,
        image: Option<Arc<Image>>,
    ) -> Result<Self, String> {
        let capacity = pages_for(reserved.unwrap_or(minimum).max(minimum));
        // The stack's room, where the image's memfd has the stack's hole before the image.
        let stack = image.as_ref().map_or(0, |image| image.stack);
        let room_len = if stack > 0 { page_size() + stack } else { 0 };
        // The stack's top pages and the memory's first ones (where a Rust plan's stack and
        // data are) share one page-table page where the memory starts `ROOM_TOP` past a
        // 2 MiB boundary. The kernel aligns an anonymous mapping to 2 MiB if its length is
        // a multiple of 2 MiB, so the reservation is one, with the bytes that place the
        // memory there before the room and the rest after the guard.
        let lead = if room_len > 0 { (ROOM_TOP + HUGE_PAGE - room_len % HUGE_PAGE) % HUGE_PAGE } else { 0 };
        let wanted = lead + room_len + capacity + guard;
        let len = if room_len > 0 { wanted.next_multiple_of(HUGE_PAGE) } else { wanted };
        let reserved = if room_len > 0 { reserve_shared(len)? } else { reserve(len)? };
        let (start, base) = (reserved + lead, reserved + lead + room_len);
        // The memfd grown (as a hole) to the memory's initial size, so that one mapping makes
        // the whole accessible part; where it cannot grow, the image alone.
        let mapped = image
            .as_ref()
            .map_or(0, |image| if image.cover(pages_for(minimum)) { pages_for(minimum) } else { image.len });
        let region = Self {
            base: AtomicUsize::new(base),
            size: AtomicUsize::new(minimum),
            capacity: AtomicUsize::new(capacity),
            guard,
            room: start..base,
            room_taken: AtomicBool::new(false),
            reserved_at: reserved,
            tail: AtomicUsize::new(len - wanted),
            file: AtomicUsize::new(mapped),
            references,
            image,
        };
        // On failure `region` is dropped, which unmaps the reservation.
        if let Some(image) = &region.image {
            // SAFETY: replaces the stack's room but its guard page, and the start of the
            // reservation just made (`mapped` is at most `minimum`, so inside it), with a
            // private copy-on-write mapping of the memfd: the stack's hole, then the image.
            let at = unsafe {
                libc::mmap(
                    (base - stack) as *mut libc::c_void,
                    stack + mapped,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_FIXED,
                    image.fd.as_raw_fd(),
                    0,
                )
            };
            if at == libc::MAP_FAILED {
                return Err(format!("cannot map the memory image: {}", std::io::Error::last_os_error()));
            }
        }
        open(base + mapped, base + pages_for(minimum))?;
        let stack_top = (stack > 0).then(|| base - STACK_HOT_PAGES * page_size()..base);
        region.populate(base, 0..pages_for(minimum) / page_size(), stack_top);
        Ok(region)
    }

    /// Grows the accessible part to `new_size`, moving the memory to a reservation twice
    /// as large when it does not fit.
    fn grow_to(&self, new_size: usize) -> Result<(), String> {
        let (base, size, capacity) = (self.base(), self.size.load(Ordering::Relaxed), self.capacity());
        let added = pages_for(size) / page_size()..pages_for(new_size) / page_size();
        if new_size <= capacity {
            open(base + pages_for(size), base + pages_for(new_size))?;
            self.size.store(new_size, Ordering::Relaxed);
            self.populate(base, added, None);
            return Ok(());
        }
        let new_capacity = pages_for(new_size).max(capacity.saturating_mul(2));
        let new_base = reserve(new_capacity + self.guard)?;
        let used = pages_for(size);
        // The memfd's mapping and the anonymous pages after it are moved one by one: one
        // `mremap` moves one mapping. The new reservation is anonymous after them.
        let file = self.file.load(Ordering::Relaxed).min(used);
        let parts = [(0, file), (file, used)];
        for (done, &(from, to)) in parts.iter().enumerate() {
            if to > from && !move_pages(base + from, new_base + from, to - from) {
                let e = std::io::Error::last_os_error();
                // Put back what moved, then drop the new reservation.
                for &(from, to) in parts[..done].iter().filter(|(from, to)| to > from) {
                    move_pages(new_base + from, base + from, to - from);
                }
                // SAFETY: the new reservation was made above and nothing refers to it now.
                unsafe { libc::munmap(new_base as *mut libc::c_void, new_capacity + self.guard) };
                return Err(format!("cannot move a growing VU memory: {e}"));
            }
        }
        // SAFETY: the old reservation, whose pages were moved out; nothing refers to it now.
        unsafe {
            libc::munmap(base as *mut libc::c_void, capacity + self.guard + self.tail.swap(0, Ordering::Relaxed))
        };
        self.base.store(new_base, Ordering::Relaxed);
        self.capacity.store(new_capacity, Ordering::Relaxed);
        self.file.store(file, Ordering::Relaxed);
        open(new_base + used, new_base + pages_for(new_size))?;
        self.size.store(new_size, Ordering::Relaxed);
        self.populate(new_base, added, None);
        Ok(())
    }

    fn base(&self) -> usize {
        self.base.load(Ordering::Relaxed)
    }

    /// Writes in the plan's hot pages among `pages` (see [`HotPages::populate`]), and
    /// `stack_top`.
    fn populate(&self, base: usize, pages: std::ops::Range<usize>, stack_top: Option<Range<usize>>) {
        if let Some(image) = &self.image {
            image.hot.populate(base, pages, stack_top);
        }
    }

    fn capacity(&self) -> usize {
        self.capacity.load(Ordering::Relaxed)
    }

    /// The accessible pages among `pages` this process has mapped, as (index, whether the
    /// page is the VU's own rather than the image's); `None` if the kernel cannot say
    /// (`pagemap`).
    fn present(&self, pages: std::ops::Range<usize>) -> Option<Vec<(usize, bool)>> {
        let accessible = pages_for(self.size.load(Ordering::Relaxed)) / page_size();
        pagemap::present(self.base(), pages.start..pages.end.min(accessible))
    }

    /// Page `i` of the memory.
    ///
    /// # Safety
    ///
    /// Page `i` must be accessible, and nothing may write the memory while the slice lives.
    unsafe fn page(&self, i: usize) -> &[u8] {
        // SAFETY: by the caller's contract.
        unsafe { std::slice::from_raw_parts((self.base() + i * page_size()) as *const u8, page_size()) }
    }

    /// Adds `pages` (ascending indices) to `ranges`, each run of consecutive pages as one
    /// range of addresses.
    fn add_runs(&self, pages: &[usize], ranges: &mut Vec<Range<usize>>) {
        let (page, base) = (page_size(), self.base());
        let mut rest = pages;
        while let [first, ..] = rest {
            let run = rest.windows(2).take_while(|w| w[1] == w[0] + 1).count() + 1;
            ranges.push(base + first * page..base + (first + run) * page);
            rest = &rest[run..];
        }
    }

    /// The image's page `i`, if the image reaches it: what page `i` reads as once given back
    /// (zeroes where it does not).
    fn image_page(&self, i: usize) -> Option<&[u8]> {
        self.image.as_ref().and_then(|image| image.page(i))
    }

    /// Adds to `ranges` the image's pages that this VU has made its own (wasmtime wrote the
    /// data segments over them, where the plan's could not be emptied, or the guest wrote the
    /// same bytes back) but that still equal the image: given back, they are shared again.
    ///
    /// # Safety
    ///
    /// No call into the memory's store may be running.
    unsafe fn share_image(&self, ranges: &mut Vec<Range<usize>>) {
        let Some(image) = &self.image else { return };
        let Some(present) = self.present(image.data.clone()) else { return };
        let equal: Vec<usize> = present
            .into_iter()
            // SAFETY: present accessible pages, which by the contract nothing writes meanwhile.
            .filter(|&(i, own)| own && self.image_page(i) == Some(unsafe { self.page(i) }))
            .map(|(i, _)| i)
            .collect();
        self.add_runs(&equal, ranges);
    }

    /// Packs the memory's own pages and adds the range of its present pages to `ranges`,
    /// for the caller to give back to the kernel; `place` is the memory's place among its
    /// instance's memories. `None` (and no range) when the kernel cannot say which pages are
    /// present, or more than `HIBERNATE_MAX_PAGES` are the VU's own.
    ///
    /// # Safety
    ///
    /// No call into the memory's store may be running, and none may start before `wake`.
    unsafe fn hibernate(&self, place: usize, ranges: &mut Vec<Range<usize>>) -> Option<Packed> {
        let present = self.present(0..usize::MAX)?;
        let own = present.iter().filter(|&&(_, own)| own).count();
        if own > HIBERNATE_MAX_PAGES {
            return None;
        }
        let learn = self.image.as_ref().map(|image| &image.hot).filter(|hot| !hot.learned());
        let (mut pages, mut written) = (Vec::with_capacity(own), Vec::new());
        for &(i, _) in present.iter().filter(|&&(_, own)| own) {
            // SAFETY: a present accessible page, which by the contract nothing writes
            // meanwhile.
            let bytes = unsafe { self.page(i) };
            if learn.is_some() && !is_zero(bytes) {
                written.push(i);
            }
            // Pages that read the same once given back are not kept.
            let image = self.image_page(i);
            let reads_back = image.map_or_else(|| is_zero(bytes), |image| image == bytes);
            if !reads_back {
                pages.push((i, self.references.pack((place, i), bytes, image)));
            }
        }
        if let Some(hot) = learn {
            hot.learn(&written);
        }
        // Every present page, from the first to the last, reads the same once given back.
        if let (Some(&(first, _)), Some(&(last, _))) = (present.first(), present.last()) {
            let (page, base) = (page_size(), self.base());
            ranges.push(base + first * page..base + (last + 1) * page);
        }
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
        // A range queued to be given back may lie in this memory, whose address space a new
        // mapping may take once it is unmapped.
        give_back_queued();
        let (mut start, len) = (self.base(), self.capacity() + self.guard + self.tail.load(Ordering::Relaxed));
        if self.room.end == start {
            start = self.reserved_at;
        } else if self.room.end > self.reserved_at {
            // SAFETY: the start of the reservation made in `new`, with the room, left in
            // place when the memory moved; the stack in it, if any, held this region and is
            // gone.
            unsafe { libc::munmap(self.reserved_at as *mut libc::c_void, self.room.end - self.reserved_at) };
        }
        // SAFETY: the reservation made in `new` (or `grow_to`), with what is before the
        // memory if it did not move; this is its last owner.
        unsafe { libc::munmap(start as *mut libc::c_void, len + (self.base() - start)) };
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
/// the VU's own and would not read the same once given back.
#[derive(Debug)]
pub struct Packed(Vec<(usize, Kept)>);

impl Packed {
    #[cfg(test)]
    /// Bytes the packed pages keep of their own (the plan's shared references left out).
    pub fn own_bytes(&self) -> usize {
        self.0.iter().map(|(_, kept)| kept.own_bytes()).sum()
    }
}

/// Whether the machine swaps: then a page swapped out would read as not present.
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
    /// Whether the image pages written over with the same bytes have been shared again.
    shared: bool,
}

impl VuMemories {
    /// Keeps the memories made on this thread since [`forget_made`].
    pub fn keep_made(&mut self) {
        take_made(&mut self.regions);
    }

    /// Once in the VU's life, before its first wait of a second or more: adds to `ranges`
    /// the pages of the memory image that it made its own but that still equal the image
    /// (hibernating does it too), for the caller to give back (`give_back::give_back`). Call
    /// it only between calls into the VU's store.
    pub fn share_image(&mut self, ranges: &mut Vec<Range<usize>>) {
        if self.shared || swap_on() {
            return;
        }
        self.shared = true;
        for region in &self.regions {
            // SAFETY: by this method's contract no call into the store runs.
            unsafe { region.share_image(ranges) };
        }
    }

    /// Packs the memories away, unless swap is on, and adds the ranges of their pages to
    /// `ranges`: what they hold is packed or reads the same once given back
    /// (`give_back::give_back`). Call it only between calls into the VU's store, and
    /// [`VuMemories::wake`] before the next one.
    pub fn hibernate(&mut self, ranges: &mut Vec<Range<usize>>) {
        if !self.packed.is_empty() || swap_on() {
            return;
        }
        self.shared = true;
        // SAFETY: by this method's contract no call into the store runs until `wake`.
        self.packed = self.regions.iter().enumerate().map(|(place, r)| unsafe { r.hibernate(place, ranges) }).collect();
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

    /// Gives back what `add` adds, as `VuMemory::release` does.
    fn giving_back(vu: &mut VuMemories, add: fn(&mut VuMemories, &mut Vec<Range<usize>>)) {
        let mut ranges = Vec::new();
        add(vu, &mut ranges);
        // SAFETY: no instance uses these memories.
        unsafe { super::super::give_back::give_back(&ranges) };
    }

    fn hibernate(vu: &mut VuMemories) {
        giving_back(vu, VuMemories::hibernate);
    }

    fn made() -> VuMemories {
        let mut memories = VuMemories::default();
        memories.keep_made();
        memories
    }

    #[allow(clippy::mut_from_ref)]
    fn bytes(region: &Region) -> &mut [u8] {
        // SAFETY: the accessible part of a region no instance uses.
        unsafe { std::slice::from_raw_parts_mut(region.base() as *mut u8, region.size.load(Ordering::Relaxed)) }
    }

    /// Whether memories hibernate on this machine; says why the test is skipped if not.
    fn memories_hibernate() -> bool {
        if swap_on() {
            eprintln!("skipped: this machine swaps, so memories do not hibernate");
        }
        !swap_on()
    }

    /// The entries of `/proc/self/maps` inside the region's reservation and guard.
    fn maps_within(region: &Region) -> usize {
        let (start, end) = (region.base(), region.base() + region.capacity() + region.guard);
        let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
        maps.lines()
            .filter_map(|line| line.split_once(' ')?.0.split_once('-'))
            .filter_map(|(from, to)| Some((usize::from_str_radix(from, 16).ok()?, usize::from_str_radix(to, 16).ok()?)))
            .filter(|&(from, to)| from < end && to > start)
            .count()
    }

    fn resident_pages(region: &Region) -> usize {
        region.present(0..usize::MAX).expect("pagemap").len()
    }

    #[test]
    fn a_hibernated_memory_gives_its_pages_back_and_wakes_with_every_byte() {
        if !memories_hibernate() {
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

        hibernate(&mut first);
        hibernate(&mut second);
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
    fn image_pages_are_shared_again_and_hibernation_keeps_only_what_differs_from_them() {
        if !memories_hibernate() {
            return;
        }
        let page = page_size();
        let mut image = vec![0u8; 3 * page + 100];
        image[..page].fill(1);
        image[2 * page..].fill(2);
        let creator = Memories::new(Some(&image), None);
        assert!(creator.image.is_some(), "the image's memfd");
        forget_made();
        let _m = creator.new_memory(MemoryType::new(1, None), 1 << 16, None, Some(1 << 20), 1 << 16).expect("m");
        let mut vu = made();
        let region = vu.regions[0].clone();
        assert_eq!(maps_within(&region), 2, "one mapping of the memfd: its accessible part, then the rest");
        let mem = bytes(&region);
        assert_eq!(&mem[..image.len()], &image[..], "the memory starts as the image");
        assert_eq!(resident_pages(&region), 4, "reading mapped the image's pages");
        assert!(
            region.present(0..usize::MAX).expect("pagemap").iter().all(|&(_, own)| !own),
            "shared, not yet written"
        );
        // As wasmtime does: the segments written over the image, then the guest's own writes.
        mem[..image.len()].copy_from_slice(&image);
        mem[2 * page + 8] = 7;
        mem[6 * page] = 5;
        let before = mem.to_vec();
        assert_eq!(resident_pages(&region), 16);
        giving_back(&mut vu, VuMemories::share_image);
        assert_eq!(resident_pages(&region), 13, "the image pages still equal to it were given back");
        assert_eq!(bytes(&region), &before[..], "and read the same");
        hibernate(&mut vu);
        assert_eq!(resident_pages(&region), 0);
        // Page 6, the first packed there, is the plan's reference: it costs this VU nothing.
        assert_eq!(vu.packed_bytes(), 4 + 8, "the one word of the image's third page that differs");
        vu.wake();
        assert_eq!(bytes(&region), &before[..]);

        // That hibernation taught the plan which pages its VUs write (2 and 6, not the zero
        // pages read): a memory made now has them written in, and reads as the image.
        forget_made();
        let _n = creator.new_memory(MemoryType::new(1, None), 1 << 16, None, Some(1 << 20), 1 << 16).expect("n");
        let next = made().regions[0].clone();
        assert_eq!(next.present(0..usize::MAX).expect("pagemap"), [(2, true), (6, true)]);
        assert_eq!(&bytes(&next)[..image.len()], &image[..]);
        assert!(bytes(&next)[image.len()..].iter().all(|&b| b == 0));
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

    #[test]
    fn pages_the_plan_writes_are_written_in_as_a_memory_grows_to_them() {
        if !memories_hibernate() {
            return;
        }
        // Only memories that map an image learn and get hot pages.
        let creator = Memories::new(Some(&[1; 100]), None);
        let page = page_size();
        let hot = (1 << 16) / page + 3;
        forget_made();
        let mut first = creator.new_memory(MemoryType::new(1, None), 1 << 16, None, Some(1 << 20), 1 << 16).expect("a");
        first.grow_to(2 << 16).expect("grows");
        let mut vu = made();
        bytes(&vu.regions[0])[hot * page] = 1;
        hibernate(&mut vu);
        // The second memory starts short of that page, then grows in place and past its
        // reservation (moving): the page is written in as it becomes part of the memory.
        forget_made();
        let mut second =
            creator.new_memory(MemoryType::new(1, None), 1 << 16, None, Some(2 << 16), 1 << 16).expect("b");
        let region = made().regions[0].clone();
        assert_eq!(resident_pages(&region), 0);
        second.grow_to(2 << 16).expect("in place");
        assert_eq!(region.present(0..usize::MAX).expect("pagemap"), [(hot, true)]);
        second.grow_to(3 << 16).expect("moving");
        assert_eq!(region.present(0..usize::MAX).expect("pagemap"), [(hot, true)], "moved with it");
        assert!(bytes(&region)[100..].iter().all(|&b| b == 0), "and still zero");
        let plain = Memories::default();
        forget_made();
        let _m = plain.new_memory(MemoryType::new(1, None), 1 << 16, None, Some(1 << 20), 1 << 16).expect("m");
        let mut vu = made();
        bytes(&vu.regions[0])[page] = 1;
        hibernate(&mut vu);
        forget_made();
        let _n = plain.new_memory(MemoryType::new(1, None), 1 << 16, None, Some(1 << 20), 1 << 16).expect("n");
        assert_eq!(resident_pages(&made().regions[0]), 0, "a memory without an image gets none");
    }
}
