//! The load model: starting VUs at the spawn rate (Locust `-u`/`-r`), and telling them
//! when to stop. Each VU is a tokio task driving its own component instance (`vu`).

mod call;
mod vu;
mod wait;
mod workers;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::host::HostShared;
use crate::output::console;
use crate::plan::LoadedPlan;
use crate::stats::Recorder;
pub use wait::wait_after;
pub use workers::Workers;

/// Where the run is in its life. VUs watch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Start tasks.
    Running,
    /// Start no new task; finish the current one, then `on-stop`.
    Stopping,
    /// Abandon the current guest call now (the stop timeout ran out or a second Ctrl-C).
    Killed,
}

/// How many users start, how fast, and how long each runs.
#[derive(Debug, Clone)]
pub struct LoadShape {
    pub users: u32,
    pub spawn_rate: f64,
    pub iterations: Option<u64>,
}

/// Counters the live display reads.
#[derive(Debug, Default)]
pub struct Population {
    /// VUs instantiated and not yet stopped.
    pub running: AtomicU64,
    /// VUs that could not start: their instance could not be created or `on-start` failed.
    pub failed: AtomicU64,
    /// VUs that finished starting, successfully or not.
    settled: AtomicU64,
}

impl Population {
    pub fn running(&self) -> u64 {
        self.running.load(Ordering::Relaxed)
    }

    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
}

/// What every VU of a run shares.
pub struct VuContext {
    pub plan: Arc<LoadedPlan>,
    pub shared: Arc<HostShared>,
    pub recorder: Recorder,
    pub population: Arc<Population>,
    pub iterations: Option<u64>,
    /// Cumulative weights of the plan's tasks.
    weights: Vec<u64>,
    /// Users the run starts, and when it started spawning them.
    users: u32,
    spawn_started: Instant,
}

impl VuContext {
    pub fn new(
        plan: Arc<LoadedPlan>,
        shared: Arc<HostShared>,
        recorder: Recorder,
        population: Arc<Population>,
        shape: &LoadShape,
    ) -> Self {
        let weights = plan.cumulative_weights();
        Self {
            plan,
            shared,
            recorder,
            population,
            iterations: shape.iterations,
            weights,
            users: shape.users,
            spawn_started: Instant::now(),
        }
    }

    /// Counts a VU that started (or failed to); the last one announces that all did, with
    /// how long starting them took.
    fn settled(&self) {
        let settled = self.population.settled.fetch_add(1, Ordering::Relaxed) + 1;
        if settled == u64::from(self.users) {
            let failed = self.population.failed();
            let failures = if failed > 0 { format!(", {failed} failed to start") } else { String::new() };
            console::line(&format!(
                "All users spawned: {} running{failures}, {:.2} s after the first",
                settled - failed,
                self.spawn_started.elapsed().as_secs_f64()
            ));
        }
    }
}

/// Starts `shape.users` VUs at `shape.spawn_rate` per second on the `workers`, and returns
/// once every VU has stopped (the phase left `Running`, or each finished its iterations).
pub async fn run(context: Arc<VuContext>, shape: LoadShape, phase: watch::Receiver<Phase>, workers: Arc<Workers>) {
    let mut vus = JoinSet::new();
    let started = context.spawn_started;
    let mut stopping = phase.clone();
    for i in 0..shape.users {
        let due = started + Duration::from_secs_f64(f64::from(i) / shape.spawn_rate);
        tokio::select! {
            biased;
            _ = stopping.wait_for(|p| *p != Phase::Running) => break,
            _ = tokio::time::sleep_until(due) => {}
        }
        vus.spawn_on(vu::run(i + 1, context.clone(), phase.clone()), workers.handle(i as usize));
        // Reap VUs that already finished (short --iterations) so the set stays small.
        while vus.try_join_next().is_some() {}
    }
    while let Some(result) = vus.join_next().await {
        if let Err(e) = result
            && e.is_panic()
        {
            context.recorder.task_error("VU", "the VU task panicked (a runner bug; please report it)");
        }
    }
}
