//! A scenario configured entirely by environment variables (`runner run --env K=V`), used by
//! the end-to-end tests and the benchmark to exercise one behaviour at a time.
//!
//! Every request carries the VU id in `x-vu`.
//!
//! - `PROBE_TASKS`: `name:weight:path,...` (default `root:1:/`); each task sends one
//!   request to its path, grouped under `PROBE_NAME` when set.
//! - `PROBE_METHOD`: request method (default `GET`).
//! - `PROBE_WAIT`: `none`, `constant:MS`, `between:MS:MS` or `pacing:MS` (default none).
//! - `PROBE_LOGIN=1`: `POST /login` in `on_start`.
//! - `PROBE_SLEEP_MS`: sleep on the host after each request.
//! - `PROBE_PANIC_AT`: panic (trap) in the task of this iteration number.
//! - `PROBE_ERROR=1`: every task returns an error after its request.
//! - `PROBE_SAY=text`: print `text` to stdout and log it at each `on_start`.
//! - `PROBE_SHOW_ENV=1`: send the names of the visible environment variables in `x-env`.
//! - `PROBE_STOP_PATH`: request this path in `on_stop`.
//! - `PROBE_START_ERROR=1`: `on_start` fails, so the user never runs a task.
//! - `PROBE_TIMEOUT_MS`: the request timeout.
//! - `PROBE_WAIT=throughput:N`: Locust's `constant_throughput(N)` (N tasks per second).
//! - `PROBE_SHAPE`: `until_ms:users:spawn_rate;...`, a Locust load shape in the plan.
//! - `PROBE_TAG_TASKS=1`: tags each request `task:<task name>`.
//! - `PROBE_SCENARIOS`: `name:task+task:start_ms:run_time_ms:users;...`, scenarios in the
//!   plan (k6 `scenarios`), each running the named tasks with constant users.
//! - `PROBE_ARRIVAL`: an arrival rate (iterations per second) in the plan's options.
//! - `PROBE_SETUP`: `setup` requests this path and returns `token-<status>`; every request
//!   then carries it in `x-setup`. `PROBE_SETUP_FAIL=1`: `setup` fails instead.
//! - `PROBE_TEARDOWN`: `teardown` requests this path, with the setup data in `x-setup`.
//! - `PROBE_METRICS=1`: after each request, checks `status is 200` and `body is ok`, and
//!   records custom metrics: counter `probe_hits`, trend `probe_body_bytes`, rate
//!   `probe_ok` (status below 400), gauge `probe_vu` (the VU id, tagged `path`) and trend
//!   `probe_waiting_ms` (the response's time to first byte as the host measured it).
//! - `PROBE_HEADER=name:value`: after each request, checks `header name is value` (the
//!   response's headers are fetched from the host only then).
//! - `PROBE_KEEP=N`: `on_start` sends `POST /echo` with the body `start-<vu>` and keeps the
//!   response; then each task also sends N `POST /echo` requests, keeps every response, and
//!   reads them all at its end. Checks `bodies read late are right` (every body of the task)
//!   and `start response read later is right` (body and `content-length` of `on_start`'s
//!   response): what the host keeps of a response, the SDK must fetch before it is gone.
//! - `PROBE_QUIET=1`: tasks send nothing (a VU that holds only its instance, no connection:
//!   the benchmark's 100,000-VU run, which one process's open-file limit could not serve).

use std::time::Duration;

use wasmload::prelude::*;

fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

fn env_num(key: &str) -> Option<u64> {
    env(key).and_then(|v| v.parse().ok())
}

/// The probe's settings, read from the environment once per VU (reading the environment is
/// a host call that copies every variable, too slow for each request of a benchmark).
struct Probe {
    panic_at: Option<u64>,
    method: String,
    name: Option<String>,
    show_env: bool,
    sleep: Option<Duration>,
    error: bool,
    timeout: Option<Duration>,
    metrics: bool,
    header: Option<(String, String)>,
    tag_tasks: bool,
    setup_data: Option<String>,
    quiet: bool,
    keep: usize,
    /// `on_start`'s response, under `PROBE_KEEP`.
    start_response: Option<Response>,
    /// The `x-vu` header's value, formatted once.
    vu_id: String,
}

impl Default for Probe {
    fn default() -> Self {
        Self {
            panic_at: env_num("PROBE_PANIC_AT"),
            method: env("PROBE_METHOD").unwrap_or_else(|| "GET".to_owned()),
            name: env("PROBE_NAME"),
            show_env: env("PROBE_SHOW_ENV").is_some(),
            sleep: env_num("PROBE_SLEEP_MS").map(Duration::from_millis),
            error: env("PROBE_ERROR").is_some(),
            timeout: env_num("PROBE_TIMEOUT_MS").map(Duration::from_millis),
            metrics: env("PROBE_METRICS").is_some(),
            header: env("PROBE_HEADER").and_then(|h| h.split_once(':').map(|(n, v)| (n.to_owned(), v.to_owned()))),
            tag_tasks: env("PROBE_TAG_TASKS").is_some(),
            setup_data: vu::setup_data(),
            quiet: env("PROBE_QUIET").is_some(),
            keep: env_num("PROBE_KEEP").map_or(0, |n| n as usize),
            start_response: None,
            vu_id: vu::id().to_string(),
        }
    }
}

impl User for Probe {
    fn plan() -> Plan<Self> {
        let spec = env("PROBE_TASKS").unwrap_or_else(|| "root:1:/".to_owned());
        let mut plan = Plan::new().wait_time(wait_time());
        for task in spec.split(',') {
            let mut parts = task.splitn(3, ':');
            let (Some(name), Some(weight), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            let path = path.to_owned();
            let weight = weight.parse().unwrap_or(1);
            let task = name.to_owned();
            plan = plan.weighted(name, weight, move |probe: &mut Probe| probe.hit(&path, &task));
        }
        if let Some(shape) = env("PROBE_SHAPE") {
            let steps: Vec<(Duration, u32, f64)> = shape
                .split(';')
                .filter_map(|step| {
                    let mut parts = step.split(':');
                    let until = parts.next()?.parse().ok()?;
                    Some((Duration::from_millis(until), parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
                })
                .collect();
            plan = plan.shape(&steps);
        }
        for spec in env("PROBE_SCENARIOS").iter().flat_map(|s| s.split(';')) {
            let parts: Vec<&str> = spec.split(':').collect();
            if let [name, tasks, start, run_time, users] = parts[..] {
                let tasks: Vec<&str> = tasks.split('+').collect();
                let ms = |v: &str| Duration::from_millis(v.parse().unwrap_or(0));
                plan = plan.scenario(
                    Scenario::new(name)
                        .tasks(&tasks)
                        .start_time(ms(start))
                        .run_time(ms(run_time))
                        .users(users.parse().unwrap_or(1)),
                );
            }
        }
        if let Some(rate) = env("PROBE_ARRIVAL").and_then(|r| r.parse().ok()) {
            plan = plan.arrival_rate(rate).users(2).max_vus(10);
        }
        plan
    }

    fn setup() -> Result<Option<String>, Error> {
        if env("PROBE_SETUP_FAIL").is_some() {
            return Err(Error::msg("no test data"));
        }
        match env("PROBE_SETUP") {
            Some(path) => Ok(Some(format!("token-{}", get(path).send()?.status()))),
            None => Ok(None),
        }
    }

    fn teardown(data: Option<String>) -> TaskResult {
        if let Some(path) = env("PROBE_TEARDOWN") {
            get(path).header("x-setup", data.unwrap_or_default()).send()?;
        }
        Ok(())
    }

    fn on_start(&mut self) -> TaskResult {
        if let Some(text) = env("PROBE_SAY") {
            println!("{text}");
            vu::log(Level::Info, &text);
        }
        if env("PROBE_START_ERROR").is_some() {
            return Err(Error::msg("probe refuses to start"));
        }
        if self.keep > 0 {
            self.start_response = Some(post("/echo").body(format!("start-{}", vu::id())).send()?);
        }
        if env("PROBE_LOGIN").is_some() {
            post("/login").header("x-vu", vu::id().to_string()).form(&[("user", "probe")]).send()?;
        }
        Ok(())
    }

    fn on_stop(&mut self) -> TaskResult {
        if let Some(path) = env("PROBE_STOP_PATH") {
            get(path).send()?;
        }
        Ok(())
    }
}

fn wait_time() -> WaitTime {
    let spec = env("PROBE_WAIT").unwrap_or_default();
    let ms = |s: Option<&str>| s.and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 1000.0;
    let mut parts = spec.split(':');
    match parts.next() {
        Some("constant") => constant(ms(parts.next())),
        Some("between") => between(ms(parts.next()), ms(parts.next())),
        Some("pacing") => constant_pacing(ms(parts.next())),
        Some("throughput") => constant_throughput(parts.next().and_then(|v| v.parse().ok()).unwrap_or(1.0)),
        _ => WaitTime::None,
    }
}

impl Probe {
    fn hit(&self, path: &str, task: &str) -> TaskResult {
        // `vu::iteration()` is a host call: only made when it matters.
        if let Some(at) = self.panic_at.filter(|&at| at == vu::iteration()) {
            panic!("probe panics at iteration {at}");
        }
        if self.quiet {
            return Ok(());
        }
        let mut request = wasmload::request(&self.method, path).header("x-vu", &self.vu_id);
        if let Some(name) = &self.name {
            request = request.name(name.clone());
        }
        if self.tag_tasks {
            request = request.tag("task", task);
        }
        if let Some(data) = &self.setup_data {
            request = request.header("x-setup", data.clone());
        }
        if let Some(timeout) = self.timeout {
            request = request.timeout(timeout);
        }
        if self.show_env {
            let names: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
            request = request.header("x-env", names.join(","));
        }
        let response = request.send()?;
        if self.metrics {
            check("status is 200", response.status() == 200);
            check("body is ok", response.body() == b"ok");
            Metric::counter("probe_hits").add(1.0);
            Metric::trend("probe_body_bytes").add(response.body().len() as f64);
            Metric::rate("probe_ok").add_bool(response.status() < 400);
            Metric::gauge("probe_vu").add_tagged(f64::from(vu::id()), &[("path", path)]);
            Metric::trend("probe_waiting_ms").add(response.waiting().as_secs_f64() * 1000.0);
        }
        if let Some((name, value)) = &self.header {
            check(&format!("header {name} is {value}"), response.header(name) == Some(value.as_str()));
        }
        if self.keep > 0 {
            self.read_late()?;
        }
        if let Some(sleep) = self.sleep {
            vu::sleep(sleep);
        }
        if self.error {
            return Err(Error::msg("probe error"));
        }
        Ok(())
    }
}

impl Probe {
    /// `PROBE_KEEP`: more responses than the host keeps, all read after the last is received.
    fn read_late(&self) -> TaskResult {
        let body = |i: usize| format!("{}-{}-{i}", vu::id(), vu::iteration());
        let responses = (0..self.keep).map(|i| post("/echo").body(body(i)).send()).collect::<Result<Vec<_>, _>>()?;
        let right = responses.iter().enumerate().all(|(i, r)| r.body() == body(i).as_bytes());
        check("bodies read late are right", right);
        let start = format!("start-{}", vu::id());
        let kept = self.start_response.as_ref().is_some_and(|r| {
            r.body() == start.as_bytes() && r.header("content-length") == Some(start.len().to_string().as_str())
        });
        check("start response read later is right", kept);
        Ok(())
    }
}

export_user!(Probe);
