//! What a VU's `Store` holds, and the host side of each WIT interface (one file each).

mod http;
mod logs;
mod metrics;
mod offload;
mod sandbox;
mod stdio;
mod vu;

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::LoadTest;
use crate::client::{HttpShared, VuClient};
use crate::stats::Recorder;
pub use http::{PendingResponses, ResponseStash};
pub use offload::Offload;
pub use sandbox::{GuestClock, GuestLimits, show_bytes};

/// Per-run settings every VU's host state starts from.
#[derive(Debug)]
pub struct HostShared {
    pub http: Arc<HttpShared>,
    /// `--env KEY=VALUE` pairs: the only environment a guest sees.
    pub env: Arc<[(String, String)]>,
    pub limits: GuestLimits,
    /// What the scenario's `setup` returned, for `vu.setup-data`.
    pub setup_data: Option<Arc<str>>,
}

/// What a VU's task shares with its store's data: the guest's compute clock, which each
/// call restarts, and the offload on which the task runs the call's HTTP exchanges.
pub struct StoreLink {
    pub clock: GuestClock,
    pub offload: Offload<Box<http::Sender>>,
}

/// The data of one VU's `Store`.
pub struct VuState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// This VU's number, from 1 (0 for the instance that only describes the plan).
    pub id: u32,
    /// The task number being run, from 0.
    pub iteration: u64,
    /// The scenario this VU belongs to, when the run has several.
    pub scenario: Option<Arc<str>>,
    /// How late the current iteration started against its schedule, in microseconds
    /// (open models only; `None` otherwise).
    pub late_by_us: Option<u64>,
    /// The VU's HTTP client and request, out of here while a request is (`http::add_sends`).
    sender: Option<Box<http::Sender>>,
    /// Where a request's exchange goes to run off the VU's fiber, driven by its task.
    offload: Offload<Box<http::Sender>>,
    pending: PendingResponses,
    /// The headers and bodies `send-lean` and `send-bare` left for `response-headers` and
    /// `response-body`.
    kept: ResponseStash,
    recorder: Recorder,
    limits: GuestLimits,
    /// Guest compute since the VU last waited on the host.
    clock: GuestClock,
    setup_data: Option<Arc<str>>,
    /// `--env` pairs, for `vu.env-vars`.
    env: Arc<[(String, String)]>,
    /// This VU's log budget (`vu.log`, stdout, stderr).
    log: logs::GuestLog,
}

impl std::fmt::Debug for VuState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VuState").field("id", &self.id).field("iteration", &self.iteration).finish()
    }
}

impl VuState {
    /// A sandboxed VU: no preopened directories, no sockets, no inherited environment;
    /// stdout and stderr go to the runner's console prefixed with the VU id.
    pub fn new(id: u32, shared: &HostShared, recorder: Recorder) -> Self {
        let mut wasi = WasiCtx::builder();
        let log = logs::GuestLog::new(id, shared.limits.host.log_lines_per_sec, shared.limits.host.log_line);
        wasi.envs(&shared.env)
            .stdout(stdio::GuestOutput::new(log.clone()))
            .stderr(stdio::GuestOutput::new(log.clone()));
        let clock = GuestClock::default();
        let sender = http::Sender::new(VuClient::new(shared.http.clone()), recorder.clone(), clock.clone());
        let mut table = ResourceTable::new();
        table.set_max_capacity(shared.limits.host.host_resources);
        Self {
            wasi: wasi.build(),
            table,
            id,
            iteration: 0,
            late_by_us: None,
            scenario: None,
            sender: Some(Box::new(sender)),
            offload: Offload::default(),
            pending: PendingResponses::default(),
            kept: ResponseStash::default(),
            recorder,
            limits: shared.limits,
            clock,
            setup_data: shared.setup_data.clone(),
            env: shared.env.clone(),
            log,
        }
    }

    /// The limiter of the VU's memories and tables.
    pub fn limiter(&mut self) -> &mut dyn wasmtime::ResourceLimiter {
        &mut self.limits
    }

    /// At an epoch tick that found the guest running: yield, or stop a guest past its
    /// compute limit.
    pub fn on_tick(&self) -> wasmtime::Result<wasmtime::UpdateDeadline> {
        sandbox::on_tick(&self.clock, self.limits.cpu, crate::epoch::last_tick())
    }

    /// What the VU's task shares with this state, for its calls into the store.
    pub fn link(&self) -> StoreLink {
        StoreLink { clock: self.clock.clone(), offload: self.offload.clone() }
    }

    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// Frees the HTTP client's buffers before a long wait.
    pub fn release_buffers(&mut self) {
        if let Some(sender) = &mut self.sender {
            sender.release();
        }
        self.kept = ResponseStash::default();
    }

    /// Records every `catch-response` request the task left unsettled, with its default
    /// outcome, and forgets the response parts kept for `response-headers` and
    /// `response-body`. Called after each guest call.
    pub fn settle_pending(&mut self) {
        self.kept.clear();
        self.pending.settle_all(&self.recorder);
    }
}

impl WasiView for VuState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Adds WASI 0.2 and the runner's own interfaces to `linker`.
pub fn add_to_linker(linker: &mut Linker<VuState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    LoadTest::add_to_linker::<_, HasSelf<_>>(linker, |state| state)?;
    http::add_sends(linker)
}
