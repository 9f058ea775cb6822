//! Python scenarios (sdk/python), built with `runner build` through componentize-py and run
//! end to end: the server's counts match the runner's, and the seed Locust scenario gives
//! the same statistics as its Rust twin.

use std::time::Duration;

use e2e::{Runner, Server, built};

const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn the_locust_seed_scenario_counts_as_its_rust_twin_does() {
    e2e::assert_counts_like_the_rust_concert(&built("guest-examples/python/concert.py"), true);
}

#[test]
fn the_shop_locustfile_runs_and_counts_what_the_server_received() {
    let plan = built("guest-examples/python/shop.py");
    let server = Server::start();
    let run = Runner::run(&plan).host(&server).args(&["-u", "3", "-r", "100", "-i", "4"]).finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(server.count("/login"), 3, "{:?}", server.counts());
    assert_eq!(run.report()["iterations"], 12);
    e2e::assert_rows_match_server(&run, &server);
}

#[test]
fn the_python_sdk_sends_what_the_scenario_says_and_records_it() {
    let plan = built("tests/guests/python/features.py");
    let server = Server::start();
    let run = Runner::run(&plan).host(&server).args(&["-u", "2", "-r", "100", "-i", "3"]).finish(LIMIT);
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.report();
    let hits = server.hits();

    // setup ran once before the users, teardown once after, with setup's data.
    assert_eq!(server.count("/setup"), 1);
    let teardown: Vec<_> = hits.iter().filter(|h| h.path == "/teardown").collect();
    assert_eq!(teardown.len(), 1);
    assert_eq!(teardown[0].headers.get("x-setup").map(String::as_str), Some("t-200"));

    // on_start: a form post per user.
    let logins: Vec<_> = hits.iter().filter(|h| h.path == "/login").collect();
    assert_eq!(logins.len(), 2);
    let mut forms: Vec<_> = logins.iter().map(|h| String::from_utf8_lossy(&h.body).into_owned()).collect();
    forms.sort();
    assert_eq!(forms, ["user=vu1&password=s+e%2Fcret", "user=vu2&password=s+e%2Fcret"]);
    assert_eq!(logins[0].headers.get("content-type").map(String::as_str), Some("application/x-www-form-urlencoded"));

    // The JSON body, query, headers of every echo, as the server received them.
    let echoes: Vec<_> = hits.iter().filter(|h| h.path == "/echo").collect();
    assert_eq!(echoes.len(), 6);
    for hit in &echoes {
        let body: serde_json::Value = serde_json::from_slice(&hit.body).expect("a JSON body");
        assert_eq!(body["text"], "é");
        assert_eq!(body["vu"], hit.vu.map_or(body["vu"].clone(), serde_json::Value::from));
        assert_eq!(hit.query.as_deref(), Some("q=a+b"));
        assert_eq!(hit.headers.get("x-setup").map(String::as_str), Some("t-200"));
        assert_eq!(hit.headers.get("content-type").map(String::as_str), Some("application/json"));
    }
    assert_eq!(run.row("POST", "/echo")["requests"], 6);
    assert_eq!(run.row("POST", "/echo")["failures"], 0);

    // catch_response: success() overrides a 404; a ResponseError fails a 200.
    assert_eq!(server.count("/status/404"), 6);
    assert_eq!(run.row("GET", "/status/404")["failures"], 0);
    assert_eq!(server.count("/status/200"), 6);
    assert_eq!(run.row("GET", "/broken")["failures"], 6);
    let errors = report["errors"].as_array().expect("errors");
    assert!(
        errors.iter().any(|e| e["name"] == "/broken" && e["error"] == "the body was wrong" && e["occurrences"] == 6),
        "{errors:?}"
    );
    // A request outside the allowed hosts never left, and was recorded as failed.
    assert_eq!(run.row("GET", "/refused")["failures"], 6);

    // The exception in iteration 1 of each user is a task error naming the line.
    let task_errors = report["task_errors"].as_array().expect("task errors");
    assert_eq!(task_errors.len(), 1, "{task_errors:?}");
    let message = task_errors[0]["error"].as_str().unwrap_or_default();
    assert!(message.starts_with("KeyError: 'missing' (at features.py:"), "{message}");
    assert!(message.ends_with(" in journey)"), "{message}");
    assert_eq!(task_errors[0]["occurrences"], 2);

    // Checks, the custom metric and the tagged series.
    for check in report["checks"].as_array().expect("checks") {
        // Every journey runs each check once, but the 71 requests only in a user's first.
        let runs = if check["name"] == "the first and last of 71 responses have their headers" { 2 } else { 6 };
        assert_eq!((check["passes"].as_u64(), check["fails"].as_u64()), (Some(runs), Some(0)), "{check}");
    }
    assert_eq!(report["checks"].as_array().map(Vec::len), Some(5));
    // The 71 requests of each user's first journey, whose first and last headers were read.
    assert_eq!(run.row("GET", "/header")["requests"], 142);
    assert_eq!(hits.iter().filter(|h| h.path.starts_with("/header/")).count(), 142);
    let metric = report["metrics"].as_array().and_then(|m| m.iter().find(|m| m["name"] == "echo_ms")).expect("echo_ms");
    assert_eq!((metric["count"].as_u64(), metric["tags"].as_str()), (Some(6), Some("page:echo")));
    let tagged = report["tagged"].as_array().expect("tagged");
    assert!(tagged.iter().any(|r| r["tags"] == "kind:api" && r["requests"] == 6), "{tagged:?}");
    assert_eq!(report["thresholds"][0]["passed"], true, "{}", report["thresholds"]);
    // The runner counts setup and teardown requests too (as k6 does), and the refused ones.
    assert_eq!(run.requests(), server.total() + 6, "the server saw all but the refused requests");
}

#[test]
fn the_build_lists_the_declared_tasks_and_refuses_a_user_without_tasks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = dir.path().join("weights.py");
    std::fs::write(
        &good,
        "from locust import HttpUser, task, constant\n\
         class Weighted(HttpUser):\n    wait_time = constant(1)\n\
         \x20   @task(3)\n    def browse(self):\n        self.client.get('/')\n\
         \x20   @task\n    def buy(self):\n        self.client.post('/buy')\n",
    )
    .expect("write scenario");
    let run = Runner::raw(&["build", &good.display().to_string()]).finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(run.stderr.contains("The plan runs: browse×3, buy×1."), "{}", run.stderr);
    assert!(dir.path().join("weights.wasm").is_file());

    let bad = dir.path().join("no-tasks.py");
    std::fs::write(&bad, "from wasmload import HttpUser\nclass Idle(HttpUser):\n    pass\n").expect("write scenario");
    let run = Runner::raw(&["build", &bad.display().to_string()]).finish(LIMIT);
    assert_eq!(run.code(), 1, "{}", run.stderr);
    let first = run.stderr.lines().next().unwrap_or_default();
    assert!(first.ends_with("ValueError: Idle has no tasks: mark a method with @task"), "{}", run.stderr);
}
