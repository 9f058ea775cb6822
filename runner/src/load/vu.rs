//! One virtual user: instantiate, `on-start`, then tasks picked by weight each followed by
//! its wait, until told to stop; then `on-stop`. A guest trap ends the instance, not the
//! user: it is recorded and the VU starts again from a fresh instance.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::watch;
use tokio::time::Instant;
use wasmtime::Store;

use super::call::guest_call;
use super::{Phase, VuContext, wait_after};
use crate::bindings::LoadTest;
use crate::host::{GuestClock, VuState};
use crate::limits::RELEASE_STACK_BEFORE_WAIT;
use crate::plan::{VuStack, new_store};

/// A live instance of the plan for one VU.
struct Instance {
    store: Store<VuState>,
    guest: LoadTest,
    /// The host stack the store's calls run on.
    stack: VuStack,
    /// The guest's compute time (shared with the store's data).
    clock: GuestClock,
}

/// Why the VU loop ended.
enum Ended {
    /// Stop requested or iterations done: run `on-stop`.
    Normally,
    /// The instance is unusable or the VU was killed: no `on-stop`.
    Abruptly,
}

/// Runs VU number `id` until the phase says stop or its iterations are done.
pub async fn run(id: u32, ctx: Arc<VuContext>, mut phase: watch::Receiver<Phase>) {
    let first = start(id, &ctx, &mut phase).await;
    if first.is_some() {
        ctx.population.running.fetch_add(1, Ordering::Relaxed);
    }
    ctx.settled();
    let Some(mut instance) = first else { return };
    let mut rng = fastrand::Rng::new();
    let mut done = 0u64;
    let ended = loop {
        if *phase.borrow() != Phase::Running || ctx.iterations.is_some_and(|n| done >= n) {
            break Ended::Normally;
        }
        let index = pick(&ctx.weights, &mut rng);
        let task = &ctx.plan.plan.tasks[index].name;
        instance.store.data_mut().iteration = done;
        let started = Instant::now();
        let Instance { store, guest, stack, clock } = &mut instance;
        let call = guest.wasmload_scenario_scenario().call_run_task(&mut *store, index as u32);
        let result = unless_killed(&mut phase, guest_call(stack, clock, call)).await;
        instance.store.data_mut().settle_pending();
        let Some(result) = result else { break Ended::Abruptly };
        done += 1;
        ctx.recorder.iteration();
        match result {
            Ok(Ok(())) => {}
            Ok(Err(message)) => ctx.recorder.task_error(task, &message),
            Err(trap) => {
                ctx.recorder.task_error(task, &stopped(&trap));
                // The instance cannot be entered again: start this user afresh.
                match start(id, &ctx, &mut phase).await {
                    Some(fresh) => instance = fresh,
                    None => break Ended::Abruptly,
                }
            }
        }
        if ctx.iterations.is_some_and(|n| done >= n) {
            break Ended::Normally;
        }
        let wait = wait_after(ctx.plan.wait_time(), started.elapsed(), &mut rng);
        if !wait.is_zero() {
            if wait >= RELEASE_STACK_BEFORE_WAIT {
                instance.stack.release();
            }
            tokio::select! {
                biased;
                _ = phase.wait_for(|p| *p != Phase::Running) => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    };
    if let Ended::Normally = ended {
        let Instance { store, guest, stack, clock } = &mut instance;
        let call = guest.wasmload_scenario_scenario().call_on_stop(&mut *store);
        let result = unless_killed(&mut phase, guest_call(stack, clock, call)).await;
        store.data_mut().settle_pending();
        report_hook(&ctx, "on_stop", result);
    }
    ctx.population.running.fetch_sub(1, Ordering::Relaxed);
}

/// Instantiates the plan and runs `on-start`. `None` when either failed (recorded and
/// counted as a user that failed to start) or the VU was killed meanwhile.
async fn start(id: u32, ctx: &VuContext, phase: &mut watch::Receiver<Phase>) -> Option<Instance> {
    let mut store = new_store(&ctx.plan.engine, VuState::new(id, &ctx.shared, ctx.recorder.clone()));
    let mut stack = VuStack::default();
    let clock = store.data().clock.clone();
    let instantiate = ctx.plan.pre.instantiate_async(&mut store);
    let guest = match unless_killed(phase, guest_call(&mut stack, &clock, instantiate)).await? {
        Ok(guest) => guest,
        Err(e) => {
            ctx.recorder.task_error("instantiate", &crate::plan::instantiation_error(&e, ctx.plan.images));
            ctx.population.failed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
    };
    let call = guest.wasmload_scenario_scenario().call_on_start(&mut store);
    let result = unless_killed(phase, guest_call(&mut stack, &clock, call)).await?;
    store.data_mut().settle_pending();
    if report_hook(ctx, "on_start", Some(result)) {
        Some(Instance { store, guest, stack, clock })
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

/// Runs `work` unless the run is killed first (then the work is dropped mid-way).
async fn unless_killed<F: Future>(phase: &mut watch::Receiver<Phase>, work: F) -> Option<F::Output> {
    tokio::select! {
        biased;
        out = work => Some(out),
        _ = phase.wait_for(|p| *p == Phase::Killed) => None,
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
fn stopped(e: &wasmtime::Error) -> String {
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
