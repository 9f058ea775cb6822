//! C scenarios, built with `runner build` (bindings from the WIT, Debian's clang, the WASI
//! preview1 adapter) and run end to end against the same server as their Rust twin.

use std::time::Duration;

use e2e::{Runner, built};

const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn the_c_concert_counts_as_its_rust_twin_does() {
    e2e::assert_counts_like_the_rust_concert(&built("guest-examples/c/concert.c"), true);
}

#[test]
fn a_c_compile_error_is_one_line_naming_the_place() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = dir.path().join("broken.c");
    std::fs::write(&source, "#include \"load_test.h\"\nint oops( {\n").expect("write");
    let run = Runner::raw(&["build", &source.display().to_string()]).finish(LIMIT);
    assert_eq!(run.code(), 1, "{}", run.stderr);
    let first = run.stderr.lines().next().unwrap_or_default();
    assert!(first.contains("broken.c:2:") && first.contains("error:"), "{}", run.stderr);
}
