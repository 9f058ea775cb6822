//! The runner's statistics agree with what the server received: counts per path, request
//! names, failure marking, the error report, and task weights.

use std::time::Duration;

use e2e::{Behaviour, Runner, Server, guests};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn server_counts_equal_runner_counts_and_names_group_requests() {
    let server = Server::start();
    // 4 users x 2 iterations x 3 requests, grouped under one name.
    let run =
        Runner::run(guests::CONCERT).host(&server).args(&["-u", "4", "-r", "100", "--iterations", "2"]).finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    for i in 0..3 {
        assert_eq!(server.count(&format!("/concert/{i}")), 8, "server saw {:?}", server.counts());
    }
    assert_eq!(server.total(), 24);
    let row = run.row("GET", "/concert/<id>");
    assert_eq!(row["requests"], 24);
    assert_eq!(row["failures"], 0);
    assert_eq!(run.requests(), server.total());
    assert_eq!(run.report()["rows"].as_array().map(Vec::len), Some(1), "only the named row");
    assert_eq!(run.report()["iterations"], 8);
    // The summary table is printed on stdout.
    assert!(run.stdout.contains("/concert/<id>") && run.stdout.contains("Aggregated"), "{}", run.stdout);
}

#[test]
fn a_response_marked_failed_counts_as_a_failure_with_its_message() {
    let server = Server::with(Behaviour { fail: vec!["/concert/2".into()], ..Behaviour::default() });
    let run =
        Runner::run(guests::CONCERT).host(&server).args(&["-u", "3", "-r", "100", "--iterations", "2"]).finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(server.count("/concert/2"), 6);
    assert_eq!(run.requests(), 18);
    assert_eq!(run.failures(), 6);
    let errors = run.report()["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["error"], "Failed /concert/2");
    assert_eq!(errors[0]["occurrences"], 6);
    assert_eq!(errors[0]["name"], "/concert/<id>");
    assert!(run.stdout.contains("Error report") && run.stdout.contains("Failed /concert/2"), "{}", run.stdout);
}

#[test]
fn status_codes_of_400_and_above_fail_by_default_and_exit_code_on_error_applies() {
    let server = Server::start();
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_TASKS", "ok:1:/ok,missing:1:/status/404,broken:1:/status/503")
        .args(&["-u", "2", "--iterations", "30", "--exit-code-on-error", "3"])
        .finish(LIMIT);
    assert_eq!(run.code(), 3, "{}", run.stderr);
    let (ok, missing, broken) = (server.count("/ok"), server.count("/status/404"), server.count("/status/503"));
    assert_eq!(ok + missing + broken, 60);
    assert_eq!(run.row("GET", "/ok")["failures"], 0);
    assert_eq!(run.row("GET", "/status/404")["failures"], missing);
    assert_eq!(run.row("GET", "/status/503")["failures"], broken);
    let messages: Vec<String> = run.report()["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["error"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(messages.contains(&"HTTP 404 Not Found".to_owned()), "{messages:?}");
    assert!(messages.contains(&"HTTP 503 Service Unavailable".to_owned()), "{messages:?}");
}

#[test]
fn tasks_are_picked_in_proportion_to_their_weights() {
    let server = Server::start();
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_TASKS", "heavy:3:/heavy,light:1:/light")
        .args(&["-u", "4", "-r", "100", "--iterations", "1000"])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let (heavy, light) = (server.count("/heavy"), server.count("/light"));
    assert_eq!(heavy + light, 4000);
    // Expected share 0.75; the standard deviation of the share is 0.007 for 4000 draws, so
    // 0.05 is over 7 deviations: this fails only if weights are ignored or inverted.
    let share = heavy as f64 / 4000.0;
    assert!((share - 0.75).abs() < 0.05, "heavy share {share} ({heavy} vs {light})");
    assert_eq!(run.row("GET", "/heavy")["requests"], heavy);
    assert_eq!(run.row("GET", "/light")["requests"], light);
}

#[test]
fn unreachable_targets_are_failures_not_crashes() {
    // A port nothing listens on: bind, note the port, close.
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port");
    let host = format!("http://127.0.0.1:{port}");
    let run = Runner::run(guests::PROBE).args(&["--host", &host, "-u", "2", "--iterations", "5"]).finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(run.requests(), 10);
    assert_eq!(run.failures(), 10);
    let error = run.report()["errors"][0]["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains("cannot connect") && error.contains(&port.to_string()), "{error}");
}
