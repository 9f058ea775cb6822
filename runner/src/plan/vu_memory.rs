//! What a VU holds outside wasmtime's view: the host stack its calls run on (`stacks`) and
//! the linear memories the runner made for it (`memories`). Both are noted as the VU's
//! calls make them, and given back while the VU waits long.

use super::memories::{self, VuMemories};
use super::stacks::VuStack;

#[derive(Debug, Default)]
pub struct VuMemory {
    stack: VuStack,
    memories: VuMemories,
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

    /// Before a long wait: gives the stack's pages back and packs the memories away.
    /// Call it only between calls into the VU's store, and [`VuMemory::wake`] before the
    /// next one.
    pub fn hibernate(&mut self) {
        self.stack.release();
        self.memories.hibernate();
    }

    /// After the wait: writes the memories back (the stack faults back in by itself).
    pub fn wake(&mut self) {
        self.memories.wake();
    }
}
