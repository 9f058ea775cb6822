//! JavaScript scenarios (sdk/js, k6's API), built with `runner build` through esbuild and
//! componentize-qjs and run end to end: the server's counts match the runner's, and the
//! seed scenario gives the same statistics as its Rust twin.

use std::time::Duration;

use e2e::{Runner, Server, built};

const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn the_concert_script_counts_as_its_rust_twin_does() {
    e2e::assert_counts_like_the_rust_concert(&built("guest-examples/js/concert.js"), false);
}

#[test]
fn the_shop_script_runs_and_counts_what_the_server_received() {
    let plan = built("guest-examples/js/shop.js");
    let server = Server::start();
    let run = Runner::run(&plan).host(&server).args(&["-u", "3", "-r", "100", "-i", "4"]).finish(LIMIT);
    assert_eq!(run.code(), 99, "the server's /cart lists no items, so the checks threshold fails: {}", run.stderr);
    assert_eq!(server.count("/login"), 3, "{:?}", server.counts());
    assert_eq!(run.report()["iterations"], 12);
    e2e::assert_rows_match_server(&run, &server);
}

#[test]
fn the_javascript_sdk_sends_what_the_script_says_and_records_it() {
    let plan = built("tests/guests/js/features.js");
    let server = Server::start();
    let run = Runner::run(&plan).host(&server).env("GREETING", "hello").finish(LIMIT);
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.report();
    let hits = server.hits();

    assert_eq!(server.count("/setup"), 1);
    let teardown: Vec<_> = hits.iter().filter(|h| h.path == "/teardown").collect();
    assert_eq!(teardown.len(), 1);
    assert_eq!(teardown[0].headers.get("x-setup").map(String::as_str), Some("t-200"));

    // Scenario `main`: 2 VUs x 3 iterations of `default`; scenario `extra`: 2 shared iterations.
    let echoes: Vec<_> = hits.iter().filter(|h| h.path == "/echo").collect();
    assert_eq!(echoes.len(), 6);
    for hit in &echoes {
        let body: serde_json::Value = serde_json::from_slice(&hit.body).expect("a JSON body");
        assert_eq!(body["text"], "é€😀");
        assert_eq!(hit.headers.get("x-setup").map(String::as_str), Some("t-200"));
        assert_eq!(hit.headers.get("x-env").map(String::as_str), Some("hello"));
        assert_eq!(hit.headers.get("content-type").map(String::as_str), Some("application/json"));
    }
    let mut vus: Vec<_> = echoes
        .iter()
        .map(|h| serde_json::from_slice::<serde_json::Value>(&h.body).expect("JSON")["vu"].as_u64().unwrap_or(0))
        .collect();
    vus.sort_unstable();
    assert_eq!(vus, [1, 1, 1, 2, 2, 2]);
    assert_eq!(server.count("/extra"), 2);

    // An object body is sent as a form; `group` tags its requests.
    let forms: Vec<_> = hits.iter().filter(|h| h.path == "/form").collect();
    assert_eq!(forms.len(), 6);
    assert!(forms.iter().all(|h| String::from_utf8_lossy(&h.body).ends_with("&password=s+e%2Fcret")));
    assert_eq!(forms[0].headers.get("content-type").map(String::as_str), Some("application/x-www-form-urlencoded"));
    let tagged = report["tagged"].as_array().expect("tagged");
    assert!(tagged.iter().any(|r| r["tags"] == "group:::forms" && r["requests"] == 6), "{tagged:?}");
    assert!(tagged.iter().any(|r| r["tags"] == "kind:api" && r["requests"] == 6), "{tagged:?}");

    // Expected statuses decide success: a 404 listed passes, a 201 not listed fails.
    assert_eq!(run.row("GET", "/status/404")["failures"], 0);
    assert_eq!(run.row("GET", "/unexpected")["failures"], 6);
    assert_eq!(run.row("GET", "/refused")["failures"], 6);

    // The error thrown in iteration 1 of each VU, from the imported module.
    let task_errors = report["task_errors"].as_array().expect("task errors");
    assert_eq!(task_errors.len(), 1, "{task_errors:?}");
    let message = task_errors[0]["error"].as_str().unwrap_or_default();
    assert!(message.starts_with("Error: helper failed on purpose"), "{message}");
    assert_eq!(task_errors[0]["occurrences"], 2);

    for check in report["checks"].as_array().expect("checks") {
        assert_eq!((check["passes"].as_u64(), check["fails"].as_u64()), (Some(6), Some(0)), "{check}");
    }
    assert_eq!(report["checks"].as_array().map(Vec::len), Some(4));
    let metric = report["metrics"].as_array().and_then(|m| m.iter().find(|m| m["name"] == "echo_ms")).expect("echo_ms");
    assert_eq!(metric["count"], 6);
    let thresholds = report["thresholds"].as_array().expect("thresholds");
    assert!(thresholds.iter().all(|t| t["passed"] == true), "{thresholds:?}");
    // Setup and teardown requests count, and so do the refused ones the server never saw.
    assert_eq!(run.requests(), server.total() + 6);
}

#[test]
fn each_vu_draws_its_own_random_numbers() {
    // QuickJS's generator state is part of the build snapshot; the SDK reseeds it per VU.
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("random.js");
    std::fs::write(
        &script,
        "import http from 'k6/http';\nexport default function () { http.get(`/r/${Math.random()}`); }\n",
    )
    .expect("write script");
    let plan = dir.path().join("random.wasm").display().to_string();
    let run = Runner::raw(&["build", &script.display().to_string(), "-o", &plan]).finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let server = Server::start();
    let run = Runner::run(&plan).host(&server).args(&["-u", "5", "-r", "100", "-i", "2"]).finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let paths: std::collections::BTreeSet<_> = server.hits().into_iter().map(|h| h.path).collect();
    assert_eq!(paths.len(), 10, "{paths:?}");
}

#[test]
fn a_script_with_bad_options_does_not_build() {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("bad.js");
    std::fs::write(&script, "export const options = { duration: 'soon' };\nexport default function () {}\n")
        .expect("write script");
    let run = Runner::raw(&["build", &script.display().to_string()]).finish(LIMIT);
    assert_eq!(run.code(), 1, "{}", run.stderr);
    let first = run.stderr.lines().next().unwrap_or_default();
    assert!(first.contains("options.duration: \"soon\" is not a duration"), "{}", run.stderr);
}
