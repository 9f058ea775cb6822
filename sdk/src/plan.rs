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

/// Waits whatever keeps each user at `tasks_per_second` tasks per second at most (Locust
/// `constant_throughput`): task starts `1 / tasks_per_second` seconds apart.
pub fn constant_throughput(tasks_per_second: f64) -> WaitTime {
    let per = if tasks_per_second > 0.0 { 1.0 / tasks_per_second } else { 0.0 };
    WaitTime::ConstantPacing(secs(per))
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
    load: Load,
    host: Option<String>,
    thresholds: Vec<String>,
    shape: Vec<(Duration, u32, f64)>,
    scenarios: Vec<Scenario>,
}

/// A load model: the settings a plan and each of its scenarios share. Set them with the
/// [`LoadModel`] methods.
#[derive(Debug, Clone, Default)]
pub struct Load {
    users: Option<u32>,
    spawn_rate: Option<f64>,
    run_time: Option<Duration>,
    iterations: Option<u64>,
    shared_iterations: Option<u64>,
    stages: Vec<(f64, Duration)>,
    arrival_rate: Option<f64>,
    max_vus: Option<u32>,
}

impl Load {
    fn wit_stages(&self) -> Vec<wit::Stage> {
        self.stages.iter().map(|&(target, d)| wit::Stage { target, duration_ms: ms64(d) }).collect()
    }
}

fn ms64(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The load-model settings of a [`Plan`] and of a [`Scenario`] (command-line flags win over
/// the plan's).
pub trait LoadModel: Sized {
    #[doc(hidden)]
    fn load(&mut self) -> &mut Load;

    /// Users (Locust `-u`); with [`arrival_rate`](Self::arrival_rate), the users started
    /// beforehand (k6 `preAllocatedVUs`).
    fn users(mut self, users: u32) -> Self {
        self.load().users = Some(users);
        self
    }

    /// Users started per second.
    fn spawn_rate(mut self, rate: f64) -> Self {
        self.load().spawn_rate = Some(rate);
        self
    }

    /// How long it runs.
    fn run_time(mut self, run_time: Duration) -> Self {
        self.load().run_time = Some(run_time);
        self
    }

    /// Each user stops after this many iterations (k6 `per-vu-iterations`).
    fn iterations(mut self, n: u64) -> Self {
        self.load().iterations = Some(n);
        self
    }

    /// The users share this many iterations in all (k6 `shared-iterations`).
    fn shared_iterations(mut self, n: u64) -> Self {
        self.load().shared_iterations = Some(n);
        self
    }

    /// Ramps the users from 0 through `(target, duration)` stages (k6 `ramping-vus`); with
    /// [`arrival_rate`](Self::arrival_rate), ramps the rate instead (k6
    /// `ramping-arrival-rate`).
    fn stages(mut self, stages: &[(f64, Duration)]) -> Self {
        self.load().stages = stages.to_vec();
        self
    }

    /// Starts this many iterations per second whatever the response times (k6
    /// `constant-arrival-rate`).
    fn arrival_rate(mut self, per_second: f64) -> Self {
        self.load().arrival_rate = Some(per_second);
        self
    }

    /// With `arrival_rate`: the most users started when every user is busy.
    fn max_vus(mut self, n: u32) -> Self {
        self.load().max_vus = Some(n);
        self
    }
}

impl<U> LoadModel for Plan<U> {
    fn load(&mut self) -> &mut Load {
        &mut self.load
    }
}

impl LoadModel for Scenario {
    fn load(&mut self) -> &mut Load {
        &mut self.load
    }
}

impl<U> Default for Plan<U> {
    fn default() -> Self {
        Self {
            tasks: Vec::new(),
            wait_time: WaitTime::None,
            load: Load::default(),
            host: None,
            thresholds: Vec::new(),
            shape: Vec::new(),
            scenarios: Vec::new(),
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

    /// A Locust load shape: `(until, users, spawn_rate)` steps; until each step's time the
    /// user count moves to its `users` at its `spawn_rate`, and the run ends after the last.
    pub fn shape(mut self, steps: &[(Duration, u32, f64)]) -> Self {
        self.shape = steps.to_vec();
        self
    }

    /// Adds a scenario run side by side with the others (k6 `scenarios`); with any
    /// scenario, the plan's own load model is not used.
    pub fn scenario(mut self, scenario: Scenario) -> Self {
        self.scenarios.push(scenario);
        self
    }

    pub(crate) fn to_wit(&self) -> wit::Plan {
        let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        let load = &self.load;
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
                users: load.users,
                spawn_rate: load.spawn_rate,
                run_time_ms: load.run_time.map(ms64),
                host: self.host.clone(),
                thresholds: self.thresholds.clone(),
                iterations: load.iterations,
                shared_iterations: load.shared_iterations,
                stages: load.wit_stages(),
                arrival_rate: load.arrival_rate,
                max_vus: load.max_vus,
                shape: self
                    .shape
                    .iter()
                    .map(|&(until, users, spawn_rate)| wit::ShapeStep { until_ms: ms64(until), users, spawn_rate })
                    .collect(),
                scenarios: self.scenarios.iter().map(Scenario::to_wit).collect(),
            },
        }
    }
}

/// One of several scenarios of a plan (k6 `scenarios`): its own tasks, start time and load
/// model (the [`LoadModel`] methods; `run_time` counts from its start).
/// `Scenario::new("browse").tasks(&["browse"]).users(10).run_time(secs(30))`.
#[derive(Debug, Clone, Default)]
pub struct Scenario {
    name: String,
    tasks: Vec<String>,
    start: Duration,
    load: Load,
}

impl Scenario {
    pub fn new(name: &str) -> Self {
        Self { name: name.to_owned(), ..Self::default() }
    }

    /// The plan's tasks this scenario runs, by name (default: all).
    pub fn tasks(mut self, names: &[&str]) -> Self {
        self.tasks = names.iter().map(|n| (*n).to_owned()).collect();
        self
    }

    /// When it starts, after the start of the run (k6 `startTime`).
    pub fn start_time(mut self, after: Duration) -> Self {
        self.start = after;
        self
    }

    fn to_wit(&self) -> wit::ScenarioOptions {
        let load = &self.load;
        wit::ScenarioOptions {
            name: self.name.clone(),
            tasks: self.tasks.clone(),
            start_ms: ms64(self.start),
            run_time_ms: load.run_time.map(ms64),
            users: load.users,
            spawn_rate: load.spawn_rate,
            iterations: load.iterations,
            shared_iterations: load.shared_iterations,
            stages: load.wit_stages(),
            arrival_rate: load.arrival_rate,
            max_vus: load.max_vus,
        }
    }
}
