//! What a VU holds outside wasmtime's view: the host stack its calls run on (`stacks`) and
//! the linear memories the runner made for it (`memories`). Both are noted as the VU's
//! calls make them, and given back while the VU waits long (`limits::RELEASE_BUFFERS_BEFORE_WAIT`,
//! `limits::RELEASE_STACK_BEFORE_WAIT`, `limits::HIBERNATE_BEFORE_WAIT`), together in one call
//! with other idle VUs' (`give_back::give_back_later`).
#![allow(unsafe_code)]

use std::ops::Range;

use super::give_back::{Queued, give_back_later};
use super::memories::{self, VuMemories};
use super::stacks::VuStack;

#[derive(Debug, Default)]
pub struct VuMemory {
    stack: VuStack,
    memories: VuMemories,
    /// What `release` queued to give back, until `wake` makes sure it is back.
    queued: Option<Queued>,
}

impl VuMemory {
    /// Forgets stacks and memories made on this thread outside a VU's call (by `describe`).
    pub fn forget_made() {
        VuStack::forget_made();
        memories::forget_made();
    }

    /// Keeps what was made on this thread since [`VuMemory::forget_made`]: call it right
    /// after polling the VU's call, before another task runs on the thread.
    pub fn keep_made(&mut self) {
        self.stack.keep_made();
        self.memories.keep_made();
    }

    /// Before a wait of a second or more: the first time, gives back the memory image's
    /// pages that the VU made its own but left equal to the image. With `stack` (a wait of
    /// `limits::RELEASE_STACK_BEFORE_WAIT` or more), also gives the stack's pages back (the
    /// next call faults them back in). With `hibernate` (a wait of
    /// `limits::HIBERNATE_BEFORE_WAIT` or more), packs the memories away instead and gives
    /// all their pages back (then [`VuMemory::wake`] must run before the next call). All of it
    /// goes back in one call where the kernel allows, with other idle VUs' (`give_back_later`).
    /// Call it only between calls into the VU's store, and [`VuMemory::wake`] before the next.
    pub fn release(&mut self, stack: bool, hibernate: bool) {
        // The stack, and a memory's present pages as one range or a few runs.
        let mut ranges: Vec<Range<usize>> = Vec::with_capacity(4);
        if stack {
            ranges.extend(self.stack.usable());
        }
        if hibernate {
            self.memories.hibernate(&mut ranges);
        } else {
            self.memories.share_image(&mut ranges);
        }
        // SAFETY: by this method's contract no call into the store runs until `wake`, which
        // first makes sure the ranges are back, so nothing is on the stack meanwhile, and the
        // memories' pages are packed or read the same afterwards; the memories and the stack
        // give back what is queued before they are unmapped or reused (their `Drop`).
        self.queued = unsafe { give_back_later(&ranges) };
    }

    /// After a wait: makes sure what `release` queued is back, then writes back what it
    /// packed, if anything.
    pub fn wake(&mut self) {
        if let Some(queued) = self.queued.take() {
            queued.given_back();
        }
        self.memories.wake();
    }
}
