//! Reports a run writes besides the summary: Locust's CSV files, with Locust's columns, and
//! cells a guest names cannot become spreadsheet formulas; the JSON report, valid against
//! its schema; the self-contained HTML report, where guest text cannot become markup.

use std::time::Duration;

use e2e::{Behaviour, Runner, Server, guests};

const LIMIT: Duration = Duration::from_secs(60);

const LOCUST_PERCENTILES: &str = "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%";

fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn csv_reports_have_locusts_files_and_columns() {
    let server = Server::with(Behaviour { fail: vec!["/bad".into()], ..Behaviour::default() });
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = dir.path().join("run");
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_TASKS", "ok:3:/,bad:1:/bad")
        .env("PROBE_WAIT", "constant:20")
        .args(&["-u", "2", "-t", "2500ms", "--csv", prefix.to_str().expect("utf-8"), "--csv-full-history"])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);

    let stats = lines(&dir.path().join("run_stats.csv"));
    assert_eq!(
        stats[0],
        format!(
            "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,\
             Max Response Time,Average Content Size,Requests/s,Failures/s,{LOCUST_PERCENTILES}"
        )
    );
    let row = |name: &str| {
        stats.iter().find(|l| l.split(',').nth(1) == Some(name)).unwrap_or_else(|| panic!("{name}: {stats:?}")).clone()
    };
    let count = |line: String, column: usize| line.split(',').nth(column).and_then(|v| v.parse::<u64>().ok());
    assert_eq!(count(row("/"), 2), Some(server.count("/")));
    assert_eq!(count(row("/bad"), 3), Some(server.count("/bad")), "every /bad failed");
    assert_eq!(count(row("Aggregated"), 2), Some(server.total()));

    let history = lines(&dir.path().join("run_stats_history.csv"));
    assert_eq!(
        history[0],
        format!(
            "Timestamp,User Count,Type,Name,Requests/s,Failures/s,{LOCUST_PERCENTILES},Total Request Count,\
             Total Failure Count,Total Median Response Time,Total Average Response Time,Total Min Response Time,\
             Total Max Response Time,Total Average Content Size"
        )
    );
    let aggregated: Vec<&String> = history.iter().filter(|l| l.contains(",Aggregated,")).collect();
    assert!(aggregated.len() >= 2, "a row a second: {history:?}");
    assert!(history.iter().any(|l| l.contains(",GET,/bad,")), "full history has per-name rows");

    let failures = lines(&dir.path().join("run_failures.csv"));
    assert_eq!(failures[0], "Method,Name,Error,Occurrences");
    assert_eq!(failures[1], format!("GET,/bad,HTTP 500 Internal Server Error,{}", server.count("/bad")));
}

#[test]
fn names_a_guest_chooses_cannot_become_spreadsheet_formulas() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = dir.path().join("evil");
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_NAME", "=HYPERLINK(\"http://attacker.test\")")
        .args(&["-u", "1", "--iterations", "2", "--csv", prefix.to_str().expect("utf-8")])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let text = std::fs::read_to_string(dir.path().join("evil_stats.csv")).expect("stats csv");
    assert!(text.contains("\"'=HYPERLINK(\"\"http://attacker.test\"\")\""), "{text}");
    assert!(!text.contains(",=HYPERLINK"), "{text}");
}

#[test]
fn an_unwritable_csv_prefix_stops_the_run_before_it_starts() {
    let server = Server::start();
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .args(&["-u", "1", "-t", "1s", "--csv", "/nonexistent-dir/run"])
        .finish(LIMIT);
    assert_eq!(run.code(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot create the CSV report `/nonexistent-dir/run_stats_history.csv`"),
        "{}",
        run.stderr
    );
    assert_eq!(server.total(), 0);
}

/// `runner/report.schema.json`, compiled.
fn report_schema() -> jsonschema::Validator {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../runner/report.schema.json");
    let text = std::fs::read_to_string(path).expect("the report schema");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("a valid JSON Schema")
}

#[test]
fn json_reports_validate_against_the_schema_in_the_repo() {
    let schema = report_schema();
    let server = Server::with(Behaviour { fail: vec!["/bad".into()], ..Behaviour::default() });
    // Every optional part at once: an open model (corrected percentiles, dropped iterations),
    // checks, custom metrics, tags, thresholds, errors.
    let open = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_METRICS", "1")
        .env("PROBE_TAG_TASKS", "1")
        .env("PROBE_TASKS", "ok:3:/,bad:1:/bad")
        .args(&["--arrival-rate", "50/s", "-u", "2", "-t", "1s", "--threshold", "http_req_failed:rate<1%"])
        .finish(LIMIT);
    assert_eq!(open.code(), 99, "{}", open.stderr);
    // Several scenarios.
    let scenarios = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_TASKS", "browse:1:/,buy:1:/buy")
        .env("PROBE_SCENARIOS", "browsers:browse:0:800:1;buyers:buy:200:600:1")
        .finish(LIMIT);
    assert_eq!(scenarios.code(), 0, "{}", scenarios.stderr);
    for run in [&open, &scenarios] {
        let report = run.report();
        let problems: Vec<String> =
            schema.iter_errors(report).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(problems.is_empty(), "{problems:#?}\n{report:#}");
    }
    assert!(open.report()["aggregated"]["corrected_percentiles"].is_array());
    assert!(open.report()["tagged"].is_array());
    assert!(scenarios.report()["scenarios"].is_array());
    // The schema is not vacuous: a report missing a field, or with a wrong type, fails.
    let mut broken = open.report().clone();
    broken["aggregated"]["requests"] = serde_json::json!("many");
    assert!(!schema.is_valid(&broken));
    broken.as_object_mut().expect("object").remove("rows");
    assert!(!schema.is_valid(&broken));
}

#[test]
fn the_html_report_is_self_contained_and_has_the_tables_and_charts() {
    let server = Server::with(Behaviour { fail: vec!["/bad".into()], ..Behaviour::default() });
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("report.html");
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_TASKS", "good:1:/good,bad:1:/bad")
        .env("PROBE_METRICS", "1")
        .args(&["-u", "2", "-t", "3s", "--html", path.to_str().expect("utf-8"), "--threshold", "http_reqs:count>0"])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let html = std::fs::read_to_string(&path).expect("the HTML report");
    for part in [
        "<h2>Statistics</h2>",
        "<h2>Response time percentiles (ms)</h2>",
        "<h2>Over time</h2>",
        "<h2>Failures</h2>",
        "<h2>Thresholds</h2>",
        "<h2>Checks</h2>",
        "HTTP 500 Internal Server Error",
        "id=\"history\"",
        "uPlot",
    ] {
        assert!(html.contains(part), "missing {part}");
    }
    // The counts in the table are the server's.
    let good = server.count("/good");
    assert!(
        html.contains(&format!("<td>GET</td><td>/good</td><td class=\"n\">{good}</td>")),
        "no /good row with {good}"
    );
    // Nothing is loaded from the network: no src= or href= to anywhere.
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http") && !html.contains("<link"),
        "external resource"
    );
    // One history point per second of the run.
    let points = html.split("\"t\":[").nth(1).and_then(|s| s.split(']').next()).map_or(0, |s| s.split(',').count());
    assert!((2..=4).contains(&points), "{points} history points");
}

#[test]
fn names_a_guest_chooses_cannot_become_markup_and_an_interrupted_run_writes_the_html_report() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("report.html");
    let (child, json) = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_NAME", "<script>alert(1)</script>")
        .args(&["-u", "2", "-t", "60s", "--html", path.to_str().expect("utf-8")])
        .spawn();
    let deadline = std::time::Instant::now() + LIMIT;
    while server.total() < 20 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    e2e::interrupt(&child);
    let run = e2e::collect(child, json, LIMIT);
    assert_ne!(run.code(), 0, "an interrupted run");
    let html = std::fs::read_to_string(&path).expect("the report is written on Ctrl-C");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "the name is escaped");
    assert!(!html.contains("<script>alert(1)"), "the name is not markup");
    assert!(html.contains("(interrupted)"));
}

#[test]
fn the_k6_summary_and_the_runners_own_usage() {
    let server = Server::start();
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_METRICS", "1")
        .args(&["-u", "2", "--iterations", "5", "--summary", "k6", "--threshold", "http_req_failed:rate<0.01"])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let total = server.total();
    for part in [
        "█ THRESHOLDS".to_owned(),
        "✓ http_req_failed:rate<0.01".to_owned(),
        "█ TOTAL RESULTS".to_owned(),
        format!("http_reqs{}: {total}    ", ".".repeat(25)),
        "http_req_duration".to_owned(),
        "iteration_duration".to_owned(),
        format!("iterations{}: 10    ", ".".repeat(24)),
        "checks_succeeded".to_owned(),
    ] {
        assert!(run.stdout.contains(&part), "missing {part:?} in\n{}", run.stdout);
    }
    assert!(!run.stdout.contains("Response time percentiles"), "not Locust's tables");
    // The runner's own CPU and memory are in the summary and the report.
    assert!(run.stdout.contains("Runner: peak CPU "), "{}", run.stdout);
    let runner = &run.report()["run"]["runner"];
    assert!(runner["peak_rss_mib"].as_f64().unwrap_or(0.0) > 1.0, "{runner}");
    assert!(runner["cores"].as_u64().unwrap_or(0) >= 1, "{runner}");
}
