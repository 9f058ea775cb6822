//! A host call's network exchange, run on the VU's worker thread's stack instead of the
//! VU's own fiber stack.
//!
//! wasmtime runs each guest call on a fiber, a stack of the VU's own, and polls an async
//! host function's future there. Every poll of a request's exchange (building the head,
//! writing it, reading and parsing the response, recording it) pushed its frames onto that
//! stack, several KiB deep. With many VUs taking turns on a thread, a VU's stack has left
//! the CPU's caches by its next turn, so those frames were cold cache lines on every poll,
//! twice a request (`tests/bench/instructions.sh`'s cold lines).
//!
//! So the host function hands the exchange, an owned future, to the VU's [`Offload`] and
//! waits for its output with a poll that does nothing else. The VU's task (`load::call`)
//! polls the exchange itself, on the worker thread's stack, which every VU shares and which
//! stays warm, and resumes the fiber only once the exchange is done (a wake-up that finds
//! it still running no longer switches stacks). A call made without that driver (the
//! instance that only describes the plan) polls the exchange in place instead.
//!
//! Measured (`tests/bench/results/2026-12-01-offload.txt`): 24 % fewer cold lines per
//! request (287 against 376, `instructions.sh`), for 1.9 % more instructions (the
//! exchange's own box, the slot's lock); 2.5 % more requests per CPU-second at 500 VUs and
//! 2.8 % at 50 (`concurrent_ab.sh`, the two builds at once).

use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

/// A boxed exchange whose output the host function waits for.
pub type Work<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// One VU's exchange in flight, shared by its store's data (which launches it) and its task
/// (which drives it). At most one: a guest waits for each host call to return.
pub struct Offload<T>(Arc<Inner<T>>);

struct Inner<T> {
    slot: Mutex<Slot<T>>,
    /// Whether a driver is polling the guest call right now (and so will poll the work).
    driven: AtomicBool,
}

enum Slot<T> {
    Empty,
    Running(Work<T>),
    Done(T),
}

impl<T> Default for Offload<T> {
    fn default() -> Self {
        Self(Arc::new(Inner { slot: Mutex::new(Slot::Empty), driven: AtomicBool::new(false) }))
    }
}

impl<T> Clone for Offload<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Offload<T> {
    fn slot(&self) -> MutexGuard<'_, Slot<T>> {
        // Polling the work is the only thing done under the lock; a panic there leaves the
        // slot as consistent as any other state.
        self.0.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands `work` over to be run (replacing any left from a call that was dropped).
    pub fn launch(&self, work: Work<T>) {
        *self.slot() = Slot::Running(work);
    }

    /// Resolves to the launched work's output; `None` if nothing was launched. Polled on the
    /// fiber, by the host function.
    pub async fn finish(&self) -> Option<T> {
        std::future::poll_fn(|cx| {
            let mut slot = self.slot();
            if let Slot::Running(work) = &mut *slot {
                if self.0.driven.load(Ordering::Relaxed) {
                    return Poll::Pending;
                }
                // No driver: run it here.
                let Poll::Ready(out) = work.as_mut().poll(cx) else { return Poll::Pending };
                *slot = Slot::Done(out);
            }
            match mem::replace(&mut *slot, Slot::Empty) {
                Slot::Done(out) => Poll::Ready(Some(out)),
                _ => Poll::Ready(None),
            }
        })
        .await
    }

    /// Polls the guest call `call` with this offload's work driven here: the work first, if
    /// any is running (`Pending` while it still is, without resuming the call), then the
    /// call, and the work again if the call just launched some.
    pub fn drive<F: Future>(&self, mut call: Pin<&mut F>, cx: &mut Context<'_>) -> Poll<F::Output> {
        loop {
            {
                let mut slot = self.slot();
                if let Slot::Running(work) = &mut *slot {
                    let Poll::Ready(out) = work.as_mut().poll(cx) else { return Poll::Pending };
                    *slot = Slot::Done(out);
                }
            }
            self.0.driven.store(true, Ordering::Relaxed);
            let polled = call.as_mut().poll(cx);
            self.0.driven.store(false, Ordering::Relaxed);
            if polled.is_ready() || !matches!(*self.slot(), Slot::Running(_)) {
                return polled;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A guest call stand-in: launches `work` on its first poll, then waits for its output
    /// like a host function does.
    async fn call(offload: Offload<u32>, work: Work<u32>) -> Option<u32> {
        offload.launch(work);
        offload.finish().await
    }

    fn yielding(value: u32) -> Work<u32> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            value
        })
    }

    #[tokio::test]
    async fn a_driven_call_gets_its_works_output() {
        let offload = Offload::default();
        let mut fut = Box::pin(call(offload.clone(), yielding(7)));
        let out = std::future::poll_fn(|cx| offload.drive(fut.as_mut(), cx)).await;
        assert_eq!(out, Some(7));
    }

    #[tokio::test]
    async fn a_call_without_a_driver_runs_its_work_in_place() {
        let offload = Offload::default();
        // Without the fallback the call would wait for a driver forever: bounded, it fails.
        let out = tokio::time::timeout(std::time::Duration::from_secs(5), call(offload, yielding(9))).await;
        assert_eq!(out.ok(), Some(Some(9)));
    }

    #[tokio::test]
    async fn finishing_what_was_never_launched_is_none() {
        let offload = Offload::<u32>::default();
        assert_eq!(offload.finish().await, None);
    }

    #[tokio::test]
    async fn a_driver_does_not_resume_the_call_while_the_work_runs() {
        let offload = Offload::default();
        let polls = std::sync::atomic::AtomicU32::new(0);
        let inner = offload.clone();
        let mut fut = Box::pin(async {
            inner.launch(Box::pin(async {
                for _ in 0..3 {
                    tokio::task::yield_now().await;
                }
                5
            }));
            std::future::poll_fn(|cx| {
                polls.fetch_add(1, Ordering::Relaxed);
                let finish = std::pin::pin!(inner.finish());
                finish.poll(cx)
            })
            .await
        });
        let out = std::future::poll_fn(|cx| offload.drive(fut.as_mut(), cx)).await;
        assert_eq!(out, Some(5));
        // Once to find the work running, once to take its output.
        assert_eq!(polls.load(Ordering::Relaxed), 2);
    }
}
