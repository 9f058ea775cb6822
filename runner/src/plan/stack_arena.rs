//! Memory for VU host stacks, carved from large shared mappings (arenas) instead of one
//! mapping per stack.
//!
//! A stack needs a guard page below it. Made with `mprotect`, the guard splits the mapping,
//! so a stack mapped on its own costs two memory maps (guard and stack) and two system
//! calls, and `vm.max_map_count` (65,530 by default) is what caps the VUs of one process.
//! Here each stack's guard is installed with `MADV_GUARD_INSTALL` (Linux 6.13+), which marks
//! the page in the page tables and leaves the mapping whole: a new stack costs one system
//! call and no memory map, and a stack given back (its pages returned to the kernel, its
//! guard kept) is reused by the next VU for none. Guards survive `MADV_DONTNEED`, which
//! `stacks` uses to empty a waiting VU's stack. Measured with 1,000 and 3,000 idle VUs: 4.0
//! instead of 7.0 memory maps per VU. But a guard marker keeps its page-table page, which
//! the kernel frees once an own-mapped stack's pages are given back: 12.1 instead of 8.2 KiB
//! of page tables per idle VU. So stacks are carved only when the users would not fit under
//! `vm.max_map_count` otherwise (`layout`). Where the kernel has no guard regions, [`take`]
//! returns `None` and stacks are mapped one by one.
#![allow(unsafe_code)]

use std::sync::{Mutex, OnceLock, PoisonError};

/// `madvise` advice that installs guard regions (`include/uapi/asm-generic/mman-common.h`).
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Stacks one arena holds: 64 of wasmtime's 2 MiB stacks reserve 128 MiB of address space
/// (no memory until touched).
const ARENA_STACKS: usize = 64;

/// The arenas' free and not yet carved stacks, all of one length.
struct Arenas {
    /// Bytes per stack, guard page included.
    len: usize,
    /// The next stack to carve in the newest arena, and that arena's end.
    next: usize,
    end: usize,
    /// Bases of stacks given back: their guard installed, their pages returned.
    free: Vec<usize>,
}

static ARENAS: Mutex<Option<Arenas>> = Mutex::new(None);

/// A stack of `len` bytes (a multiple of `page`, guard page first) from the arenas: its
/// base, or `None` when this kernel cannot guard a page without splitting the mapping or
/// the arenas hold stacks of another length (tests only; wasmtime asks for one size).
pub fn take(len: usize, page: usize) -> anyhow::Result<Option<usize>> {
    if !guards_supported() {
        return Ok(None);
    }
    let mut arenas = ARENAS.lock().unwrap_or_else(PoisonError::into_inner);
    let arenas = arenas.get_or_insert(Arenas { len, next: 0, end: 0, free: Vec::new() });
    if arenas.len != len {
        return Ok(None);
    }
    if let Some(base) = arenas.free.pop() {
        return Ok(Some(base));
    }
    if arenas.next == arenas.end {
        let bytes = len * ARENA_STACKS;
        // SAFETY: a fresh private anonymous mapping at an address of the kernel's choice.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            anyhow::bail!("cannot map {bytes} bytes for VU stacks: {}", std::io::Error::last_os_error());
        }
        // Stacks touch a few pages at their top: transparent huge pages would make each of
        // those 2 MiB. Advice only; the arena works without it.
        // SAFETY: the mapping just made.
        unsafe { libc::madvise(base, bytes, libc::MADV_NOHUGEPAGE) };
        arenas.next = base as usize;
        arenas.end = base as usize + bytes;
    }
    let base = arenas.next;
    // SAFETY: the first page of a stack in an arena this module mapped and never unmaps;
    // no stack has been carved there yet.
    if unsafe { libc::madvise(base as *mut libc::c_void, page, MADV_GUARD_INSTALL) } != 0 {
        anyhow::bail!("cannot install a VU stack's guard page: {}", std::io::Error::last_os_error());
    }
    arenas.next += len;
    Ok(Some(base))
}

/// Takes back a stack [`take`] returned, once its pages have been given to the kernel.
pub fn give_back(base: usize) {
    if let Some(arenas) = ARENAS.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
        arenas.free.push(base);
    }
}

/// Whether this kernel installs guard pages without splitting mappings (tried once, on a
/// mapping of its own).
pub fn guards_supported() -> bool {
    static SUPPORTED: OnceLock<bool> = OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        let page = page_size();
        // SAFETY: a fresh two-page mapping, advised and unmapped here only.
        unsafe {
            let probe = libc::mmap(
                std::ptr::null_mut(),
                2 * page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if probe == libc::MAP_FAILED {
                return false;
            }
            let supported = libc::madvise(probe, page, MADV_GUARD_INSTALL) == 0;
            libc::munmap(probe, 2 * page);
            supported
        }
    })
}

/// The kernel's page size, asked once: memories and stacks ask for it several times per VU
/// and page.
pub fn page_size() -> usize {
    static SIZE: OnceLock<usize> = OnceLock::new();
    *SIZE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
    })
}
