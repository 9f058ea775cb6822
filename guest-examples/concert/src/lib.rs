//! The Locust example from the product card, in Rust:
//!
//! ```python
//! class ConcertScenarioUser(HttpUser):
//!     wait_time = between(1, 3)
//!     @task
//!     def festival_info_scenario(self):
//!         for i in range(3):
//!             with self.client.get(f"/concert/{i}", name="/concert/<id>",
//!                                  catch_response=True) as response:
//!                 if response.status_code != 200:
//!                     response.failure(f"Failed /concert/{i}")
//! ```

use wasmload::prelude::*;

#[derive(Default)]
struct ConcertScenarioUser;

impl User for ConcertScenarioUser {
    fn plan() -> Plan<Self> {
        Plan::new().wait_time(between(1.0, 3.0)).task("festival_info_scenario", Self::festival_info_scenario)
    }
}

impl ConcertScenarioUser {
    fn festival_info_scenario(&mut self) -> TaskResult {
        for i in 0..3 {
            let response = get(format!("/concert/{i}")).name("/concert/<id>").catch_response().send()?;
            if response.status() != 200 {
                response.failure(format!("Failed /concert/{i}"));
            }
        }
        Ok(())
    }
}

export_user!(ConcertScenarioUser);
