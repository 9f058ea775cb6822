//! One virtual user: instantiate, `on-start`, then iterations (a task picked by weight,
//! followed by its wait unless the model is open) for as long as its `Work` gives them;
//! then `on-stop`. A guest trap ends the instance, not the
//! user: it is recorded and the VU starts again from a fresh instance.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use wasmtime::Store;

use super::arrival::Pool;
use super::call::guest_call;
use super::ramp::Seat;
use super::{Phase, VuContext, wait_after};
use crate::bindings::LoadTest;
use crate::host::{StoreLink, VuState};
use crate::limits::{HIBERNATE_BEFORE_WAIT, RELEASE_BUFFERS_BEFORE_WAIT, RELEASE_STACK_BEFORE_WAIT};
use crate::plan::{Room, VuMemory, new_store};

/// A live instance of the plan for one VU.
struct Instance {
    store: Store<VuState>,
    guest: LoadTest,
    /// The host stack the store's calls run on, and the guest's linear memories.
    memory: VuMemory,
    /// The guest's compute clock and the HTTP exchanges the VU's calls run (shared with the
    /// store's data).
    link: StoreLink,
    /// Counts the instance against the process's capacity (dropped after the store).
    _room: Room,
}

/// Why the VU loop ended.
enum Ended {
    /// Stop requested or iterations done: run `on-stop`.
    Normally,
    /// The instance is unusable or the VU was killed: no `on-stop`.
    Abruptly,
}

/// Where a VU's iterations come from.
pub enum Work {
    /// Tasks back to back, each followed by the plan's wait time, until the run stops, the
    /// VU has done `limit` iterations, or its `seat` is asked to leave (ramping down).
    Loop { limit: Option<u64>, seat: Option<Arc<Seat>> },
    /// Iterations taken from a count shared by every VU (k6 `shared-iterations`).
    Shared(Arc<AtomicU64>),
    /// Iterations scheduled by the arrival-rate controller, with no wait time between them;
    /// `first` is the one the VU was started for.
    Pool { pool: Arc<Pool>, first: Option<Instant> },
}

impl Work {
    /// The next iteration, or `None` when this VU is done. `Some(Some(due))` carries when an
    /// open-model iteration was due.
    async fn next(
        &mut self,
        done: u64,
        phase: &mut watch::Receiver<Phase>,
        ctx: &VuContext,
    ) -> Option<Option<Instant>> {
        if *phase.borrow() != Phase::Running {
            return None;
        }
        match self {
            Self::Loop { limit, seat } => {
                let over = limit.is_some_and(|n| done >= n) || seat.as_ref().is_some_and(|s| s.leaving());
                (!over).then_some(None)
            }
            Self::Shared(left) => {
                left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).ok().map(|_| None)
            }
            Self::Pool { pool, first } => match first.take() {
                Some(due) => Some(Some(due)),
                None => pool.next(phase, &ctx.recorder, ctx.scenario.as_deref()).await.map(Some),
            },
        }
    }

    /// Whether this VU has no iteration left (so it does not wait after its last one).
    fn exhausted(&self, done: u64) -> bool {
        match self {
            Self::Loop { limit, .. } => limit.is_some_and(|n| done >= n),
            Self::Shared(left) => left.load(Ordering::Relaxed) == 0,
            Self::Pool { .. } => false,
        }
    }

    /// Whether the plan's wait time follows each task.
    fn waits(&self) -> bool {
        !matches!(self, Self::Pool { .. })
    }

    /// Resolves when this VU should cut its wait short and stop.
    async fn stop_requested(&self, phase: &mut watch::Receiver<Phase>) {
        let seat = match self {
            Self::Loop { seat: Some(seat), .. } => Some(seat),
            _ => None,
        };
        tokio::select! {
            _ = phase.wait_for(|p| *p != Phase::Running) => {}
            _ = async { if let Some(seat) = seat { seat.asked_to_leave().await } else { std::future::pending().await } } => {}
        }
    }

    fn left(&self) {
        if let Self::Loop { seat: Some(seat), .. } = self {
            seat.leave();
        }
    }
}

/// Runs VU number `id` until the phase says stop or its `work` is done.
pub async fn run(id: u32, ctx: Arc<VuContext>, mut phase: watch::Receiver<Phase>, mut work: Work) {
    // Boxed: instantiating is the largest future the VU awaits (3.4 KB), and inline it would
    // size the VU's task for its whole life (5.0 KB against 1.3 KB; measured with size_of_val).
    let mut kill = Kill::new(&phase);
    let first = Box::pin(start(id, &ctx, &mut kill)).await;
    crate::plan::populate_heap_growth();
    if first.is_some() {
        ctx.population.running.fetch_add(1, Ordering::Relaxed);
    }
    ctx.settled();
    let Some(mut instance) = first else {
        work.left();
        return;
    };
    // Let the VUs started at the same moment start too before this one's first iteration.
    // tokio polls a yielded task again only after the tasks already queued (up to 61, its
    // event interval), so VUs started together are instantiated back to back, then send
    // their first requests back to back: the instantiation and HTTP code each stay in the
    // CPU's caches, and a target that went idle is woken less often by new connections
    // (`perf`, `release`: 7 instead of 13 µs of each VU's `connect`). Measured with 10,000 VUs
    // started at once against nginx, each on one core (`dist` builds, 5 alternating runs):
    // all started in 1.13-1.24 s (median 1.18) against 1.22-1.42 (1.25), and the whole run
    // took 2 % less CPU (7 % with `release` builds). A lone VU (ramping up, arrival rate)
    // waits one pass of its worker's queue.
    tokio::task::yield_now().await;
    let mut rng = fastrand::Rng::new();
    let mut done = 0u64;
    let ended = loop {
        let Some(due) = work.next(done, &mut phase, &ctx).await else { break Ended::Normally };
        let index = pick(&ctx.weights, &mut rng);
        let task = &ctx.plan.plan.tasks[index].name;
        let started = Instant::now();
        let state = instance.store.data_mut();
        state.iteration = done;
        state.late_by_us = due.map(|due| u64::try_from(started.duration_since(due).as_micros()).unwrap_or(u64::MAX));
        let Instance { store, guest, memory, link, .. } = &mut instance;
        let call = guest.wasmload_scenario_scenario().call_run_task(&mut *store, index as u32);
        let result = kill.unless(guest_call(memory, link, call)).await;
        instance.store.data_mut().settle_pending();
        let Some(result) = result else { break Ended::Abruptly };
        done += 1;
        let mut took = started.elapsed();
        ctx.recorder.iteration(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), ctx.scenario.as_deref());
        match result {
            Ok(Ok(())) => {}
            Ok(Err(message)) => ctx.recorder.task_error(task, &message),
            Err(trap) => {
                ctx.recorder.task_error(task, &stopped(&trap));
                // The instance cannot be entered again: start this user afresh.
                match Box::pin(start(id, &ctx, &mut kill)).await {
                    Some(fresh) => instance = fresh,
                    None => break Ended::Abruptly,
                }
                // Pacing counts the new instance's start too.
                took = started.elapsed();
            }
        }
        if work.exhausted(done) {
            break Ended::Normally;
        }
        let wait = if work.waits() { wait_after(ctx.plan.wait_time(), took, &mut rng) } else { Duration::ZERO };
        if !wait.is_zero() {
            if wait >= RELEASE_BUFFERS_BEFORE_WAIT {
                instance.memory.release(wait >= RELEASE_STACK_BEFORE_WAIT, wait >= HIBERNATE_BEFORE_WAIT);
                instance.store.data_mut().release_buffers();
            }
            tokio::select! {
                biased;
                _ = work.stop_requested(&mut phase) => {}
                _ = tokio::time::sleep(wait) => {}
            }
            instance.memory.wake();
        }
    };
    if let Ended::Normally = ended {
        let Instance { store, guest, memory, link, .. } = &mut instance;
        let call = guest.wasmload_scenario_scenario().call_on_stop(&mut *store);
        let result = kill.unless(guest_call(memory, link, call)).await;
        store.data_mut().settle_pending();
        report_hook(&ctx, "on_stop", result);
    }
    ctx.population.running.fetch_sub(1, Ordering::Relaxed);
    work.left();
}

/// Instantiates the plan and runs `on-start`. `None` when either failed (recorded and
/// counted as a user that failed to start) or the VU was killed meanwhile.
async fn start(id: u32, ctx: &VuContext, kill: &mut Kill) -> Option<Instance> {
    let room = match ctx.plan.layout.room() {
        Ok(room) => room,
        Err(message) => {
            ctx.recorder.task_error("instantiate", &message);
            ctx.population.failed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
    };
    let mut state = VuState::new(id, &ctx.shared, ctx.recorder.clone());
    state.scenario = ctx.scenario.clone();
    let mut store = new_store(&ctx.plan.engine, state);
    let mut memory = VuMemory::default();
    let link = store.data().link();
    let instantiate = ctx.plan.pre.instantiate_async(&mut store);
    let guest = match kill.unless(guest_call(&mut memory, &link, instantiate)).await? {
        Ok(guest) => guest,
        Err(e) => {
            ctx.recorder.task_error("instantiate", &crate::plan::instantiation_error(&e, ctx.plan.layout));
            ctx.population.failed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
    };
    let call = guest.wasmload_scenario_scenario().call_on_start(&mut store);
    let result = kill.unless(guest_call(&mut memory, &link, call)).await?;
    store.data_mut().settle_pending();
    if report_hook(ctx, "on_start", Some(result)) {
        Some(Instance { store, guest, memory, link, _room: room })
    } else {
        // A user whose `on_start` fails does not run (as in Locust).
        ctx.population.failed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

/// Records a failed `on-start`/`on-stop`. `true` when it succeeded.
fn report_hook(ctx: &VuContext, hook: &str, result: Option<wasmtime::Result<Result<(), String>>>) -> bool {
    match result {
        Some(Ok(Ok(()))) => true,
        Some(Ok(Err(message))) => {
            ctx.recorder.task_error(hook, &message);
            false
        }
        Some(Err(trap)) => {
            ctx.recorder.task_error(hook, &stopped(&trap));
            false
        }
        None => false,
    }
}

/// Resolves once the run is killed: one per VU, for its whole life. Polled beside every call
/// into the guest, it stays registered with the phase channel; a `wait_for` made for each
/// call registered a waiter and removed it again (a lock on the channel's list each time),
/// 1.4 % of the runner's instructions per request. And until the phase changes it is not
/// polled at all: its waiter keeps the VU task's waker from its first poll (a task's waker
/// stays the same), so a version check replaces the lock a poll takes.
struct Kill {
    signal: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// Only ever compared with the channel's version: it sees every change as new.
    phase: watch::Receiver<Phase>,
    registered: bool,
    killed: bool,
}

impl Kill {
    fn new(phase: &watch::Receiver<Phase>) -> Self {
        let mut waiting = phase.clone();
        // Outside tokio's task budget: `wait_for` alone may return `Pending` when the budget
        // is spent, without registering its waiter, and then the skipped polls below would
        // leave the VU deaf to the kill.
        let signal = Box::pin(tokio::task::coop::unconstrained(async move {
            // A closed channel means the run is gone: as good as killed.
            let _ = waiting.wait_for(|p| *p == Phase::Killed).await;
        }));
        Self { signal, phase: phase.clone(), registered: false, killed: false }
    }

    /// Runs `work` unless the run is killed first (then the work is dropped mid-way).
    async fn unless<F: Future>(&mut self, work: F) -> Option<F::Output> {
        if self.killed {
            return None;
        }
        let Self { signal, phase, registered, killed } = self;
        let killing = std::future::poll_fn(|cx| {
            if *registered && !phase.has_changed().unwrap_or(true) {
                return Poll::Pending;
            }
            *registered = true;
            signal.as_mut().poll(cx)
        });
        tokio::select! {
            biased;
            out = work => Some(out),
            () = killing => {
                *killed = true;
                None
            }
        }
    }
}

/// A task index drawn with probability proportional to its weight.
fn pick(cumulative: &[u64], rng: &mut fastrand::Rng) -> usize {
    let total = cumulative.last().copied().unwrap_or(0);
    if total == 0 {
        return 0;
    }
    let draw = rng.u64(0..total);
    cumulative.partition_point(|&c| c <= draw)
}

/// Why a guest call failed, in one line: the trap (`the guest trapped: wasm trap: call
/// stack exhausted`) or the sandbox limit that stopped it, without wasmtime's backtrace.
pub(super) fn stopped(e: &wasmtime::Error) -> String {
    if let Some(wasmtime::component::ResourceTableError::Full) = e.downcast_ref() {
        return format!(
            "the guest was stopped: it holds more than {} host resources (streams, pollables) at once",
            crate::limits::host_resources()
        );
    }
    let cause = e.root_cause().to_string();
    let cause = cause.lines().next().unwrap_or_default();
    if e.downcast_ref::<wasmtime::Trap>().is_some() {
        format!("the guest trapped: {cause}")
    } else {
        format!("the guest was stopped: {cause}")
    }
}

#[cfg(test)]
mod tests {
    use super::pick;

    #[test]
    fn picks_follow_weights_and_skip_zero_weights() {
        let cumulative = [3, 3, 4]; // weights 3, 0, 1
        let mut rng = fastrand::Rng::with_seed(42);
        let mut counts = [0u32; 3];
        for _ in 0..40_000 {
            counts[pick(&cumulative, &mut rng)] += 1;
        }
        assert_eq!(counts[1], 0);
        let ratio = f64::from(counts[0]) / f64::from(counts[2]);
        assert!((ratio - 3.0).abs() < 0.15, "ratio {ratio}");
    }
}
