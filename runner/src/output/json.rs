//! The JSON report (`--json PATH`): the run's settings and the final snapshot, versioned so
//! tools can rely on its shape.

use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

use crate::stats::Snapshot;
use crate::thresholds::Verdict;

/// Bumped when a field changes meaning or disappears (new fields do not bump it).
pub const FORMAT_VERSION: u32 = 1;

/// The settings a run used, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub plan: String,
    pub host: Option<String>,
    /// k6's name for the load model: constant-vus, per-vu-iterations, shared-iterations,
    /// ramping-vus, constant-arrival-rate or ramping-arrival-rate.
    pub executor: &'static str,
    /// The most VUs the run could start.
    pub users: u32,
    /// Users started per second (Locust's model only).
    pub spawn_rate: Option<f64>,
    pub run_time_s: Option<f64>,
    pub iterations_per_vu: Option<u64>,
    /// The run was stopped by Ctrl-C (or SIGTERM) before its end.
    pub interrupted: bool,
    /// Every scenario (one, `default`, unless the plan declares several).
    pub scenarios: Vec<ScenarioInfo>,
    /// Users that could not start: their instance could not be created (for example at a
    /// kernel limit) or their `on_start` failed.
    pub users_failed_to_start: u64,
    /// What the runner itself used: a runner at its CPU limit inflates response times.
    pub runner: super::monitor::RunnerUsage,
}

/// One scenario's settings, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub executor: &'static str,
    pub max_users: u32,
    pub start_s: f64,
    pub run_time_s: Option<f64>,
}

#[derive(Serialize)]
struct Report<'a> {
    format_version: u32,
    runner_version: &'static str,
    run: &'a RunInfo,
    #[serde(flatten)]
    results: &'a Snapshot,
    /// Each threshold with its verdict and the value it was judged on.
    thresholds: &'a [Verdict],
}

/// Writes the report to `path`.
pub fn write(path: &Path, run: &RunInfo, snapshot: &Snapshot, thresholds: &[Verdict]) -> anyhow::Result<()> {
    let text = render(run, snapshot, thresholds)?;
    std::fs::write(path, text).with_context(|| format!("cannot write the JSON report to `{}`", path.display()))
}

/// The report as text.
pub fn render(run: &RunInfo, snapshot: &Snapshot, thresholds: &[Verdict]) -> anyhow::Result<String> {
    let report = Report {
        format_version: FORMAT_VERSION,
        runner_version: env!("CARGO_PKG_VERSION"),
        run,
        results: snapshot,
        thresholds,
    };
    serde_json::to_string_pretty(&report).context("cannot encode the JSON report")
}
