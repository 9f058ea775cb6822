//! Bad input gets one clear sentence and a non-zero exit, never a panic.

use std::time::Duration;

use e2e::{Runner, guests};

const LIMIT: Duration = Duration::from_secs(60);

fn refused(args: &[&str]) -> String {
    let run = Runner::raw(args).finish(LIMIT);
    assert_ne!(run.code(), 0, "{args:?} should fail");
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(run.stderr.lines().count() <= 3, "one clear message, got:\n{}", run.stderr);
    run.stderr
}

#[test]
fn a_missing_plan_file_is_named() {
    let err = refused(&["run", "/nonexistent/plan.wasm"]);
    assert!(err.contains("cannot read plan file `/nonexistent/plan.wasm`"), "{err}");
}

#[test]
fn a_file_that_is_not_webassembly_is_refused() {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), "not wasm at all").expect("write");
    let path = file.path().display().to_string();
    let err = refused(&["run", &path]);
    assert!(err.contains("is not a WebAssembly file"), "{err}");
}

#[test]
fn a_core_module_is_told_to_build_a_component() {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), b"\0asm\x01\0\0\0").expect("write");
    let path = file.path().display().to_string();
    let err = refused(&["run", &path]);
    assert!(err.contains("core WebAssembly module, not a component") && err.contains("wasm32-wasip2"), "{err}");
}

#[test]
fn a_component_of_another_world_is_refused() {
    let err = refused(&["run", guests::WRONG_WORLD]);
    assert!(err.contains("does not export `wasmload:scenario/scenario`") && err.contains("wasi:cli/run"), "{err}");
}

#[test]
fn an_unsupported_wit_version_names_the_accepted_ones() {
    let err = refused(&["run", guests::FUTURE_VERSION]);
    assert!(err.contains("wasmload:scenario@0.2.0") && err.contains("accepts wasmload:scenario@0.1.x"), "{err}");
}

#[test]
fn a_malformed_host_is_refused() {
    let err = refused(&["run", guests::PROBE, "--host", "127.0.0.1:8080"]);
    assert!(err.contains("is not a base URL like http://127.0.0.1:8080"), "{err}");
    let err = refused(&["run", guests::PROBE, "--host", "ftp://example"]);
    assert!(err.contains("is not a base URL"), "{err}");
}

#[test]
fn bad_flag_values_are_refused() {
    assert!(refused(&["run", guests::PROBE, "-u", "0"]).contains("at least 1"));
    assert!(refused(&["run", guests::PROBE, "-u", "lots"]).contains("not a whole number"));
    assert!(refused(&["run", guests::PROBE, "-r", "0"]).contains("above 0"));
    assert!(refused(&["run", guests::PROBE, "-t", "soon"]).contains("not a duration"));
    assert!(refused(&["run", guests::PROBE, "--iterations", "0"]).contains("above 0"));
    assert!(refused(&["run", guests::PROBE, "--env", "NOVALUE"]).contains("KEY=VALUE"));
}
