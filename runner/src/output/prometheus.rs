//! The run's statistics in the Prometheus / OpenMetrics text format, for `/metrics`
//! (encoded with `prometheus-client`, the Prometheus project's Rust client):
//!
//! - `wasmload_http_reqs_total{method,name,status}`: requests by response status (0: none);
//! - `wasmload_http_req_failed_total{method,name}`: requests that counted as failures;
//! - `wasmload_http_req_duration_seconds{method,name}`: a histogram of response times;
//! - `wasmload_vus`, `wasmload_vus_max`, `wasmload_iterations_total`,
//!   `wasmload_dropped_iterations_total`, `wasmload_task_errors_total{task}`;
//! - `wasmload_checks_total{check,result}` with result `pass` or `fail`;
//! - `wasmload_custom_metric{metric,kind,tags}` (a counter's sum, a gauge's last value, a
//!   rate's share, a trend's average) and `wasmload_custom_metric_count_total`.
//!
//! Names and tags come from the scenario; label values are escaped so none can end its
//! label or start a line of its own.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::stats::{Aggregator, Snapshot};

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the response-time histogram's buckets, in seconds (Prometheus's defaults
/// from 1 ms, widened to 60 s); `+Inf` follows.
const BUCKETS_S: [f64; 15] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

type Labels = Vec<(&'static str, String)>;

/// Everything one scrape shows, copied out of the statistics.
#[derive(Debug, Default)]
struct Exposition {
    requests: Vec<Request>,
    users: u64,
    max_users: u64,
    iterations: u64,
    dropped_iterations: u64,
    task_errors: Vec<(String, u64)>,
    checks: Vec<(String, u64, u64)>,
    metrics: Vec<(Labels, f64, u64)>,
}

#[derive(Debug)]
struct Request {
    labels: Labels,
    statuses: Vec<(u16, u64)>,
    failures: u64,
    sum_s: f64,
    count: u64,
    /// Per bucket (not cumulative), `+Inf` last.
    buckets: Vec<(f64, u64)>,
}

/// The exposition of the run so far.
pub fn render(stats: &Aggregator, snapshot: &Snapshot, max_users: u32) -> String {
    let mut exposition = Exposition {
        users: snapshot.users,
        max_users: u64::from(max_users),
        iterations: snapshot.iterations,
        dropped_iterations: snapshot.dropped_iterations,
        ..Exposition::default()
    };
    for (method, name, entry) in stats.entries() {
        let labels = vec![("method", escape(method)), ("name", escape(name))];
        let mut below = 0;
        let mut buckets: Vec<(f64, u64)> = BUCKETS_S
            .iter()
            .map(|&bound| {
                let upto = entry.histogram.count_between(0, (bound * 1e6) as u64);
                let in_bucket = upto.saturating_sub(below);
                below = upto.max(below);
                (bound, in_bucket)
            })
            .collect();
        buckets.push((f64::MAX, entry.requests.saturating_sub(below)));
        exposition.requests.push(Request {
            labels,
            statuses: entry.statuses.clone(),
            failures: entry.failures,
            sum_s: entry.total_us as f64 / 1e6,
            count: entry.requests,
            buckets,
        });
    }
    for e in &snapshot.task_errors {
        match exposition.task_errors.iter_mut().find(|(task, _)| *task == e.name) {
            Some((_, n)) => *n += e.occurrences,
            None => exposition.task_errors.push((e.name.clone(), e.occurrences)),
        }
    }
    exposition.checks = snapshot.checks.iter().map(|c| (escape(&c.name), c.passes, c.fails)).collect();
    exposition.metrics = snapshot
        .metrics
        .iter()
        .map(|m| {
            let kind = format!("{:?}", m.kind).to_lowercase();
            (vec![("metric", escape(&m.name)), ("kind", kind), ("tags", escape(&m.tags))], m.value, m.count)
        })
        .collect();
    for (task, _) in &mut exposition.task_errors {
        *task = escape(task);
    }
    let mut registry = Registry::default();
    registry.register_collector(Box::new(exposition));
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
    text
}

/// A label value as the text format needs it: backslash, double quote and line feed escaped.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    values: impl IntoIterator<Item = (Labels, u64)>,
) -> std::fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in values {
        ConstCounter::new(value).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A metric with one value and no labels.
fn single(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    kind: MetricType,
    value: u64,
) -> std::fmt::Result {
    let metric = encoder.encode_descriptor(name, help, None, kind)?;
    match kind {
        MetricType::Counter => ConstCounter::new(value).encode(metric),
        _ => ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(metric),
    }
}

fn gauge(encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, values: Vec<(Labels, f64)>) -> std::fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in values {
        ConstGauge::new(value).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let e = &mut encoder;
        counter(
            e,
            "wasmload_http_reqs",
            "HTTP requests sent, by method, name and response status (0: no response)",
            self.requests.iter().flat_map(|r| {
                r.statuses.iter().map(|&(status, n)| {
                    let mut labels = r.labels.clone();
                    labels.push(("status", status.to_string()));
                    (labels, n)
                })
            }),
        )?;
        counter(
            e,
            "wasmload_http_req_failed",
            "HTTP requests that counted as failures (status >= 400, no response, or failed by the scenario)",
            self.requests.iter().map(|r| (r.labels.clone(), r.failures)),
        )?;
        let mut durations = e.encode_descriptor(
            "wasmload_http_req_duration_seconds",
            "Time from sending each request to the last byte of its response",
            None,
            MetricType::Histogram,
        )?;
        for r in &self.requests {
            durations
                .encode_family(&r.labels)?
                .encode_histogram::<prometheus_client::encoding::NoLabelSet>(r.sum_s, r.count, &r.buckets, None)?;
        }
        single(e, "wasmload_vus", "Virtual users running", MetricType::Gauge, self.users)?;
        single(e, "wasmload_vus_max", "The most virtual users the run can start", MetricType::Gauge, self.max_users)?;
        single(
            e,
            "wasmload_iterations",
            "Iterations (a task and its wait) completed",
            MetricType::Counter,
            self.iterations,
        )?;
        single(
            e,
            "wasmload_dropped_iterations",
            "Iterations an arrival-rate run could not start because every VU was busy",
            MetricType::Counter,
            self.dropped_iterations,
        )?;
        counter(
            e,
            "wasmload_task_errors",
            "Tasks that returned an error or trapped, by task",
            self.task_errors.iter().map(|(task, n)| (vec![("task", task.clone())], *n)),
        )?;
        counter(
            e,
            "wasmload_checks",
            "Checks recorded by the scenario, by check and result",
            self.checks.iter().flat_map(|(name, passes, fails)| {
                [
                    (vec![("check", name.clone()), ("result", "pass".to_owned())], *passes),
                    (vec![("check", name.clone()), ("result", "fail".to_owned())], *fails),
                ]
            }),
        )?;
        gauge(
            e,
            "wasmload_custom_metric",
            "The scenario's custom metrics: a counter's sum, a gauge's last value, a rate's share, a trend's average",
            self.metrics.iter().map(|(labels, value, _)| (labels.clone(), *value)).collect(),
        )?;
        counter(
            e,
            "wasmload_custom_metric_count",
            "Values added to each custom metric",
            self.metrics.iter().map(|(labels, _, count)| (labels.clone(), *count)),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Outcome, Sample};

    #[test]
    fn requests_by_status_and_a_histogram_per_name_with_hostile_names_escaped() {
        let (mut aggregator, recorder) = Aggregator::new();
        for (i, status) in [200u16, 200, 500, 0].into_iter().enumerate() {
            recorder.request(&Sample {
                method: "GET",
                name: "/a\"}\nevil 1",
                elapsed_us: 2_000 * (i as u64 + 1),
                corrected_us: None,
                phases: None,
                scenario: None,
                tags: "",
                bytes: 2,
                status,
                outcome: if status == 200 { Outcome::Success } else { Outcome::Failure("bad") },
            });
        }
        aggregator.collect();
        let text = render(&aggregator, &aggregator.snapshot(2), 5);
        let name = r#"name="/a\"}\nevil 1""#;
        assert!(text.contains(&format!(r#"wasmload_http_reqs_total{{method="GET",{name},status="200"}} 2"#)), "{text}");
        assert!(text.contains(&format!(r#"wasmload_http_reqs_total{{method="GET",{name},status="0"}} 1"#)), "{text}");
        assert!(text.contains(&format!(r#"wasmload_http_req_failed_total{{method="GET",{name}}} 2"#)), "{text}");
        assert!(
            text.contains(&format!(r#"wasmload_http_req_duration_seconds_count{{method="GET",{name}}} 4"#)),
            "{text}"
        );
        assert!(
            text.contains(&format!(r#"wasmload_http_req_duration_seconds_bucket{{le="0.005",method="GET",{name}}} 2"#)),
            "{text}"
        );
        assert!(
            text.contains(&format!(r#"wasmload_http_req_duration_seconds_bucket{{le="+Inf",method="GET",{name}}} 4"#)),
            "{text}"
        );
        assert!(text.contains("wasmload_vus 2") && text.contains("wasmload_vus_max 5"), "{text}");
        assert!(!text.lines().any(|l| l.starts_with("evil")), "a name cannot start a line: {text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
