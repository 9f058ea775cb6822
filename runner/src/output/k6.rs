//! The end-of-test summary in k6's layout (`--summary k6`): one line per metric with dots
//! up to its value, thresholds marked ✓ or ✗ above, for readers who know k6.

use std::fmt::Write as _;

use super::console::sanitize;
use crate::stats::{Snapshot, StatsRow};
use crate::thresholds::Verdict;

/// Width of a metric's name and its dots.
const NAME_WIDTH: usize = 34;

/// Milliseconds as k6 shows durations: `812µs`, `12.3ms`, `1.52s`.
fn duration(ms: f64) -> String {
    if ms < 1.0 {
        format!("{:.0}µs", ms * 1000.0)
    } else if ms < 1000.0 {
        format!("{}ms", trim(ms))
    } else {
        format!("{}s", trim(ms / 1000.0))
    }
}

fn trim(x: f64) -> String {
    let text = format!("{x:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn bytes(n: f64) -> String {
    match n {
        n if n >= 1e9 => format!("{:.1} GB", n / 1e9),
        n if n >= 1e6 => format!("{:.1} MB", n / 1e6),
        n if n >= 1e3 => format!("{:.1} kB", n / 1e3),
        n => format!("{n:.0} B"),
    }
}

fn line(out: &mut String, name: &str, value: &str) {
    let dots = NAME_WIDTH.saturating_sub(name.chars().count());
    let _ = writeln!(out, "    {name}{}: {value}", ".".repeat(dots));
}

fn trend(avg: f64, min: f64, med: f64, max: f64, p90: f64, p95: f64) -> String {
    format!(
        "avg={} min={} med={} max={} p(90)={} p(95)={}",
        duration(avg),
        duration(min),
        duration(med),
        duration(max),
        duration(p90),
        duration(p95)
    )
}

fn percentile(row: &StatsRow, label: &str) -> f64 {
    row.percentiles.iter().find(|(l, _)| l == label).map_or(0.0, |(_, v)| *v)
}

/// The summary of `s`, with the thresholds' verdicts.
pub fn render(s: &Snapshot, verdicts: &[Verdict], max_users: u32) -> String {
    let mut out = String::new();
    let secs = s.elapsed_s.max(1e-9);
    if !verdicts.is_empty() {
        out.push_str("  █ THRESHOLDS\n\n");
        for v in verdicts {
            let mark = if v.passed { "✓" } else { "✗" };
            let value = v.value.map_or_else(|| "no data".to_owned(), |x| format!("{x:.3}"));
            let _ = writeln!(out, "    {mark} {}  ({value})", sanitize(&v.threshold));
        }
        out.push('\n');
    }
    out.push_str("  █ TOTAL RESULTS\n\n");
    if !s.checks.is_empty() {
        let (passes, fails) = s.checks.iter().fold((0, 0), |(p, f), c| (p + c.passes, f + c.fails));
        let total = passes + fails;
        let share = |n: u64| if total == 0 { 0.0 } else { n as f64 * 100.0 / total as f64 };
        line(&mut out, "checks_total", &format!("{total}    {:.2}/s", total as f64 / secs));
        line(&mut out, "checks_succeeded", &format!("{:.2}% {passes} out of {total}", share(passes)));
        line(&mut out, "checks_failed", &format!("{:.2}% {fails} out of {total}", share(fails)));
        out.push('\n');
        for c in &s.checks {
            let mark = if c.fails == 0 { "✓" } else { "✗" };
            let _ = writeln!(out, "    {mark} {}", sanitize(&c.name));
            if c.fails > 0 {
                let _ = writeln!(out, "      ↳  {:.0}% — ✓ {} / ✗ {}", c.pass_rate() * 100.0, c.passes, c.fails);
            }
        }
        out.push('\n');
    }
    let a = &s.aggregated;
    out.push_str("    HTTP\n");
    line(
        &mut out,
        "http_req_duration",
        &trend(a.avg_ms, a.min_ms, a.median_ms, a.max_ms, percentile(a, "90%"), percentile(a, "95%")),
    );
    let failed_share = if a.requests == 0 { 0.0 } else { a.failures as f64 * 100.0 / a.requests as f64 };
    line(&mut out, "http_req_failed", &format!("{failed_share:.2}% {} out of {}", a.failures, a.requests));
    line(&mut out, "http_reqs", &format!("{}    {:.2}/s", a.requests, a.requests as f64 / secs));
    line(
        &mut out,
        "http_req_waiting",
        &format!("avg={} p(95)={}", duration(a.timings.avg_waiting_ms), duration(a.timings.p95_waiting_ms)),
    );
    line(
        &mut out,
        "http_req_receiving",
        &format!("avg={} p(95)={}", duration(a.timings.avg_receiving_ms), duration(a.timings.p95_receiving_ms)),
    );
    line(
        &mut out,
        "http_req_connecting",
        &format!(
            "avg={} max={} ({} new)",
            duration(a.timings.avg_connecting_ms),
            duration(a.timings.max_connecting_ms),
            a.timings.connections_opened
        ),
    );
    out.push_str("\n    EXECUTION\n");
    let it = &s.iteration_duration_ms;
    line(&mut out, "iteration_duration", &trend(it.avg, it.min, it.med, it.max, it.p90, it.p95));
    line(&mut out, "iterations", &format!("{}    {:.2}/s", s.iterations, s.iterations as f64 / secs));
    if s.dropped_iterations > 0 {
        line(
            &mut out,
            "dropped_iterations",
            &format!("{}    {:.2}/s", s.dropped_iterations, s.dropped_iterations as f64 / secs),
        );
    }
    line(&mut out, "vus_max", &max_users.to_string());
    out.push_str("\n    NETWORK\n");
    let received = a.avg_size_bytes * a.requests as f64;
    line(&mut out, "data_received", &format!("{}  {}/s", bytes(received), bytes(received / secs)));
    if !s.metrics.is_empty() {
        out.push_str("\n    CUSTOM\n");
        for m in &s.metrics {
            let name = if m.tags.is_empty() { m.name.clone() } else { format!("{}{{{}}}", m.name, m.tags) };
            line(
                &mut out,
                &sanitize(&name),
                &format!("{:.3}  (count {}, min {:.3}, max {:.3})", m.value, m.count, m.min, m.max),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_k6_shows_them() {
        assert_eq!(duration(0.5), "500µs");
        assert_eq!(duration(12.3), "12.3ms");
        assert_eq!(duration(1520.0), "1.52s");
        assert_eq!(bytes(1234.0), "1.2 kB");
    }

    #[test]
    fn metrics_line_up_with_dots() {
        let mut out = String::new();
        line(&mut out, "http_reqs", "24    8.00/s");
        assert_eq!(out, format!("    http_reqs{}: 24    8.00/s\n", ".".repeat(NAME_WIDTH - 9)));
    }
}
