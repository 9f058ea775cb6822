//! Host-side bindings generated from `wit/` (the only contract with guests).
//!
//! The imports that wait (sending a request, sleeping) are async, so a guest waiting on
//! them suspends its fiber instead of blocking a tokio worker. The others return at once and
//! are plain functions: an async host function costs a boxed future and the fiber's polling
//! machinery on every call, and `vu.id`/`vu.iteration` run once per task in most scenarios.
//! The three `http.send*` functions are defined again over these by `host::http::add_sends`,
//! which reads the guest's request without lifting it into new strings.

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "load-test",
        imports: {
            "wasmload:scenario/http.send": async | exact,
            "wasmload:scenario/http.send-lean": async | exact,
            "wasmload:scenario/http.send-bare": async | exact,
            "wasmload:scenario/vu.sleep": async | exact,
            default: exact,
        },
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
