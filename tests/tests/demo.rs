//! `runner demo` runs the shop example against the built-in target and prints the summary.

use std::time::Duration;

use e2e::{Runner, guests};

#[test]
fn the_demo_runs_the_example_against_the_built_in_target() {
    let run =
        Runner::raw(&["demo", guests::SHOP, "-t", "3s", "-u", "10", "-r", "10", "-q"]).finish(Duration::from_secs(60));
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(run.stderr.contains("Demo target listening on http://127.0.0.1:"), "{}", run.stderr);
    for name in ["POST     /login", "/concert/<id>", "Aggregated", "Response time percentiles"] {
        assert!(run.stdout.contains(name), "missing {name}:\n{}", run.stdout);
    }
}

#[test]
fn the_demo_says_how_to_build_a_missing_plan() {
    let run = Runner::raw(&["demo", "/nonexistent/shop.wasm"]).finish(Duration::from_secs(30));
    assert_eq!(run.code(), 1);
    assert!(run.stderr.contains("scripts/demo.sh"), "{}", run.stderr);
}

#[test]
fn the_demo_can_show_itself_in_the_web_ui() {
    let run = Runner::raw(&["demo", guests::SHOP, "-t", "2s", "-u", "3", "-r", "10", "-q", "--web", "--web-port", "0"])
        .finish(Duration::from_secs(60));
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(run.stderr.contains("Web UI on http://127.0.0.1:"), "{}", run.stderr);
    assert!(!run.stderr.contains("start the test there"), "it starts at once: {}", run.stderr);
    assert!(run.stdout.contains("Aggregated"), "{}", run.stdout);
}
