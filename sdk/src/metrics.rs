//! Checks and custom metrics (k6's `check`, `Counter`, `Gauge`, `Rate` and `Trend`),
//! recorded on the host and shown in the summary and the JSON report.

use crate::__private::bindings::wasmload::scenario::metrics as wit;

/// Records the named check and returns `passed`, so it reads like k6's `check`:
/// `check("status is 200", response.status() == 200)`. A failed check does not fail the
/// request; fail it with `Response::failure` if it should.
pub fn check(name: &str, passed: bool) -> bool {
    wit::check(name, passed);
    passed
}

/// A custom metric: `Metric::trend("waiting_ms").add(12.5)`.
#[derive(Debug, Clone)]
pub struct Metric {
    name: String,
    kind: wit::MetricKind,
}

impl Metric {
    /// A running sum (k6 `Counter`).
    pub fn counter(name: &str) -> Self {
        Self { name: name.to_owned(), kind: wit::MetricKind::Counter }
    }

    /// The last value set, with its minimum and maximum (k6 `Gauge`).
    pub fn gauge(name: &str) -> Self {
        Self { name: name.to_owned(), kind: wit::MetricKind::Gauge }
    }

    /// The share of values that are not zero (k6 `Rate`); add `1.0`/`0.0` or use `add_bool`.
    pub fn rate(name: &str) -> Self {
        Self { name: name.to_owned(), kind: wit::MetricKind::Rate }
    }

    /// A distribution with average, minimum, maximum and percentiles (k6 `Trend`).
    pub fn trend(name: &str) -> Self {
        Self { name: name.to_owned(), kind: wit::MetricKind::Trend }
    }

    pub fn add(&self, value: f64) {
        wit::add(&self.name, self.kind, value, &[]);
    }

    /// Adds a value in the series of these tags (name, value).
    pub fn add_tagged(&self, value: f64, tags: &[(&str, &str)]) {
        let tags: Vec<(String, String)> = tags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        wit::add(&self.name, self.kind, value, &tags);
    }

    /// For rates: `true` counts as 1, `false` as 0.
    pub fn add_bool(&self, value: bool) {
        self.add(if value { 1.0 } else { 0.0 });
    }
}
