//! Write load-test scenarios in Rust for the `runner` (a Locust-like API over the
//! `wasmload:scenario` WIT contract).
//!
//! ```ignore
//! use wasmload::prelude::*;
//!
//! #[derive(Default)]
//! struct ConcertScenarioUser;
//!
//! impl User for ConcertScenarioUser {
//!     fn plan() -> Plan<Self> {
//!         Plan::new()
//!             .wait_time(between(1.0, 3.0))
//!             .task("festival_info_scenario", Self::festival_info_scenario)
//!     }
//! }
//!
//! impl ConcertScenarioUser {
//!     fn festival_info_scenario(&mut self) -> TaskResult {
//!         for i in 0..3 {
//!             let response = get(format!("/concert/{i}")).name("/concert/<id>").catch_response().send()?;
//!             if response.status() != 200 {
//!                 response.failure(format!("Failed /concert/{i}"));
//!             }
//!         }
//!         Ok(())
//!     }
//! }
//!
//! export_user!(ConcertScenarioUser);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2` (crate type `cdylib`) and run
//! the `.wasm` with `runner run`. Each virtual user is its own instance of the component,
//! so a user's struct is private to that user.

// The generated bindings name this crate by its public path, from inside it too.
extern crate self as wasmload;

mod client;
pub mod metrics;
mod plan;
mod response;
mod user;
pub mod vu;

pub use client::{HttpError, RequestBuilder, delete, get, head, patch, post, put, request};
pub use metrics::{Metric, check};
pub use plan::{Load, LoadModel, Plan, Scenario, WaitTime, between, constant, constant_pacing, constant_throughput};
pub use response::Response;
pub use user::{Error, TaskResult, User};

/// Everything a scenario usually needs.
pub mod prelude {
    pub use crate::export_user;
    pub use crate::vu::{self, Level};
    pub use crate::{
        Error, HttpError, LoadModel, Metric, Plan, Response, Scenario, TaskResult, User, WaitTime, between, check,
        constant, constant_pacing, constant_throughput, delete, get, head, patch, post, put, request,
    };
}

/// Glue used by `export_user!`; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::user::{describe, on_start, on_stop, run_task, setup, teardown};
    pub use wit_bindgen;

    pub mod bindings {
        wit_bindgen::generate!({
            path: "../wit",
            world: "load-test",
            pub_export_macro: true,
            export_macro_name: "__export_load_test",
            default_bindings_module: "::wasmload::__private::bindings",
            runtime_path: "::wasmload::__private::wit_bindgen::rt",
        });
    }

    pub use bindings::exports::wasmload::scenario::scenario::{Guest, Plan as WitPlan};
}

/// Exports `$user` (a type implementing [`User`]) as the scenario of this component.
#[macro_export]
macro_rules! export_user {
    ($user:ty) => {
        const _: () = {
            struct __WasmloadScenario;

            impl $crate::__private::Guest for __WasmloadScenario {
                fn describe() -> $crate::__private::WitPlan {
                    $crate::__private::describe::<$user>()
                }
                fn on_start() -> ::core::result::Result<(), ::std::string::String> {
                    $crate::__private::on_start::<$user>()
                }
                fn run_task(index: u32) -> ::core::result::Result<(), ::std::string::String> {
                    $crate::__private::run_task::<$user>(index)
                }
                fn on_stop() -> ::core::result::Result<(), ::std::string::String> {
                    $crate::__private::on_stop::<$user>()
                }
                fn setup() -> ::core::result::Result<::core::option::Option<::std::string::String>, ::std::string::String> {
                    $crate::__private::setup::<$user>()
                }
                fn teardown(
                    data: ::core::option::Option<::std::string::String>,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    $crate::__private::teardown::<$user>(data)
                }
            }

            $crate::__private::bindings::__export_load_test!(__WasmloadScenario with_types_in $crate::__private::bindings);
        };
    };
}
