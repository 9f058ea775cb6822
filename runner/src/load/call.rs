//! One call into a VU's store, wrapped to note what the VU must know about it: the host
//! stack and linear memories made for the store (so the VU can give them back while idle). The guest's
//! compute budget (`GuestClock`) starts afresh with each call. The call's HTTP exchanges run
//! here, on the worker thread's stack, rather than on the VU's fiber (`host::Offload`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::host::StoreLink;
use crate::plan::VuMemory;

pin_project_lite::pin_project! {
    /// A guest call being polled on the VU's worker thread.
    pub struct GuestCall<'a, F> {
        memory: &'a mut VuMemory,
        link: &'a StoreLink,
        #[pin]
        call: F,
    }
}

/// Wraps `call`, a call into the store that `memory` and `link` belong to. The guest's
/// compute budget starts afresh with each call.
pub fn guest_call<'a, F: Future>(memory: &'a mut VuMemory, link: &'a StoreLink, call: F) -> GuestCall<'a, F> {
    link.clock.reset();
    GuestCall { memory, link, call }
}

impl<F: Future> Future for GuestCall<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        VuMemory::forget_made();
        let polled = this.link.offload.drive(this.call, cx);
        this.memory.keep_made();
        polled
    }
}
