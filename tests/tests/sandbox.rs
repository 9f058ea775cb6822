//! The guest's view of the world: only the environment it is given, its output prefixed
//! with its VU id, and traps or task errors recorded without ending the run.

use std::time::Duration;

use e2e::{Runner, Server, guests};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn guests_see_only_the_environment_they_are_given() {
    // The runner itself has HOME, PATH and more; the guest must see none of them.
    let server = Server::start();
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_SHOW_ENV", "1")
        .env("GREETING", "hello")
        .args(&["--iterations", "1"])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let hit = server.hits().pop().expect("one request");
    let mut names: Vec<&str> = hit.headers["x-env"].split(',').collect();
    names.sort_unstable();
    assert_eq!(names, ["GREETING", "PROBE_SHOW_ENV"]);
}

#[test]
fn guest_output_is_prefixed_with_the_vu_id() {
    let server = Server::start();
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_SAY", "hello from the guest")
        .args(&["-u", "2", "-r", "100", "--iterations", "1"])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    for vu in [1, 2] {
        assert!(
            run.stderr.contains(&format!("[vu {vu}] hello from the guest")),
            "stdout line for VU {vu}:\n{}",
            run.stderr
        );
        assert!(
            run.stderr.contains(&format!("[vu {vu}] INFO hello from the guest")),
            "log line for VU {vu}:\n{}",
            run.stderr
        );
    }
}

#[test]
fn a_trapping_task_is_recorded_and_the_user_carries_on() {
    let server = Server::start();
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_PANIC_AT", "1")
        .args(&["-u", "1", "--iterations", "4"])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    // Iteration 1 panics before its request; 0, 2 and 3 send theirs.
    assert_eq!(server.total(), 3);
    assert_eq!(run.requests(), 3);
    let task_errors = run.report()["task_errors"].as_array().expect("task_errors");
    assert_eq!(task_errors.len(), 1, "{task_errors:?}");
    assert_eq!(task_errors[0]["name"], "root");
    assert_eq!(task_errors[0]["occurrences"], 1);
    assert!(task_errors[0]["error"].as_str().unwrap_or_default().contains("trapped"), "{task_errors:?}");
    assert!(run.stderr.contains("probe panics at iteration 1"), "the panic message reaches the log:\n{}", run.stderr);
}

#[test]
fn task_errors_are_counted_per_task_and_message() {
    let server = Server::start();
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_ERROR", "1")
        .args(&["-u", "2", "--iterations", "3"])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(server.total(), 6);
    assert_eq!(run.failures(), 0, "the requests themselves succeeded");
    let task_errors = &run.report()["task_errors"];
    assert_eq!(task_errors[0]["error"], "probe error");
    assert_eq!(task_errors[0]["occurrences"], 6);
    assert!(run.stdout.contains("Task errors") && run.stdout.contains("TASK root: probe error"), "{}", run.stdout);
}

#[test]
fn a_user_whose_on_start_fails_does_not_run_and_is_reported() {
    let server = Server::start();
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_START_ERROR", "1")
        .args(&["-u", "3", "-r", "100", "--iterations", "2"])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(server.total(), 0, "no task ran");
    assert_eq!(run.report()["run"]["users_failed_to_start"], 3);
    let task_errors = &run.report()["task_errors"];
    assert_eq!(task_errors[0]["name"], "on_start");
    assert_eq!(task_errors[0]["error"], "probe refuses to start");
    assert_eq!(task_errors[0]["occurrences"], 3);
    assert!(run.stderr.contains("3 of 3 users could not start"), "{}", run.stderr);
}
