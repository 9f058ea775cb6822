//! The open model (k6 `constant-arrival-rate` and `ramping-arrival-rate`): iterations are
//! scheduled at the requested rate whatever the response times, and handed to idle VUs.
//! When every VU is busy a new one is started, up to `max_vus`; past that the iteration
//! waits up to `max_delay` for a VU to become free and is otherwise dropped and counted.
//! Each VU learns when its iteration was due, so its requests are also measured from that
//! time (latency corrected for coordinated omission).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::executor::ArrivalRate;
use super::vu::Work;
use super::{Phase, Spawner, sleep_until_opt};
use crate::stats::Recorder;

/// How often the controller checks whether pre-allocated VUs have started.
const SETTLE_POLL: Duration = Duration::from_millis(10);

/// Idle VUs waiting for an iteration, and iterations waiting for a VU.
#[derive(Debug, Default)]
pub struct Pool {
    state: Mutex<PoolState>,
    max_delay: Duration,
}

#[derive(Debug, Default)]
struct PoolState {
    idle: Vec<oneshot::Sender<Instant>>,
    /// Due times of iterations waiting for a VU (only when `max_delay` > 0), oldest first.
    backlog: VecDeque<Instant>,
}

impl Pool {
    fn new(max_delay: Duration) -> Self {
        Self { state: Mutex::default(), max_delay }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Gives the iteration due at `due` to an idle VU. `false` when none is idle.
    fn dispatch(&self, due: Instant) -> bool {
        let mut state = self.state();
        while let Some(vu) = state.idle.pop() {
            // A VU that stopped meanwhile left its sender behind: try the next one.
            if vu.send(due).is_ok() {
                return true;
            }
        }
        false
    }

    /// Drops backlog iterations that waited longer than `max_delay`; returns how many.
    fn expire(&self, now: Instant) -> u64 {
        self.expire_in(&mut self.state(), now)
    }

    fn expire_in(&self, state: &mut PoolState, now: Instant) -> u64 {
        let before = state.backlog.len();
        while state.backlog.front().is_some_and(|due| now.duration_since(*due) > self.max_delay) {
            state.backlog.pop_front();
        }
        (before - state.backlog.len()) as u64
    }

    /// The next iteration for a VU that has become free: its due time, or `None` when the
    /// run stops first. Expired backlog iterations it passes over are recorded as dropped.
    pub async fn next(
        &self,
        phase: &mut watch::Receiver<Phase>,
        recorder: &Recorder,
        scenario: Option<&str>,
    ) -> Option<Instant> {
        let receiver = {
            let mut state = self.state();
            recorder.dropped_iterations(self.expire_in(&mut state, Instant::now()), scenario);
            if let Some(due) = state.backlog.pop_front() {
                return Some(due);
            }
            let (sender, receiver) = oneshot::channel();
            state.idle.push(sender);
            receiver
        };
        tokio::select! {
            biased;
            due = receiver => due.ok(),
            _ = phase.wait_for(|p| *p != Phase::Running) => None,
        }
    }
}

/// Runs the arrival-rate schedule until the phase leaves `Running`.
pub async fn run(spawner: &mut Spawner, arrival: ArrivalRate, mut phase: watch::Receiver<Phase>) {
    let pool = Arc::new(Pool::new(arrival.max_delay));
    let recorder = spawner.context().recorder.clone();
    let scenario_name = spawner.context().scenario.clone();
    let scenario = scenario_name.as_deref();
    let mut started = 0u32;
    while started < arrival.pre_allocated {
        started += 1;
        spawner.spawn(started, Work::Pool { pool: pool.clone(), first: None });
    }
    // The schedule starts once the pre-allocated VUs are ready, so start-up is not counted
    // as lateness (k6 initialises them before the test starts too).
    while spawner.context().settled_count() < u64::from(arrival.pre_allocated) {
        tokio::select! {
            biased;
            _ = phase.wait_for(|p| *p != Phase::Running) => return,
            _ = tokio::time::sleep(SETTLE_POLL) => {}
        }
    }
    let start = Instant::now();
    for n in 0u64.. {
        // `None`: the rate has fallen to 0 for good; wait for the end of the run.
        let due = arrival.ramp.time_of(n).map(|offset| start + offset);
        tokio::select! {
            biased;
            _ = phase.wait_for(|p| *p != Phase::Running) => break,
            _ = sleep_until_opt(due) => {}
        }
        let Some(due) = due else { break };
        if pool.dispatch(due) {
        } else if started < arrival.max_vus {
            started += 1;
            spawner.spawn(started, Work::Pool { pool: pool.clone(), first: Some(due) });
        } else if arrival.max_delay.is_zero() {
            recorder.dropped_iterations(1, scenario);
        } else {
            pool.state().backlog.push_back(due);
        }
        for _ in 0..pool.expire(Instant::now()) {
            recorder.dropped_iterations(1, scenario);
        }
    }
    // Iterations still waiting when the run ends never started.
    let left = std::mem::take(&mut pool.state().backlog);
    recorder.dropped_iterations(left.len() as u64, scenario);
}
