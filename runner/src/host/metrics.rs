//! `wasmload:scenario/metrics`: the scenario's named checks and custom metrics, recorded in
//! the VU thread's statistics shard. Names and tags are cut to `MAX_NAME_BYTES`; a scenario
//! past `MAX_METRIC_SERIES` series, or mixing kinds under one name, gets one task error
//! per distinct reason instead of unbounded memory.

use super::VuState;
use super::vu::truncate;
use crate::bindings::metrics::{Host, MetricKind as WitKind};
use crate::limits::MAX_NAME_BYTES;
use crate::stats::MetricKind;

impl Host for VuState {
    fn check(&mut self, name: String, passed: bool) {
        if let Err(message) = self.recorder.check(truncate(&name, MAX_NAME_BYTES), passed) {
            self.recorder.task_error("metrics", &message);
        }
    }

    fn add(&mut self, name: String, kind: WitKind, value: f64, tags: Vec<(String, String)>) {
        let kind = match kind {
            WitKind::Counter => MetricKind::Counter,
            WitKind::Gauge => MetricKind::Gauge,
            WitKind::Rate => MetricKind::Rate,
            WitKind::Trend => MetricKind::Trend,
        };
        let mut tags: Vec<(String, String)> = tags
            .into_iter()
            .map(|(k, v)| (truncate(&k, MAX_NAME_BYTES).to_owned(), truncate(&v, MAX_NAME_BYTES).to_owned()))
            .collect();
        // Every metric carries its scenario, when the run has several.
        if let Some(scenario) = &self.scenario
            && !tags.iter().any(|(k, _)| k == "scenario")
        {
            tags.push(("scenario".to_owned(), scenario.to_string()));
        }
        if let Err(message) = self.recorder.metric(truncate(&name, MAX_NAME_BYTES), kind, value, &tags) {
            self.recorder.task_error("metrics", &message);
        }
    }
}
