//! The threads that run VUs: one single-threaded tokio runtime per core, VUs dealt out
//! round-robin (a burst of VUs is started by each worker for its own share: `share`). Each
//! VU, its connections and its statistics shard then stay on one thread: no work-stealing
//! queues or cross-thread wake-ups on the hot path. Measured against one multi-threaded
//! runtime (50 VUs, no wait, one core): 66,800 against 62,400 requests per CPU-second.

use std::iter::StepBy;
use std::ops::RangeInclusive;
use std::thread::JoinHandle;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

/// Worker threads and their runtimes; they stop (dropping any VU still on them) when this
/// is dropped.
#[derive(Debug)]
pub struct Workers {
    handles: Vec<Handle>,
    stops: Vec<oneshot::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    /// One worker per core this process may run on.
    pub fn start() -> anyhow::Result<Self> {
        let count = std::thread::available_parallelism().map_or(1, |n| n.get());
        if count == 1 {
            share_the_main_arena();
        }
        let mut workers = Self { handles: Vec::new(), stops: Vec::new(), threads: Vec::new() };
        for i in 0..count {
            // Before the worker sleeps, what idle VUs queued to give back goes
            // (`plan::give_back_queued`); while VUs keep it busy, they go in batches.
            let runtime =
                Builder::new_current_thread().enable_all().on_thread_park(crate::plan::give_back_queued).build()?;
            let (stop, stopped) = oneshot::channel::<()>();
            workers.handles.push(runtime.handle().clone());
            workers.stops.push(stop);
            workers.threads.push(std::thread::Builder::new().name(format!("vu-worker-{i}")).spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                });
                // Tasks still there (VUs interrupted by a kill) are dropped here.
                drop(runtime);
            })?);
        }
        Ok(workers)
    }

    /// The runtime that runs VU number `n`.
    pub fn handle(&self, n: usize) -> &Handle {
        &self.handles[worker_of(n, self.handles.len())]
    }

    pub fn count(&self) -> usize {
        self.handles.len()
    }

    /// The VU numbers among `1..=users` that worker `worker` runs (those `handle` gives it).
    pub fn share(&self, worker: usize, users: u32) -> StepBy<RangeInclusive<u32>> {
        share(worker, self.handles.len(), users)
    }
}

/// Lets threads that have not allocated yet, the one worker among them, allocate from
/// glibc's main arena instead of an arena of their own (`M_ARENA_MAX` = 1). A thread's
/// arena grows one `mprotect` per page it needs at its top, and every VU started keeps
/// about 18 KiB there: 4.7 of a VU's 24 system calls at start. The main arena grows with
/// `brk`, 128 KiB at a time (`M_TOP_PAD`). Only with one worker: the threads that then share
/// the arena with it (the main thread, statistics, the web page) allocate rarely, where
/// two workers on two cores would take turns at its lock on every allocation.
#[allow(unsafe_code)]
fn share_the_main_arena() {
    #[cfg(target_env = "gnu")]
    // SAFETY: `mallopt` only sets an allocator parameter; arenas already given to threads
    // stay theirs.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Which of `count` workers runs VU number `n`: round-robin.
fn worker_of(n: usize, count: usize) -> usize {
    n % count
}

/// The VU numbers among `1..=users` that `worker_of` gives to `worker` of `count`.
fn share(worker: usize, count: usize, users: u32) -> StepBy<RangeInclusive<u32>> {
    let first = if worker == 0 { count } else { worker };
    (u32::try_from(first).unwrap_or(u32::MAX)..=users).step_by(count)
}

impl Drop for Workers {
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workers_shares_are_the_vus_each_runs() {
        for count in 1..=4 {
            for users in [0, 1, 2, 5, 17] {
                let mut all: Vec<u32> = Vec::new();
                for worker in 0..count {
                    for n in share(worker, count, users) {
                        assert_eq!(worker_of(n as usize, count), worker, "VU {n} of {users} on {count} workers");
                        all.push(n);
                    }
                }
                all.sort_unstable();
                assert_eq!(all, (1..=users).collect::<Vec<_>>(), "{users} VUs on {count} workers");
            }
        }
    }
}
