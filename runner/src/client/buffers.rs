//! Read buffers kept between a VU's requests. A VU about to wait a second or more gives its
//! connection's read buffer up (`h1::Conn::release`), so idle VUs hold none; the buffer goes
//! to its worker thread's spares, and the next connection on that thread that needs one takes
//! it back instead of allocating, zero-filling and faulting in a new one. That happens for
//! every request after a long wait, and at the start of a run, when each new VU makes its
//! first request as the ones before it go idle.

use std::cell::RefCell;

use super::h1::READ_BUFFER;

/// Spares kept per thread (256 KiB): enough for a burst of VUs going idle together.
const KEPT: usize = 64;

thread_local! {
    static SPARES: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A spare read buffer of `READ_BUFFER` bytes, or an empty one when this thread has none.
pub fn take() -> Vec<u8> {
    SPARES.try_with(|spares| spares.borrow_mut().pop()).ok().flatten().unwrap_or_default()
}

/// Keeps `buffer` for the next `take` on this thread, unless it is not an ordinary read
/// buffer (one grown for a large response is freed) or `KEPT` are kept already.
pub fn put(buffer: Vec<u8>) {
    if buffer.len() != READ_BUFFER {
        return;
    }
    let _ = SPARES.try_with(|spares| {
        let mut spares = spares.borrow_mut();
        if spares.len() < KEPT {
            spares.push(buffer);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_put_buffer_comes_back_and_only_ordinary_ones_are_kept_up_to_the_limit() {
        let buffer = vec![7u8; READ_BUFFER];
        let at = buffer.as_ptr();
        put(buffer);
        let back = take();
        assert_eq!((back.as_ptr(), back.len()), (at, READ_BUFFER), "the same allocation comes back");
        assert!(take().is_empty(), "none left");

        put(vec![0; READ_BUFFER * 4]);
        assert!(take().is_empty(), "a grown buffer is freed, not kept");

        for _ in 0..KEPT + 10 {
            put(vec![0; READ_BUFFER]);
        }
        let kept = std::iter::from_fn(|| Some(take()).filter(|b| !b.is_empty())).count();
        assert_eq!(kept, KEPT);
    }
}
