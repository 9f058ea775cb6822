//! One call into a VU's store, wrapped to note what the VU must know about it: the host
//! stack wasmtime made for the store (so the VU can release it while idle). The guest's
//! compute budget (`GuestClock`) starts afresh with each call.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::host::GuestClock;
use crate::plan::VuStack;

pin_project_lite::pin_project! {
    /// A guest call being polled on the VU's worker thread.
    pub struct GuestCall<'a, F> {
        stack: &'a mut VuStack,
        #[pin]
        call: F,
    }
}

/// Wraps `call`, a call into the store that `stack` and `clock` belong to. The guest's
/// compute budget starts afresh with each call.
pub fn guest_call<'a, F: Future>(stack: &'a mut VuStack, clock: &GuestClock, call: F) -> GuestCall<'a, F> {
    clock.reset();
    GuestCall { stack, call }
}

impl<F: Future> Future for GuestCall<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        VuStack::forget_made();
        let polled = this.call.poll(cx);
        this.stack.keep_made();
        polled
    }
}
