//! Which pages of this process's memory are present, and whether each is its own (written
//! since it was mapped: anonymous) or a page of the file it maps (the memory image's, not
//! yet written): what a VU's memory asks before it hibernates (`memories`).
//!
//! Where the kernel has it (Linux 6.7 and later), the `PAGEMAP_SCAN` ioctl on
//! `/proc/self/pagemap` answers with runs of present pages, walking only the page tables
//! that exist. Elsewhere the range's entries are read, 8 bytes a page, and the present ones
//! picked out here: for a Rust plan's 272 pages of memory that is 2 KiB read and looked
//! through by every VU going idle, where the scan returns the 3 or 4 runs it has: 1.38-1.43
//! against 1.74-2.02 µs per look (`tests/bench/pagemap_scan.c`, the kernel's part and
//! a minimal loop over the entries; the runner's own loop built a vector besides). (`mincore`
//! would not do: for a file mapping it reports the page cache, where the image stays whether
//! or not this memory maps it.)
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use super::stack_arena::page_size;

/// `struct page_region` of `linux/fs.h`: the pages `[start, end)`, all with `categories`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct PageRegion {
    start: u64,
    end: u64,
    categories: u64,
}

/// `struct pm_scan_arg` of `linux/fs.h`.
#[repr(C)]
#[derive(Debug, Default)]
struct ScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

/// `_IOWR('f', 16, struct pm_scan_arg)`.
const PAGEMAP_SCAN: libc::c_ulong = 0xc060_6610;
const PAGE_IS_FILE: u64 = 1 << 2;
const PAGE_IS_PRESENT: u64 = 1 << 3;

/// Runs asked for at once; a memory with more is scanned again from where the scan stopped.
const RUNS_AT_ONCE: usize = 32;

/// Whether the kernel refused `PAGEMAP_SCAN` (before Linux 6.7): not asked again.
static SCAN_REFUSED: AtomicBool = AtomicBool::new(false);

fn pagemap() -> Option<&'static std::fs::File> {
    static PAGEMAP: OnceLock<Option<std::fs::File>> = OnceLock::new();
    PAGEMAP.get_or_init(|| std::fs::File::open("/proc/self/pagemap").ok()).as_ref()
}

/// The present pages among `pages` (indices of pages from `base`, which is page-aligned),
/// in order, each with whether it is this process's own (anonymous) rather than a file's;
/// `None` if the kernel cannot say.
pub fn present(base: usize, pages: Range<usize>) -> Option<Vec<(usize, bool)>> {
    if pages.is_empty() {
        return Some(Vec::new());
    }
    let file = pagemap()?;
    if !SCAN_REFUSED.load(Ordering::Relaxed) {
        match scan(file, base, pages.clone(), RUNS_AT_ONCE) {
            Ok(found) => return Some(found),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTTY | libc::EINVAL)) => {
                SCAN_REFUSED.store(true, Ordering::Relaxed);
            }
            Err(_) => return None,
        }
    }
    read(file, base, pages)
}

/// `present` by `PAGEMAP_SCAN`, asking for `at_once` runs at a time.
fn scan(file: &std::fs::File, base: usize, pages: Range<usize>, at_once: usize) -> std::io::Result<Vec<(usize, bool)>> {
    thread_local! {
        /// The runs found last, kept for the next scan: VUs going idle scan one after another.
        static RUNS: RefCell<Vec<PageRegion>> = const { RefCell::new(Vec::new()) };
    }
    let page = page_size() as u64;
    let (start, end) = ((base as u64) + pages.start as u64 * page, (base as u64) + pages.end as u64 * page);
    RUNS.with_borrow_mut(|runs| {
        runs.clear();
        let mut at = start;
        while at < end {
            let filled = runs.len();
            runs.resize(filled + at_once, PageRegion::default());
            let mut arg = ScanArg {
                size: std::mem::size_of::<ScanArg>() as u64,
                start: at,
                end,
                vec: runs[filled..].as_mut_ptr() as u64,
                vec_len: at_once as u64,
                category_mask: PAGE_IS_PRESENT,
                return_mask: PAGE_IS_PRESENT | PAGE_IS_FILE,
                ..ScanArg::default()
            };
            // SAFETY: `arg` is a `pm_scan_arg` of the size it states, whose `vec` points at
            // `vec_len` writable `page_region`s; the kernel writes only those and `arg`.
            let found = unsafe { libc::ioctl(file.as_raw_fd(), PAGEMAP_SCAN as _, &mut arg) };
            if found < 0 {
                runs.truncate(filled);
                return Err(std::io::Error::last_os_error());
            }
            runs.truncate(filled + found as usize);
            // The kernel stops early only when the runs are full; a walk that did not move
            // would never end.
            if arg.walk_end <= at {
                break;
            }
            at = arg.walk_end;
        }
        let first = base as u64 / page;
        let count = runs.iter().map(|run| (run.end - run.start) / page).sum::<u64>();
        let mut found = Vec::with_capacity(count as usize);
        for run in runs.iter() {
            let own = run.categories & PAGE_IS_FILE == 0;
            found.extend((run.start / page..run.end / page).map(|i| ((i - first) as usize, own)));
        }
        Ok(found)
    })
}

/// `present` by reading the range's pagemap entries.
fn read(file: &std::fs::File, base: usize, pages: Range<usize>) -> Option<Vec<(usize, bool)>> {
    thread_local! {
        /// The pagemap entries read last, kept for the next read.
        static ENTRIES: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
    }
    ENTRIES.with_borrow_mut(|entries| {
        entries.clear();
        entries.resize(pages.len(), 0);
        // SAFETY: the entries' own bytes, which any bytes read into make valid u64s.
        let bytes = unsafe { std::slice::from_raw_parts_mut(entries.as_mut_ptr().cast::<u8>(), entries.len() * 8) };
        let at = (base / page_size() + pages.start) * 8;
        std::os::unix::fs::FileExt::read_exact_at(file, bytes, at as u64).ok()?;
        // Bit 63: present; bit 61: a file page (here the image's, not yet written).
        let present = |e: &u64| e >> 63 == 1;
        let mut found = Vec::with_capacity(entries.iter().filter(|e| present(e)).count());
        found.extend(pages.zip(entries.iter()).filter(|(_, e)| present(e)).map(|(i, e)| (i, (e >> 61) & 1 == 0)));
        Some(found)
    })
}

#[cfg(test)]
mod tests {
    use std::os::fd::FromRawFd;

    use super::*;

    /// A private file mapping of 8 pages, pages 1 and 5 read (the file's), 2, 3 and 6 written
    /// (the process's own): both ways of asking give the same answer.
    #[test]
    fn the_scan_and_the_entries_agree_on_present_pages_and_whose_they_are() {
        let page = page_size();
        // SAFETY: the name is a NUL-terminated string; the new descriptor is owned below.
        let fd = unsafe { libc::memfd_create(c"pagemap-test".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0, "memfd");
        // SAFETY: a fresh descriptor nothing else owns.
        let file = std::fs::File::from(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
        file.set_len(8 * page as u64).expect("size");
        // SAFETY: a fresh private mapping of the file, unmapped at the end.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                8 * page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        } as usize;
        assert_ne!(base, libc::MAP_FAILED as usize);
        // SAFETY: inside the mapping.
        unsafe {
            for i in [1, 5] {
                std::ptr::read_volatile((base + i * page) as *const u8);
            }
            for i in [2, 3, 6] {
                std::ptr::write_volatile((base + i * page) as *mut u8, 1);
            }
        }
        let wanted = [(1, false), (2, true), (3, true), (5, false), (6, true)];
        let file = pagemap().expect("pagemap");
        assert_eq!(read(file, base, 0..8).expect("entries"), wanted);
        match scan(file, base, 0..8, RUNS_AT_ONCE) {
            Ok(found) => {
                assert_eq!(found, wanted);
                // One run at a time: each scan goes on from where the last stopped.
                assert_eq!(scan(file, base, 0..8, 1).expect("scan"), wanted);
            }
            Err(e) => eprintln!("no PAGEMAP_SCAN here ({e}): only the entries were checked"),
        }
        // A range that starts inside the mapping.
        assert_eq!(read(file, base, 3..8).expect("entries"), wanted[2..]);
        if let Ok(found) = scan(file, base, 3..8, RUNS_AT_ONCE) {
            assert_eq!(found, wanted[2..]);
        }
        assert_eq!(present(base, 0..8).expect("present"), wanted);
        // SAFETY: the mapping made above.
        unsafe { libc::munmap(base as *mut libc::c_void, 8 * page) };
    }
}
