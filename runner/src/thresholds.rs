//! Thresholds (k6's pass/fail criteria): expressions such as
//! `http_req_duration{name:/login}:p(95)<300ms`, parsed before the run starts and
//! evaluated on the run's statistics, at the end (the exit code) and, for those marked
//! `abortOnFail`, every second while the run goes on.
//!
//! Grammar: `METRIC[{TAG:VALUE,...}]:STAT OP NUMBER[UNIT][,abortOnFail[=DELAY]]`.
//! Built-in metrics and their statistics:
//! - `http_req_duration`, `iteration_duration` (milliseconds, or with a unit `us`, `ms`,
//!   `s`): `avg`, `min`, `max`, `med`, `p(N)`;
//! - `http_req_failed`, `checks`: `rate` (a share 0..1, or a percentage with `%`);
//! - `http_reqs`, `iterations`, `dropped_iterations`: `count`, `rate` (per second);
//! - custom metrics by name: counters `count`/`rate`, gauges `value`/`min`/`max`, rates
//!   `rate`, trends as durations but unitless.
//!
//! Tags select series: `name`, `method` and any tag the scenario set for requests,
//! `scenario` (alone) for requests and iterations, `check` for checks, and any tag a custom
//! metric was recorded with. A threshold whose metric has no data fails (a typo in a
//! name must not pass silently).

use std::time::Duration;

use serde::Serialize;

use crate::stats::{Aggregator, MetricKind, Series};

/// Exit code of a run in which a threshold failed (k6's code).
pub const EXIT_THRESHOLDS_FAILED: i32 = 99;

#[derive(Debug, Clone, PartialEq)]
enum Metric {
    HttpReqDuration,
    /// k6's `http_req_connecting`, `http_req_waiting` and `http_req_receiving`.
    HttpReqPhase(Phase),
    HttpReqFailed,
    HttpReqs,
    IterationDuration,
    Iterations,
    DroppedIterations,
    Checks,
    Custom(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Connecting,
    Waiting,
    Receiving,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Stat {
    Avg,
    Min,
    Max,
    Med,
    Percentile(f64),
    Rate,
    Count,
    Value,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

/// One parsed threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// As written (without the abort suffix), for reports.
    pub source: String,
    metric: Metric,
    tags: Vec<(String, String)>,
    stat: Stat,
    op: Op,
    limit: f64,
    /// `Some(delay)`: stop the run as soon as this fails, once `delay` has passed.
    pub abort_on_fail: Option<Duration>,
}

/// A threshold's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub threshold: String,
    pub passed: bool,
    /// The statistic's value (milliseconds for durations), `None` when there was no data.
    pub value: Option<f64>,
}

impl std::str::FromStr for Threshold {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        parse(s).map_err(|why| format!("`{s}` is not a threshold like http_req_duration:p(95)<300ms: {why}"))
    }
}

fn parse(text: &str) -> Result<Threshold, String> {
    let text = text.trim();
    let (text, abort_on_fail) = match text.rsplit_once(",abortOnFail") {
        Some((rest, "")) => (rest, Some(Duration::ZERO)),
        Some((rest, delay)) => {
            let delay = delay.strip_prefix('=').ok_or("abortOnFail takes an optional =DELAY")?;
            (rest, Some(crate::cli::parse_duration(delay)?))
        }
        None => (text, None),
    };
    let (selector, expression) = match text.find('{') {
        Some(open) => {
            let close = text[open..].find('}').map(|i| open + i).ok_or("the tag list has no closing `}`")?;
            let rest = text[close + 1..].strip_prefix(':').ok_or("expected `:` after the tags")?;
            (&text[..=close], rest)
        }
        None => text.split_once(':').ok_or("expected METRIC:EXPRESSION")?,
    };
    let (name, tags) = match selector.split_once('{') {
        Some((name, tags)) => (name, parse_tags(tags.trim_end_matches('}'))?),
        None => (selector, Vec::new()),
    };
    let metric = match name.trim() {
        "http_req_duration" => Metric::HttpReqDuration,
        "http_req_connecting" => Metric::HttpReqPhase(Phase::Connecting),
        "http_req_waiting" => Metric::HttpReqPhase(Phase::Waiting),
        "http_req_receiving" => Metric::HttpReqPhase(Phase::Receiving),
        "http_req_failed" => Metric::HttpReqFailed,
        "http_reqs" => Metric::HttpReqs,
        "iteration_duration" => Metric::IterationDuration,
        "iterations" => Metric::Iterations,
        "dropped_iterations" => Metric::DroppedIterations,
        "checks" => Metric::Checks,
        "" => return Err("the metric name is empty".into()),
        custom => Metric::Custom(custom.to_owned()),
    };
    let allowed_tags: &[&str] = match metric {
        // `name`, `method`, `scenario`, or any tag the scenario set on its requests.
        Metric::HttpReqDuration | Metric::HttpReqPhase(_) | Metric::HttpReqFailed | Metric::HttpReqs => &[],
        Metric::Iterations | Metric::DroppedIterations => &["scenario"],
        Metric::IterationDuration => &["-"],
        Metric::Checks => &["check"],
        Metric::Custom(_) => &[],
    };
    if let Some((tag, _)) = tags.iter().find(|(t, _)| !allowed_tags.is_empty() && !allowed_tags.contains(&t.as_str())) {
        return Err(format!("`{name}` has no tag `{tag}`"));
    }
    let scenario = tags.iter().any(|(t, _)| t == "scenario");
    if scenario && tags.len() > 1 {
        return Err(format!("`{name}` takes `scenario` as its only tag"));
    }
    let split = expression.find(['<', '>', '=', '!']).ok_or("expected a comparison: <, <=, >, >=, == or !=")?;
    let (stat, rest) = expression.split_at(split);
    let (op, number) = [("<=", Op::Le), (">=", Op::Ge), ("==", Op::Eq), ("!=", Op::Ne), ("<", Op::Lt), (">", Op::Gt)]
        .iter()
        .find_map(|(sym, op)| rest.strip_prefix(sym).map(|n| (*op, n)))
        .ok_or("expected a comparison: <, <=, >, >=, == or !=")?;
    let stat = parse_stat(stat.trim())?;
    check_stat(&metric, stat)?;
    let limit = parse_limit(number.trim(), &metric)?;
    Ok(Threshold { source: text.to_owned(), metric, tags, stat, op, limit, abort_on_fail })
}

fn parse_tags(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split(',')
        .filter(|t| !t.trim().is_empty())
        .map(|pair| {
            pair.split_once(':')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| format!("the tag `{pair}` is not NAME:VALUE"))
        })
        .collect()
}

fn parse_stat(text: &str) -> Result<Stat, String> {
    Ok(match text {
        "avg" => Stat::Avg,
        "min" => Stat::Min,
        "max" => Stat::Max,
        "med" => Stat::Med,
        "rate" => Stat::Rate,
        "count" => Stat::Count,
        "value" => Stat::Value,
        _ => {
            let n = text
                .strip_prefix("p(")
                .and_then(|t| t.strip_suffix(')'))
                .and_then(|n| n.trim().parse::<f64>().ok())
                .filter(|n| (0.0..=100.0).contains(n))
                .ok_or_else(|| format!("`{text}` is not avg, min, max, med, p(N), rate, count or value"))?;
            Stat::Percentile(n)
        }
    })
}

fn check_stat(metric: &Metric, stat: Stat) -> Result<(), String> {
    let ok = match metric {
        Metric::HttpReqDuration | Metric::HttpReqPhase(_) | Metric::IterationDuration => {
            matches!(stat, Stat::Avg | Stat::Min | Stat::Max | Stat::Med | Stat::Percentile(_))
        }
        Metric::HttpReqFailed | Metric::Checks => stat == Stat::Rate,
        Metric::HttpReqs | Metric::Iterations | Metric::DroppedIterations => matches!(stat, Stat::Count | Stat::Rate),
        // The kind of a custom metric is known once the scenario records it.
        Metric::Custom(_) => true,
    };
    if ok { Ok(()) } else { Err(format!("{metric:?} has no statistic {stat:?}").to_lowercase()) }
}

/// The limit in the metric's unit: milliseconds for durations, a share for rates.
fn parse_limit(text: &str, metric: &Metric) -> Result<f64, String> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| format!("`{text}` is not a number"))?;
    let duration = matches!(metric, Metric::HttpReqDuration | Metric::HttpReqPhase(_) | Metric::IterationDuration);
    let scale = match (unit.trim(), duration) {
        ("", _) => 1.0,
        ("%", false) => 0.01,
        ("us" | "µs", true) => 0.001,
        ("ms", true) => 1.0,
        ("s", true) => 1000.0,
        ("m", true) => 60_000.0,
        (unit, _) => return Err(format!("`{unit}` is not a unit this metric takes")),
    };
    Ok(number * scale)
}

impl Threshold {
    /// Evaluates the threshold on what has been collected so far.
    pub fn evaluate(&self, stats: &Aggregator) -> Verdict {
        let value = self.value(stats);
        let passed = value.is_some_and(|v| match self.op {
            Op::Lt => v < self.limit,
            Op::Le => v <= self.limit,
            Op::Gt => v > self.limit,
            Op::Ge => v >= self.limit,
            Op::Eq => (v - self.limit).abs() < 1e-9,
            Op::Ne => (v - self.limit).abs() >= 1e-9,
        });
        Verdict { threshold: self.source.clone(), passed, value }
    }

    /// The requests the tags select, merged.
    fn requests(&self, stats: &Aggregator) -> crate::stats::Entry {
        if let Some(scenario) = self.tag("scenario") {
            return stats.scenario_requests(scenario);
        }
        let (name, method) = (self.tag("name"), self.tag("method"));
        let keep = |m: &str, n: &str| name.is_none_or(|x| x == n) && method.is_none_or(|x| x == m);
        let custom: Vec<(String, String)> =
            self.tags.iter().filter(|(k, _)| k != "name" && k != "method").cloned().collect();
        if custom.is_empty() { stats.requests_where(keep) } else { stats.tagged_where(keep, &custom) }
    }

    fn tag(&self, name: &str) -> Option<&str> {
        self.tags.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn value(&self, stats: &Aggregator) -> Option<f64> {
        let per_second = |n: u64| n as f64 / stats.elapsed_s().max(1e-9);
        match &self.metric {
            Metric::HttpReqDuration | Metric::HttpReqFailed | Metric::HttpReqs => {
                let entry = self.requests(stats);
                if entry.requests == 0 {
                    return None;
                }
                let ms = |us: u64| us as f64 / 1000.0;
                Some(match (&self.metric, self.stat) {
                    (Metric::HttpReqFailed, _) => entry.failures as f64 / entry.requests as f64,
                    (Metric::HttpReqs, Stat::Count) => entry.requests as f64,
                    (Metric::HttpReqs, _) => per_second(entry.requests),
                    (_, Stat::Avg) => entry.avg_us() / 1000.0,
                    (_, Stat::Min) => ms(entry.min_us()),
                    (_, Stat::Max) => ms(entry.max_us),
                    (_, Stat::Med) => ms(entry.percentile_us(0.5)),
                    (_, Stat::Percentile(p)) => ms(entry.percentile_us(p / 100.0)),
                    _ => return None,
                })
            }
            Metric::HttpReqPhase(phase) => {
                let entry = self.requests(stats);
                let h = match phase {
                    Phase::Connecting => &entry.connecting,
                    Phase::Waiting => &entry.waiting,
                    Phase::Receiving => &entry.receiving,
                };
                trend_value(h, self.stat)
            }
            Metric::IterationDuration => trend_value(stats.iteration_durations(), self.stat),
            Metric::Iterations | Metric::DroppedIterations => {
                let (ran, dropped) = stats.iteration_counts(self.tag("scenario"));
                let n = if self.metric == Metric::Iterations { ran } else { dropped };
                Some(if self.stat == Stat::Count { n as f64 } else { per_second(n) })
            }
            Metric::Checks => {
                let name = self.tag("check");
                let count = stats.checks_where(|c| name.is_none_or(|x| x == c));
                let all = count.passes + count.fails;
                (all > 0).then(|| count.passes as f64 / all as f64)
            }
            Metric::Custom(name) => {
                let series = stats.metric_where(name, |key| key.has_tags(&self.tags))?;
                custom_value(&series, self.stat, per_second(1))
            }
        }
    }
}

/// A duration histogram's statistic, in milliseconds; `None` when empty.
fn trend_value(h: &hdrhistogram::Histogram<u64>, stat: Stat) -> Option<f64> {
    if h.is_empty() {
        return None;
    }
    let ms = |us: u64| us as f64 / 1000.0;
    Some(match stat {
        Stat::Avg => h.mean() / 1000.0,
        Stat::Min => ms(h.min()),
        Stat::Max => ms(h.max()),
        Stat::Med => ms(h.value_at_quantile(0.5)),
        Stat::Percentile(p) => ms(h.value_at_quantile(p / 100.0)),
        _ => return None,
    })
}

/// A custom series' statistic; `per_unit` is 1 / elapsed seconds (for counters' rates).
fn custom_value(series: &Series, stat: Stat, per_unit: f64) -> Option<f64> {
    Some(match (series.kind, stat) {
        (MetricKind::Counter, Stat::Count) => series.sum,
        (MetricKind::Counter, Stat::Rate) => series.sum * per_unit,
        (MetricKind::Gauge, Stat::Value) => series.last?.1,
        (MetricKind::Gauge | MetricKind::Trend, Stat::Min) => series.min,
        (MetricKind::Gauge | MetricKind::Trend, Stat::Max) => series.max,
        (MetricKind::Rate, Stat::Rate) => series.rate(),
        (MetricKind::Trend, Stat::Avg) => series.avg(),
        (MetricKind::Trend, Stat::Med) => series.percentile(0.5),
        (MetricKind::Trend, Stat::Percentile(p)) => series.percentile(p / 100.0),
        _ => return None,
    })
}

/// Verdicts of every threshold, and whether all passed.
pub fn evaluate_all(thresholds: &[Threshold], stats: &Aggregator) -> (Vec<Verdict>, bool) {
    let verdicts: Vec<Verdict> = thresholds.iter().map(|t| t.evaluate(stats)).collect();
    let all = verdicts.iter().all(|v| v.passed);
    (verdicts, all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Outcome, Sample};

    fn t(s: &str) -> Threshold {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn k6_expressions_parse() {
        let th = t("http_req_duration{name:/login}:p(95)<300ms");
        assert_eq!(th.metric, Metric::HttpReqDuration);
        assert_eq!(th.tags, vec![("name".to_owned(), "/login".to_owned())]);
        assert_eq!((th.stat, th.op, th.limit), (Stat::Percentile(95.0), Op::Lt, 300.0));
        assert_eq!(t("http_req_duration:avg<1.5s").limit, 1500.0);
        assert_eq!(t("http_req_failed:rate<1%").limit, 0.01);
        assert_eq!(t("http_req_failed:rate<=0.01").op, Op::Le);
        assert_eq!(t("checks{check:status is 200}:rate>0.99").tags[0].1, "status is 200");
        assert_eq!(t("my_trend{kind:a,b:c}:p(99.9)>=2").tags.len(), 2);
        let abort = t("http_req_failed:rate<0.1,abortOnFail=5s");
        assert_eq!(abort.abort_on_fail, Some(Duration::from_secs(5)));
        assert_eq!(abort.source, "http_req_failed:rate<0.1");
        assert_eq!(t("iterations:count>10,abortOnFail").abort_on_fail, Some(Duration::ZERO));
    }

    #[test]
    fn malformed_expressions_say_why() {
        for (bad, why) in [
            ("http_req_duration", "expected METRIC:EXPRESSION"),
            ("http_req_duration:p(95)", "expected a comparison"),
            ("http_req_duration:p95<3", "is not avg"),
            ("http_req_duration:p(101)<3", "is not avg"),
            ("http_req_duration:rate<3", "no statistic"),
            ("http_req_duration:avg<3kg", "is not a unit"),
            ("http_req_duration:avg<fast", "is not a number"),
            ("http_req_failed:rate<3ms", "is not a unit"),
            ("http_req_duration{name:/a:avg<3", "no closing"),
            ("iterations{status:200}:count<3", "has no tag `status`"),
            ("http_reqs{scenario:a,name:/x}:count<3", "`scenario` as its only tag"),
            ("http_req_duration{name}:avg<3", "is not NAME:VALUE"),
            (":avg<3", "metric name is empty"),
            ("iterations:count>1,abortOnFail5s", "optional =DELAY"),
        ] {
            let err = bad.parse::<Threshold>().expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn thresholds_judge_the_recorded_statistics() {
        let (mut stats, recorder) = Aggregator::new();
        for i in 1..=100u64 {
            let name = if i % 2 == 0 { "/a" } else { "/b" };
            let outcome = if i % 10 == 0 { Outcome::Failure("HTTP 500") } else { Outcome::Success };
            recorder.request(&Sample { name, outcome, ..Sample::get_ok(i * 1000) });
        }
        recorder.check("ok", true).expect("recorded");
        recorder.check("ok", false).expect("recorded");
        recorder.metric("waiting", MetricKind::Trend, 5.0, &[]).expect("recorded");
        stats.collect();
        let pass = |s: &str| t(s).evaluate(&stats).passed;
        assert!(pass("http_req_duration:p(95)<100"));
        assert!(!pass("http_req_duration:p(95)<90"));
        assert!(pass("http_req_duration{name:/a}:min>=2"));
        assert!(pass("http_req_failed:rate<=10%"));
        assert!(!pass("http_req_failed{name:/a}:rate<0.1"), "/a holds every failure");
        assert!(pass("http_reqs:count==100"));
        assert!(pass("checks:rate==0.5"));
        assert!(pass("waiting:avg<6"));
        assert!(!pass("waiting:count>0"), "a trend has no count statistic");
        let missing = t("http_req_duration{name:/nope}:avg<1").evaluate(&stats);
        assert!(!missing.passed && missing.value.is_none(), "no data fails");
        assert!(!pass("no_such_metric:value>0"));
    }
}
