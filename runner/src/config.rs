//! The second configuration stage: what the user typed plus what the plan declared,
//! resolved into the settings of one run (command-line flags win over the plan).

use std::path::PathBuf;
use std::time::Duration;

use crate::bindings::{Options, Plan, ScenarioOptions, ShapeStep as WitStep, Stage as WitStage};
use crate::cli::{LoadArgs, OutputArgs};
use crate::client::{BaseUrl, HostPattern, Timeouts};
use crate::host::GuestLimits;
use crate::load::{ArrivalRate, Executor, Ramp, ShapeStep, Stage, Stages};
use crate::thresholds::Threshold;

/// Users when neither the flags nor the plan say (Locust's default).
const DEFAULT_USERS: u32 = 1;
/// Spawn rate when neither the flags nor the plan say (Locust's default).
const DEFAULT_SPAWN_RATE: f64 = 1.0;

/// Everything a run needs to know, resolved.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub plan_path: PathBuf,
    pub host: Option<BaseUrl>,
    /// What runs: one scenario (`default`) unless the plan declares several.
    pub scenarios: Vec<ScenarioConfig>,
    /// `None`: until Ctrl-C, or until every scenario's work is done.
    pub run_time: Option<Duration>,
    pub stop_timeout: Duration,
    pub env: Vec<(String, String)>,
    pub insecure: bool,
    pub output: OutputArgs,
    pub limits: GuestLimits,
    /// The plan's thresholds, then the command line's.
    pub thresholds: Vec<Threshold>,
    /// `--allow-host` patterns.
    pub allow_hosts: Vec<HostPattern>,
    pub timeouts: Timeouts,
}

/// One scenario of a run (k6 `scenarios`).
#[derive(Debug, Clone)]
pub struct ScenarioConfig {
    pub name: String,
    pub executor: Executor,
    /// Indices of the plan's tasks it runs; `None`: all of them.
    pub tasks: Option<Vec<usize>>,
    /// When it starts, after the start of the run.
    pub start: Duration,
    /// How long it runs after its start; `None`: until its work is done or the run ends.
    pub run_time: Option<Duration>,
}

/// The name of the only scenario of a run that declares none.
pub const DEFAULT_SCENARIO: &str = "default";

impl RunConfig {
    /// The most VUs the run may have at once (every scenario at its peak).
    pub fn max_users(&self) -> u32 {
        self.scenarios.iter().map(|s| s.executor.max_users()).fold(0, u32::saturating_add)
    }
}

/// A load model as the plan states it (in its options or in one of its scenarios).
struct PlanLoad<'a> {
    users: Option<u32>,
    spawn_rate: Option<f64>,
    iterations: Option<u64>,
    shared_iterations: Option<u64>,
    stages: &'a [WitStage],
    arrival_rate: Option<f64>,
    max_vus: Option<u32>,
    shape: &'a [WitStep],
}

impl<'a> PlanLoad<'a> {
    fn of_options(o: &'a Options) -> Self {
        Self {
            users: o.users,
            spawn_rate: o.spawn_rate,
            iterations: o.iterations,
            shared_iterations: o.shared_iterations,
            stages: &o.stages,
            arrival_rate: o.arrival_rate,
            max_vus: o.max_vus,
            shape: &o.shape,
        }
    }

    fn of_scenario(s: &'a ScenarioOptions) -> Self {
        Self {
            users: s.users,
            // Scenarios start their users at once, as k6's do.
            spawn_rate: Some(s.spawn_rate.unwrap_or(f64::INFINITY)),
            iterations: s.iterations,
            shared_iterations: s.shared_iterations,
            stages: &s.stages,
            arrival_rate: s.arrival_rate,
            max_vus: s.max_vus,
            shape: &[],
        }
    }
}

/// What the user typed for a run, before the plan's defaults are known.
#[derive(Debug, Clone)]
pub struct Requested {
    pub plan_path: PathBuf,
    pub host: Option<BaseUrl>,
    pub load: LoadArgs,
    pub env: Vec<(String, String)>,
    pub insecure: bool,
    pub output: OutputArgs,
    pub limits: GuestLimits,
    pub allow_hosts: Vec<HostPattern>,
    /// `--policy FILE`.
    pub policy: Option<PathBuf>,
    pub timeouts: Timeouts,
    /// The web UI, unless headless.
    pub web: Option<WebSettings>,
}

/// Where the web UI listens, and whether the test starts without waiting for the page.
#[derive(Debug, Clone, Copy)]
pub struct WebSettings {
    pub addr: std::net::SocketAddr,
    pub autostart: bool,
}

/// Why the plan's own defaults cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the plan's default host `{0}` is not a base URL like http://127.0.0.1:8080")]
    PlanHost(String),
    #[error("the plan's default {0}")]
    PlanOption(String),
    #[error("the plan's threshold {0}")]
    PlanThreshold(String),
}

impl Requested {
    /// Fills what the user left out from the plan's options, then the built-in defaults.
    pub fn resolve(self, plan: &Plan) -> Result<RunConfig, ConfigError> {
        let options = &plan.options;
        let host = match (self.host, &options.host) {
            (Some(host), _) => Some(host),
            (None, Some(h)) => Some(BaseUrl::parse(h).map_err(|_| ConfigError::PlanHost(h.clone()))?),
            (None, None) => None,
        };
        let scenarios = if self.load.chooses_executor() || options.scenarios.is_empty() {
            let load = PlanLoad::of_options(options);
            let users = users(self.load.users, load.users)?;
            let spawn_rate = spawn_rate(self.load.spawn_rate, load.spawn_rate)?;
            let executor = if self.load.chooses_executor() {
                executor_from_flags(&self.load, users, spawn_rate)
            } else {
                executor_from_plan(&load, users, spawn_rate)?
            };
            // Its end is the run's end (below), so that `-t` can lengthen it too.
            let run_time = None;
            vec![ScenarioConfig {
                name: DEFAULT_SCENARIO.into(),
                executor,
                tasks: None,
                start: Duration::ZERO,
                run_time,
            }]
        } else {
            options.scenarios.iter().map(|s| scenario(s, plan, self.load.spawn_rate)).collect::<Result<_, _>>()?
        };
        // The run ends with its last scenario, unless `-t` ends it first.
        let ends: Option<Vec<Duration>> =
            scenarios.iter().map(|s| s.run_time.or_else(|| s.executor.own_duration()).map(|d| s.start + d)).collect();
        let plan_run_time = options.run_time_ms.map(Duration::from_millis).filter(|_| options.scenarios.is_empty());
        let run_time = self.load.run_time.or(plan_run_time).or_else(|| ends.and_then(|e| e.into_iter().max()));
        let mut thresholds = options
            .thresholds
            .iter()
            .map(|t| t.parse())
            .collect::<Result<Vec<Threshold>, _>>()
            .map_err(ConfigError::PlanThreshold)?;
        thresholds.extend(self.output.thresholds.iter().cloned());
        Ok(RunConfig {
            thresholds,
            plan_path: self.plan_path,
            host,
            scenarios,
            run_time,
            stop_timeout: self.load.stop_timeout,
            env: self.env,
            insecure: self.insecure,
            output: self.output,
            limits: self.limits,
            allow_hosts: self.allow_hosts,
            timeouts: self.timeouts,
        })
    }
}

fn users(flag: Option<u32>, plan: Option<u32>) -> Result<u32, ConfigError> {
    match (flag, plan) {
        (Some(u), _) => Ok(u),
        (None, Some(0)) => Err(ConfigError::PlanOption("number of users is 0".into())),
        (None, Some(u)) => Ok(u),
        (None, None) => Ok(DEFAULT_USERS),
    }
}

fn spawn_rate(flag: Option<f64>, plan: Option<f64>) -> Result<f64, ConfigError> {
    match (flag, plan) {
        (Some(r), _) => Ok(r),
        (None, Some(r)) if r.is_nan() || r <= 0.0 => {
            Err(ConfigError::PlanOption(format!("spawn rate {r} is not above 0")))
        }
        (None, Some(r)) => Ok(r),
        (None, None) => Ok(DEFAULT_SPAWN_RATE),
    }
}

/// One of the plan's scenarios, resolved; `-r` still sets its spawn rate.
fn scenario(s: &ScenarioOptions, plan: &Plan, spawn_flag: Option<f64>) -> Result<ScenarioConfig, ConfigError> {
    let load = PlanLoad::of_scenario(s);
    let in_scenario = |e: ConfigError| ConfigError::PlanOption(format!("scenario `{}`: {e}", s.name));
    let users = users(None, load.users).map_err(in_scenario)?;
    let spawn_rate = spawn_rate(spawn_flag, load.spawn_rate).map_err(in_scenario)?;
    let executor = executor_from_plan(&load, users, spawn_rate).map_err(in_scenario)?;
    let tasks = if s.tasks.is_empty() {
        None
    } else {
        let indices = s
            .tasks
            .iter()
            .map(|name| {
                plan.tasks.iter().position(|t| &t.name == name).ok_or_else(|| {
                    ConfigError::PlanOption(format!(
                        "scenario `{}` runs task `{name}`, which the plan does not have",
                        s.name
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Some(indices)
    };
    Ok(ScenarioConfig {
        name: s.name.clone(),
        executor,
        tasks,
        start: Duration::from_millis(s.start_ms),
        run_time: s.run_time_ms.map(Duration::from_millis),
    })
}

/// The executor the load flags describe.
fn executor_from_flags(load: &LoadArgs, users: u32, spawn_rate: f64) -> Executor {
    match (load.arrival_rate, &load.stages, load.shared_iterations) {
        (Some(rate), stages, _) => Executor::ArrivalRate(ArrivalRate {
            ramp: Ramp { start: rate, stages: stages.clone().map(|Stages(s)| s).unwrap_or_default() },
            pre_allocated: users,
            max_vus: load.max_vus.unwrap_or(users).max(users),
            max_delay: load.max_delay.unwrap_or_default(),
        }),
        (None, Some(Stages(stages)), _) => Executor::RampingVus { ramp: Ramp { start: 0.0, stages: stages.clone() } },
        (None, None, Some(iterations)) => Executor::SharedIterations { users, iterations },
        (None, None, None) => Executor::Users { users, spawn_rate, iterations: load.iterations },
    }
}

/// The executor the plan's options describe (when no load flag was given).
fn executor_from_plan(plan: &PlanLoad<'_>, users: u32, spawn_rate: f64) -> Result<Executor, ConfigError> {
    let stages: Vec<Stage> = plan
        .stages
        .iter()
        .map(|s| Stage { target: s.target, duration: Duration::from_millis(s.duration_ms) })
        .collect();
    if stages.iter().any(|s| !(s.target.is_finite() && s.target >= 0.0)) {
        return Err(ConfigError::PlanOption("stages have a target below 0".into()));
    }
    if !stages.is_empty() && stages.iter().all(|s| s.duration.is_zero()) {
        return Err(ConfigError::PlanOption("stages last no time at all".into()));
    }
    Ok(if !plan.shape.is_empty() {
        let steps: Vec<ShapeStep> = plan
            .shape
            .iter()
            .map(|s| ShapeStep { until: Duration::from_millis(s.until_ms), users: s.users, spawn_rate: s.spawn_rate })
            .collect();
        if steps.iter().any(|s| !(s.spawn_rate.is_finite() && s.spawn_rate > 0.0)) {
            return Err(ConfigError::PlanOption("load shape has a spawn rate that is not above 0".into()));
        }
        Executor::Shape(steps)
    } else if let Some(rate) = plan.arrival_rate {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(ConfigError::PlanOption(format!("arrival rate {rate} is not above 0")));
        }
        Executor::ArrivalRate(ArrivalRate {
            ramp: Ramp { start: rate, stages },
            pre_allocated: users,
            max_vus: plan.max_vus.unwrap_or(users).max(users),
            max_delay: Duration::ZERO,
        })
    } else if !stages.is_empty() {
        Executor::RampingVus { ramp: Ramp { start: 0.0, stages } }
    } else if let Some(iterations) = plan.shared_iterations.filter(|&n| n > 0) {
        Executor::SharedIterations { users, iterations }
    } else {
        Executor::Users { users, spawn_rate, iterations: plan.iterations.filter(|&n| n > 0) }
    })
}

/// `run_time` for display: `10s`, `5m`, `1h 30m`.
pub fn show_duration(d: Duration) -> String {
    humantime::format_duration(Duration::from_millis(d.as_millis() as u64)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::parse_duration;

    fn plan_of(options: Options) -> Plan {
        let task = |name: &str| crate::bindings::Task { name: name.into(), weight: 1 };
        Plan { tasks: vec![task("browse"), task("buy")], wait_time: crate::bindings::WaitTime::None, options }
    }

    fn options() -> Options {
        Options {
            users: None,
            spawn_rate: None,
            run_time_ms: None,
            host: None,
            thresholds: vec![],
            iterations: None,
            shared_iterations: None,
            stages: vec![],
            arrival_rate: None,
            max_vus: None,
            shape: vec![],
            scenarios: vec![],
        }
    }

    fn requested(users: Option<u32>) -> Requested {
        Requested {
            plan_path: "p.wasm".into(),
            host: None,
            load: LoadArgs {
                users,
                spawn_rate: None,
                run_time: None,
                iterations: None,
                shared_iterations: None,
                stages: None,
                arrival_rate: None,
                max_vus: None,
                max_delay: None,
                stop_timeout: parse_duration("1s").expect("valid"),
            },
            env: vec![],
            insecure: false,
            output: OutputArgs {
                json: None,
                csv: None,
                html: None,
                summary: crate::cli::SummaryStyle::Locust,
                csv_full_history: false,
                exit_code_on_error: 0,
                quiet: true,
                thresholds: vec![],
            },
            limits: GuestLimits::default(),
            allow_hosts: vec![],
            policy: None,
            timeouts: Timeouts::default(),
            web: None,
        }
    }

    #[test]
    fn flags_win_over_the_plan_which_wins_over_defaults() {
        let plan = Options {
            users: Some(50),
            spawn_rate: Some(5.0),
            run_time_ms: Some(60_000),
            host: Some("http://127.0.0.1:9".into()),
            thresholds: vec!["http_reqs:count>1".into()],
            ..options()
        };
        let cfg = requested(Some(7)).resolve(&plan_of(plan.clone())).expect("resolves");
        assert_eq!(cfg.scenarios[0].executor, Executor::Users { users: 7, spawn_rate: 5.0, iterations: None });
        assert_eq!(cfg.run_time, Some(Duration::from_secs(60)));
        assert_eq!(cfg.host.map(|h| h.as_str().to_owned()), Some("http://127.0.0.1:9".into()));

        let empty = options();
        let cfg = requested(None).resolve(&plan_of(empty.clone())).expect("resolves");
        assert_eq!(cfg.scenarios[0].executor, Executor::Users { users: 1, spawn_rate: 1.0, iterations: None });
        assert_eq!(cfg.run_time, None);
    }

    #[test]
    fn the_plan_chooses_the_executor_unless_a_load_flag_does() {
        use crate::bindings::{ShapeStep as WitStep, Stage as WitStage};
        let plan = Options {
            users: Some(5),
            arrival_rate: Some(50.0),
            max_vus: Some(9),
            stages: vec![WitStage { target: 100.0, duration_ms: 2000 }],
            ..options()
        };
        let cfg = requested(None).resolve(&plan_of(plan.clone())).expect("resolves");
        assert_eq!(cfg.scenarios[0].executor.name(), "ramping-arrival-rate");
        assert_eq!(cfg.scenarios[0].executor.max_users(), 9);
        assert_eq!(cfg.run_time, Some(Duration::from_secs(2)));
        let cfg = requested(Some(3)).resolve(&plan_of(plan.clone())).expect("resolves");
        assert_eq!(
            cfg.scenarios[0].executor,
            Executor::Users { users: 3, spawn_rate: 1.0, iterations: None },
            "-u wins"
        );

        let shape = Options { shape: vec![WitStep { until_ms: 3000, users: 4, spawn_rate: 2.0 }], ..options() };
        let cfg = requested(None).resolve(&plan_of(shape.clone())).expect("resolves");
        assert_eq!(cfg.scenarios[0].executor.name(), "load-shape");
        assert_eq!(cfg.run_time, Some(Duration::from_secs(3)));
        let bad = Options { shape: vec![WitStep { until_ms: 3000, users: 4, spawn_rate: 0.0 }], ..options() };
        assert!(requested(None).resolve(&plan_of(bad.clone())).is_err());
        let plan = Options { shared_iterations: Some(7), users: Some(2), ..options() };
        assert_eq!(
            requested(None).resolve(&plan_of(plan.clone())).expect("resolves").scenarios[0].executor,
            Executor::SharedIterations { users: 2, iterations: 7 }
        );
    }

    #[test]
    fn plan_scenarios_run_side_by_side_and_end_with_the_last() {
        let scenario = |name: &str, tasks: Vec<String>, start_ms, run_time_ms| ScenarioOptions {
            name: name.into(),
            tasks,
            start_ms,
            run_time_ms,
            users: Some(2),
            spawn_rate: None,
            iterations: None,
            shared_iterations: None,
            stages: vec![],
            arrival_rate: None,
            max_vus: None,
        };
        let plan = Options {
            scenarios: vec![
                scenario("browsers", vec!["browse".into()], 0, Some(3000)),
                scenario("buyers", vec!["buy".into()], 1000, Some(4000)),
            ],
            ..options()
        };
        let cfg = requested(None).resolve(&plan_of(plan.clone())).expect("resolves");
        assert_eq!(cfg.scenarios.len(), 2);
        assert_eq!(cfg.scenarios[1].tasks, Some(vec![1]));
        assert_eq!(cfg.scenarios[1].start, Duration::from_secs(1));
        assert_eq!(cfg.run_time, Some(Duration::from_secs(5)), "the last scenario ends at 1 s + 4 s");
        assert_eq!(cfg.max_users(), 4);
        // A load flag replaces the scenarios with one of its own, as in k6.
        let cfg = requested(Some(3)).resolve(&plan_of(plan)).expect("resolves");
        assert_eq!(cfg.scenarios.len(), 1);
        assert_eq!(cfg.scenarios[0].name, DEFAULT_SCENARIO);

        let unknown = Options { scenarios: vec![scenario("x", vec!["nope".into()], 0, None)], ..options() };
        let err = requested(None).resolve(&plan_of(unknown)).expect_err("unknown task");
        assert!(err.to_string().contains("scenario `x` runs task `nope`, which the plan does not have"), "{err}");
    }

    #[test]
    fn load_flags_choose_the_executor() {
        let empty = options();
        let mut r = requested(Some(20));
        r.load.stages = Some(crate::load::parse_stages("10:10s,0:5s").expect("valid"));
        let cfg = r.clone().resolve(&plan_of(empty.clone())).expect("resolves");
        assert_eq!(cfg.scenarios[0].executor.name(), "ramping-vus");
        assert_eq!(cfg.run_time, Some(Duration::from_secs(15)), "the stages set the run time");

        r.load.arrival_rate = Some(100.0);
        r.load.max_vus = Some(50);
        let cfg = r.clone().resolve(&plan_of(empty.clone())).expect("resolves");
        assert_eq!(cfg.scenarios[0].executor.name(), "ramping-arrival-rate");
        let Executor::ArrivalRate(a) = &cfg.scenarios[0].executor else { panic!("arrival rate") };
        assert_eq!((a.pre_allocated, a.max_vus, a.ramp.start), (20, 50, 100.0));

        r.load.stages = None;
        r.load.run_time = Some(Duration::from_secs(3));
        let cfg = r.clone().resolve(&plan_of(empty.clone())).expect("resolves");
        assert_eq!(cfg.scenarios[0].executor.name(), "constant-arrival-rate");
        assert_eq!(cfg.run_time, Some(Duration::from_secs(3)));

        let mut r = requested(Some(4));
        r.load.shared_iterations = Some(100);
        assert_eq!(
            r.resolve(&plan_of(empty.clone())).expect("resolves").scenarios[0].executor,
            Executor::SharedIterations { users: 4, iterations: 100 }
        );
    }

    #[test]
    fn bad_plan_defaults_are_reported() {
        let plan = Options { host: Some("nope".into()), ..options() };
        assert!(matches!(requested(None).resolve(&plan_of(plan.clone())), Err(ConfigError::PlanHost(_))));
        let plan = Options { users: Some(0), ..options() };
        assert!(requested(None).resolve(&plan_of(plan.clone())).is_err());
        let plan = Options { thresholds: vec!["http_req_duration:p95<3".into()], ..options() };
        let err = requested(None).resolve(&plan_of(plan.clone())).expect_err("malformed threshold");
        assert!(err.to_string().starts_with("the plan's threshold `http_req_duration:p95<3`"), "{err}");
    }
}
