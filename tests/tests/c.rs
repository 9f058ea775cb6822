//! C scenarios, built with `runner build` (bindings from the WIT, Debian's clang, the WASI
//! preview1 adapter) and run end to end against the same server as their Rust twin.

use std::time::Duration;

use e2e::{Behaviour, Runner, Server, built, guests};

const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn the_c_concert_counts_as_its_rust_twin_does() {
    let c = built("guest-examples/c/concert.c");
    let mut rows = Vec::new();
    for plan in [c.as_str(), guests::CONCERT] {
        let server = Server::with(Behaviour { fail: vec!["/concert/1".into()], ..Behaviour::default() });
        let run = Runner::run(plan).host(&server).args(&["-u", "3", "-r", "100", "-i", "2"]).finish(LIMIT);
        assert_eq!(run.code(), 0, "{}", run.stderr);
        for i in 0..3 {
            assert_eq!(server.count(&format!("/concert/{i}")), 6, "{plan}: server saw {:?}", server.counts());
        }
        let row = run.row("GET", "/concert/<id>");
        assert_eq!((row["requests"].as_u64(), row["failures"].as_u64()), (Some(18), Some(6)), "{plan}");
        assert_eq!(run.report()["errors"][0]["error"], "Failed /concert/1", "{plan}");
        rows.push((row["requests"].clone(), row["failures"].clone(), run.report()["errors"].clone()));
    }
    assert_eq!(rows[0], rows[1]);
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
