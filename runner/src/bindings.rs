//! Host-side bindings generated from `wit/` (the only contract with guests).
//!
//! Every import is async so a guest waiting on HTTP or sleep suspends its fiber instead of
//! blocking a tokio worker.

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "load-test",
        imports: { default: async },
        exports: { default: async },
    });
}

pub use generated::LoadTest;
pub use generated::LoadTestPre;
pub use generated::exports::wasmload::scenario::scenario::{
    Options, Plan, ScenarioOptions, ShapeStep, Stage, Task, WaitTime,
};
pub use generated::wasmload::scenario::http;
pub use generated::wasmload::scenario::metrics;
pub use generated::wasmload::scenario::vu;

/// The WIT package every plan must be built against, and the versions the runner accepts.
pub const WIT_PACKAGE: &str = "wasmload:scenario";
/// Semver-compatible versions accepted (`0.1.x`).
pub const WIT_VERSION: &str = "0.1.0";
