//! Executors (k6's word): how many VUs run and when iterations start. The arithmetic lives
//! here (stages, linear ramps, when the n-th iteration of an arrival rate is due); the
//! controllers that act on it are in `ramp` (VU counts) and `arrival` (iteration rates).

use std::time::Duration;

/// How a run schedules its VUs and iterations.
#[derive(Debug, Clone, PartialEq)]
pub enum Executor {
    /// `users` VUs started at `spawn_rate` per second, each running tasks (and their wait)
    /// until the run ends or it has done `iterations`: Locust's model, k6's `constant-vus`
    /// and `per-vu-iterations`.
    Users { users: u32, spawn_rate: f64, iterations: Option<u64> },
    /// `users` VUs sharing `iterations` iterations in all (k6 `shared-iterations`).
    SharedIterations { users: u32, iterations: u64 },
    /// The number of VUs follows `ramp` (k6 `ramping-vus`): VUs above the target finish
    /// their current iteration, run `on_stop` and leave.
    RampingVus { ramp: Ramp },
    /// Iterations start at the rate (per second) that `ramp` gives, whatever the response
    /// times (k6 `constant-arrival-rate` and `ramping-arrival-rate`, an open model).
    ArrivalRate(ArrivalRate),
    /// A Locust load shape: until each step's time, the VU count moves towards the step's
    /// users at its spawn rate; the run ends after the last step.
    Shape(Vec<ShapeStep>),
}

/// A step of a Locust load shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShapeStep {
    /// Since the start of the run.
    pub until: Duration,
    pub users: u32,
    /// Users started (or stopped) per second.
    pub spawn_rate: f64,
}

/// Where a load shape's VU count goes, tick by tick.
#[derive(Debug, Clone)]
pub struct ShapeLevel {
    steps: Vec<ShapeStep>,
    level: f64,
}

impl ShapeLevel {
    pub fn new(steps: Vec<ShapeStep>) -> Self {
        Self { steps, level: 0.0 }
    }

    /// The VU count `dt` after the previous call, at `t` after the start.
    pub fn advance(&mut self, t: Duration, dt: Duration) -> f64 {
        let Some(step) = self.steps.iter().find(|s| t < s.until).or(self.steps.last()) else { return 0.0 };
        let target = f64::from(step.users);
        let most = step.spawn_rate * dt.as_secs_f64();
        self.level += (target - self.level).clamp(-most, most);
        self.level
    }
}

/// The users the web page asks for (Locust's "edit users"): the count moves to `users` at
/// `spawn_rate` per second, from wherever it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LiveTarget {
    pub users: u32,
    pub spawn_rate: f64,
}

/// Where a run whose users are changed live goes, tick by tick.
#[derive(Debug)]
pub struct LiveLevel {
    target: tokio::sync::watch::Receiver<LiveTarget>,
    level: f64,
}

impl LiveLevel {
    pub fn new(target: tokio::sync::watch::Receiver<LiveTarget>) -> Self {
        Self { target, level: 0.0 }
    }

    /// The VU count `dt` after the previous call.
    pub fn advance(&mut self, dt: Duration) -> f64 {
        let LiveTarget { users, spawn_rate } = *self.target.borrow();
        let most = spawn_rate * dt.as_secs_f64();
        self.level += (f64::from(users) - self.level).clamp(-most, most);
        self.level
    }
}

/// The open model's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrivalRate {
    /// Iterations per second over time.
    pub ramp: Ramp,
    /// VUs started before the first iteration.
    pub pre_allocated: u32,
    /// VUs the run may grow to when every VU is busy.
    pub max_vus: u32,
    /// How long a due iteration may wait for a busy VU to become free before it is dropped
    /// (0: dropped at once, as in k6).
    pub max_delay: Duration,
}

impl Executor {
    /// The k6 name of this executor, as shown in the summary and the JSON report.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Users { iterations: Some(_), .. } => "per-vu-iterations",
            Self::Users { .. } => "constant-vus",
            Self::SharedIterations { .. } => "shared-iterations",
            Self::RampingVus { .. } => "ramping-vus",
            Self::ArrivalRate(a) if a.ramp.stages.is_empty() => "constant-arrival-rate",
            Self::ArrivalRate(_) => "ramping-arrival-rate",
            Self::Shape(_) => "load-shape",
        }
    }

    /// The most VUs this executor runs at once.
    pub fn max_users(&self) -> u32 {
        match self {
            Self::Users { users, .. } | Self::SharedIterations { users, .. } => *users,
            Self::RampingVus { ramp } => ramp.peak().ceil() as u32,
            Self::ArrivalRate(a) => a.max_vus,
            Self::Shape(steps) => steps.iter().map(|s| s.users).max().unwrap_or(0),
        }
    }

    /// How long the executor runs by itself, when it has an end of its own (the stages).
    pub fn own_duration(&self) -> Option<Duration> {
        match self {
            Self::RampingVus { ramp } => Some(ramp.duration()),
            Self::ArrivalRate(a) if !a.ramp.stages.is_empty() => Some(a.ramp.duration()),
            Self::Shape(steps) => steps.iter().map(|s| s.until).max(),
            _ => None,
        }
    }

    /// Whether requests also get a latency corrected for coordinated omission (measured
    /// from the iteration's scheduled start).
    pub fn is_open(&self) -> bool {
        matches!(self, Self::ArrivalRate(_))
    }
}

/// A stage: move linearly to `target` over `duration`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    pub target: f64,
    pub duration: Duration,
}

/// A value over time: `start`, then each stage in turn; after the last stage it stays at
/// the last target (with no stage, at `start` for ever).
#[derive(Debug, Clone, PartialEq)]
pub struct Ramp {
    pub start: f64,
    pub stages: Vec<Stage>,
}

impl Ramp {
    pub fn constant(value: f64) -> Self {
        Self { start: value, stages: Vec::new() }
    }

    /// The stages' total length.
    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// The highest value the ramp reaches.
    pub fn peak(&self) -> f64 {
        self.stages.iter().map(|s| s.target).fold(self.start, f64::max)
    }

    /// The value at `t` after the start.
    pub fn at(&self, t: Duration) -> f64 {
        let mut from = self.start;
        let mut elapsed = t;
        for stage in &self.stages {
            if elapsed < stage.duration {
                let f = elapsed.as_secs_f64() / stage.duration.as_secs_f64();
                return from + (stage.target - from) * f;
            }
            elapsed -= stage.duration;
            from = stage.target;
        }
        from
    }

    /// When the `n`-th unit of the ramp's integral is reached (the time the `n`-th iteration
    /// of an arrival rate is due, counting from 0 at the start), or `None` if never.
    pub fn time_of(&self, n: u64) -> Option<Duration> {
        let mut left = n as f64;
        let mut at = 0.0f64;
        let mut from = self.start;
        for stage in &self.stages {
            let d = stage.duration.as_secs_f64();
            let area = (from + stage.target) / 2.0 * d;
            if left <= area && d > 0.0 {
                // Solve from·x + (target - from)·x² / (2d) = left for x in [0, d].
                let slope = (stage.target - from) / d;
                let x = if slope.abs() < 1e-12 {
                    left / from
                } else {
                    let disc = (from * from + 2.0 * slope * left).max(0.0);
                    (disc.sqrt() - from) / slope
                };
                return Some(Duration::from_secs_f64(at + x.clamp(0.0, d)));
            }
            left -= area;
            at += d;
            from = stage.target;
        }
        // After the stages the rate stays at the last target.
        (from > 0.0).then(|| Duration::from_secs_f64(at + left / from))
    }
}

/// Stages as typed on the command line (one value, so clap keeps it whole).
#[derive(Debug, Clone, PartialEq)]
pub struct Stages(pub Vec<Stage>);

/// `10:30s,100:2m,0:30s`: targets and how long each takes to reach.
pub fn parse_stages(s: &str) -> Result<Stages, String> {
    let stages = s
        .split(',')
        .map(|part| {
            let (target, duration) = part
                .split_once(':')
                .ok_or_else(|| format!("`{part}` is not a stage like 100:30s (target:duration)"))?;
            let target = target
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|t| t.is_finite() && *t >= 0.0)
                .ok_or_else(|| format!("`{target}` in stage `{part}` is not a target of 0 or more"))?;
            let duration = crate::cli::parse_duration(duration)?;
            Ok(Stage { target, duration })
        })
        .collect::<Result<Vec<_>, String>>()?;
    if stages.iter().all(|s| s.duration.is_zero()) {
        return Err(format!("the stages `{s}` last no time at all"));
    }
    Ok(Stages(stages))
}

/// `2000/s`, `100/1m`, `50` (per second): iterations per second.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let (count, unit) = s.split_once('/').unwrap_or((s, "s"));
    let count = count
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|c| c.is_finite() && *c > 0.0)
        .ok_or_else(|| format!("`{s}` is not an arrival rate like 2000/s or 100/1m (iterations per time unit)"))?;
    let unit = unit.trim();
    // `/s` and `/m` mean one second and one minute (humantime wants a number first).
    let unit = if unit.starts_with(|c: char| c.is_ascii_digit()) { unit.to_owned() } else { format!("1{unit}") };
    let per = crate::cli::parse_duration(&unit)?;
    if per.is_zero() {
        return Err(format!("`{s}` has a time unit of zero"));
    }
    Ok(count / per.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn stages_parse_like_k6() {
        let Stages(stages) = parse_stages("10:30s,100:2m,0:30s").expect("valid");
        assert_eq!(stages.len(), 3);
        assert_eq!(stages[1], Stage { target: 100.0, duration: secs(120.0) });
        assert!(parse_stages("10").is_err());
        assert!(parse_stages("x:10s").is_err());
        assert!(parse_stages("10:soon").is_err());
        assert!(parse_stages("-1:10s").is_err());
        assert!(parse_stages("10:0s").is_err());
    }

    #[test]
    fn rates_take_a_time_unit() {
        assert_eq!(parse_rate("2000/s"), Ok(2000.0));
        assert_eq!(parse_rate("120/1m"), Ok(2.0));
        assert_eq!(parse_rate("30/m"), Ok(0.5));
        assert_eq!(parse_rate("50"), Ok(50.0));
        assert!(parse_rate("0/s").is_err());
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("10/0s").is_err());
    }

    #[test]
    fn ramps_interpolate_linearly_and_hold_the_last_target() {
        let ramp = Ramp { start: 0.0, stages: parse_stages("10:10s,10:5s,0:5s").expect("valid").0 };
        assert_eq!(ramp.at(secs(0.0)), 0.0);
        assert_eq!(ramp.at(secs(5.0)), 5.0);
        assert_eq!(ramp.at(secs(12.0)), 10.0);
        assert_eq!(ramp.at(secs(17.5)), 5.0);
        assert_eq!(ramp.at(secs(100.0)), 0.0);
        assert_eq!(ramp.duration(), secs(20.0));
        assert_eq!(ramp.peak(), 10.0);
    }

    #[test]
    fn load_shapes_move_at_their_spawn_rate() {
        let mut shape = ShapeLevel::new(vec![
            ShapeStep { until: secs(10.0), users: 10, spawn_rate: 2.0 },
            ShapeStep { until: secs(20.0), users: 4, spawn_rate: 1.0 },
        ]);
        let tick = secs(1.0);
        let levels: Vec<f64> = (1..=20).map(|t| shape.advance(secs(f64::from(t) - 0.5), tick)).collect();
        assert_eq!(&levels[..6], &[2.0, 4.0, 6.0, 8.0, 10.0, 10.0]);
        assert_eq!(&levels[10..17], &[9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 4.0]);
    }

    #[test]
    fn iterations_are_due_where_the_rate_integral_says() {
        let constant = Ramp::constant(100.0);
        assert_eq!(constant.time_of(0), Some(Duration::ZERO));
        assert_eq!(constant.time_of(250), Some(secs(2.5)));
        // 0 -> 10/s over 10 s: n iterations by t = t²/2, so the 50th is due at 10 s.
        let ramp = Ramp { start: 0.0, stages: vec![Stage { target: 10.0, duration: secs(10.0) }] };
        let close = |a: Option<Duration>, b: f64| (a.expect("due").as_secs_f64() - b).abs() < 1e-6;
        assert!(close(ramp.time_of(50), 10.0));
        assert!(close(ramp.time_of(8), 4.0));
        // Then 10/s for ever.
        assert!(close(ramp.time_of(60), 11.0));
        let down = Ramp { start: 10.0, stages: vec![Stage { target: 0.0, duration: secs(10.0) }] };
        assert!(close(down.time_of(50), 10.0));
        assert_eq!(down.time_of(51), None);
        assert_eq!(Ramp::constant(0.0).time_of(1), None);
    }
}
