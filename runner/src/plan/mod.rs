//! Loading a plan: the engine configuration, compiling the component once, checking it was
//! built against our WIT, linking it to the host (`InstancePre`, shared by every VU), and
//! reading the scenario's declared tasks and options.

mod cache;
mod check;
mod give_back;
pub mod image;
mod layout;
mod memories;
mod pack;
mod pagemap;
mod stack_arena;
mod stacks;
mod vu_memory;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use wasmtime::component::Linker;
use wasmtime::{Config, Engine, Store};

use crate::bindings::{LoadTestPre, Plan, WaitTime};
use crate::host::{self, HostShared, VuState};
use crate::limits::{ASYNC_STACK, DESCRIBE_TIMEOUT, MAX_WASM_STACK, PARALLEL_COMPILE_ABOVE};
pub use check::PlanError;
pub use give_back::{give_back_queued, populate_heap_growth, vus_allocate_from_main_heap};
pub use layout::{Layout, MemoryImages, Room, StackMaps, instantiation_error};
pub use vu_memory::VuMemory;

/// A compiled, linked plan ready to instantiate once per VU.
pub struct LoadedPlan {
    pub engine: Engine,
    /// How the engine lays out and initialises VU memories.
    pub layout: Layout,
    pub pre: LoadTestPre<VuState>,
    /// What the scenario declared (tasks, wait time, default options).
    pub plan: Plan,
}

impl std::fmt::Debug for LoadedPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlan").field("tasks", &self.plan.tasks).finish()
    }
}

/// The engine every VU runs in.
///
/// The on-demand allocator is used: measured against the pooling allocator (64 MiB memory
/// reservations, pool sized to the VU count) with 1,000 and 8,000 idle VUs, it used 110
/// against 117 KiB of RSS and 6.9 against 6.0 memory maps per VU and started them as fast,
/// and it needs no sizing before the plan's user count is known. Memory images and
/// reservations are as `layout` says (see `layout`); copied images go into memories the
/// runner makes (`memories`), so that idle VUs can hibernate them. Fiber stacks come from `stacks`,
/// so an idle VU can give its stack's memory back. Epoch interruption lets busy
/// guests yield and lets a stop interrupt them.
///
/// Plans smaller than `PARALLEL_COMPILE_ABOVE` are compiled on one thread: measured with the
/// 107 KB probe plan, that lowers the runner's peak RSS from 22.3 to 20.4 MiB for 0.04 s more;
/// large plans (Python, JavaScript) compile in parallel, which halves their compile time.
///
/// `image` is the plan's memory image (`image::PlanData`), mapped into the memories the
/// runner makes. Returns the engine and whether its memories start as that image, in which
/// case [`load`] gives wasmtime the plan without the segments' bytes
/// (`image::without_active_data`), which the image already holds.
pub fn engine(layout: Layout, plan_size: u64, image: Option<&[u8]>) -> anyhow::Result<PlanEngine> {
    let mut config = Config::new();
    config.parallel_compilation(plan_size > PARALLEL_COMPILE_ABOVE);
    config.epoch_interruption(!crate::limits::limits_off_for_benchmark());
    config.max_wasm_stack(MAX_WASM_STACK);
    config.async_stack_size(ASYNC_STACK);
    config.wasm_component_model(true);
    config.memory_init_cow(layout.images == MemoryImages::CopyOnWrite);
    let image = match layout.images {
        MemoryImages::CopyOnWrite => None,
        MemoryImages::Mapped => Some(image),
        MemoryImages::Copied => Some(None),
    };
    let mut image_mapped = false;
    if let Some(image) = image {
        // Own stacks go in the room below their VU's memory where it maps the image.
        let room = (layout.stacks == StackMaps::Own).then_some(ASYNC_STACK);
        let memories = memories::Memories::new(image, room);
        image_mapped = memories.maps_image();
        config.with_host_memory(Arc::new(memories));
    }
    if let Some(bytes) = layout.reservation.bytes() {
        config.memory_reservation(bytes);
    }
    config.with_host_stack(Arc::new(stacks::Stacks { carve: layout.stacks == StackMaps::Carved }));
    let engine = Engine::new(&config).map_err(|e| anyhow::anyhow!("cannot configure the WebAssembly engine: {e}"))?;
    Ok(PlanEngine { engine, image_mapped })
}

/// What [`engine`] makes.
#[derive(Clone, Debug)]
pub struct PlanEngine {
    pub engine: Engine,
    /// Whether the engine's memories start as the plan's memory image.
    pub image_mapped: bool,
}

/// The bytes of the plan file at `path`: read once, for the layout and engine (its size,
/// `image::read`) and for [`load`].
pub fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read plan file `{}`", path.display()))
}

/// Compiles, checks and links the plan `bytes` read from `path`.
/// `engine` must have been made by [`engine`] with the same `layout`.
pub async fn load(
    path: &Path,
    bytes: &[u8],
    PlanEngine { engine, image_mapped }: PlanEngine,
    layout: Layout,
    shared: &HostShared,
) -> anyhow::Result<LoadedPlan> {
    check::header(path, bytes)?;
    let stripped = if image_mapped { image::without_active_data(bytes) } else { None };
    let component = cache::component(&engine, path, stripped.as_deref().unwrap_or(bytes))?;
    drop(stripped);
    check::world(path, &engine, &component)?;

    let mut linker = Linker::new(&engine);
    host::add_to_linker(&mut linker).map_err(|e| anyhow::anyhow!("cannot set up host functions: {e}"))?;
    let instance_pre = linker.instantiate_pre(&component).map_err(|e| check::link_error(path, &e))?;
    let pre = LoadTestPre::new(instance_pre).map_err(|e| check::link_error(path, &e))?;

    let plan = tokio::time::timeout(DESCRIBE_TIMEOUT, describe(&engine, &pre, shared))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "the plan `{}` did not finish describing its scenario within {DESCRIBE_TIMEOUT:?}",
                path.display()
            )
        })?
        .with_context(|| format!("the plan `{}` failed while describing its scenario", path.display()))?;
    check::plan(&plan)?;
    Ok(LoadedPlan { engine, layout, pre, plan })
}

/// Calls the guest's `describe` on an instance of its own.
async fn describe(engine: &Engine, pre: &LoadTestPre<VuState>, shared: &HostShared) -> anyhow::Result<Plan> {
    let (_aggregator, recorder) = crate::stats::Aggregator::new();
    let mut store = new_store(engine, VuState::new(0, shared, recorder));
    let instance = pre.instantiate_async(&mut store).await.map_err(wasm_error)?;
    instance.wasmload_scenario_scenario().call_describe(&mut store).await.map_err(wasm_error)
}

/// A store for one VU: its memories and tables are limited, and at every epoch tick it
/// yields to other VUs, or stops if the guest is past its compute limit.
pub fn new_store(engine: &Engine, state: VuState) -> Store<VuState> {
    let mut store = Store::new(engine, state);
    if crate::limits::limits_off_for_benchmark() {
        return store;
    }
    store.limiter(VuState::limiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|ctx| ctx.data().on_tick());
    store
}

/// wasmtime's error as an `anyhow` error, keeping its message and trap description.
pub fn wasm_error(e: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{e:#}")
}

impl LoadedPlan {
    /// Cumulative task weights, for weighted picking.
    pub fn cumulative_weights(&self) -> Vec<u64> {
        self.plan
            .tasks
            .iter()
            .scan(0u64, |sum, t| {
                *sum += u64::from(t.weight);
                Some(*sum)
            })
            .collect()
    }

    pub fn wait_time(&self) -> WaitTime {
        self.plan.wait_time
    }
}
