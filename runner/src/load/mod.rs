//! The load model: which VUs run and when their iterations start (`executor`), carried
//! out by a controller per kind of executor (Locust's users at a spawn rate here, `ramp`
//! for ramping VUs, `arrival` for arrival rates), and telling VUs when to stop. Each VU is
//! a tokio task driving its own component instance (`vu`).

mod arrival;
mod call;
mod executor;
pub mod hooks;
mod ramp;
mod vu;
mod wait;
mod workers;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::ScenarioConfig;
use crate::host::HostShared;
use crate::output::console;
use crate::plan::LoadedPlan;
use crate::stats::Recorder;
pub use executor::{ArrivalRate, Executor, LiveTarget, Ramp, ShapeStep, Stage, Stages, parse_rate, parse_stages};
pub use wait::wait_after;
use workers::Burst;
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

    /// VUs that finished starting, successfully or not.
    pub fn started(&self) -> u64 {
        self.settled.load(Ordering::Relaxed)
    }
}

/// What every VU of a run shares.
pub struct VuContext {
    pub plan: Arc<LoadedPlan>,
    pub shared: Arc<HostShared>,
    pub recorder: Recorder,
    pub population: Arc<Population>,
    /// Cumulative weights of the plan's tasks (0 for tasks outside the scenario).
    weights: Vec<u64>,
    /// The scenario's name when the run has several (their statistics are kept apart too).
    pub scenario: Option<Arc<str>>,
    /// VUs the scenario starts at first (announced once all have started), how many have
    /// settled, and when its executor began (`spawn_clock`).
    users: u32,
    settled: AtomicU64,
    spawn_started: OnceLock<Instant>,
    /// Users set from the web page, for a constant-VUs scenario (Locust's "edit users").
    live: Option<watch::Receiver<LiveTarget>>,
}

impl VuContext {
    /// The context of the VUs of `scenario`; `named` when the run has several scenarios.
    pub fn new(
        plan: Arc<LoadedPlan>,
        shared: Arc<HostShared>,
        recorder: Recorder,
        population: Arc<Population>,
        scenario: &ScenarioConfig,
        named: bool,
    ) -> Self {
        let mut sum = 0u64;
        let weights = plan
            .plan
            .tasks
            .iter()
            .enumerate()
            .map(|(i, task)| {
                match &scenario.tasks {
                    None => sum += u64::from(task.weight),
                    // A scenario that names a task runs it, even one of weight 0 (a task the
                    // plan keeps for the scenarios that name it).
                    Some(chosen) if chosen.contains(&i) => sum += u64::from(task.weight.max(1)),
                    Some(_) => {}
                }
                sum
            })
            .collect();
        let users = match &scenario.executor {
            Executor::Users { users, .. } | Executor::SharedIterations { users, .. } => *users,
            Executor::ArrivalRate(a) => a.pre_allocated,
            // VUs come and go with the stages: nothing to announce.
            Executor::RampingVus { .. } | Executor::Shape(_) => 0,
        };
        Self {
            plan,
            shared,
            recorder,
            population,
            weights,
            scenario: named.then(|| Arc::from(scenario.name.as_str())),
            users,
            settled: AtomicU64::new(0),
            spawn_started: OnceLock::new(),
            live: None,
        }
    }

    /// When the scenario's executor began, the moment its first VU is due: VU `n` of a
    /// spawn rate is due `(n - 1) / rate` after it, and "All users spawned" counts from it.
    /// Set by the first call (`run`, as the executor begins), not when the context is made:
    /// a scenario with a start time waits for it first, and the run sets up its workers.
    fn spawn_clock(&self) -> Instant {
        *self.spawn_started.get_or_init(Instant::now)
    }

    /// This scenario's VUs that finished starting, successfully or not.
    fn settled_count(&self) -> u64 {
        self.settled.load(Ordering::Relaxed)
    }

    /// Counts a VU that started (or failed to); the last one announces that all did, with
    /// how long starting them took.
    fn settled(&self) {
        self.population.settled.fetch_add(1, Ordering::Relaxed);
        let settled = self.settled.fetch_add(1, Ordering::Relaxed) + 1;
        if settled == u64::from(self.users) {
            let failed = self.population.failed();
            let failures = if failed > 0 { format!(", {failed} failed to start") } else { String::new() };
            let scenario = self.scenario.as_ref().map_or(String::new(), |name| format!("Scenario `{name}`: "));
            console::line(&format!(
                "{scenario}All users spawned: {} running{failures}, {:.2} s after the first",
                settled - failed,
                self.spawn_clock().elapsed().as_secs_f64()
            ));
        }
    }
}

/// Starts VUs on the `workers`, the executor's controller and its VUs' tasks together.
pub struct Spawner {
    vus: JoinSet<()>,
    context: Arc<VuContext>,
    phase: watch::Receiver<Phase>,
    workers: Arc<Workers>,
}

impl Spawner {
    fn context(&self) -> &VuContext {
        &self.context
    }

    /// Starts VU number `id` doing `work`.
    fn spawn(&mut self, id: u32, work: vu::Work) {
        let task = vu::run(id, self.context.clone(), self.phase.clone(), work);
        self.vus.spawn_on(task, self.workers.handle(id as usize));
        reap_finished(&mut self.vus, &self.context);
    }

    /// Starts `users` VUs at `spawn_rate` per second (Locust `-u`/`-r`), each doing `work()`,
    /// until the phase leaves `Running`. The workers start them (`start_share`), each taking
    /// the next VU due when it is ready for one (`Burst`), instead of this thread spawning
    /// every VU onto its worker: a task spawned from another thread wakes the worker's
    /// runtime (an `eventfd` write each, and a switch between the two threads when they
    /// share a core), where one spawned from the worker itself is only queued. Counted with
    /// `perf stat` (VUs started at once on one core, 6,000 against 2,000, per VU): 0.05
    /// instead of 1.8 context switches, 1 instead of 3 `write`s and no `epoll_wait` instead
    /// of 1.
    fn spawn_at_rate(&mut self, users: u32, spawn_rate: f64, work: impl Fn() -> vu::Work + Send + Sync + 'static) {
        let work = Arc::new(work);
        let burst = Arc::new(Burst::new(users));
        for worker in 0..self.workers.count() {
            let burst = burst.clone();
            let ids = std::iter::from_fn(move || burst.take());
            let share = start_share(ids, spawn_rate, self.context.clone(), self.phase.clone(), work.clone());
            self.vus.spawn_on(share, self.workers.handle(worker));
        }
    }

    /// Waits for every VU to stop.
    async fn join(mut self) {
        while let Some(result) = self.vus.join_next().await {
            reaped(&self.context, result);
        }
    }
}

/// Reaps the VUs of `vus` that already finished (short `--iterations`), so that the set
/// stays small.
fn reap_finished(vus: &mut JoinSet<()>, context: &VuContext) {
    while let Some(result) = vus.try_join_next() {
        reaped(context, result);
    }
}

/// Counts a VU's task that panicked (a runner bug) among the task errors.
fn reaped(context: &VuContext, result: Result<(), tokio::task::JoinError>) {
    if let Err(e) = result
        && e.is_panic()
    {
        context.recorder.task_error("VU", "the VU task panicked (a runner bug; please report it)");
    }
}

/// Runs on a worker: starts VUs `ids` (those it takes from the run's `Burst`), VU `n` due
/// `(n - 1) / spawn_rate` seconds after the scenario began spawning, until the phase leaves
/// `Running`; then waits for them to stop. After each VU it lets the worker's other tasks
/// run first (`queue_behind`), as a VU spawned from another thread waited its turn: VUs
/// already started get on to their first requests and their waits (where they hibernate)
/// before more start. Spawning every due VU at once instead (128 per poll, tokio's budget)
/// left hundreds half-started at a time: in one run, 9,259 of 10,000 VUs had started after
/// 3 s and their first requests' p95 was 129 ms (7 ms one VU per turn).
async fn start_share(
    ids: impl Iterator<Item = u32>,
    spawn_rate: f64,
    context: Arc<VuContext>,
    mut phase: watch::Receiver<Phase>,
    work: Arc<impl Fn() -> vu::Work + Send + Sync + 'static>,
) {
    let started = context.spawn_clock();
    let mut vus = JoinSet::new();
    for id in ids {
        let due = started + Duration::from_secs_f64(f64::from(id - 1) / spawn_rate);
        tokio::select! {
            biased;
            _ = phase.wait_for(|p| *p != Phase::Running) => break,
            _ = tokio::time::sleep_until(due) => {}
        }
        vus.spawn(vu::run(id, context.clone(), phase.clone(), work()));
        reap_finished(&mut vus, &context);
        queue_behind().await;
    }
    while let Some(result) = vus.join_next().await {
        reaped(&context, result);
    }
}

impl VuContext {
    /// Lets `target` (the web page) set the number of users of a constant-VUs scenario.
    pub fn with_live_users(mut self, target: watch::Receiver<LiveTarget>) -> Self {
        self.live = Some(target);
        self
    }
}

/// Runs `executor` on the `workers`, and returns once every VU has stopped (the phase left
/// `Running`, or the executor's work is done).
pub async fn run(context: Arc<VuContext>, executor: Executor, phase: watch::Receiver<Phase>, workers: Arc<Workers>) {
    context.spawn_clock();
    let live = context.live.clone();
    let mut spawner = Spawner { vus: JoinSet::new(), context, phase: phase.clone(), workers };
    match executor {
        Executor::Users { iterations: None, .. } if let Some(target) = live => {
            ramp::run(&mut spawner, ramp::Course::Live(executor::LiveLevel::new(target)), phase).await
        }
        Executor::Users { users, spawn_rate, iterations } => {
            spawner.spawn_at_rate(users, spawn_rate, move || vu::Work::Loop { limit: iterations, seat: None })
        }
        Executor::SharedIterations { users, iterations } => {
            let left = Arc::new(AtomicU64::new(iterations));
            spawner.spawn_at_rate(users, f64::INFINITY, move || vu::Work::Shared(left.clone()))
        }
        Executor::RampingVus { ramp } => ramp::run(&mut spawner, ramp::Course::Ramp(ramp), phase).await,
        Executor::Shape(steps) => {
            ramp::run(&mut spawner, ramp::Course::Shape(executor::ShapeLevel::new(steps)), phase).await
        }
        Executor::ArrivalRate(arrival) => arrival::run(&mut spawner, arrival, phase).await,
    }
    spawner.join().await;
}

/// Runs every scenario of the run side by side, each from its start time, and returns once
/// all their VUs have stopped.
pub async fn run_scenarios(
    scenarios: Vec<(Arc<VuContext>, ScenarioConfig)>,
    phase: watch::Receiver<Phase>,
    workers: Arc<Workers>,
    stop_timeout: Duration,
) {
    let mut running = JoinSet::new();
    for (context, scenario) in scenarios {
        running.spawn(run_scenario(context, scenario, phase.clone(), workers.clone(), stop_timeout));
    }
    while running.join_next().await.is_some() {}
}

/// One scenario: waits for its start, then runs its executor until its own end (when it
/// has one: then its VUs stop, and are interrupted after `stop_timeout`) or the run's.
async fn run_scenario(
    context: Arc<VuContext>,
    scenario: ScenarioConfig,
    mut run_phase: watch::Receiver<Phase>,
    workers: Arc<Workers>,
    stop_timeout: Duration,
) {
    if !scenario.start.is_zero() {
        tokio::select! {
            biased;
            _ = run_phase.wait_for(|p| *p != Phase::Running) => return,
            _ = tokio::time::sleep(scenario.start) => {}
        }
    }
    let Some(run_time) = scenario.run_time else {
        return run(context, scenario.executor, run_phase, workers).await;
    };
    // The scenario's own phase: the run's, or Stopping at its end and Killed after that.
    let (phase_tx, phase) = watch::channel(*run_phase.borrow());
    let forward = tokio::spawn(async move {
        let end = Instant::now() + run_time;
        let mut kill: Option<Instant> = None;
        loop {
            tokio::select! {
                changed = run_phase.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let p = *run_phase.borrow();
                    phase_tx.send_if_modified(|mine| later(mine, p));
                }
                _ = tokio::time::sleep_until(end), if kill.is_none() => {
                    phase_tx.send_if_modified(|mine| later(mine, Phase::Stopping));
                    kill = Some(Instant::now() + stop_timeout);
                }
                _ = sleep_until_opt(kill) => {
                    phase_tx.send_if_modified(|mine| later(mine, Phase::Killed));
                    break;
                }
            }
        }
    });
    run(context, scenario.executor, phase, workers).await;
    forward.abort();
}

/// Moves `mine` on to `next` if `next` is further in the run's life; `true` if it moved.
fn later(mine: &mut Phase, next: Phase) -> bool {
    let rank = |p: Phase| match p {
        Phase::Running => 0,
        Phase::Stopping => 1,
        Phase::Killed => 2,
    };
    if rank(next) > rank(*mine) {
        *mine = next;
        true
    } else {
        false
    }
}

/// Lets the tasks already queued on this thread's runtime run before the caller goes on.
/// `tokio::task::yield_now` would wait for the runtime's next look at its I/O driver (up to
/// 61 tasks later); this goes to the back of the queue at once.
async fn queue_behind() {
    let mut queued = false;
    std::future::poll_fn(|cx| {
        if std::mem::replace(&mut queued, true) {
            return std::task::Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await
}

/// Sleeps until `at`, or for ever when there is no `at`.
pub async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
