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
//!
//! VUs going idle queue what they give back (`give_back_later`), and the ranges of
//! `VUS_AT_ONCE` of them go back in one call: a call's own cost (entering the kernel, finding
//! the process, the TLB flush) is then paid once for them all. Measured with
//! `tests/bench/give_back_batch.c` (10,000 VU-like memories, 6 hot pages each, given back as
//! the runner does): 2.3 against 4.1-4.3 µs per VU (2.3 again with 64 at once, 2.9 with 4).
//! With the runner (`release`, 10,000 VUs at once on one core, 6 alternating rounds of
//! `start_ab.sh`): 1.06 against 2.00 `process_madvise` calls per VU; started in 0.535 against
//! 0.58 s without first requests, 1.125 against 1.165 s with them (medians).
//!
//! Queued pages stay in use until their batch goes: the worker gives back what is queued
//! before it sleeps (`give_back_queued`, its runtime's park hook), a VU about to run again
//! first has its own queued pages given back ([`Queued::given_back`]), and so does anything
//! about to unmap or reuse the memory the ranges lie in (the memories' and stacks' `Drop`),
//! so that no queued range can ever fall on pages somebody uses.
#![allow(unsafe_code)]

use std::ops::Range;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

/// Most ranges advised in one call (the kernel takes up to 1,024); more go one by one.
const MOST_RANGES: usize = 64;

/// Ranges a call takes without allocating (a VU's own: its stack and a few runs of pages).
const FEW_RANGES: usize = 8;

/// Idle VUs whose queued ranges go back in one call (`give_back_later`).
const VUS_AT_ONCE: usize = 16;

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

/// Ranges queued to be given back together, and how many batches have gone so far.
struct Batch {
    ranges: Vec<Range<usize>>,
    /// VUs whose ranges are queued.
    vus: usize,
    /// Batches given back so far: ranges queued while it was `n` are back once it is past.
    sent: u64,
}

static BATCH: Mutex<Batch> = Mutex::new(Batch { ranges: Vec::new(), vus: 0, sent: 0 });

/// Whether any range is queued, read without the lock. Stored after the batch went (release)
/// and read before unmapping (acquire), so that a `false` seen means its pages are back.
static ANY_QUEUED: AtomicBool = AtomicBool::new(false);

/// A VU's ranges queued by [`give_back_later`], not yet known to be back. A later one
/// covers the earlier ones too: batches go in order, so every batch before its own has gone.
#[derive(Debug)]
#[must_use = "the ranges must be given back before the pages are used again"]
pub struct Queued(u64);

impl Queued {
    /// Gives back the VU's queued ranges now if their batch has not gone yet: call it before
    /// the pages are used again.
    pub fn given_back(self) {
        let mut batch = BATCH.lock().unwrap_or_else(PoisonError::into_inner);
        if batch.sent == self.0 {
            send(&mut batch);
        }
    }
}

/// Queues `ranges` (one VU's, page-aligned) to be given back with other VUs' (see the module
/// doc); the batch goes at once when it holds `VUS_AT_ONCE` VUs' ranges. `None` when there
/// was nothing to queue.
///
/// # Safety
///
/// As for [`give_back`], until the returned [`Queued`] is given back: nothing may use the
/// pages before, and their mapping must stay in place (whoever unmaps or reuses it first calls
/// [`give_back_queued`]).
pub unsafe fn give_back_later(ranges: &[Range<usize>]) -> Option<Queued> {
    if ranges.is_empty() {
        return None;
    }
    let mut batch = BATCH.lock().unwrap_or_else(PoisonError::into_inner);
    batch.ranges.extend_from_slice(ranges);
    batch.vus += 1;
    let queued = Queued(batch.sent);
    if batch.vus >= VUS_AT_ONCE {
        send(&mut batch);
    } else {
        ANY_QUEUED.store(true, Ordering::Relaxed);
    }
    Some(queued)
}

/// Gives back every queued range now: before the worker sleeps, and before memory that a
/// queued range may lie in is unmapped or reused.
pub fn give_back_queued() {
    if ANY_QUEUED.load(Ordering::Acquire) {
        send(&mut BATCH.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

fn send(batch: &mut Batch) {
    // SAFETY: every range was queued under `give_back_later`'s contract, which holds until
    // its batch goes, here.
    unsafe { give_back(&batch.ranges) };
    batch.ranges.clear();
    batch.vus = 0;
    batch.sent += 1;
    ANY_QUEUED.store(false, Ordering::Release);
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

/// Applies `advice` to `ranges`: `MOST_RANGES` at a time in one `process_madvise` where
/// the kernel takes it, else one `madvise` per range (whose failure leaves the pages as they
/// were).
///
/// # Safety
///
/// As for the advice's caller.
unsafe fn advise(ranges: &[Range<usize>], advice: &Advice) {
    for chunk in ranges.chunks(MOST_RANGES) {
        // SAFETY: by this function's contract.
        if chunk.len() > 1 && unsafe { together(chunk, advice) } {
            continue;
        }
        for range in chunk.iter().filter(|range| !range.is_empty()) {
            // SAFETY: by this function's contract.
            unsafe { libc::madvise(range.start as *mut libc::c_void, range.len(), advice.advice) };
        }
    }
}

/// Applies `advice` to `ranges` with one `process_madvise`; `false` if that did not do all
/// of it. A kernel that refuses the advice there is remembered, and not asked again.
///
/// # Safety
///
/// As for [`advise`].
unsafe fn together(ranges: &[Range<usize>], advice: &Advice) -> bool {
    if advice.refused.load(Ordering::Relaxed) {
        return false;
    }
    let Some(pidfd) = own_pidfd() else { return false };
    // A VU's own few ranges on the stack; a batch of them (`give_back_later`) on the heap.
    let empty = libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 };
    let (mut few, mut many) = ([empty; FEW_RANGES], Vec::new());
    let iovecs: &mut [libc::iovec] = if ranges.len() <= FEW_RANGES {
        &mut few[..ranges.len()]
    } else {
        many.resize(ranges.len(), empty);
        &mut many
    };
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

/// Whether VUs allocate from glibc's main heap (`brk`): set with one worker, which shares
/// the main arena (`load::workers`). With several, each worker allocates from an arena of its
/// own, the main heap grows only with the other threads' allocations, and in steps of
/// `load::workers`' whole-heap top pad: writing those in would only add resident memory.
static VUS_ON_MAIN_HEAP: AtomicBool = AtomicBool::new(false);

/// Says that VUs allocate from glibc's main heap, whose growth [`populate_heap_growth`] then
/// writes in.
pub fn vus_allocate_from_main_heap() {
    VUS_ON_MAIN_HEAP.store(true, Ordering::Relaxed);
}

/// Writes in the pages glibc's main heap grew by since the last call on this thread (`brk`),
/// in one call, instead of one page fault each as malloc first touches them, where VUs
/// allocate from it ([`vus_allocate_from_main_heap`]). Each VU calls
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
    if !VUS_ON_MAIN_HEAP.load(Ordering::Relaxed) {
        return;
    }
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

    /// Run in a child process of its own (`fork`: the child has only this thread), where no
    /// other test's memory or stack is dropped meanwhile, which would send the batch.
    #[test]
    fn queued_ranges_stay_until_their_batch_goes_and_a_vu_can_make_it_go() {
        // SAFETY: the child runs the checks and leaves with `_exit`; the parent waits for it.
        unsafe {
            match libc::fork() {
                0 => {
                    let passed = std::panic::catch_unwind(queue_give_back_and_check).is_ok();
                    libc::_exit(if passed { 0 } else { 1 })
                }
                -1 => panic!("fork failed"),
                child => {
                    let mut status = 0;
                    libc::waitpid(child, &mut status, 0);
                    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "the checks failed");
                }
            }
        }
    }

    fn queue_give_back_and_check() {
        let page = super::super::stack_arena::page_size();
        let vus = VUS_AT_ONCE + 2;
        // SAFETY: a fresh private anonymous mapping, a page per VU, unmapped below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                vus * page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        } as usize;
        assert_ne!(base, libc::MAP_FAILED as usize);
        let at = |vu: usize| (base + vu * page) as *mut u8;
        // SAFETY (here and below): each VU's page lies in the mapping made above.
        let read = |vu: usize| unsafe { at(vu).read_volatile() };
        for vu in 0..vus {
            unsafe { at(vu).write_volatile(7) };
        }
        // SAFETY: this test's pages, not touched until their batch has gone.
        let queue =
            |vu: usize| unsafe { give_back_later(std::slice::from_ref(&(base + vu * page..base + (vu + 1) * page))) };
        assert!(unsafe { give_back_later(&[]) }.is_none(), "nothing to queue");
        let first = queue(0).expect("queued");
        assert_eq!(read(0), 7, "queued, not yet given back");
        first.given_back();
        assert_eq!(read(0), 0, "given back for the VU about to run");
        // A full batch goes at once; a VU of it has nothing left to wait for.
        let full: Vec<Queued> = (1..=VUS_AT_ONCE).map(|vu| queue(vu).expect("queued")).collect();
        assert!((1..=VUS_AT_ONCE).all(|vu| read(vu) == 0), "a full batch is given back");
        let late = queue(VUS_AT_ONCE + 1).expect("queued");
        unsafe { at(VUS_AT_ONCE).write_volatile(9) };
        full.into_iter().for_each(Queued::given_back);
        assert_eq!(read(VUS_AT_ONCE), 9, "a VU of a batch already gone gives back nothing more");
        assert_eq!(read(VUS_AT_ONCE + 1), 7, "the next batch waits");
        give_back_queued();
        assert_eq!(read(VUS_AT_ONCE + 1), 0, "given back before the worker sleeps");
        late.given_back();
        // SAFETY: the mapping made above; nothing refers to it any more.
        unsafe { libc::munmap(base as *mut libc::c_void, vus * page) };
    }
}
