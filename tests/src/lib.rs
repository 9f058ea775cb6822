//! Shared pieces of the end-to-end tests: the guest components built by `build.rs`, a real
//! HTTP(S) server on 127.0.0.1 that records every request it receives, and a helper that
//! runs the real `runner` binary and collects its output and JSON report.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Paths of the guest components (`CONCERT`, `SHOP`, `PROBE`, `WRONG_WORLD`, ...).
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Hit {
    pub method: String,
    pub path: String,
    /// The query string, if any (without `?`).
    pub query: Option<String>,
    pub body: Vec<u8>,
    /// The `x-vu` header the probe guest sends.
    pub vu: Option<u32>,
    pub cookie: Option<String>,
    pub headers: BTreeMap<String, String>,
    /// Since the server started.
    pub at: Duration,
}

/// How the server answers. By path:
/// - `/login`: 200 and `Set-Cookie: session=vu-<x-vu>`;
/// - `/status/<code>`: that status;
/// - `/delay/<ms>`: 200 after `ms` milliseconds;
/// - `/echo`: 200 with the request's body and content type;
/// - `/header/<text>`: 200 with `x-echo: <text>`;
/// - `/redirect-to-metadata`: 302 to the cloud metadata service (169.254.169.254);
/// - any path listed in `fail`: 500;
/// - anything else: 200 `ok`.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    pub fail: Vec<String>,
    pub tls: bool,
    /// Close every connection this long after it was accepted (an aggressive keep-alive
    /// timeout), whatever it is doing.
    pub close_after: Option<Duration>,
    /// `(from, length)`: the server stalls once, as in a long garbage-collection pause:
    /// every request that arrives between `from` and `from + length` after the server
    /// started is answered only at `from + length`.
    pub stall: Option<(Duration, Duration)>,
}

/// A recording server on 127.0.0.1, stopped when dropped.
pub struct Server {
    pub addr: SocketAddr,
    pub tls: bool,
    hits: Arc<Mutex<Vec<Hit>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Server {
    pub fn start() -> Self {
        Self::with(Behaviour::default())
    }

    pub fn with(behaviour: Behaviour) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("test server runtime");
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let hits = Arc::new(Mutex::new(Vec::new()));
        let acceptor = behaviour.tls.then(tls_acceptor);
        let tls = behaviour.tls;
        let close_after = behaviour.close_after.unwrap_or(Duration::from_secs(3600));
        let state = Arc::new((behaviour, hits.clone(), Instant::now()));
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let state = state.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(tokio::time::timeout(close_after, async move {
                    let service = service_fn(move |req| answer(req, state.clone()));
                    let http = hyper::server::conn::http1::Builder::new();
                    match acceptor {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                }));
            }
        });
        Self { addr, tls, hits, runtime: Some(runtime) }
    }

    /// The base URL for `--host`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Every request received so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("hits lock").clone()
    }

    /// Requests received per path.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for hit in self.hits() {
            *counts.entry(hit.path).or_insert(0) += 1;
        }
        counts
    }

    /// The VUs (their `x-vu` header) that sent at least one request.
    pub fn vus(&self) -> std::collections::BTreeSet<u32> {
        self.hits().iter().filter_map(|hit| hit.vu).collect()
    }

    pub fn count(&self, path: &str) -> u64 {
        self.counts().get(path).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.hits().len() as u64
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

type State = (Behaviour, Arc<Mutex<Vec<Hit>>>, Instant);

async fn answer(req: Request<Incoming>, state: Arc<State>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (behaviour, hits, started) = &*state;
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let text = |name: &header::HeaderName| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let vu = parts.headers.get("x-vu").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    hits.lock().expect("hits lock").push(Hit {
        method: parts.method.to_string(),
        path: path.clone(),
        query: parts.uri.query().map(str::to_owned),
        body: body.to_vec(),
        vu,
        cookie: text(&header::COOKIE),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        at: started.elapsed(),
    });
    if let Some((from, length)) = behaviour.stall {
        let now = started.elapsed();
        if now >= from && now < from + length {
            tokio::time::sleep(from + length - now).await;
        }
    }
    let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
    if path == "/redirect-to-metadata" {
        *response.status_mut() = StatusCode::FOUND;
        response
            .headers_mut()
            .insert(header::LOCATION, header::HeaderValue::from_static("http://169.254.169.254/latest/meta-data/"));
    } else if path == "/echo" {
        *response.body_mut() = Full::new(body);
        if let Some(kind) = parts.headers.get(header::CONTENT_TYPE) {
            response.headers_mut().insert(header::CONTENT_TYPE, kind.clone());
        }
    } else if let Some(text) = path.strip_prefix("/header/") {
        if let Ok(value) = header::HeaderValue::from_str(text) {
            response.headers_mut().insert("x-echo", value);
        }
    } else if path == "/login" {
        let cookie = format!("session=vu-{}; Path=/", vu.map_or("anon".to_owned(), |v: u32| v.to_string()));
        response.headers_mut().insert(header::SET_COOKIE, cookie.parse().expect("valid cookie header"));
    } else if let Some(code) = path.strip_prefix("/status/") {
        *response.status_mut() =
            code.parse::<u16>().ok().and_then(|c| StatusCode::from_u16(c).ok()).unwrap_or(StatusCode::BAD_REQUEST);
    } else if let Some(ms) = path.strip_prefix("/delay/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
    } else if behaviour.fail.contains(&path) {
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    }
    Ok(response)
}

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("generate a self-signed certificate");
    let key = rustls::pki_types::PrivateKeyDer::try_from(certified.signing_key.serialize_der()).expect("key der");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .expect("server certificate");
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// The `runner` binary built by the same `cargo test` (next to this test's `deps/`).
pub fn runner_bin() -> PathBuf {
    if let Some(path) = option_env!("CARGO_BIN_EXE_runner") {
        return path.into();
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps");
    let bin = dir.join("runner");
    assert!(bin.exists(), "{} not found: run the tests with `cargo test --workspace`", bin.display());
    bin
}

/// The compiled-plan cache the tests' runs share, under the target folder.
pub fn cache_dir() -> PathBuf {
    runner_bin().with_file_name("wasmload-test-cache")
}

/// Builds a Python or JavaScript scenario (a path from the repository's root) with
/// `runner build`, once per test binary, and returns the plan's path. The toolchains come
/// from `scripts/test.sh` (or `WASMLOAD_COMPONENTIZE_PY` / `WASMLOAD_NODE_MODULES`).
pub fn built(source: &str) -> String {
    static BUILT: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(plan) = built.get(source) {
        return plan.clone();
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let binary = std::env::current_exe().expect("current exe");
    let name = binary.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let dir = runner_bin().with_file_name("e2e-plans").join(name);
    std::fs::create_dir_all(&dir).expect("create the plans folder");
    let stem = Path::new(source).file_stem().expect("a file name").to_string_lossy().into_owned();
    let plan = dir.join(format!("{stem}.wasm")).display().to_string();
    let run =
        Runner::raw(&["build", &root.join(source).display().to_string(), "-o", &plan]).finish(Duration::from_secs(300));
    assert_eq!(run.code(), 0, "runner build {source} failed:\n{}{}", run.stdout, run.stderr);
    built.insert(source.to_owned(), plan.clone());
    plan
}

/// Runs `plan` (the concert scenario in another language) and the Rust concert the same way,
/// 3 users x 2 iterations against a server that fails `/concert/1`, and asserts both are
/// counted as the server saw them and give the same statistics; with `same_messages`, the
/// same failure messages and task errors too (a k6 script has no per-response message: its
/// failures say which status was not expected).
pub fn assert_counts_like_the_rust_concert(plan: &str, same_messages: bool) {
    let mut runs = Vec::new();
    for plan in [plan, guests::CONCERT] {
        let server = Server::with(Behaviour { fail: vec!["/concert/1".into()], ..Behaviour::default() });
        let run =
            Runner::run(plan).host(&server).args(&["-u", "3", "-r", "100", "-i", "2"]).finish(Duration::from_secs(120));
        assert_eq!(run.code(), 0, "{}", run.stderr);
        for i in 0..3 {
            assert_eq!(server.count(&format!("/concert/{i}")), 6, "{plan}: server saw {:?}", server.counts());
        }
        let row = run.row("GET", "/concert/<id>");
        assert_eq!((row["requests"].as_u64(), row["failures"].as_u64()), (Some(18), Some(6)), "{plan}");
        if same_messages || plan == guests::CONCERT {
            assert_eq!(run.report()["errors"][0]["error"], "Failed /concert/1", "{plan}");
        }
        assert_eq!(run.report()["errors"][0]["occurrences"], 6, "{plan}");
        assert_eq!(run.report()["iterations"], 6, "{plan}");
        runs.push(run);
    }
    let keys = |run: &Run| {
        let row = run.row("GET", "/concert/<id>");
        let (errors, task_errors) = if same_messages {
            (run.report()["errors"].clone(), run.report()["task_errors"].clone())
        } else {
            (serde_json::Value::Null, serde_json::Value::Null)
        };
        (row["requests"].clone(), row["failures"].clone(), errors, task_errors)
    };
    assert_eq!(keys(&runs[0]), keys(&runs[1]));
}

/// Asserts that each statistics row of `run` counts exactly the requests `server` received
/// for it: a row named `/concert/<id>` stands for the paths starting with `/concert/`, any
/// other for its own path; and that the rows add up to everything the server received.
pub fn assert_rows_match_server(run: &Run, server: &Server) {
    let hits = server.hits();
    let mut total = 0;
    for row in run.report()["rows"].as_array().expect("rows") {
        let name = row["name"].as_str().expect("row name");
        let received = match name.strip_suffix("<id>") {
            Some(prefix) => hits.iter().filter(|h| h.path.starts_with(prefix)).count(),
            None => hits.iter().filter(|h| h.path == name).count(),
        };
        assert_eq!(row["requests"].as_u64(), Some(received as u64), "row {name}: server saw {:?}", server.counts());
        total += received;
    }
    assert_eq!(total, hits.len(), "requests outside the rows: {:?}", server.counts());
}

/// What a finished runner process left behind.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// The `--json` report, if one was written.
    pub json: Option<serde_json::Value>,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }

    pub fn report(&self) -> &serde_json::Value {
        self.json.as_ref().unwrap_or_else(|| panic!("no JSON report; stderr:\n{}", self.stderr))
    }

    /// The statistics row for (method, name) in the JSON report.
    pub fn row(&self, method: &str, name: &str) -> &serde_json::Value {
        self.report()["rows"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["method"] == method && r["name"] == name))
            .unwrap_or_else(|| panic!("no row {method} {name} in {:#}", self.report()["rows"]))
    }

    /// A check's (passes, fails) in the JSON report.
    pub fn check(&self, name: &str) -> (u64, u64) {
        let checks = &self.report()["checks"];
        let check = checks
            .as_array()
            .and_then(|checks| checks.iter().find(|c| c["name"] == name))
            .unwrap_or_else(|| panic!("no check `{name}` in {checks:#}"));
        (check["passes"].as_u64().expect("passes"), check["fails"].as_u64().expect("fails"))
    }

    pub fn requests(&self) -> u64 {
        self.report()["aggregated"]["requests"].as_u64().expect("aggregated.requests")
    }

    pub fn failures(&self) -> u64 {
        self.report()["aggregated"]["failures"].as_u64().expect("aggregated.failures")
    }
}

/// A runner command line being prepared.
pub struct Runner {
    cmd: Command,
    json: tempfile::TempPath,
}

impl Runner {
    /// `runner run <plan> --headless -q --json <tmp>` plus whatever is added.
    pub fn run(plan: &str) -> Self {
        let json = tempfile::Builder::new().suffix(".json").tempfile().expect("temp file").into_temp_path();
        let _ = std::fs::remove_file(&json);
        let mut cmd = Command::new(runner_bin());
        cmd.arg("run")
            .arg(plan)
            .arg("--headless")
            .arg("-q")
            .arg("--json")
            .arg(&json)
            .env("WASMLOAD_CACHE_DIR", cache_dir());
        Self { cmd, json }
    }

    /// Any other subcommand, without extra flags.
    pub fn raw(args: &[&str]) -> Self {
        let json = tempfile::Builder::new().suffix(".json").tempfile().expect("temp file").into_temp_path();
        let _ = std::fs::remove_file(&json);
        let mut cmd = Command::new(runner_bin());
        cmd.args(args).env("WASMLOAD_CACHE_DIR", cache_dir());
        Self { cmd, json }
    }

    pub fn args(mut self, args: &[&str]) -> Self {
        self.cmd.args(args);
        self
    }

    pub fn host(self, server: &Server) -> Self {
        let url = server.url();
        self.args(&["--host", &url])
    }

    /// Passes `KEY=VALUE` to the guest.
    pub fn env(self, key: &str, value: &str) -> Self {
        let pair = format!("{key}={value}");
        self.args(&["--env", &pair])
    }

    /// Starts the runner with its open-file limit (`ulimit -n`, soft and hard) at `limit`.
    pub fn open_files(mut self, limit: u64) -> Self {
        set_open_files_at_exec(&mut self.cmd, limit);
        self
    }

    /// Runs to completion (at most `limit`).
    pub fn finish(self, limit: Duration) -> Run {
        let (child, json) = self.spawn();
        collect(child, json, limit)
    }

    /// Starts the process and returns it with the report path.
    pub fn spawn(mut self) -> (Child, tempfile::TempPath) {
        let child = self
            .cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the runner");
        (child, self.json)
    }
}

/// Waits for `child` (killing it after `limit`) and gathers its output and report.
pub fn collect(mut child: Child, json: tempfile::TempPath, limit: Duration) -> Run {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().expect("poll the runner").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("runner output");
            panic!(
                "the runner did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("runner output");
    let json = std::fs::read_to_string(&json).ok().map(|text| serde_json::from_str(&text).expect("valid JSON report"));
    Run {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        json,
    }
}

/// One mapping of a process, from `/proc/PID/smaps`.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// The first address.
    pub start: u64,
    /// `rw-p`, `---p`, ...
    pub perms: String,
    /// Bytes.
    pub size: u64,
    /// Resident KiB.
    pub rss_kib: u64,
    /// The mapped file, or a pseudo-name like `[heap]`; empty for an anonymous mapping.
    pub path: String,
}

/// The mappings of process `pid`, in address order.
pub fn smaps(pid: u32) -> Vec<Mapping> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).expect("read smaps");
    let mut maps: Vec<Mapping> = Vec::new();
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or_default();
        if let Some((start, end)) = first.split_once('-')
            && let (Ok(start), Ok(end)) = (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
        {
            let perms = words.next().unwrap_or_default().to_owned();
            let path = words.nth(3).unwrap_or_default().to_owned();
            maps.push(Mapping { start, perms, size: end - start, rss_kib: 0, path });
        } else if first == "Rss:"
            && let Some(last) = maps.last_mut()
        {
            last.rss_kib = words.next().and_then(|kib| kib.parse().ok()).unwrap_or(u64::MAX);
        }
    }
    maps
}

/// Sends SIGINT (Ctrl-C) to a process the test started.
pub fn interrupt(child: &Child) {
    let pid = i32::try_from(child.id()).expect("pid fits in i32");
    let rc = unsafe_kill(pid, libc::SIGINT);
    assert_eq!(rc, 0, "kill -INT {pid}");
}

#[allow(unsafe_code)]
fn set_open_files_at_exec(cmd: &mut Command, limit: u64) {
    use std::os::unix::process::CommandExt as _;
    let rlimit = libc::rlimit { rlim_cur: limit, rlim_max: limit };
    // SAFETY: runs in the child between fork and exec, and only calls `setrlimit`, which is
    // async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

#[allow(unsafe_code)]
fn unsafe_kill(pid: i32, signal: i32) -> i32 {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(pid, signal) }
}
