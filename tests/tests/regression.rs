//! Bugs that were fixed, one test each, named for what broke.

use std::process::{Command, Stdio};
use std::time::Duration;

use e2e::{Server, guests, runner_bin};

/// `println!` of the summary panicked when stdout was already closed (`runner run ... | head
/// -1`), so the JSON report after it was never written.
#[test]
fn closed_stdout_neither_panics_nor_loses_the_report() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("report.json");
    let mut child = Command::new(runner_bin())
        .args(["run", guests::PROBE, "--headless", "-q", "--iterations", "3", "--host", &server.url(), "--json"])
        .arg(&json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the runner");
    // Close our end of stdout at once: the runner's writes then fail with EPIPE.
    drop(child.stdout.take());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the runner") {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the runner did not finish");
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = child.wait_with_output().map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).unwrap_or_default();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status.code(), Some(0), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("report written")).expect("valid JSON");
    assert_eq!(report["aggregated"]["requests"], 3);
    assert_eq!(server.total(), 3);
}
