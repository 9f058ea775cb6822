//! One call into a VU's store, wrapped to note what the VU must know about it: the host
//! stack wasmtime made for the store (so the VU can release it while idle) and the time the
//! guest spent running (so a guest that computes without end can be stopped).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::host::GuestClock;
use crate::plan::VuStack;

pin_project_lite::pin_project! {
    /// A guest call being polled on the VU's worker thread.
    pub struct GuestCall<'a, F> {
        stack: &'a mut VuStack,
        clock: &'a GuestClock,
        #[pin]
        call: F,
    }
}

/// Wraps `call`, a call into the store that `stack` and `clock` belong to. The guest's
/// compute budget starts afresh with each call.
pub fn guest_call<'a, F: Future>(stack: &'a mut VuStack, clock: &'a GuestClock, call: F) -> GuestCall<'a, F> {
    clock.reset();
    GuestCall { stack, clock, call }
}

impl<F: Future> Future for GuestCall<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        VuStack::forget_made();
        let started = Instant::now();
        let polled = this.call.poll(cx);
        // Each poll runs the guest until it waits on the host, finishes, or yields at an
        // epoch tick; nothing else runs on this thread meanwhile.
        this.clock.add(started.elapsed());
        this.stack.keep_made();
        polled
    }
}
