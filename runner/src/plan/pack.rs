//! Packing the pages of an idle VU's linear memory into as few bytes as the plan's VUs
//! allow, and unpacking them.
//!
//! VUs of one plan run the same code on the same data, so their memories are nearly alike:
//! with 1,000 idle VUs of the probe plan, each memory held 8 resident pages, 7 of them
//! identical in every VU and the eighth differing from another VU's in 4 bytes (read from
//! `/proc/PID/pagemap` and `/proc/PID/mem`). So a page is kept as its difference from a
//! reference: the first page ever packed at the same place of the same memory, shared by
//! every VU of the plan (`References`). A page equal to its reference costs a pointer, one
//! that differs keeps only the 8-byte words that differ, and one that differs in more than
//! `WHOLE_ABOVE` of its bytes is kept whole.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Differences above this share of a page are kept as the whole page.
const WHOLE_ABOVE: usize = 4;

/// Words compared at once while looking for the next difference (one 64-byte cache line).
const BLOCK_WORDS: usize = 8;

/// Where a page lives: the memory's place among its instance's memories, and the page's
/// index in it.
pub type Place = (usize, usize);

/// The first page packed at each place, shared by every VU of a plan.
#[derive(Debug, Default)]
pub struct References(Mutex<HashMap<Place, Arc<[u8]>>>);

impl References {
    /// Packs `page`, found at `place`. The first page packed at a place becomes the
    /// reference there, or `initial` if given (what the page held when the VU started).
    pub fn pack(&self, place: Place, page: &[u8], initial: Option<&[u8]>) -> Kept {
        let reference = {
            let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            map.entry(place).or_insert_with(|| Arc::from(initial.unwrap_or(page))).clone()
        };
        match diff(page, &reference) {
            Some(runs) => Kept::Diff { reference, runs },
            None => Kept::Whole(Box::from(page)),
        }
    }
}

/// One page of a packed memory.
#[derive(Debug)]
pub enum Kept {
    /// The reference page, then `runs` (`diff`'s encoding) written over it.
    Diff { reference: Arc<[u8]>, runs: Box<[u8]> },
    /// The page itself.
    Whole(Box<[u8]>),
}

impl Kept {
    /// Writes the page back into `page`.
    pub fn unpack(&self, page: &mut [u8]) {
        match self {
            Kept::Diff { reference, runs } => {
                page.copy_from_slice(reference);
                apply(page, runs);
            }
            Kept::Whole(whole) => page.copy_from_slice(whole),
        }
    }

    /// Bytes this page keeps of its own (the shared reference left out).
    #[cfg(test)]
    pub fn own_bytes(&self) -> usize {
        match self {
            Kept::Diff { runs, .. } => runs.len(),
            Kept::Whole(whole) => whole.len(),
        }
    }
}

/// Whether every byte of `page` is zero.
pub fn is_zero(page: &[u8]) -> bool {
    let (head, words, tail) = as_words(page);
    head.iter().all(|&b| b == 0) && words.iter().all(|&w| w == 0) && tail.iter().all(|&b| b == 0)
}

/// `page` split into its unaligned head, aligned 8-byte words and tail.
fn as_words(page: &[u8]) -> (&[u8], &[u64], &[u8]) {
    // SAFETY: every bit pattern is a valid u64.
    #[allow(unsafe_code)]
    unsafe {
        page.align_to::<u64>()
    }
}

/// The words where `page` differs from `reference`, as runs of `[offset: u16 LE][words:
/// u16 LE][the words' bytes]`; `None` when they would be more than a `WHOLE_ABOVE`th of the
/// page. Both are the same length, a multiple of 8 and at most 512 KiB.
fn diff(page: &[u8], reference: &[u8]) -> Option<Box<[u8]>> {
    if page == reference {
        return Some(Box::default());
    }
    thread_local! {
        /// Where the runs are written before being boxed at their size: one allocation per
        /// page instead of the vector's growth and a shrink.
        static RUNS: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    RUNS.with_borrow_mut(|runs| {
        runs.clear();
        diff_into(page, reference, runs)?;
        Some(Box::from(&runs[..]))
    })
}

/// `diff`'s runs, written into `runs`; `None` as `diff`.
fn diff_into(page: &[u8], reference: &[u8], runs: &mut Vec<u8>) -> Option<()> {
    let word = |bytes: &[u8], i: usize| u64::from_ne_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap_or_default());
    let differs = |i: usize| word(page, i) != word(reference, i);
    let limit = page.len() / WHOLE_ABOVE;
    let words = page.len() / 8;
    // Pages differ from their reference in a few words: equal blocks are skipped whole.
    let block_equal = |i: usize| {
        let bytes = i * 8..(i + BLOCK_WORDS) * 8;
        page[bytes.clone()] == reference[bytes]
    };
    let mut i = 0;
    while i < words {
        if i % BLOCK_WORDS == 0 && i + BLOCK_WORDS <= words && block_equal(i) {
            i += BLOCK_WORDS;
            continue;
        }
        if !differs(i) {
            i += 1;
            continue;
        }
        let start = i;
        while i < words && differs(i) {
            i += 1;
        }
        let (offset, count) = (u16::try_from(start).ok()?, u16::try_from(i - start).ok()?);
        runs.extend_from_slice(&offset.to_le_bytes());
        runs.extend_from_slice(&count.to_le_bytes());
        runs.extend_from_slice(&page[start * 8..i * 8]);
        if runs.len() > limit {
            return None;
        }
    }
    Some(())
}

/// Writes `diff`'s runs over `page`.
fn apply(page: &mut [u8], mut runs: &[u8]) {
    while let [o0, o1, c0, c1, rest @ ..] = runs {
        let start = usize::from(u16::from_le_bytes([*o0, *o1])) * 8;
        let len = usize::from(u16::from_le_bytes([*c0, *c1])) * 8;
        page[start..start + len].copy_from_slice(&rest[..len]);
        runs = &rest[len..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 4096;

    fn page_with(bytes: &[(usize, u8)]) -> Vec<u8> {
        let mut page = vec![7u8; PAGE];
        for &(at, b) in bytes {
            page[at] = b;
        }
        page
    }

    fn round_trip(kept: &Kept) -> Vec<u8> {
        let mut out = vec![0xAAu8; PAGE];
        kept.unpack(&mut out);
        out
    }

    #[test]
    fn the_first_page_at_a_place_is_the_reference_and_equal_pages_keep_nothing() {
        let refs = References::default();
        let page = page_with(&[(10, 1)]);
        let first = refs.pack((0, 3), &page, None);
        let second = refs.pack((0, 3), &page, None);
        assert_eq!((first.own_bytes(), second.own_bytes()), (0, 0));
        assert_eq!(round_trip(&second), page);
        let Kept::Diff { reference: a, .. } = &first else { panic!("a diff") };
        let Kept::Diff { reference: b, .. } = &second else { panic!("a diff") };
        assert!(Arc::ptr_eq(a, b), "one reference shared by both");
    }

    #[test]
    fn a_page_that_differs_a_little_keeps_only_the_words_that_differ() {
        let refs = References::default();
        refs.pack((1, 0), &page_with(&[]), None);
        // Two changed bytes in one word, one in the last word, two in adjacent words, and
        // two in adjacent words either side of a 64-byte block's end.
        let page = page_with(&[(0, 1), (5, 2), (PAGE - 1, 3), (100, 4), (104, 5), (60, 6), (64, 8)]);
        let kept = refs.pack((1, 0), &page, None);
        assert_eq!(kept.own_bytes(), (4 + 8) + (4 + 8) + (4 + 16) + (4 + 16), "{kept:?}");
        assert_eq!(round_trip(&kept), page);
    }

    #[test]
    fn a_page_that_differs_a_lot_is_kept_whole_and_places_do_not_mix() {
        let refs = References::default();
        refs.pack((0, 0), &page_with(&[]), None);
        let page: Vec<u8> = (0..PAGE).map(|i| (i % 251) as u8).collect();
        let kept = refs.pack((0, 0), &page, None);
        assert!(matches!(kept, Kept::Whole(_)));
        assert_eq!(round_trip(&kept), page);
        let elsewhere = refs.pack((0, 1), &page, None);
        assert_eq!(elsewhere.own_bytes(), 0, "another place has its own reference");
        assert_eq!(round_trip(&elsewhere), page);
    }

    #[test]
    fn zero_pages_are_recognised() {
        assert!(is_zero(&vec![0u8; PAGE]));
        assert!(!is_zero(&page_with(&[])));
        let mut almost = vec![0u8; PAGE];
        almost[PAGE - 1] = 1;
        assert!(!is_zero(&almost));
        assert!(!is_zero(&almost[1..]), "unaligned tails are read too");
    }
}
