//! The lines printed when a run starts: what runs against what, with which load model,
//! until when, and which tasks.

use crate::bindings::Task;
use crate::config::{RunConfig, ScenarioConfig, show_duration};
use crate::load::{Executor, Ramp};

/// One line for a run of one scenario; a heading and a line per scenario otherwise.
pub fn describe(cfg: &RunConfig, tasks: &[Task]) -> Vec<String> {
    let host = cfg.host.as_ref().map_or("(no --host: absolute URLs only)", |h| h.as_str());
    let plan = cfg.plan_path.display();
    let until = match (cfg.run_time, cfg.scenarios.as_slice()) {
        (Some(t), [ScenarioConfig { executor: Executor::Users { iterations: Some(n), .. }, .. }]) => {
            format!("for {} or {n} iterations per user", show_duration(t))
        }
        (Some(t), _) => format!("for {}", show_duration(t)),
        (None, [ScenarioConfig { executor: Executor::Users { iterations: Some(n), .. }, .. }]) => {
            format!("for {n} iterations per user")
        }
        (None, [ScenarioConfig { executor: Executor::SharedIterations { .. }, .. }]) => {
            "until the iterations are done".to_owned()
        }
        (None, _) => "until Ctrl-C or the end of the work".to_owned(),
    };
    match cfg.scenarios.as_slice() {
        [only] => vec![format!(
            "Running {plan} against {host}: {} ({}), {until} (tasks: {})",
            only.executor.name(),
            load(&only.executor),
            task_list(tasks, None)
        )],
        all => {
            let mut lines = vec![format!("Running {plan} against {host}: {} scenarios, {until}", all.len())];
            for s in all {
                let window = match s.run_time {
                    Some(d) => format!("from {} for {}", show_duration(s.start), show_duration(d)),
                    None => format!("from {}", show_duration(s.start)),
                };
                lines.push(format!(
                    "  scenario `{}`: {} ({}), {window} (tasks: {})",
                    s.name,
                    s.executor.name(),
                    load(&s.executor),
                    task_list(tasks, s.tasks.as_deref())
                ));
            }
            lines
        }
    }
}

fn load(executor: &Executor) -> String {
    match executor {
        Executor::Users { users, spawn_rate, .. } if spawn_rate.is_infinite() => format!("{users} users"),
        Executor::Users { users, spawn_rate, .. } => format!("{users} users at {spawn_rate}/s"),
        Executor::SharedIterations { users, iterations } => format!("{users} users sharing {iterations} iterations"),
        Executor::RampingVus { ramp } => format!("users ramping {}", stages(ramp, "")),
        Executor::Shape(steps) => {
            let steps: Vec<String> = steps
                .iter()
                .map(|s| format!("{} users at {}/s until {}", s.users, s.spawn_rate, show_duration(s.until)))
                .collect();
            format!("load shape: {}", steps.join(", "))
        }
        Executor::ArrivalRate(a) => format!(
            "iterations arriving at {} (VUs: {} started, up to {})",
            stages(&a.ramp, "/s"),
            a.pre_allocated,
            a.max_vus
        ),
    }
}

fn task_list(tasks: &[Task], chosen: Option<&[usize]>) -> String {
    let names: Vec<String> = tasks
        .iter()
        .enumerate()
        .filter(|(i, _)| chosen.is_none_or(|c| c.contains(i)))
        .map(|(_, t)| format!("{}×{}", t.name, t.weight))
        .collect();
    names.join(", ")
}

/// `100/s` or `0 -> 10/s over 30s -> 0/s over 10s`.
fn stages(ramp: &Ramp, unit: &str) -> String {
    let mut text = format!("{}{unit}", ramp.start);
    for stage in &ramp.stages {
        text.push_str(&format!(" -> {}{unit} over {}", stage.target, show_duration(stage.duration)));
    }
    text
}
