//! k6's `setup` and `teardown`: each runs once, on an instance of its own (VU id 0), before
//! the first VU starts and after the last has stopped. Their requests are recorded like any
//! other; their errors and traps are reported in one line.

use std::time::Duration;

use super::call::guest_call;
use super::vu::stopped;
use crate::host::{HostShared, VuState};
use crate::plan::{LoadedPlan, VuMemory, new_store};
use crate::stats::Recorder;

/// Runs the scenario's `setup`. `Ok(data)` is what it returned for the VUs; `Err` says why
/// the run cannot start.
pub async fn setup(plan: &LoadedPlan, shared: &HostShared, recorder: Recorder) -> Result<Option<String>, String> {
    let mut store = new_store(&plan.engine, VuState::new(0, shared, recorder));
    let mut memory = VuMemory::default();
    let link = store.data().link();
    let guest = guest_call(&mut memory, &link, plan.pre.instantiate_async(&mut store))
        .await
        .map_err(|e| crate::plan::instantiation_error(&e, plan.layout))?;
    let call = guest.wasmload_scenario_scenario().call_setup(&mut store);
    let result = guest_call(&mut memory, &link, call).await;
    store.data_mut().settle_pending();
    match result {
        Ok(Ok(data)) => Ok(data),
        Ok(Err(message)) => Err(message),
        Err(trap) => Err(stopped(&trap)),
    }
}

/// Runs the scenario's `teardown` with `setup`'s data, for at most `limit`; a failure is
/// recorded as a task error named `teardown`.
pub async fn teardown(plan: &LoadedPlan, shared: &HostShared, recorder: Recorder, limit: Duration) {
    let mut store = new_store(&plan.engine, VuState::new(0, shared, recorder.clone()));
    let mut memory = VuMemory::default();
    let link = store.data().link();
    let run = async {
        let guest = guest_call(&mut memory, &link, plan.pre.instantiate_async(&mut store))
            .await
            .map_err(|e| crate::plan::instantiation_error(&e, plan.layout))?;
        let call = guest.wasmload_scenario_scenario().call_teardown(&mut store, shared.setup_data.as_deref());
        let result = guest_call(&mut memory, &link, call).await;
        store.data_mut().settle_pending();
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(message),
            Err(trap) => Err(stopped(&trap)),
        }
    };
    let outcome = match tokio::time::timeout(limit, run).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("teardown did not finish within {limit:?}")),
    };
    if let Err(message) = outcome {
        recorder.task_error("teardown", &message);
    }
}
