//! The HTML report (`--html PATH`): one self-contained file, readable with no network: the
//! run's settings, the thresholds, the statistics and percentile tables, the charts over
//! time (uPlot, embedded), failures, task errors, checks and custom metrics.
//!
//! Tables are rendered here, so the report reads without JavaScript too; the charts are
//! drawn from the history embedded as JSON. Every text a guest chose (request names, error
//! messages, check and metric names, tags) is HTML-escaped, and the embedded JSON cannot
//! close its `<script>` element.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;

use crate::output::history::History;
use crate::output::json::RunInfo;
use crate::output::summary::ms;
use crate::stats::{ErrorRow, Snapshot, StatsRow};
use crate::thresholds::Verdict;

const UPLOT_JS: &str = include_str!("../../assets/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../../assets/uPlot.min.css");

/// Writes the report to `path`.
pub fn write(
    path: &Path,
    run: &RunInfo,
    snapshot: &Snapshot,
    verdicts: &[Verdict],
    history: &History,
) -> anyhow::Result<()> {
    let html = render(run, snapshot, verdicts, history)?;
    std::fs::write(path, html).with_context(|| format!("cannot write the HTML report to `{}`", path.display()))
}

/// `text` safe to place in HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// JSON that can sit inside `<script>`: no `<` (so no `</script>` or `<!--`).
fn script_json<T: serde::Serialize>(value: &T) -> anyhow::Result<String> {
    Ok(serde_json::to_string(value).context("cannot encode the report's data")?.replace('<', "\\u003c"))
}

pub fn render(run: &RunInfo, s: &Snapshot, verdicts: &[Verdict], history: &History) -> anyhow::Result<String> {
    let mut h = String::with_capacity(64 * 1024);
    let title = format!("wasmload report: {}", run.plan);
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{UPLOT_CSS}\n{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    settings(&mut h, run, s);
    if !verdicts.is_empty() {
        thresholds(&mut h, verdicts);
    }
    stats_table(&mut h, s);
    percentiles_table(&mut h, s);
    if !history.is_empty() {
        h.push_str(
            "<h2>Over time</h2>\n<div class=\"charts\"><div id=\"chart-rps\"></div><div id=\"chart-times\"></div>\
             <div id=\"chart-users\"></div></div>\n",
        );
    }
    errors_table(&mut h, "Failures", &s.errors, "Method");
    errors_table(&mut h, "Task errors", &s.task_errors, "");
    checks(&mut h, s);
    metrics(&mut h, s);
    let _ = write!(
        h,
        "<footer>wasmload runner {}</footer>\n<script id=\"history\" type=\"application/json\">{}</script>\n\
         <script>{UPLOT_JS}</script>\n<script>{CHARTS}</script>\n</body></html>\n",
        env!("CARGO_PKG_VERSION"),
        script_json(history)?
    );
    Ok(h)
}

fn settings(h: &mut String, run: &RunInfo, s: &Snapshot) {
    let mut rows: Vec<(&str, String)> = vec![
        ("Plan", run.plan.clone()),
        ("Host", run.host.clone().unwrap_or_else(|| "(the plan's URLs)".into())),
        ("Load model", run.executor.to_owned()),
        ("Users", run.users.to_string()),
        ("Duration", format!("{:.1} s{}", s.elapsed_s, if run.interrupted { " (interrupted)" } else { "" })),
        ("Iterations", s.iterations.to_string()),
    ];
    if let Some(rate) = run.spawn_rate {
        rows.push(("Spawn rate", format!("{rate} users/s")));
    }
    if s.dropped_iterations > 0 {
        rows.push(("Dropped iterations", s.dropped_iterations.to_string()));
    }
    if run.users_failed_to_start > 0 {
        rows.push(("Users that failed to start", run.users_failed_to_start.to_string()));
    }
    if run.scenarios.len() > 1 {
        let names: Vec<String> =
            run.scenarios.iter().map(|sc| format!("{} ({}, from {} s)", sc.name, sc.executor, sc.start_s)).collect();
        rows.push(("Scenarios", names.join(", ")));
    }
    h.push_str("<table class=\"settings\">\n");
    for (k, v) in rows {
        let _ = writeln!(h, "<tr><th>{k}</th><td>{}</td></tr>", escape(&v));
    }
    h.push_str("</table>\n");
}

fn thresholds(h: &mut String, verdicts: &[Verdict]) {
    h.push_str("<h2>Thresholds</h2>\n<table><tr><th></th><th>Threshold</th><th>Value</th></tr>\n");
    for v in verdicts {
        let (class, mark) = if v.passed { ("pass", "✓ pass") } else { ("fail", "✗ FAIL") };
        let value = v.value.map_or_else(|| "no data".to_owned(), |x| format!("{x:.3}"));
        let _ = writeln!(
            h,
            "<tr class=\"{class}\"><td>{mark}</td><td>{}</td><td class=\"n\">{value}</td></tr>",
            escape(&v.threshold)
        );
    }
    h.push_str("</table>\n");
}

fn stats_table(h: &mut String, s: &Snapshot) {
    h.push_str(
        "<h2>Statistics</h2>\n<table><tr><th>Type</th><th>Name</th><th># reqs</th><th># fails</th><th>Avg ms</th>\
         <th>Min ms</th><th>Max ms</th><th>Median ms</th><th>req/s</th><th>failures/s</th><th>Avg size (B)</th></tr>\n",
    );
    for row in s.rows.iter().chain(std::iter::once(&s.aggregated)) {
        let class = if std::ptr::eq(row, &s.aggregated) { " class=\"total\"" } else { "" };
        let _ = writeln!(
            h,
            "<tr{class}><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{} ({:.2}%)</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{:.2}</td><td class=\"n\">{:.2}</td><td class=\"n\">{:.0}</td></tr>",
            escape(&row.method),
            escape(&row.name),
            row.requests,
            row.failures,
            row.failure_ratio() * 100.0,
            ms(row.avg_ms),
            ms(row.min_ms),
            ms(row.max_ms),
            ms(row.median_ms),
            row.rps,
            row.failures_per_s,
            row.avg_size_bytes,
        );
    }
    h.push_str("</table>\n");
}

fn percentiles_table(h: &mut String, s: &Snapshot) {
    h.push_str("<h2>Response time percentiles (ms)</h2>\n<table><tr><th>Type</th><th>Name</th>");
    for (label, _) in &s.aggregated.percentiles {
        let _ = write!(h, "<th>{}</th>", escape(label));
    }
    h.push_str("<th># reqs</th></tr>\n");
    let row_html = |h: &mut String, row: &StatsRow, class: &str| {
        let _ = write!(h, "<tr{class}><td>{}</td><td>{}</td>", escape(&row.method), escape(&row.name));
        for (_, value) in &row.percentiles {
            let _ = write!(h, "<td class=\"n\">{}</td>", ms(*value));
        }
        let _ = writeln!(h, "<td class=\"n\">{}</td></tr>", row.requests);
    };
    for row in &s.rows {
        row_html(h, row, "");
    }
    row_html(h, &s.aggregated, " class=\"total\"");
    h.push_str("</table>\n");
}

fn errors_table(h: &mut String, title: &str, errors: &[ErrorRow], method_header: &str) {
    if errors.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        "<h2>{title}</h2>\n<table><tr><th>{method_header}</th><th>Name</th><th>Error</th><th>Occurrences</th></tr>"
    );
    for e in errors {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"error\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&e.method),
            escape(&e.name),
            escape(&e.error),
            e.occurrences
        );
    }
    h.push_str("</table>\n");
}

fn checks(h: &mut String, s: &Snapshot) {
    if s.checks.is_empty() {
        return;
    }
    h.push_str("<h2>Checks</h2>\n<table><tr><th>Check</th><th>Passes</th><th>Fails</th><th>Pass rate</th></tr>\n");
    for c in &s.checks {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:.2}%</td></tr>",
            escape(&c.name),
            c.passes,
            c.fails,
            c.pass_rate() * 100.0
        );
    }
    h.push_str("</table>\n");
}

fn metrics(h: &mut String, s: &Snapshot) {
    if s.metrics.is_empty() {
        return;
    }
    h.push_str(
        "<h2>Custom metrics</h2>\n<table><tr><th>Metric</th><th>Tags</th><th>Kind</th><th>Count</th><th>Value</th>\
         <th>Min</th><th>Max</th></tr>\n",
    );
    for m in &s.metrics {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{:?}</td><td class=\"n\">{}</td><td class=\"n\">{:.3}</td>\
             <td class=\"n\">{:.3}</td><td class=\"n\">{:.3}</td></tr>",
            escape(&m.name),
            escape(&m.tags),
            m.kind,
            m.count,
            m.value,
            m.min,
            m.max
        );
    }
    h.push_str("</table>\n");
}

const STYLE: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1b1f24;max-width:1400px}\
h1{font-size:20px}h2{font-size:16px;margin-top:28px}\
table{border-collapse:collapse;margin:8px 0}td,th{padding:4px 10px;border-bottom:1px solid #e3e6ea;text-align:left}\
th{background:#f4f6f8;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}\
tr.total td{font-weight:600;border-top:2px solid #c9ced4}tr.pass td:first-child{color:#1a7f37}\
tr.fail td:first-child{color:#cf222e;font-weight:600}td.error{color:#cf222e;max-width:700px;word-break:break-word}\
table.settings th{width:180px}.charts{display:flex;flex-wrap:wrap;gap:16px}\
footer{margin-top:32px;color:#6e7781;font-size:12px}";

/// Draws the three charts from the embedded history (uPlot's data layout).
const CHARTS: &str = r##"
(function () {
  var el = document.getElementById("history");
  if (!el || typeof uPlot === "undefined") return;
  var h = JSON.parse(el.textContent);
  if (!h.t.length) return;
  function chart(id, title, series, data) {
    var target = document.getElementById(id);
    if (!target) return;
    var opts = { title: title, width: 440, height: 260, scales: { x: { time: false } },
      series: [{ label: "s" }].concat(series), axes: [{ label: "seconds since the start" }, {}] };
    new uPlot(opts, [h.t].concat(data), target);
  }
  chart("chart-rps", "Requests/s and failures/s",
    [{ label: "req/s", stroke: "#1f6feb" }, { label: "failures/s", stroke: "#cf222e" }], [h.rps, h.failures_per_s]);
  chart("chart-times", "Response times (ms)",
    [{ label: "p50", stroke: "#1a7f37" }, { label: "p95", stroke: "#bf8700" }, { label: "p99", stroke: "#8250df" }],
    [h.p50_ms, h.p95_ms, h.p99_ms]);
  chart("chart-users", "Users", [{ label: "users", stroke: "#57606a" }], [h.users]);
})();
"##;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_text_cannot_become_markup() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(escape("a\u{1b}[2Jb"), "a\u{FFFD}[2Jb");
    }

    #[test]
    fn embedded_json_cannot_close_its_script() {
        let json = script_json(&vec!["</script><script>alert(1)</script>"]).expect("json");
        assert!(!json.contains('<'), "{json}");
        let back: Vec<String> = serde_json::from_str(&json).expect("still JSON");
        assert_eq!(back, ["</script><script>alert(1)</script>"]);
    }
}
