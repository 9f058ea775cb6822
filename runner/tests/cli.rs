//! The binary's own command line. (Having an integration test here also makes
//! `cargo test --workspace` build the `runner` binary that the end-to-end tests in
//! `tests/` run.)

use std::process::Command;

fn runner(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_runner")).args(args).output().expect("run the runner binary")
}

#[test]
fn help_lists_the_commands() {
    let out = runner(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for command in ["run", "demo", "target"] {
        assert!(text.contains(command), "{text}");
    }
}

#[test]
fn run_help_documents_the_locust_flags() {
    let out = runner(&["run", "--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in ["--users", "--spawn-rate", "--run-time", "--iterations", "--host", "--stop-timeout", "--json", "--env"]
    {
        assert!(text.contains(flag), "missing {flag}:\n{text}");
    }
}

#[test]
fn an_unknown_command_is_a_usage_error() {
    let out = runner(&["fly"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unrecognized subcommand"));
}
