//! The hot path: each worker thread records into its own shard, so recording a request
//! takes an uncontended lock on memory only that thread writes to. The aggregator visits
//! every shard once a second and moves what it finds into the run totals.

use std::cell::RefCell;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use hashbrown::{Equivalent, HashMap};

use super::custom::{CheckCount, MetricKind, Series, SeriesKey};
use super::entry::{Entry, new_histogram, new_window_histogram};
use crate::client::Phases;
use crate::limits::metric_series;

/// One finished request, as the HTTP host saw it.
#[derive(Debug)]
pub struct Sample<'a> {
    pub method: &'a str,
    pub name: &'a str,
    pub elapsed_us: u64,
    /// Latency from the iteration's scheduled start (open models only): `elapsed_us` plus
    /// how late the iteration started.
    pub corrected_us: Option<u64>,
    /// Where the time went; `None` when no response arrived.
    pub phases: Option<Phases>,
    /// The scenario that made it, when the run has several.
    pub scenario: Option<&'a str>,
    /// The guest's tags, `k:v` pairs sorted and joined by commas (empty: none).
    pub tags: &'a str,
    pub bytes: u64,
    /// The response's status, 0 when no response arrived.
    pub status: u16,
    pub outcome: Outcome<'a>,
}

#[cfg(test)]
impl Sample<'static> {
    /// A successful `GET /` with a 200 that took `elapsed_us` (tests change what they need).
    pub fn get_ok(elapsed_us: u64) -> Self {
        Sample {
            method: "GET",
            name: "/",
            elapsed_us,
            corrected_us: None,
            phases: None,
            scenario: None,
            tags: "",
            bytes: 0,
            status: 200,
            outcome: Outcome::Success,
        }
    }
}

/// Whether a request counts as a success, and if not, the message for the error report.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    Success,
    Failure(&'a str),
}

/// A statistics key: request method and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct RequestKey {
    pub method: String,
    pub name: String,
}

/// The same key borrowed, so the hot path looks entries up without allocating.
#[derive(Hash)]
struct RequestKeyRef<'a> {
    method: &'a str,
    name: &'a str,
}

impl Equivalent<RequestKey> for RequestKeyRef<'_> {
    fn equivalent(&self, key: &RequestKey) -> bool {
        self.method == key.method && self.name == key.name
    }
}

/// A tagged-requests key: method, name and the tag set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct TaggedKey {
    pub method: String,
    pub name: String,
    pub tags: String,
}

/// An error-report key: where the error happened and its message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct ErrorKey {
    pub method: String,
    pub name: String,
    pub message: String,
}

struct ErrorKeyRef<'a> {
    method: &'a str,
    name: &'a str,
    message: &'a str,
}

impl Hash for ErrorKeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must hash exactly like the derived `Hash` of `ErrorKey`.
        self.method.hash(state);
        self.name.hash(state);
        self.message.hash(state);
    }
}

impl Equivalent<ErrorKey> for ErrorKeyRef<'_> {
    fn equivalent(&self, key: &ErrorKey) -> bool {
        self.method == key.method && self.name == key.name && self.message == key.message
    }
}

/// A `TaggedKey` has the same shape as an `ErrorKey` (three strings hashed in order).
impl Equivalent<TaggedKey> for ErrorKeyRef<'_> {
    fn equivalent(&self, key: &TaggedKey) -> bool {
        self.method == key.method && self.name == key.name && self.message == key.tags
    }
}

/// What one thread recorded since the aggregator last visited.
#[derive(Default)]
pub(super) struct Shard {
    pub requests: HashMap<RequestKey, Entry>,
    /// Request failures by message (the error report).
    pub errors: HashMap<ErrorKey, u64>,
    /// Task errors and guest traps by task and message.
    pub task_errors: HashMap<ErrorKey, u64>,
    pub iterations: u64,
    /// How long each iteration took (task and wait), in microseconds.
    pub iteration_durations: Option<hdrhistogram::Histogram<u64>>,
    /// Named checks.
    pub checks: HashMap<String, CheckCount>,
    /// Custom metrics by series.
    pub metrics: HashMap<SeriesKey, Series>,
    /// Iterations an open model could not start: every VU was busy.
    pub dropped_iterations: u64,
    /// Per scenario, when the run has several.
    pub scenarios: HashMap<String, ScenarioShard>,
    /// Requests the guest tagged, per method, name and tag set.
    pub tagged: HashMap<TaggedKey, Entry>,
    /// All requests together, for the live percentiles of the last few seconds.
    pub window: Option<hdrhistogram::Histogram<u64>>,
}

impl Shard {
    /// Checks, custom metric series and tagged request series held.
    fn series(&self) -> usize {
        self.checks.len() + self.metrics.len() + self.tagged.len()
    }

    /// Records a tagged request in its series, unless that would pass `limits::metric_series()`
    /// (the request is still counted in its row).
    fn record_tagged(&mut self, sample: &Sample<'_>, failed: bool) {
        let key = ErrorKeyRef { method: sample.method, name: sample.name, message: sample.tags };
        if let Some(entry) = self.tagged.get_mut(&key) {
            entry.record_sample(sample, failed);
        } else if self.series() < metric_series() {
            let mut entry = Entry::default();
            entry.record_sample(sample, failed);
            let key = TaggedKey {
                method: sample.method.to_owned(),
                name: sample.name.to_owned(),
                tags: sample.tags.to_owned(),
            };
            self.tagged.insert(key, entry);
        }
    }

    fn record(&mut self, sample: &Sample<'_>) {
        let key = RequestKeyRef { method: sample.method, name: sample.name };
        let failed = matches!(sample.outcome, Outcome::Failure(_));
        match self.requests.get_mut(&key) {
            Some(entry) => entry.record_sample(sample, failed),
            None => {
                let mut entry = Entry::default();
                entry.record_sample(sample, failed);
                self.requests
                    .insert(RequestKey { method: sample.method.to_owned(), name: sample.name.to_owned() }, entry);
            }
        }
        if let Outcome::Failure(message) = sample.outcome {
            count_error(&mut self.errors, sample.method, sample.name, message);
        }
        if let Some(scenario) = sample.scenario {
            self.scenario(scenario).requests.record_sample(sample, failed);
        }
        if !sample.tags.is_empty() {
            self.record_tagged(sample, failed);
        }
        let _ = self.window.get_or_insert_with(new_window_histogram).record(sample.elapsed_us.max(1));
    }
}

fn count_error(map: &mut HashMap<ErrorKey, u64>, method: &str, name: &str, message: &str) {
    let key = ErrorKeyRef { method, name, message };
    match map.get_mut(&key) {
        Some(n) => *n += 1,
        None => {
            map.insert(ErrorKey { method: method.to_owned(), name: name.to_owned(), message: message.to_owned() }, 1);
        }
    }
}

fn too_many_series() -> String {
    format!("more than {} checks and custom metric series: later ones are not recorded", metric_series())
}

/// One scenario's share of a shard.
#[derive(Default, Clone)]
pub(super) struct ScenarioShard {
    pub requests: Entry,
    pub iterations: u64,
    pub dropped_iterations: u64,
}

impl Shard {
    fn scenario(&mut self, name: &str) -> &mut ScenarioShard {
        if !self.scenarios.contains_key(name) {
            self.scenarios.insert(name.to_owned(), ScenarioShard::default());
        }
        self.scenarios.get_mut(name).expect("just inserted")
    }
}

/// Every shard of one run. Shared by the recorders (to register) and the aggregator.
#[derive(Default)]
pub(super) struct Registry {
    id: u64,
    shards: Mutex<Vec<Arc<Mutex<Shard>>>>,
}

impl Registry {
    pub fn shards(&self) -> Vec<Arc<Mutex<Shard>>> {
        lock(&self.shards).clone()
    }
}

/// Locks a mutex, ignoring poisoning: a panicked recorder leaves counters that are still
/// the best record of what happened.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

static NEXT_REGISTRY: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's shard and the registry it belongs to (a process can hold several
    /// runs over its life, for example in tests).
    static SHARD: RefCell<Option<(u64, Arc<Mutex<Shard>>)>> = const { RefCell::new(None) };
}

/// Records samples into the calling thread's shard. Cheap to clone; one per VU.
#[derive(Clone)]
pub struct Recorder {
    registry: Arc<Registry>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").field("registry", &self.registry.id).finish()
    }
}

impl Recorder {
    pub(super) fn new() -> (Self, Arc<Registry>) {
        let registry =
            Arc::new(Registry { id: NEXT_REGISTRY.fetch_add(1, Ordering::Relaxed), shards: Mutex::default() });
        (Self { registry: registry.clone() }, registry)
    }

    /// Records one request.
    pub fn request(&self, sample: &Sample<'_>) {
        self.with_shard(|shard| shard.record(sample));
    }

    /// Records a task that ended in an error or a trap.
    pub fn task_error(&self, task: &str, message: &str) {
        self.with_shard(|shard| count_error(&mut shard.task_errors, "TASK", task, message));
    }

    /// Records one finished iteration (its task) that took `elapsed_us`.
    pub fn iteration(&self, elapsed_us: u64, scenario: Option<&str>) {
        self.with_shard(|shard| {
            shard.iterations += 1;
            if let Some(scenario) = scenario {
                shard.scenario(scenario).iterations += 1;
            }
            let _ = shard.iteration_durations.get_or_insert_with(new_histogram).record(elapsed_us.max(1));
        });
    }

    /// Records a check's outcome. `Err` says why it was refused (too many series).
    pub fn check(&self, name: &str, passed: bool) -> Result<(), String> {
        self.with_shard(|shard| {
            if !shard.checks.contains_key(name) && shard.series() >= metric_series() {
                return Err(too_many_series());
            }
            let count = match shard.checks.get_mut(name) {
                Some(count) => count,
                None => shard.checks.entry(name.to_owned()).or_default(),
            };
            if passed {
                count.passes += 1;
            } else {
                count.fails += 1;
            }
            Ok(())
        })
    }

    /// Adds `value` to a custom metric series. `Err` says why it was refused (too many
    /// series, or the metric was first recorded with another kind).
    pub fn metric(&self, name: &str, kind: MetricKind, value: f64, tags: &[(String, String)]) -> Result<(), String> {
        let key = SeriesKey::new(name, tags);
        self.with_shard(|shard| {
            if !shard.metrics.contains_key(&key) && shard.series() >= metric_series() {
                return Err(too_many_series());
            }
            let series = shard.metrics.entry(key).or_insert_with(|| Series::new(kind));
            if series.kind != kind {
                return Err(format!("metric `{name}` is a {:?}, not a {kind:?}", series.kind).to_lowercase());
            }
            series.add(value);
            Ok(())
        })
    }

    /// Records `n` iterations that were due but could not start (every VU busy).
    pub fn dropped_iterations(&self, n: u64, scenario: Option<&str>) {
        if n == 0 {
            return;
        }
        self.with_shard(|shard| {
            shard.dropped_iterations += n;
            if let Some(scenario) = scenario {
                shard.scenario(scenario).dropped_iterations += n;
            }
        });
    }

    fn with_shard<R>(&self, f: impl FnOnce(&mut Shard) -> R) -> R {
        SHARD.with(|cell| {
            let mut slot = cell.borrow_mut();
            let stale = !matches!(&*slot, Some((id, _)) if *id == self.registry.id);
            if stale {
                *slot = None;
            }
            let (_, shard) = slot.get_or_insert_with(|| {
                let shard = Arc::new(Mutex::new(Shard::default()));
                lock(&self.registry.shards).push(shard.clone());
                (self.registry.id, shard)
            });
            f(&mut lock(shard))
        })
    }
}
