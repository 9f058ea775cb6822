//! What a scenario declares: its tasks with weights, the wait time after each task, and
//! default load options (the command line wins over them).

use std::time::Duration;

use crate::__private::bindings::exports::wasmload::scenario::scenario as wit;
use crate::user::TaskResult;

/// A task: a method of the user type, or any closure over it.
pub type TaskFn<U> = Box<dyn Fn(&mut U) -> TaskResult>;

/// Time a user waits after each task (Locust `wait_time`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WaitTime {
    None,
    Constant(Duration),
    Between(Duration, Duration),
    ConstantPacing(Duration),
}

/// Waits a random time between `min` and `max` seconds (Locust `between`).
pub fn between(min_secs: f64, max_secs: f64) -> WaitTime {
    WaitTime::Between(secs(min_secs), secs(max_secs))
}

/// Always waits `secs` seconds (Locust `constant`).
pub fn constant(secs_: f64) -> WaitTime {
    WaitTime::Constant(secs(secs_))
}

/// Waits whatever makes task starts `secs` seconds apart (Locust `constant_pacing`).
pub fn constant_pacing(secs_: f64) -> WaitTime {
    WaitTime::ConstantPacing(secs(secs_))
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::ZERO)
}

/// A scenario's declaration, built with chained calls.
pub struct Plan<U> {
    pub(crate) tasks: Vec<(String, u32, TaskFn<U>)>,
    wait_time: WaitTime,
    users: Option<u32>,
    spawn_rate: Option<f64>,
    run_time: Option<Duration>,
    host: Option<String>,
    thresholds: Vec<String>,
}

impl<U> Default for Plan<U> {
    fn default() -> Self {
        Self {
            tasks: Vec::new(),
            wait_time: WaitTime::None,
            users: None,
            spawn_rate: None,
            run_time: None,
            host: None,
            thresholds: Vec::new(),
        }
    }
}

impl<U> std::fmt::Debug for Plan<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tasks: Vec<_> = self.tasks.iter().map(|(name, weight, _)| (name, weight)).collect();
        f.debug_struct("Plan").field("tasks", &tasks).field("wait_time", &self.wait_time).finish()
    }
}

impl<U> Plan<U> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a task of weight 1 (Locust `@task`).
    pub fn task(self, name: &str, task: impl Fn(&mut U) -> TaskResult + 'static) -> Self {
        self.weighted(name, 1, task)
    }

    /// Adds a task that runs `weight` times as often as a task of weight 1 (Locust `@task(3)`).
    pub fn weighted(mut self, name: &str, weight: u32, task: impl Fn(&mut U) -> TaskResult + 'static) -> Self {
        self.tasks.push((name.to_owned(), weight, Box::new(task)));
        self
    }

    pub fn wait_time(mut self, wait: WaitTime) -> Self {
        self.wait_time = wait;
        self
    }

    /// Default number of users.
    pub fn users(mut self, users: u32) -> Self {
        self.users = Some(users);
        self
    }

    /// Default users started per second.
    pub fn spawn_rate(mut self, rate: f64) -> Self {
        self.spawn_rate = Some(rate);
        self
    }

    /// Default run time.
    pub fn run_time(mut self, run_time: Duration) -> Self {
        self.run_time = Some(run_time);
        self
    }

    /// Default `--host`.
    pub fn host(mut self, host: &str) -> Self {
        self.host = Some(host.to_owned());
        self
    }

    /// A pass/fail criterion, k6 style: `"http_req_duration{name:/login}:p(95)<300ms"`,
    /// `"http_req_failed:rate<1%"`, `"checks:rate>0.99"`. The run exits with code 99 when one
    /// fails; a malformed one stops the run before it starts.
    pub fn threshold(mut self, threshold: &str) -> Self {
        self.thresholds.push(threshold.to_owned());
        self
    }

    pub(crate) fn to_wit(&self) -> wit::Plan {
        let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        wit::Plan {
            tasks: self
                .tasks
                .iter()
                .map(|(name, weight, _)| wit::Task { name: name.clone(), weight: *weight })
                .collect(),
            wait_time: match self.wait_time {
                WaitTime::None => wit::WaitTime::None,
                WaitTime::Constant(d) => wit::WaitTime::Constant(ms(d)),
                WaitTime::Between(a, b) => wit::WaitTime::Between((ms(a), ms(b))),
                WaitTime::ConstantPacing(d) => wit::WaitTime::ConstantPacing(ms(d)),
            },
            options: wit::Options {
                users: self.users,
                spawn_rate: self.spawn_rate,
                run_time_ms: self.run_time.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                host: self.host.clone(),
                thresholds: self.thresholds.clone(),
            },
        }
    }
}
