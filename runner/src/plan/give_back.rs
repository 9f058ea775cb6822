//! Giving a waiting VU's pages back to the kernel (`MADV_DONTNEED`): its host stack's and its
//! hibernated memories', in one `process_madvise` call where the kernel takes it, else one
//! `madvise` per range. Writing a new memory's hot pages in (`MADV_POPULATE_WRITE`,
//! `memories`) goes the same way: one call for all its runs of pages, and so does writing in
//! the malloc heap's growth while VUs start (`populate_heap_growth`).
//!
//! Each `madvise` flushes the TLB for what it zapped, page by page for a short range (33
//! pages or fewer on x86). `process_madvise` gives every range back under one flush (Linux
//! 6.16 and later). Measured here with `tests/bench/give_back.c` (Linux 6.18, one core,
//! giving back 17 pages of one mapping and the top 5 of a 2 MiB one, as a hibernating VU
//! does): 3.7-4.3 against 7.1-7.7 µs per round in two runs, and writing the pages again
//! afterwards cost the same. With the runner on several cores,
//! each flush also interrupts the others, so there one call saves a shoot-down per VU.
#![allow(unsafe_code)]

use std::ops::Range;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// Most ranges advised in one call; more (a plan with many memories) go one by one.
const MOST_RANGES: usize = 8;

/// What to do with some pages, and whether this kernel refused it in `process_madvise`
/// (before Linux 6.13 it takes only a few kinds of advice, or has no such call).
struct Advice {
    advice: libc::c_int,
    refused: AtomicBool,
}

static DONTNEED: Advice = Advice { advice: libc::MADV_DONTNEED, refused: AtomicBool::new(false) };
static POPULATE_WRITE: Advice = Advice { advice: libc::MADV_POPULATE_WRITE, refused: AtomicBool::new(false) };

/// Gives `ranges` (page-aligned addresses) back to the kernel: afterwards they read as
/// zeroes, or as the file they map.
///
/// # Safety
///
/// Every range must lie in a private mapping of this process whose contents nobody needs
/// any more.
pub unsafe fn give_back(ranges: &[Range<usize>]) {
    // SAFETY: by this function's contract.
    unsafe { advise(ranges, &DONTNEED) };
}

/// Writes `ranges` (page-aligned addresses) in: their pages are made present and private,
/// reading as before, instead of faulting in one by one as they are first written. Where
/// the kernel cannot (before Linux 5.14), nothing happens and the pages fault in as usual.
///
/// # Safety
///
/// Every range must lie in an accessible private mapping of this process.
pub unsafe fn populate(ranges: &[Range<usize>]) {
    // SAFETY: by this function's contract; populating leaves the contents as they read.
    unsafe { advise(ranges, &POPULATE_WRITE) };
}

/// Applies `advice` to `ranges`: all in one `process_madvise` where the kernel takes it,
/// else one `madvise` per range (whose failure leaves the pages as they were).
///
/// # Safety
///
/// As for the advice's caller.
unsafe fn advise(ranges: &[Range<usize>], advice: &Advice) {
    // SAFETY: by this function's contract.
    if ranges.len() > 1 && unsafe { together(ranges, advice) } {
        return;
    }
    for range in ranges.iter().filter(|range| !range.is_empty()) {
        // SAFETY: by this function's contract.
        unsafe { libc::madvise(range.start as *mut libc::c_void, range.len(), advice.advice) };
    }
}

/// Applies `advice` to `ranges` with one `process_madvise`; `false` if that did not do all
/// of it. A kernel that refuses the advice there is remembered, and not asked again.
///
/// # Safety
///
/// As for [`advise`].
unsafe fn together(ranges: &[Range<usize>], advice: &Advice) -> bool {
    if ranges.len() > MOST_RANGES || advice.refused.load(Ordering::Relaxed) {
        return false;
    }
    let Some(pidfd) = own_pidfd() else { return false };
    let empty = libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 };
    let mut iovecs = [empty; MOST_RANGES];
    for (iovec, range) in iovecs.iter_mut().zip(ranges) {
        *iovec = libc::iovec { iov_base: range.start as *mut libc::c_void, iov_len: range.len() };
    }
    let total: usize = ranges.iter().map(Range::len).sum();
    // SAFETY: `iovecs` holds `ranges.len()` valid entries; the ranges are ours to give back
    // by the contract.
    let done = unsafe {
        libc::syscall(libc::SYS_process_madvise, pidfd.as_raw_fd(), iovecs.as_ptr(), ranges.len(), advice.advice, 0)
    };
    if done < 0 {
        advice.refused.store(true, Ordering::Relaxed);
    }
    usize::try_from(done).is_ok_and(|done| done == total)
}

/// A pidfd of this process, made once; `None` where the kernel has none (before Linux 5.3).
fn own_pidfd() -> Option<&'static OwnedFd> {
    static PIDFD: OnceLock<Option<OwnedFd>> = OnceLock::new();
    PIDFD
        .get_or_init(|| {
            // SAFETY: no pointer arguments; the descriptor it returns (close-on-exec) is owned
            // below.
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
            let fd = i32::try_from(fd).ok().filter(|&fd| fd >= 0)?;
            // SAFETY: a fresh descriptor nothing else owns.
            Some(unsafe { OwnedFd::from_raw_fd(fd) })
        })
        .as_ref()
}

/// Writes in the pages glibc's main heap grew by since the last call on this thread (`brk`),
/// in one call, instead of one page fault each as malloc first touches them. Each VU calls
/// it once instantiated (whatever started it): with one worker, VUs allocate from the main arena
/// (`load::workers`), which grows 128 KiB at a time, and each VU started keeps about 20 KiB
/// there, four fifths of it wasmtime's store, instances and module registry (malloc's own
/// count and jemalloc's heap profile, `tests/bench/results/2026-12-01-first-request.txt`),
/// new pages at start. Measured (`release`, 10,000 VUs at once on one core, `start_counts.sh` and
/// `start_ab.sh`, 5 alternating rounds): 7.7 against 11.9 page faults per VU, 0.61 against
/// 0.68 s without first requests (0.61 against 0.74 in another 5); with them 1.36 against
/// 1.52 and 1.41 against 1.37 s, within this machine's noise then; RSS per idle VU the same.
/// Where the break did not move, or moved down (glibc trimmed the heap), nothing is written.
#[allow(unsafe_code)]
pub fn populate_heap_growth() {
    thread_local! { static DONE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) } }
    let page = super::stack_arena::page_size();
    // SAFETY: `sbrk(0)` only reads the current break.
    let end = unsafe { libc::sbrk(0) } as usize / page * page;
    let done = DONE.with(|d| d.replace(end));
    if done != 0 && end > done {
        // SAFETY: the heap's pages between the old and the new break are mapped, private and
        // writable; populating leaves their contents as they read.
        unsafe { populate(std::slice::from_ref(&(done..end))) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_given_back_together_read_as_zeroes() {
        let page = super::super::stack_arena::page_size();
        let map = |len: usize| {
            // SAFETY: a fresh private anonymous mapping, unmapped below.
            let at = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            assert_ne!(at, libc::MAP_FAILED);
            at as usize
        };
        let (a, b) = (map(4 * page), map(4 * page));
        for at in [a, a + 3 * page, b, b + 2 * page, b + 3 * page] {
            // SAFETY: inside the mappings just made.
            unsafe { (at as *mut u8).write_volatile(7) };
        }
        // SAFETY: the two mappings are this test's; the last page of `b` is kept.
        unsafe { give_back(&[a..a + 4 * page, b..b + 3 * page]) };
        for at in [a, a + 3 * page, b, b + 2 * page] {
            // SAFETY: as above.
            assert_eq!(unsafe { (at as *const u8).read_volatile() }, 0);
        }
        // SAFETY: as above.
        assert_eq!(unsafe { ((b + 3 * page) as *const u8).read_volatile() }, 7, "a page left out is kept");
        // SAFETY: as above.
        unsafe { (b as *mut u8).write_volatile(9) };
        // SAFETY: as above.
        assert_eq!(unsafe { (b as *const u8).read_volatile() }, 9, "still usable");
        // SAFETY: the mappings made above; nothing refers to them any more.
        unsafe {
            libc::munmap(a as *mut libc::c_void, 4 * page);
            libc::munmap(b as *mut libc::c_void, 4 * page);
        }
    }
}
