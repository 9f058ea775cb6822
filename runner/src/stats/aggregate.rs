//! Off the hot path: once a second the aggregator empties every thread's shard into the
//! run totals and keeps a short window of recent seconds for the live figures. Snapshots
//! built from the totals feed every output (terminal, summary, JSON).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::custom::{CheckCount, CheckRow, MetricRow, Series, SeriesKey, tags_include};
use super::entry::{Entry, new_histogram, new_window_histogram};
use super::recorder::{ErrorKey, Recorder, Registry, RequestKey, ScenarioShard, TaggedKey, lock};

/// Percentiles shown in the summary, the same as Locust's.
pub const PERCENTILES: [(f64, &str); 11] = [
    (0.50, "50%"),
    (0.66, "66%"),
    (0.75, "75%"),
    (0.80, "80%"),
    (0.90, "90%"),
    (0.95, "95%"),
    (0.98, "98%"),
    (0.99, "99%"),
    (0.999, "99.9%"),
    (0.9999, "99.99%"),
    (1.0, "100%"),
];

/// Seconds of history behind the live figures (Locust uses a 10 s window too).
const WINDOW_SECONDS: usize = 10;

struct WindowSlot {
    at: Instant,
    requests: u64,
    failures: u64,
    latencies: Histogram<u64>,
}

/// Merges shards into totals; owned by the run's reporting loop.
pub struct Aggregator {
    registry: Arc<Registry>,
    started: Instant,
    requests: BTreeMap<RequestKey, Entry>,
    errors: BTreeMap<ErrorKey, u64>,
    task_errors: BTreeMap<ErrorKey, u64>,
    iterations: u64,
    dropped_iterations: u64,
    iteration_durations: Histogram<u64>,
    checks: BTreeMap<String, CheckCount>,
    metrics: BTreeMap<SeriesKey, Series>,
    scenarios: BTreeMap<String, ScenarioShard>,
    tagged: BTreeMap<TaggedKey, Entry>,
    window: VecDeque<WindowSlot>,
}

impl std::fmt::Debug for Aggregator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aggregator").field("rows", &self.requests.len()).finish()
    }
}

impl Aggregator {
    /// A new aggregator and the recorder that feeds it.
    pub fn new() -> (Self, Recorder) {
        let (recorder, registry) = Recorder::new();
        let now = Instant::now();
        let mut window = VecDeque::with_capacity(WINDOW_SECONDS + 1);
        window.push_back(WindowSlot { at: now, requests: 0, failures: 0, latencies: new_window_histogram() });
        let aggregator = Self {
            registry,
            started: now,
            requests: BTreeMap::new(),
            errors: BTreeMap::new(),
            task_errors: BTreeMap::new(),
            iterations: 0,
            dropped_iterations: 0,
            iteration_durations: new_histogram(),
            checks: BTreeMap::new(),
            metrics: BTreeMap::new(),
            scenarios: BTreeMap::new(),
            tagged: BTreeMap::new(),
            window,
        };
        (aggregator, recorder)
    }

    /// Restarts the clock used for requests per second (call when load starts).
    pub fn start_clock(&mut self) {
        self.started = Instant::now();
    }

    /// Forgets everything recorded so far and restarts the clock (the web UI's "reset
    /// stats", as Locust's). What the shards hold now is dropped too.
    pub fn reset(&mut self) {
        self.collect();
        let registry = self.registry.clone();
        *self = Self { registry, ..Self::new().0 };
    }

    /// Moves everything the shards recorded since the last call into the totals.
    pub fn collect(&mut self) {
        let mut slot = WindowSlot { at: Instant::now(), requests: 0, failures: 0, latencies: new_window_histogram() };
        for shard in self.registry.shards() {
            let mut shard = lock(&shard);
            for (key, entry) in shard.requests.iter_mut() {
                if entry.requests == 0 {
                    continue;
                }
                slot.requests += entry.requests;
                slot.failures += entry.failures;
                match self.requests.get_mut(key) {
                    Some(total) => total.merge(entry),
                    None => {
                        self.requests.insert(key.clone(), entry.clone());
                    }
                }
                entry.reset();
            }
            for (key, n) in shard.errors.drain() {
                *self.errors.entry(key).or_default() += n;
            }
            for (key, n) in shard.task_errors.drain() {
                *self.task_errors.entry(key).or_default() += n;
            }
            self.iterations += std::mem::take(&mut shard.iterations);
            self.dropped_iterations += std::mem::take(&mut shard.dropped_iterations);
            if let Some(durations) = shard.iteration_durations.as_mut() {
                let _ = self.iteration_durations.add(&*durations);
                durations.reset();
            }
            for (name, part) in shard.scenarios.iter_mut() {
                let total = self.scenarios.entry(name.clone()).or_default();
                total.requests.merge(&part.requests);
                total.iterations += std::mem::take(&mut part.iterations);
                total.dropped_iterations += std::mem::take(&mut part.dropped_iterations);
                part.requests.reset();
            }
            for (key, entry) in shard.tagged.iter_mut().filter(|(_, e)| e.requests > 0) {
                self.tagged.entry(key.clone()).or_default().merge(entry);
                entry.reset();
            }
            for (name, count) in shard.checks.drain() {
                let total = self.checks.entry(name).or_default();
                total.passes += count.passes;
                total.fails += count.fails;
            }
            for (key, series) in shard.metrics.drain() {
                match self.metrics.get_mut(&key) {
                    Some(total) => total.merge(&series),
                    None => {
                        self.metrics.insert(key, series);
                    }
                }
            }
            if let Some(window) = shard.window.as_mut() {
                let _ = slot.latencies.add(&*window);
                window.reset();
            }
        }
        self.window.push_back(slot);
        while self.window.len() > WINDOW_SECONDS + 1 {
            self.window.pop_front();
        }
    }

    /// The totals so far, with `users` VUs running.
    pub fn snapshot(&self, users: u64) -> Snapshot {
        let elapsed = self.started.elapsed();
        let secs = elapsed.as_secs_f64().max(1e-9);
        let mut aggregated = Entry::default();
        let rows = self
            .requests
            .iter()
            .map(|(key, entry)| {
                aggregated.merge(entry);
                StatsRow::new(&key.method, &key.name, entry, secs)
            })
            .collect();
        let (current_rps, current_failures_per_s, current_percentiles) = self.current();
        let current_p95_ms = current_percentiles.iter().find(|(l, _)| l == "95%").map_or(0.0, |(_, v)| *v);
        Snapshot {
            elapsed_s: elapsed.as_secs_f64(),
            users,
            iterations: self.iterations,
            dropped_iterations: self.dropped_iterations,
            checks: self
                .checks
                .iter()
                .map(|(name, c)| CheckRow { name: name.clone(), passes: c.passes, fails: c.fails })
                .collect(),
            metrics: self.metrics.iter().map(|(key, series)| MetricRow::new(key, series)).collect(),
            scenarios: self
                .scenarios
                .iter()
                .map(|(name, s)| ScenarioRow {
                    name: name.clone(),
                    iterations: s.iterations,
                    dropped_iterations: s.dropped_iterations,
                    requests: StatsRow::new("", name, &s.requests, secs),
                })
                .collect(),
            tagged: self
                .tagged
                .iter()
                .map(|(key, entry)| TaggedRow {
                    tags: key.tags.clone(),
                    row: StatsRow::new(&key.method, &key.name, entry, secs),
                })
                .collect(),
            rows,
            iteration_duration_ms: DurationSummary::of(&self.iteration_durations),
            aggregated: StatsRow::new("", "Aggregated", &aggregated, secs),
            errors: error_rows(&self.errors),
            task_errors: error_rows(&self.task_errors),
            current_rps,
            current_failures_per_s,
            current_p95_ms,
            current_percentiles,
        }
    }

    /// Every request whose method and name pass `keep`, merged into one entry.
    pub fn requests_where(&self, keep: impl Fn(&str, &str) -> bool) -> Entry {
        let mut all = Entry::default();
        for (key, entry) in &self.requests {
            if keep(&key.method, &key.name) {
                all.merge(entry);
            }
        }
        all
    }

    /// How long iterations took, in microseconds.
    /// Every (method, name) row's statistics since the start.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, &Entry)> {
        self.requests.iter().map(|(key, entry)| (key.method.as_str(), key.name.as_str(), entry))
    }

    pub fn iteration_durations(&self) -> &Histogram<u64> {
        &self.iteration_durations
    }

    /// Iterations finished and iterations dropped, in all or in one scenario.
    pub fn iteration_counts(&self, scenario: Option<&str>) -> (u64, u64) {
        match scenario {
            None => (self.iterations, self.dropped_iterations),
            Some(name) => self.scenarios.get(name).map_or((0, 0), |s| (s.iterations, s.dropped_iterations)),
        }
    }

    /// The tagged requests whose method and name pass `keep` and whose tags include all of
    /// `wanted`, merged.
    pub fn tagged_where(&self, keep: impl Fn(&str, &str) -> bool, wanted: &[(String, String)]) -> Entry {
        let mut all = Entry::default();
        for (key, entry) in &self.tagged {
            if keep(&key.method, &key.name) && tags_include(&key.tags, wanted) {
                all.merge(entry);
            }
        }
        all
    }

    /// The requests of one scenario, merged (empty if it made none).
    pub fn scenario_requests(&self, scenario: &str) -> Entry {
        self.scenarios.get(scenario).map(|s| s.requests.clone()).unwrap_or_default()
    }

    /// Checks' totals whose name passes `keep`.
    pub fn checks_where(&self, keep: impl Fn(&str) -> bool) -> CheckCount {
        let mut all = CheckCount::default();
        for (_, count) in self.checks.iter().filter(|(name, _)| keep(name)) {
            all.passes += count.passes;
            all.fails += count.fails;
        }
        all
    }

    /// The series of custom metric `name` whose tags pass `keep`, merged; `None` when the
    /// scenario recorded no such series.
    pub fn metric_where(&self, name: &str, keep: impl Fn(&SeriesKey) -> bool) -> Option<Series> {
        let mut merged: Option<Series> = None;
        for (_, series) in self.metrics.iter().filter(|(key, _)| key.name == name && keep(key)) {
            match &mut merged {
                Some(total) => total.merge(series),
                None => merged = Some(series.clone()),
            }
        }
        merged
    }

    /// Seconds since the clock started.
    pub fn elapsed_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Requests/s, failures/s and the percentiles over the recent window.
    fn current(&self) -> (f64, f64, Vec<(String, f64)>) {
        let (Some(first), Some(last)) = (self.window.front(), self.window.back()) else {
            return (0.0, 0.0, Vec::new());
        };
        let span = last.at.duration_since(first.at).max(Duration::from_millis(1)).as_secs_f64();
        let mut requests = 0;
        let mut failures = 0;
        let mut latencies = new_window_histogram();
        // The first slot only marks where the window starts.
        for slot in self.window.iter().skip(1) {
            requests += slot.requests;
            failures += slot.failures;
            let _ = latencies.add(&slot.latencies);
        }
        let percentiles = PERCENTILES
            .iter()
            .map(|&(q, label)| {
                let value = if latencies.is_empty() { 0.0 } else { ms(latencies.value_at_quantile(q)) };
                (label.to_owned(), value)
            })
            .collect();
        (requests as f64 / span, failures as f64 / span, percentiles)
    }
}

fn error_rows(map: &BTreeMap<ErrorKey, u64>) -> Vec<ErrorRow> {
    let mut rows: Vec<ErrorRow> = map
        .iter()
        .map(|(key, &occurrences)| ErrorRow {
            method: key.method.clone(),
            name: key.name.clone(),
            error: key.message.clone(),
            occurrences,
        })
        .collect();
    rows.sort_by_key(|row| std::cmp::Reverse(row.occurrences));
    rows
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Everything measured so far; the input of every output.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub elapsed_s: f64,
    pub users: u64,
    pub iterations: u64,
    /// Iterations an open model (arrival rate) could not start because every VU was busy.
    pub dropped_iterations: u64,
    /// Named checks recorded by the scenario, by name.
    pub checks: Vec<CheckRow>,
    /// Custom metrics recorded by the scenario, by name and tags.
    pub metrics: Vec<MetricRow>,
    /// Requests the scenario tagged, per method, name and tag set.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tagged: Vec<TaggedRow>,
    /// Per scenario, when the run has several (k6 `scenarios`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scenarios: Vec<ScenarioRow>,
    pub rows: Vec<StatsRow>,
    pub aggregated: StatsRow,
    pub errors: Vec<ErrorRow>,
    pub task_errors: Vec<ErrorRow>,
    /// How long iterations (a task and its wait) took, in milliseconds.
    pub iteration_duration_ms: DurationSummary,
    /// Over the last few seconds.
    pub current_rps: f64,
    pub current_failures_per_s: f64,
    pub current_p95_ms: f64,
    /// All requests' percentiles over the last few seconds (`(label, ms)`, 50 % .. 100 %).
    pub current_percentiles: Vec<(String, f64)>,
}

/// A distribution in milliseconds: k6's `avg min med max p(90) p(95)`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DurationSummary {
    pub avg: f64,
    pub min: f64,
    pub med: f64,
    pub max: f64,
    pub p90: f64,
    pub p95: f64,
}

impl DurationSummary {
    /// From a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            avg: h.mean() / 1000.0,
            min: ms(h.min()),
            med: ms(h.value_at_quantile(0.5)),
            max: ms(h.max()),
            p90: ms(h.value_at_quantile(0.9)),
            p95: ms(h.value_at_quantile(0.95)),
        }
    }
}

/// The requests of one method, name and tag set.
#[derive(Debug, Clone, Serialize)]
pub struct TaggedRow {
    /// `k:v` pairs, comma-separated.
    pub tags: String,
    #[serde(flatten)]
    pub row: StatsRow,
}

/// One scenario's totals.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioRow {
    pub name: String,
    pub iterations: u64,
    pub dropped_iterations: u64,
    /// Its requests together (the row's name is the scenario's).
    pub requests: StatsRow,
}

/// One row of the statistics table. Times in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct StatsRow {
    pub method: String,
    pub name: String,
    pub requests: u64,
    pub failures: u64,
    pub avg_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub median_ms: f64,
    pub avg_size_bytes: f64,
    pub rps: f64,
    pub failures_per_s: f64,
    /// `(label, milliseconds)` for 50 % .. 100 %.
    pub percentiles: Vec<(String, f64)>,
    /// The same percentiles corrected for coordinated omission: measured from when each
    /// request's iteration was scheduled to start, not from when it started. Only in
    /// open-model (arrival-rate) runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corrected_percentiles: Option<Vec<(String, f64)>>,
    /// Where the time went (k6's `http_req_connecting`, `_waiting`, `_receiving`).
    pub timings: TimingsRow,
}

/// The time breakdown of one row. Milliseconds; connecting is over new connections only.
#[derive(Debug, Clone, Serialize)]
pub struct TimingsRow {
    pub connections_opened: u64,
    pub avg_connecting_ms: f64,
    pub max_connecting_ms: f64,
    pub avg_waiting_ms: f64,
    pub p95_waiting_ms: f64,
    pub avg_receiving_ms: f64,
    pub p95_receiving_ms: f64,
}

impl TimingsRow {
    fn new(entry: &Entry) -> Self {
        let mean = |h: &Histogram<u64>| if h.is_empty() { 0.0 } else { h.mean() / 1000.0 };
        let p95 = |h: &Histogram<u64>| if h.is_empty() { 0.0 } else { ms(h.value_at_quantile(0.95)) };
        Self {
            connections_opened: entry.connecting.len(),
            avg_connecting_ms: mean(&entry.connecting),
            max_connecting_ms: if entry.connecting.is_empty() { 0.0 } else { ms(entry.connecting.max()) },
            avg_waiting_ms: mean(&entry.waiting),
            p95_waiting_ms: p95(&entry.waiting),
            avg_receiving_ms: mean(&entry.receiving),
            p95_receiving_ms: p95(&entry.receiving),
        }
    }
}

impl StatsRow {
    fn new(method: &str, name: &str, entry: &Entry, secs: f64) -> Self {
        Self {
            method: method.to_owned(),
            name: name.to_owned(),
            requests: entry.requests,
            failures: entry.failures,
            avg_ms: entry.avg_us() / 1000.0,
            min_ms: ms(entry.min_us()),
            max_ms: ms(entry.max_us),
            median_ms: ms(entry.percentile_us(0.5)),
            avg_size_bytes: entry.avg_bytes(),
            rps: entry.requests as f64 / secs,
            failures_per_s: entry.failures as f64 / secs,
            percentiles: PERCENTILES.iter().map(|&(q, label)| (label.to_owned(), ms(entry.percentile_us(q)))).collect(),
            corrected_percentiles: entry.corrected_percentile_us(0.5).map(|_| {
                PERCENTILES
                    .iter()
                    .map(|&(q, label)| (label.to_owned(), ms(entry.corrected_percentile_us(q).unwrap_or(0))))
                    .collect()
            }),
            timings: TimingsRow::new(entry),
        }
    }

    /// Share of requests that failed, 0..=1.
    pub fn failure_ratio(&self) -> f64 {
        if self.requests == 0 { 0.0 } else { self.failures as f64 / self.requests as f64 }
    }
}

/// One line of an error report.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorRow {
    pub method: String,
    pub name: String,
    pub error: String,
    pub occurrences: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Outcome, Sample};

    #[test]
    fn samples_from_many_threads_are_all_counted_once() {
        let (mut aggregator, recorder) = Aggregator::new();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let recorder = recorder.clone();
                std::thread::spawn(move || {
                    for i in 0..1000u64 {
                        let failed = i % 10 == 0;
                        recorder.request(&Sample {
                            method: "GET",
                            name: if t % 2 == 0 { "/a" } else { "/b" },
                            elapsed_us: 1000 + i,
                            corrected_us: None,
                            phases: None,
                            scenario: None,
                            tags: "",
                            bytes: 2,
                            status: 200,
                            outcome: if failed { Outcome::Failure("HTTP 500") } else { Outcome::Success },
                        });
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("recording thread");
        }
        aggregator.collect();
        aggregator.collect(); // a second pass must not count anything twice
        let snap = aggregator.snapshot(0);
        assert_eq!(snap.aggregated.requests, 4000);
        assert_eq!(snap.aggregated.failures, 400);
        assert_eq!(snap.rows.len(), 2);
        assert!(snap.rows.iter().all(|r| r.requests == 2000));
        assert_eq!(snap.errors.len(), 2);
        assert_eq!(snap.errors.iter().map(|e| e.occurrences).sum::<u64>(), 400);
        assert_eq!(snap.aggregated.percentiles.len(), PERCENTILES.len());
    }

    #[test]
    fn live_percentiles_are_within_a_percent_and_the_totals_within_a_tenth() {
        let (mut aggregator, recorder) = Aggregator::new();
        // 1.000 ms .. 100.000 ms in 1,000 steps: each percentile is one of these values.
        for i in 1..=1000u64 {
            recorder.request(&Sample::get_ok(i * 100));
        }
        aggregator.collect();
        let snap = aggregator.snapshot(0);
        let find = |rows: &[(String, f64)], label: &str| rows.iter().find(|(l, _)| l == label).map(|(_, v)| *v);
        for (label, exact_ms) in [("50%", 50.0), ("95%", 95.0), ("99%", 99.0)] {
            let live = find(&snap.current_percentiles, label).expect("a live percentile");
            let total = find(&snap.aggregated.percentiles, label).expect("a total percentile");
            assert!((live - exact_ms).abs() <= exact_ms * 0.01, "live {label}: {live} ms, exact {exact_ms}");
            assert!((total - exact_ms).abs() <= exact_ms * 0.001, "total {label}: {total} ms, exact {exact_ms}");
        }
    }

    #[test]
    fn recorders_of_different_runs_do_not_mix() {
        let (mut first, rec_first) = Aggregator::new();
        let (mut second, rec_second) = Aggregator::new();
        let sample = Sample::get_ok(5);
        rec_first.request(&sample);
        rec_second.request(&sample);
        rec_second.request(&sample);
        first.collect();
        second.collect();
        assert_eq!(first.snapshot(0).aggregated.requests, 1);
        assert_eq!(second.snapshot(0).aggregated.requests, 2);
    }
}
