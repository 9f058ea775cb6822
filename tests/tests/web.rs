//! The web UI and /metrics: a real browser (headless Chromium driven by playwright-core)
//! starts a test from the page, watches it, changes its users, stops it and downloads the
//! CSV; /metrics parses as Prometheus text and counts what the server received.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e::{Server, guests, runner_bin};

/// The runner, killed if a test ends without stopping it (a failed assertion).
struct Running(Option<Child>);

impl Running {
    /// Ctrl-C, then its exit status.
    fn interrupt(mut self) -> Option<i32> {
        let child = self.0.take()?;
        e2e::interrupt(&child);
        child.wait_with_output().ok().and_then(|o| o.status.code())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The runner with its web UI on a free port, waiting for the page; returns it and the
/// UI's address (host:port).
fn runner_with_ui(extra: &[&str]) -> (Running, String, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(runner_bin())
        .args(["run", guests::PROBE, "--web-port", "0", "--env", "PROBE_WAIT=constant:50"])
        .args(extra)
        .env("WASMLOAD_CACHE_DIR", e2e::cache_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the runner");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the runner never printed its web UI's address");
        };
        if let Some(url) = line.strip_prefix("Web UI on http://") {
            let addr = url.split(':').take(2).collect::<Vec<_>>().join(":");
            return (Running(Some(child)), addr, rx);
        }
    }
}

/// One HTTP/1.1 request to the UI; returns the status and body.
fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the UI");
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    (status, if chunked { unchunk(body) } else { body.to_owned() })
}

/// The body of a chunked response.
fn unchunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { return body.to_owned() };
        if n == 0 {
            break;
        }
        out.push_str(&after[..n.min(after.len())]);
        rest = after.get(n + 2..).unwrap_or_default();
    }
    out
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

fn wait_for_state(addr: &str, state: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = http(addr, "GET", "/api/stats", &[], "");
        let stats: serde_json::Value = serde_json::from_str(&body).expect("stats JSON");
        if stats["state"] == state {
            return stats;
        }
        assert!(Instant::now() < deadline, "the run never reached {state}: {}", stats["state"]);
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn metrics_parse_as_prometheus_text_and_count_what_the_server_received() {
    let server = Server::start();
    let (child, addr, _log) = runner_with_ui(&[]);
    let start = format!(r#"{{"users":3,"spawn_rate":100,"host":"{}","run_time":"2s"}}"#, server.url());
    assert_eq!(http(&addr, "POST", "/api/start", &[JSON], &start).0, 202);
    let stats = wait_for_state(&addr, "stopped");
    let (status, text) = http(&addr, "GET", "/metrics", &[], "");
    assert_eq!(status, 200);
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text");
    let total: f64 = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "wasmload_http_reqs_total")
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum();
    assert!(total > 0.0);
    assert_eq!(total as u64, server.total(), "/metrics counts what the server received");
    assert_eq!(stats["snapshot"]["aggregated"]["requests"].as_u64(), Some(server.total()), "so does the page");
    let (_, report) = http(&addr, "GET", "/download/report.json", &[], "");
    let report: serde_json::Value = serde_json::from_str(&report).expect("report JSON");
    assert_eq!(report["aggregated"]["requests"].as_u64(), Some(server.total()), "and the JSON report");
    let count = scrape.samples.iter().find(|s| s.metric == "wasmload_http_req_duration_seconds_count");
    assert!(count.is_some(), "a duration histogram: {text}");
    // Every metric the shipped Grafana dashboard charts is one /metrics exposes.
    let dashboard = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../runner/grafana-dashboard.json"))
        .expect("the dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard).expect("dashboard JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    for target in panels.iter().flat_map(|p| p["targets"].as_array().into_iter().flatten()) {
        let expr = target["expr"].as_str().expect("expr");
        for name in
            expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with("wasmload_"))
        {
            let base = name.trim_end_matches("_bucket");
            assert!(text.contains(&format!("# TYPE {}", base.trim_end_matches("_total"))), "{name} is not exposed");
        }
    }

    // Another site's page cannot drive the runner: not by name, not by form posts.
    assert_eq!(http(&addr, "GET", "/api/stats", &[("Host", "attacker.test")], "").0, 421);
    assert_eq!(http(&addr, "POST", "/api/stop", &[("Content-Type", "text/plain")], "{}").0, 415);
    let foreign = [JSON, ("Origin", "http://attacker.test")];
    assert_eq!(http(&addr, "POST", "/api/stop", &foreign, "{}").0, 403);
    child.interrupt();
}

#[test]
fn a_bad_start_form_is_refused_with_its_reason() {
    let (child, addr, _log) = runner_with_ui(&[]);
    let (status, body) =
        http(&addr, "POST", "/api/start", &[JSON], r#"{"users":2,"spawn_rate":1,"host":"ftp://x","run_time":""}"#);
    assert_eq!(status, 400);
    assert!(body.starts_with("host: "), "{body}");
    let (status, body) = http(&addr, "POST", "/api/start", &[JSON], r#"{"users":0,"spawn_rate":1}"#);
    assert_eq!((status, body.starts_with("users: ")), (400, true), "{body}");
    assert_eq!(wait_for_state(&addr, "ready")["state"], "ready");
    assert_eq!(child.interrupt(), Some(130));
}

#[test]
fn a_browser_starts_watches_edits_stops_and_downloads_a_test() {
    let modules = std::env::var("WASMLOAD_NODE_MODULES")
        .expect("WASMLOAD_NODE_MODULES (with playwright-core): run `eval \"$(scripts/toolchains.sh)\"` first");
    let server = Server::start();
    let (child, addr, _log) = runner_with_ui(&[]);
    let screenshot = runner_bin().with_file_name("web-ui.png");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/web_ui.mjs");
    let out = Command::new("node")
        .arg(&script)
        .arg(format!("http://{addr}/"))
        .arg(server.url())
        .arg(&screenshot)
        .env("WASMLOAD_NODE_MODULES", modules)
        .output()
        .expect("run node");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the script's JSON");
    println!("screenshot of the web UI: {}", screenshot.display());
    assert!(std::fs::metadata(&screenshot).map(|m| m.len()).unwrap_or(0) > 10_000, "a screenshot was taken");
    assert_eq!(result["users_after_edit"], 2);

    // The page's table, after the stop, counts what the server received.
    let rows = result["rows"].as_array().expect("rows");
    let total = rows.last().and_then(|r| r[2].as_str()).and_then(|n| n.parse::<u64>().ok());
    assert_eq!(total, Some(server.total()), "{rows:?}");
    // So does the downloaded CSV, with Locust's columns.
    let csv = result["csv"].as_str().expect("csv");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,\
             Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,\
             99.99%,100%"
        )
    );
    let aggregated = lines.find(|l| l.starts_with(",Aggregated,")).expect("the Aggregated row");
    assert_eq!(aggregated.split(',').nth(2).and_then(|n| n.parse().ok()), Some(server.total()), "{aggregated}");
    child.interrupt();
}
