//! The end-of-test summary in Locust's familiar layout: the statistics table with an
//! Aggregated row, the response-time percentiles, the error report, and the task errors.

use std::fmt::Write as _;

use super::console::sanitize;
use crate::stats::{ErrorRow, MetricKind, Snapshot, StatsRow};
use crate::thresholds::Verdict;

/// Widest a name column grows before names are cut.
const MAX_NAME_WIDTH: usize = 60;

/// The whole summary as text.
pub fn render(snapshot: &Snapshot) -> String {
    let width = snapshot.rows.iter().map(|r| r.name.chars().count()).max().unwrap_or(0).clamp(20, MAX_NAME_WIDTH);
    let mut out = String::new();
    stats_table(&mut out, snapshot, width);
    out.push('\n');
    percentile_table(&mut out, snapshot, width, "Response time percentiles (milliseconds)", |r| Some(&r.percentiles));
    out.push('\n');
    timings_table(&mut out, snapshot, width);
    if snapshot.aggregated.corrected_percentiles.is_some() {
        out.push('\n');
        percentile_table(
            &mut out,
            snapshot,
            width,
            "Corrected for coordinated omission: from each iteration's scheduled start (milliseconds)",
            |r| r.corrected_percentiles.as_ref(),
        );
    }
    if snapshot.dropped_iterations > 0 || snapshot.aggregated.corrected_percentiles.is_some() {
        let _ = writeln!(
            out,
            "\nIterations: {} run, {} dropped (due while every VU was busy)",
            snapshot.iterations, snapshot.dropped_iterations
        );
    }
    if !snapshot.scenarios.is_empty() {
        out.push('\n');
        scenarios_table(&mut out, snapshot);
    }
    if !snapshot.checks.is_empty() {
        out.push('\n');
        checks_table(&mut out, snapshot);
    }
    if !snapshot.metrics.is_empty() {
        out.push('\n');
        metrics_table(&mut out, snapshot);
    }
    if !snapshot.errors.is_empty() {
        out.push('\n');
        error_table(&mut out, "Error report", &snapshot.errors);
    }
    if !snapshot.task_errors.is_empty() {
        out.push('\n');
        error_table(&mut out, "Task errors (returned errors and guest traps)", &snapshot.task_errors);
    }
    out
}

fn stats_table(out: &mut String, s: &Snapshot, width: usize) {
    let _ = writeln!(
        out,
        "{:<8} {:<width$} {:>7} {:>12} | {:>7} {:>7} {:>7} {:>7} | {:>8} {:>10} {:>9}",
        "Type", "Name", "# reqs", "# fails", "Avg", "Min", "Max", "Med", "req/s", "failures/s", "Avg size"
    );
    let rule = format!(
        "{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}",
        "-".repeat(8),
        "-".repeat(width + 1),
        "-".repeat(8),
        "-".repeat(14),
        "-".repeat(8),
        "-".repeat(8),
        "-".repeat(8),
        "-".repeat(8),
        "-".repeat(9),
        "-".repeat(11),
        "-".repeat(10)
    );
    let _ = writeln!(out, "{rule}");
    for row in &s.rows {
        stats_line(out, row, width);
    }
    let _ = writeln!(out, "{rule}");
    stats_line(out, &s.aggregated, width);
}

fn stats_line(out: &mut String, r: &StatsRow, width: usize) {
    let fails = format!("{}({:.2}%)", r.failures, r.failure_ratio() * 100.0);
    let _ = writeln!(
        out,
        "{:<8} {:<width$} {:>7} {:>12} | {:>7} {:>7} {:>7} {:>7} | {:>8.2} {:>10.2} {:>8}B",
        r.method,
        cut(&r.name, width),
        r.requests,
        fails,
        ms(r.avg_ms),
        ms(r.min_ms),
        ms(r.max_ms),
        ms(r.median_ms),
        r.rps,
        r.failures_per_s,
        r.avg_size_bytes.round() as u64,
    );
}

fn timings_table(out: &mut String, s: &Snapshot, width: usize) {
    let _ = writeln!(out, "Where the time went (milliseconds; connecting over new connections only)");
    let _ = writeln!(
        out,
        "{:<8} {:<width$} {:>9} {:>9} {:>9} | {:>9} {:>9} | {:>9} {:>9}",
        "Type", "Name", "new conns", "conn avg", "conn max", "TTFB avg", "TTFB p95", "recv avg", "recv p95"
    );
    let rule =
        format!("{}|{}|{}|{}|{}", "-".repeat(8), "-".repeat(width + 1), "-".repeat(31), "-".repeat(21), "-".repeat(20));
    let _ = writeln!(out, "{rule}");
    let line = |out: &mut String, r: &StatsRow| {
        let t = &r.timings;
        let _ = writeln!(
            out,
            "{:<8} {:<width$} {:>9} {:>9} {:>9} | {:>9} {:>9} | {:>9} {:>9}",
            r.method,
            cut(&r.name, width),
            t.connections_opened,
            ms(t.avg_connecting_ms),
            ms(t.max_connecting_ms),
            ms(t.avg_waiting_ms),
            ms(t.p95_waiting_ms),
            ms(t.avg_receiving_ms),
            ms(t.p95_receiving_ms),
        );
    };
    for row in &s.rows {
        line(out, row);
    }
    let _ = writeln!(out, "{rule}");
    line(out, &s.aggregated);
}

fn percentile_table(
    out: &mut String,
    s: &Snapshot,
    width: usize,
    title: &str,
    values: impl Fn(&StatsRow) -> Option<&Vec<(String, f64)>>,
) {
    let _ = writeln!(out, "{title}");
    let mut header = format!("{:<8} {:<width$}", "Type", "Name");
    for (label, _) in &s.aggregated.percentiles {
        let _ = write!(header, " {label:>7}");
    }
    let _ = writeln!(out, "{header} {:>7}", "# reqs");
    let rule = format!(
        "{}|{}|{}",
        "-".repeat(8),
        "-".repeat(width + 1),
        vec!["-".repeat(7); s.aggregated.percentiles.len() + 1].join("|")
    );
    let _ = writeln!(out, "{rule}");
    let line = |out: &mut String, r: &StatsRow| {
        // Requests outside any scheduled iteration (`on_start`) have no corrected latency.
        let Some(values) = values(r) else { return };
        let mut text = format!("{:<8} {:<width$}", r.method, cut(&r.name, width));
        for (_, value) in values {
            let _ = write!(text, " {:>7}", ms(*value));
        }
        let _ = writeln!(out, "{text} {:>7}", r.requests);
    };
    for row in &s.rows {
        line(out, row);
    }
    let _ = writeln!(out, "{rule}");
    line(out, &s.aggregated);
}

/// The thresholds section: each threshold, passed or failed, with the value it was judged on.
pub fn thresholds(verdicts: &[Verdict]) -> String {
    let mut out = String::from("Thresholds\n");
    for v in verdicts {
        let mark = if v.passed { "✓ pass" } else { "✗ FAIL" };
        let value = v.value.map_or("no data".to_owned(), num);
        let _ = writeln!(out, "  {mark}  {}  (value: {value})", sanitize(&v.threshold));
    }
    let failed = verdicts.iter().filter(|v| !v.passed).count();
    if failed > 0 {
        let _ = writeln!(out, "{failed} of {} thresholds failed", verdicts.len());
    }
    out
}

fn scenarios_table(out: &mut String, s: &Snapshot) {
    let _ = writeln!(out, "Scenarios");
    let _ = writeln!(
        out,
        "{:<24} {:>10} {:>8} {:>7} {:>12} | {:>7} {:>7} {:>7} | {:>8}",
        "Scenario", "iterations", "dropped", "# reqs", "# fails", "Avg", "Med", "95%", "req/s"
    );
    let _ = writeln!(out, "{}", "-".repeat(108));
    for row in &s.scenarios {
        let r = &row.requests;
        let p95 = r.percentiles.iter().find(|(label, _)| label == "95%").map_or(0.0, |(_, v)| *v);
        let _ = writeln!(
            out,
            "{:<24} {:>10} {:>8} {:>7} {:>12} | {:>7} {:>7} {:>7} | {:>8.2}",
            cut(&row.name, 24),
            row.iterations,
            row.dropped_iterations,
            r.requests,
            format!("{}({:.2}%)", r.failures, r.failure_ratio() * 100.0),
            ms(r.avg_ms),
            ms(r.median_ms),
            ms(p95),
            r.rps,
        );
    }
}

fn checks_table(out: &mut String, s: &Snapshot) {
    let _ = writeln!(out, "Checks");
    let _ = writeln!(out, "{:>8} {:>9} {:>8}  Check", "passes", "fails", "pass %");
    let _ = writeln!(out, "{}", "-".repeat(80));
    for c in &s.checks {
        let mark = if c.fails == 0 { '✓' } else { '✗' };
        let _ = writeln!(
            out,
            "{:>8} {:>9} {:>7.2}%  {mark} {}",
            c.passes,
            c.fails,
            c.pass_rate() * 100.0,
            sanitize(&c.name)
        );
    }
}

fn metrics_table(out: &mut String, s: &Snapshot) {
    let _ = writeln!(out, "Custom metrics");
    let _ = writeln!(out, "{:<8} {:>9}  {:<40} Values", "Kind", "# values", "Metric");
    let _ = writeln!(out, "{}", "-".repeat(100));
    for m in &s.metrics {
        let name = if m.tags.is_empty() { m.name.clone() } else { format!("{}{{{}}}", m.name, m.tags) };
        let values = match m.kind {
            MetricKind::Counter => format!("count={} rate={:.2}/s", num(m.value), m.value / s.elapsed_s.max(1e-9)),
            MetricKind::Gauge => format!("value={} min={} max={}", num(m.value), num(m.min), num(m.max)),
            MetricKind::Rate => format!("rate={:.2}%", m.value * 100.0),
            MetricKind::Trend => {
                let mut text = format!("avg={} min={} max={}", num(m.value), num(m.min), num(m.max));
                for (label, value) in m.percentiles.iter().flatten() {
                    let _ = write!(text, " {label}={}", num(*value));
                }
                text
            }
        };
        let kind = format!("{:?}", m.kind).to_lowercase();
        let _ = writeln!(out, "{kind:<8} {:>9}  {:<40} {values}", m.count, cut(&name, 40));
    }
}

/// A number for people and CSV: whole numbers without decimals, others with 3.
pub(super) fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{v:.0}") } else { format!("{v:.3}") }
}

fn error_table(out: &mut String, title: &str, rows: &[ErrorRow]) {
    let _ = writeln!(out, "{title}");
    let _ = writeln!(out, "{:<18} Error", "# occurrences");
    let _ = writeln!(out, "{}|{}", "-".repeat(19), "-".repeat(60));
    for e in rows {
        let place = if e.method.is_empty() { e.name.clone() } else { format!("{} {}", e.method, e.name) };
        let _ = writeln!(out, "{:<18} {}: {}", e.occurrences, sanitize(&place), sanitize(&e.error));
    }
}

/// Milliseconds with precision that suits their size: 0.42, 12.3, 250.
pub fn ms(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2}")
    } else if value < 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

/// `name` cut to `width` characters (ending in `…` when cut), control characters replaced.
fn cut(name: &str, width: usize) -> String {
    let clean = sanitize(name);
    if clean.chars().count() <= width {
        clean.into_owned()
    } else {
        let mut short: String = clean.chars().take(width.saturating_sub(1)).collect();
        short.push('…');
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Aggregator, Outcome, Sample};

    #[test]
    fn summary_has_locust_sections_and_aggregated_row() {
        let (mut aggregator, recorder) = Aggregator::new();
        for i in 0..10u64 {
            recorder.request(&Sample {
                method: "GET",
                name: "/concert/<id>",
                elapsed_us: 1_000 * (i + 1),
                corrected_us: None,
                phases: None,
                scenario: None,
                tags: "",
                bytes: 100,
                status: 200,
                outcome: if i == 0 { Outcome::Failure("HTTP 500 Internal Server Error") } else { Outcome::Success },
            });
        }
        recorder.task_error("browse", "boom");
        aggregator.collect();
        let text = render(&aggregator.snapshot(3));
        assert!(text.contains("Type     Name"), "{text}");
        assert!(text.contains("/concert/<id>"));
        assert!(text.contains("Aggregated"));
        assert!(text.contains("1(10.00%)"));
        assert!(text.contains("Response time percentiles"));
        assert!(text.contains("99.99%"));
        assert!(text.contains("Error report"));
        assert!(text.contains("GET /concert/<id>: HTTP 500 Internal Server Error"));
        assert!(text.contains("TASK browse: boom"));
    }

    #[test]
    fn long_and_hostile_names_are_cut_and_cleaned() {
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("\x1b[31mred", 20), "\u{FFFD}[31mred");
        assert_eq!(ms(0.4234), "0.42");
        assert_eq!(ms(12.34), "12.3");
        assert_eq!(ms(250.4), "250");
    }
}
