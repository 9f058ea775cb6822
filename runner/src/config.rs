//! The second configuration stage: what the user typed plus what the plan declared,
//! resolved into the settings of one run (command-line flags win over the plan).

use std::path::PathBuf;
use std::time::Duration;

use crate::bindings::Options;
use crate::cli::{LoadArgs, OutputArgs};
use crate::client::BaseUrl;
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
    pub executor: Executor,
    /// `None`: until Ctrl-C, or until the executor's work is done.
    pub run_time: Option<Duration>,
    pub stop_timeout: Duration,
    pub env: Vec<(String, String)>,
    pub insecure: bool,
    pub output: OutputArgs,
    pub limits: GuestLimits,
    /// The plan's thresholds, then the command line's.
    pub thresholds: Vec<Threshold>,
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
    pub fn resolve(self, plan: &Options) -> Result<RunConfig, ConfigError> {
        let host = match (self.host, &plan.host) {
            (Some(host), _) => Some(host),
            (None, Some(h)) => Some(BaseUrl::parse(h).map_err(|_| ConfigError::PlanHost(h.clone()))?),
            (None, None) => None,
        };
        let users = match (self.load.users, plan.users) {
            (Some(u), _) => u,
            (None, Some(0)) => return Err(ConfigError::PlanOption("number of users is 0".into())),
            (None, Some(u)) => u,
            (None, None) => DEFAULT_USERS,
        };
        let spawn_rate = match (self.load.spawn_rate, plan.spawn_rate) {
            (Some(r), _) => r,
            (None, Some(r)) if !(r.is_finite() && r > 0.0) => {
                return Err(ConfigError::PlanOption(format!("spawn rate {r} is not above 0")));
            }
            (None, Some(r)) => r,
            (None, None) => DEFAULT_SPAWN_RATE,
        };
        let executor = if self.load.chooses_executor() {
            executor_from_flags(&self.load, users, spawn_rate)
        } else {
            executor_from_plan(plan, users, spawn_rate)?
        };
        let load = &self.load;
        let run_time =
            load.run_time.or(plan.run_time_ms.map(Duration::from_millis)).or_else(|| executor.own_duration());
        let mut thresholds = plan
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
            executor,
            run_time,
            stop_timeout: self.load.stop_timeout,
            env: self.env,
            insecure: self.insecure,
            output: self.output,
            limits: self.limits,
        })
    }
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
fn executor_from_plan(plan: &Options, users: u32, spawn_rate: f64) -> Result<Executor, ConfigError> {
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
            output: OutputArgs { json: None, exit_code_on_error: 0, quiet: true, thresholds: vec![] },
            limits: GuestLimits::default(),
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
        let cfg = requested(Some(7)).resolve(&plan).expect("resolves");
        assert_eq!(cfg.executor, Executor::Users { users: 7, spawn_rate: 5.0, iterations: None });
        assert_eq!(cfg.run_time, Some(Duration::from_secs(60)));
        assert_eq!(cfg.host.map(|h| h.as_str().to_owned()), Some("http://127.0.0.1:9".into()));

        let empty = options();
        let cfg = requested(None).resolve(&empty).expect("resolves");
        assert_eq!(cfg.executor, Executor::Users { users: 1, spawn_rate: 1.0, iterations: None });
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
        let cfg = requested(None).resolve(&plan).expect("resolves");
        assert_eq!(cfg.executor.name(), "ramping-arrival-rate");
        assert_eq!(cfg.executor.max_users(), 9);
        assert_eq!(cfg.run_time, Some(Duration::from_secs(2)));
        let cfg = requested(Some(3)).resolve(&plan).expect("resolves");
        assert_eq!(cfg.executor, Executor::Users { users: 3, spawn_rate: 1.0, iterations: None }, "-u wins");

        let shape = Options { shape: vec![WitStep { until_ms: 3000, users: 4, spawn_rate: 2.0 }], ..options() };
        let cfg = requested(None).resolve(&shape).expect("resolves");
        assert_eq!(cfg.executor.name(), "load-shape");
        assert_eq!(cfg.run_time, Some(Duration::from_secs(3)));
        let bad = Options { shape: vec![WitStep { until_ms: 3000, users: 4, spawn_rate: 0.0 }], ..options() };
        assert!(requested(None).resolve(&bad).is_err());
        let plan = Options { shared_iterations: Some(7), users: Some(2), ..options() };
        assert_eq!(
            requested(None).resolve(&plan).expect("resolves").executor,
            Executor::SharedIterations { users: 2, iterations: 7 }
        );
    }

    #[test]
    fn load_flags_choose_the_executor() {
        let empty = options();
        let mut r = requested(Some(20));
        r.load.stages = Some(crate::load::parse_stages("10:10s,0:5s").expect("valid"));
        let cfg = r.clone().resolve(&empty).expect("resolves");
        assert_eq!(cfg.executor.name(), "ramping-vus");
        assert_eq!(cfg.run_time, Some(Duration::from_secs(15)), "the stages set the run time");

        r.load.arrival_rate = Some(100.0);
        r.load.max_vus = Some(50);
        let cfg = r.clone().resolve(&empty).expect("resolves");
        assert_eq!(cfg.executor.name(), "ramping-arrival-rate");
        let Executor::ArrivalRate(a) = &cfg.executor else { panic!("arrival rate") };
        assert_eq!((a.pre_allocated, a.max_vus, a.ramp.start), (20, 50, 100.0));

        r.load.stages = None;
        r.load.run_time = Some(Duration::from_secs(3));
        let cfg = r.clone().resolve(&empty).expect("resolves");
        assert_eq!(cfg.executor.name(), "constant-arrival-rate");
        assert_eq!(cfg.run_time, Some(Duration::from_secs(3)));

        let mut r = requested(Some(4));
        r.load.shared_iterations = Some(100);
        assert_eq!(
            r.resolve(&empty).expect("resolves").executor,
            Executor::SharedIterations { users: 4, iterations: 100 }
        );
    }

    #[test]
    fn bad_plan_defaults_are_reported() {
        let plan = Options { host: Some("nope".into()), ..options() };
        assert!(matches!(requested(None).resolve(&plan), Err(ConfigError::PlanHost(_))));
        let plan = Options { users: Some(0), ..options() };
        assert!(requested(None).resolve(&plan).is_err());
        let plan = Options { thresholds: vec!["http_req_duration:p95<3".into()], ..options() };
        let err = requested(None).resolve(&plan).expect_err("malformed threshold");
        assert!(err.to_string().starts_with("the plan's threshold `http_req_duration:p95<3`"), "{err}");
    }
}
