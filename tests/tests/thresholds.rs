//! Checks, custom metrics and thresholds: what the guest records appears in the summary and
//! the JSON report, thresholds pass and fail with k6's exit code 99, `abortOnFail` stops a
//! run early, and a malformed threshold is refused before anything is sent.

use std::time::{Duration, Instant};

use e2e::{Behaviour, Runner, Server, guests};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn checks_and_custom_metrics_appear_in_the_summary_and_json() {
    let server = Server::with(Behaviour { fail: vec!["/bad".into()], ..Behaviour::default() });
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_METRICS", "1")
        .env("PROBE_TASKS", "good:3:/,bad:1:/bad")
        .args(&["-u", "2", "--shared-iterations", "40"])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let report = run.report();
    let (good, bad) = (server.count("/"), server.count("/bad"));
    assert_eq!(good + bad, 40);
    let checks = report["checks"].as_array().expect("checks");
    let status = checks.iter().find(|c| c["name"] == "status is 200").expect("status check");
    assert_eq!((status["passes"].as_u64(), status["fails"].as_u64()), (Some(good), Some(bad)));
    // A failed check does not fail the request: only the 500s count as failures.
    assert_eq!(run.failures(), bad);

    let metric = |name: &str| {
        report["metrics"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["name"] == name))
            .unwrap_or_else(|| panic!("no metric {name} in {:#}", report["metrics"]))
    };
    assert_eq!(metric("probe_hits")["kind"], "counter");
    assert_eq!(metric("probe_hits")["value"], 40.0);
    assert_eq!(metric("probe_body_bytes")["kind"], "trend");
    assert_eq!(metric("probe_body_bytes")["max"], 2.0, "every body is `ok`");
    let ok_rate = metric("probe_ok")["value"].as_f64().expect("rate");
    assert!((ok_rate - good as f64 / 40.0).abs() < 1e-9, "rate {ok_rate}");
    assert_eq!(metric("probe_vu")["kind"], "gauge");
    assert!(metric("probe_vu")["tags"].as_str().expect("tags").starts_with("path:"));

    assert!(run.stdout.contains("Checks"), "{}", run.stdout);
    assert!(run.stdout.contains("✗ status is 200"), "{}", run.stdout);
    assert!(run.stdout.contains("Custom metrics"), "{}", run.stdout);
    assert!(run.stdout.contains("count=40"), "{}", run.stdout);
}

#[test]
fn thresholds_pass_or_fail_the_run_with_exit_code_99() {
    let server = Server::with(Behaviour { fail: vec!["/bad".into()], ..Behaviour::default() });
    let run = |thresholds: &[&str]| {
        let mut runner = Runner::run(guests::PROBE)
            .host(&server)
            .env("PROBE_METRICS", "1")
            .env("PROBE_TASKS", "good:1:/,slow:1:/delay/30,bad:1:/bad")
            .args(&["-u", "3", "--iterations", "10"]);
        for t in thresholds {
            runner = runner.args(&["--threshold", t]);
        }
        runner.finish(LIMIT)
    };
    let passing = run(&[
        "http_req_duration{name:/}:p(95)<25ms",
        "http_req_duration{name:/delay/30}:min>=30",
        "http_reqs:count==30",
        "checks{check:body is ok}:rate==1",
        "probe_hits:count==30",
    ]);
    assert_eq!(passing.code(), 0, "{}\n{}", passing.stdout, passing.stderr);
    assert!(passing.stdout.contains("✓ pass  http_reqs:count==30  (value: 30)"), "{}", passing.stdout);
    let verdicts = passing.report()["thresholds"].as_array().expect("thresholds in JSON").clone();
    assert_eq!(verdicts.len(), 5);
    assert!(verdicts.iter().all(|v| v["passed"] == true), "{verdicts:?}");

    let failing = run(&["http_req_failed:rate<1%", "http_req_duration:max<10s", "nonexistent_metric:count>0"]);
    assert_eq!(failing.code(), 99, "{}\n{}", failing.stdout, failing.stderr);
    assert!(failing.stdout.contains("✗ FAIL  http_req_failed:rate<1%"), "{}", failing.stdout);
    assert!(failing.stdout.contains("✓ pass  http_req_duration:max<10s"), "{}", failing.stdout);
    assert!(failing.stdout.contains("nonexistent_metric:count>0  (value: no data)"), "{}", failing.stdout);
    assert!(failing.stdout.contains("2 of 3 thresholds failed"), "{}", failing.stdout);
    let verdicts = &failing.report()["thresholds"];
    let rate = verdicts[0]["value"].as_f64().expect("value");
    assert!((rate - failing.failures() as f64 / failing.requests() as f64).abs() < 1e-9, "{rate}");
}

#[test]
fn abort_on_fail_stops_the_run_early() {
    let server = Server::with(Behaviour { fail: vec!["/".into()], ..Behaviour::default() });
    let started = Instant::now();
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_WAIT", "constant:20")
        .args(&["-u", "2", "-t", "30s", "--threshold", "http_req_failed:rate<0.5,abortOnFail=1s"])
        .finish(LIMIT);
    assert_eq!(run.code(), 99, "{}", run.stderr);
    assert!(started.elapsed() < Duration::from_secs(10), "stopped after {:?}", started.elapsed());
    assert!(run.stderr.contains("failed (abortOnFail): stopping the run"), "{}", run.stderr);
    assert_eq!(server.total(), run.requests(), "what was sent before stopping is all reported");
}

#[test]
fn a_malformed_threshold_is_refused_before_anything_is_sent() {
    let server = Server::start();
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .args(&["-u", "1", "-t", "2s", "--threshold", "http_req_duration:p95<300"])
        .finish(LIMIT);
    assert_eq!(run.code(), 2, "{}", run.stderr);
    assert!(run.stderr.contains("is not a threshold like"), "{}", run.stderr);
    assert!(run.stderr.contains("`p95` is not avg, min, max, med, p(N)"), "{}", run.stderr);
    assert_eq!(server.total(), 0);
}

#[test]
fn request_time_is_broken_down_into_connecting_waiting_and_receiving() {
    let server = Server::start();
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_METRICS", "1")
        .env("PROBE_TASKS", "slow:1:/delay/100")
        .args(&["-u", "2", "-r", "100", "--iterations", "3"])
        // The server answers 100 ms after the request reached it; the runner notes the request
        // sent when `write` returns, which a loaded machine can delay by a millisecond or so.
        .args(&["--threshold", "http_req_waiting:min>=95", "--threshold", "http_req_connecting:max<100ms"])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout, run.stderr);
    let timings = &run.row("GET", "/delay/100")["timings"];
    assert_eq!(timings["connections_opened"], 2, "one kept-alive connection per user: {timings}");
    let waiting = timings["avg_waiting_ms"].as_f64().expect("waiting");
    let receiving = timings["avg_receiving_ms"].as_f64().expect("receiving");
    let total = run.row("GET", "/delay/100")["avg_ms"].as_f64().expect("avg");
    assert!(waiting >= 95.0 && waiting <= total, "waiting {waiting} of {total} ms");
    assert!(receiving < 5.0, "receiving {receiving} ms of a 2-byte body");
    // The guest sees the same time to first byte in its response.
    let guest = run.report()["metrics"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == "probe_waiting_ms"))
        .expect("probe_waiting_ms");
    assert!(guest["min"].as_f64().expect("min") >= 95.0, "{guest}");
    assert!(run.stdout.contains("Where the time went"), "{}", run.stdout);
}

#[test]
fn request_tags_select_series_for_thresholds_and_the_report() {
    let server = Server::start();
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_TAG_TASKS", "1")
        .env("PROBE_TASKS", "fast:1:/,slow:1:/delay/40")
        .args(&["-u", "2", "--shared-iterations", "30"])
        .args(&["--threshold", "http_req_duration{task:slow}:min>=40"])
        .args(&["--threshold", "http_req_duration{task:fast}:max<40"])
        .args(&["--threshold", "http_reqs{task:nope}:count>0"])
        .finish(LIMIT);
    assert_eq!(run.code(), 99, "only the threshold on a tag nobody set fails:\n{}", run.stdout);
    assert!(run.stdout.contains("✓ pass  http_req_duration{task:slow}:min>=40"), "{}", run.stdout);
    assert!(run.stdout.contains("✓ pass  http_req_duration{task:fast}:max<40"), "{}", run.stdout);
    assert!(run.stdout.contains("✗ FAIL  http_reqs{task:nope}:count>0  (value: no data)"), "{}", run.stdout);
    let tagged = run.report()["tagged"].as_array().expect("tagged rows").clone();
    let count =
        |tags: &str| tagged.iter().find(|r| r["tags"] == tags).and_then(|r| r["requests"].as_u64()).unwrap_or_default();
    assert_eq!(count("task:fast"), server.count("/"));
    assert_eq!(count("task:slow"), server.count("/delay/40"));
    assert_eq!(count("task:fast") + count("task:slow"), 30);
}
