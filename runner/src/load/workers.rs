//! The threads that run VUs: one single-threaded tokio runtime per core. VUs started one at
//! a time are dealt out round-robin; a burst of them is started by the workers themselves,
//! each taking the next VU of the burst when it is ready for one (`Burst`). Each VU, its
//! connections and its statistics shard then stay on one thread: no work-stealing queues or
//! cross-thread wake-ups on the hot path. Measured against one multi-threaded runtime (50
//! VUs, no wait, one core): 66,800 against 62,400 requests per CPU-second.

use std::sync::atomic::{AtomicU64, Ordering};
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
        } else {
            open_whole_heaps();
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
}

/// The VU numbers `1..=users` of a burst that every worker starts VUs from
/// (`load::start_share`), each taking the next number when it is ready to start one. A worker
/// slowed by something else on its core (on a small machine, the target) then starts fewer
/// of them, and the workers finish together, where fixed round-robin shares waited for the
/// slower one: with 10,000 VUs at once on two cores and nginx on the first, one worker had
/// spawned its half 0.02-0.26 s after the other in three runs. Measured (`release`,
/// `start_ab.sh` on both cores, 6 and 8 alternating rounds): started in 1.08 against 1.12 s
/// and 0.895 against 0.93 s (medians), about 4 % less.
#[derive(Debug)]
pub struct Burst {
    next: AtomicU64,
    users: u32,
}

impl Burst {
    pub fn new(users: u32) -> Self {
        Self { next: AtomicU64::new(1), users }
    }

    /// The next VU number nobody took, if any is left.
    pub fn take(&self) -> Option<u32> {
        // Each worker asks at most once more after the last: the count cannot wrap.
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        u32::try_from(n).ok().filter(|&n| n <= self.users)
    }
}

/// Lets threads that have not allocated yet, the one worker among them, allocate from
/// glibc's main arena instead of an arena of their own (`M_ARENA_MAX` = 1). A thread's
/// arena grows one `mprotect` per page it needs at its top, and every VU started keeps
/// about 18 KiB there: 4.7 of a VU's 24 system calls at start. The main arena grows with
/// `brk`, 128 KiB at a time (`M_TOP_PAD`). Only with one worker: the threads that then share
/// the arena with it (the main thread, statistics, the web page) allocate rarely, where
/// two workers on two cores would take turns at its lock on every allocation. The main
/// heap's growth is then written in as VUs start (`plan::populate_heap_growth`).
#[allow(unsafe_code)]
fn share_the_main_arena() {
    #[cfg(target_env = "gnu")]
    // SAFETY: `mallopt` only sets an allocator parameter; arenas already given to threads
    // stay theirs.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    crate::plan::vus_allocate_from_main_heap();
}

/// With several workers, lets each heap of a thread's arena be opened whole when glibc makes
/// it (a top pad of a whole heap), where it would otherwise open it one `mprotect` per page
/// as it fills: 4.75 `mprotect`s per VU started. Each takes the address space's lock
/// (`mmap_lock`) for writing, which the workers also take for every VU's memory mapping, its
/// hot pages and its page faults, so the workers kept waiting on each other: 37 µs of
/// `mprotect` per VU, and 167 µs of CPU per VU against 65 with one worker
/// (`CORES=0,1 tests/bench/start_profile.sh URL 10000 quiet`; one worker shares glibc's main
/// arena instead, `share_the_main_arena`, which grows with `brk` and whose lock two workers
/// would take turns at). A heap's pages are still only resident once used. Measured on two
/// cores (`release`, 10,000 VUs at once against nginx on core 0, `start_ab.sh` with 5
/// alternating rounds): started in 1.04-1.25 s (median 1.10) against 1.21-1.60 (1.38) with
/// first requests, 0.49-0.53 (0.51) against 0.63-0.90 (0.72) without, where one worker on
/// one core, which this does not change, takes about 1.4 and 0.55 s at the same hour; 14.3
/// against 19.0 system calls per VU, none of them `mprotect` (`CORES=0,1 start_counts.sh`);
/// the same peak RSS with 1,000 idle VUs; 77,946 against 79,929 requests per CPU-second at
/// 50 VUs (3 rounds, within the noise). In return glibc keeps up to a heap's worth of freed
/// memory at the top of each arena for the next allocations instead of returning it.
/// Setting the pad also fixes glibc's mmap threshold at its initial 128 KiB, where it would
/// rise with the largest block freed (up to 32 MiB): it is set to that most, so that large
/// buffers (bodies) keep being reused from the heap instead of mapped and unmapped each
/// time. With 512 KiB responses (20 VUs, two runs each): 7,463-7,722 against 5,845-7,575
/// requests per CPU-second, 36-37 against 32 MiB of peak RSS.
#[allow(unsafe_code)]
fn open_whole_heaps() {
    #[cfg(target_env = "gnu")]
    {
        // glibc's largest heap (`HEAP_MAX_SIZE` on 64-bit): an arena is made of heaps of this
        // size, reserved whole and opened as they fill.
        const HEAP_MAX: libc::c_int = 64 << 20;
        // The most glibc's own mmap threshold rises to (`DEFAULT_MMAP_THRESHOLD_MAX`).
        const MMAP_THRESHOLD_MAX: libc::c_int = 32 << 20;
        // SAFETY: `mallopt` only sets allocator parameters; heaps already made keep their size.
        unsafe {
            libc::mallopt(libc::M_TOP_PAD, HEAP_MAX);
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX);
        }
    }
}

/// Which of `count` workers runs VU number `n`: round-robin.
fn worker_of(n: usize, count: usize) -> usize {
    n % count
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
    fn every_vu_of_a_burst_is_taken_once_whatever_the_workers_pace() {
        for takers in 1..=4 {
            for users in [0, 1, 2, 5, 17, 10_000] {
                let burst = std::sync::Arc::new(Burst::new(users));
                let threads: Vec<_> = (0..takers)
                    .map(|taker| {
                        let burst = burst.clone();
                        std::thread::spawn(move || {
                            let mut taken = Vec::new();
                            while let Some(n) = burst.take() {
                                taken.push(n);
                                // Takers of different speeds.
                                if taker == 0 {
                                    std::thread::yield_now();
                                }
                            }
                            taken
                        })
                    })
                    .collect();
                let mut all: Vec<u32> = threads.into_iter().flat_map(|t| t.join().expect("a taker")).collect();
                all.sort_unstable();
                assert_eq!(all, (1..=users).collect::<Vec<_>>(), "{users} VUs among {takers} takers");
                assert_eq!(burst.take(), None, "nothing is left once all are taken");
            }
        }
    }

    #[test]
    fn vus_started_one_at_a_time_go_round_robin() {
        assert_eq!((1..=5).map(|n| worker_of(n, 2)).collect::<Vec<_>>(), [1, 0, 1, 0, 1]);
        assert_eq!(worker_of(7, 1), 0);
    }
}
