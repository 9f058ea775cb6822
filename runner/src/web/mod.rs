//! The web UI (Locust's, served by the runner itself): a page to start a test, change its
//! users, stop it and reset its statistics; live statistics, charts and failures; report
//! downloads; and `/metrics` for Prometheus. Assets are embedded, so it works offline.
//!
//! The run loop owns the statistics. It publishes a [`View`] every second, which the server
//! answers reads from, and the server sends it [`Command`]s (start, users, stop, reset, a
//! report to render now) over a channel.
//!
//! The page can start load tests, so the server only answers requests whose `Host` is the
//! address it listens on or `localhost` (no DNS rebinding), and takes commands only as JSON
//! `POST`s (which a page of another origin cannot send without a preflight the server
//! never grants) whose `Origin`, if any, is its own.

mod run_side;

pub(crate) use run_side::{finished_reports, next_command, render_report, view, wait_for_start};

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

const INDEX: &str = include_str!("../../assets/web/index.html");
const APP_JS: &str = include_str!("../../assets/web/app.js");
const APP_CSS: &str = include_str!("../../assets/web/app.css");
const UPLOT_JS: &str = include_str!("../../assets/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../../assets/uPlot.min.css");

/// The largest command body the server reads.
const MAX_COMMAND_BYTES: usize = 16 * 1024;

/// What the page asks the run for.
#[derive(Debug)]
pub enum Command {
    Start(StartRequest),
    /// Move to this many users at this rate per second.
    Users {
        users: u32,
        spawn_rate: f64,
    },
    Stop,
    Reset,
    /// Render a report of the run so far and send it back.
    Report(Report, oneshot::Sender<Result<String, String>>),
}

/// The start form (Locust's: users, spawn rate, host, run time).
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct StartForm {
    pub users: Option<u32>,
    pub spawn_rate: Option<f64>,
    pub host: Option<String>,
    /// `30s`, `5m`, `1h30m`; empty: until stopped.
    pub run_time: Option<String>,
}

/// The start form, checked.
#[derive(Debug, Clone)]
pub struct StartRequest {
    pub users: u32,
    pub spawn_rate: f64,
    pub host: Option<crate::client::BaseUrl>,
    pub run_time: Option<std::time::Duration>,
}

impl StartForm {
    /// The form's values checked as the command line checks its flags.
    fn check(&self) -> Result<StartRequest, String> {
        use crate::cli::{parse_duration, parse_host, parse_rate, parse_users};
        let text = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        Ok(StartRequest {
            users: parse_users(&self.users.ok_or("the number of users is missing")?.to_string())
                .map_err(|e| format!("users: {e}"))?,
            spawn_rate: parse_rate(&self.spawn_rate.ok_or("the ramp up is missing")?.to_string())
                .map_err(|e| format!("ramp up: {e}"))?,
            host: text(&self.host).map(|h| parse_host(&h)).transpose().map_err(|e| format!("host: {e}"))?,
            run_time: text(&self.run_time)
                .map(|t| parse_duration(&t))
                .transpose()
                .map_err(|e| format!("run time: {e}"))?,
        })
    }
}

/// A downloadable report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    Json,
    Html,
    StatsCsv,
    FailuresCsv,
}

impl Report {
    fn from_path(path: &str) -> Option<(Self, &'static str, &'static str)> {
        match path {
            "/download/report.json" => Some((Self::Json, "application/json", "report.json")),
            "/download/report.html" => Some((Self::Html, "text/html; charset=utf-8", "report.html")),
            "/download/stats.csv" => Some((Self::StatsCsv, "text/csv", "wasmload_stats.csv")),
            "/download/failures.csv" => Some((Self::FailuresCsv, "text/csv", "wasmload_failures.csv")),
            _ => None,
        }
    }
}

/// What the page shows, published by the run loop.
#[derive(Debug, Default, Clone)]
pub struct View {
    /// `/api/stats`: the state, the form's defaults, the snapshot and the history, as JSON.
    pub stats: Arc<str>,
    /// `/metrics`.
    pub metrics: Arc<str>,
    /// The reports of a finished run (then no longer rendered on demand).
    pub finished: Option<Arc<FinishedReports>>,
}

#[derive(Debug, Default)]
pub struct FinishedReports {
    pub json: String,
    pub html: String,
    pub stats_csv: String,
    pub failures_csv: String,
}

impl FinishedReports {
    fn get(&self, report: Report) -> &str {
        match report {
            Report::Json => &self.json,
            Report::Html => &self.html,
            Report::StatsCsv => &self.stats_csv,
            Report::FailuresCsv => &self.failures_csv,
        }
    }
}

struct Shared {
    view: Mutex<View>,
    commands: mpsc::UnboundedSender<Command>,
    addr: SocketAddr,
}

/// The running server; stops when dropped.
pub struct Web {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    commands: mpsc::UnboundedReceiver<Command>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Web {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Web {
    /// Listens on `addr` (port 0 for any free one).
    pub async fn start(addr: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr).await.with_context(|| {
            format!(
                "cannot serve the web UI on {addr} (is it in use? choose another with --web-port, or run --headless)"
            )
        })?;
        let addr = listener.local_addr()?;
        let (tx, commands) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared { view: Mutex::new(View::default()), commands: tx, addr });
        let serving = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let shared = serving.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(req, shared.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, shared, commands, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Publishes what the page shows.
    pub fn publish(&self, view: View) {
        *self.shared.view.lock().unwrap_or_else(|p| p.into_inner()) = view;
    }

    /// The next command from the page.
    pub async fn command(&mut self) -> Option<Command> {
        self.commands.recv().await
    }
}

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, kind: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(kind));
    r.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    r.headers_mut().insert("x-content-type-options", header::HeaderValue::from_static("nosniff"));
    r
}

fn refuse(status: StatusCode, why: &str) -> Reply {
    reply(status, "text/plain; charset=utf-8", format!("{why}\n"))
}

/// Whether `value` (a Host or an Origin's host part) names this server.
fn ours(value: &str, addr: SocketAddr) -> bool {
    if addr.ip().is_unspecified() {
        // Served to every interface on purpose (--web-host 0.0.0.0): any name may reach it.
        return true;
    }
    let port = addr.port();
    [addr.to_string(), format!("localhost:{port}"), format!("127.0.0.1:{port}"), format!("[::1]:{port}")]
        .iter()
        .any(|a| a == value)
}

async fn handle(req: Request<Incoming>, shared: Arc<Shared>) -> Result<Reply, Infallible> {
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !ours(host, shared.addr) {
        return Ok(refuse(StatusCode::MISDIRECTED_REQUEST, "this server answers only to its own address"));
    }
    let view = shared.view.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let path = req.uri().path().to_owned();
    Ok(match (req.method().clone(), path.as_str()) {
        (Method::GET, "/") => reply(StatusCode::OK, "text/html; charset=utf-8", INDEX),
        (Method::GET, "/app.js") => reply(StatusCode::OK, "text/javascript; charset=utf-8", APP_JS),
        (Method::GET, "/app.css") => reply(StatusCode::OK, "text/css; charset=utf-8", APP_CSS),
        (Method::GET, "/uplot.js") => reply(StatusCode::OK, "text/javascript; charset=utf-8", UPLOT_JS),
        (Method::GET, "/uplot.css") => reply(StatusCode::OK, "text/css; charset=utf-8", UPLOT_CSS),
        (Method::GET, "/api/stats") => reply(StatusCode::OK, "application/json", Bytes::from(view.stats.to_string())),
        (Method::GET, "/metrics") => {
            reply(StatusCode::OK, crate::output::prometheus::CONTENT_TYPE, Bytes::from(view.metrics.to_string()))
        }
        (Method::GET, p) if let Some((report, kind, file)) = Report::from_path(p) => {
            let text = match &view.finished {
                Some(done) => Ok(done.get(report).to_owned()),
                None => render_now(&shared, report).await,
            };
            match text {
                Ok(text) => {
                    let mut r = reply(StatusCode::OK, kind, text);
                    let disposition = format!("attachment; filename=\"{file}\"");
                    if let Ok(value) = header::HeaderValue::from_str(&disposition) {
                        r.headers_mut().insert(header::CONTENT_DISPOSITION, value);
                    }
                    r
                }
                Err(why) => refuse(StatusCode::SERVICE_UNAVAILABLE, &why),
            }
        }
        (Method::POST, "/api/start" | "/api/users" | "/api/stop" | "/api/reset") => command(req, &shared).await,
        (Method::GET | Method::POST, _) => refuse(StatusCode::NOT_FOUND, "no such page"),
        _ => refuse(StatusCode::METHOD_NOT_ALLOWED, "only GET and POST"),
    })
}

async fn render_now(shared: &Shared, report: Report) -> Result<String, String> {
    let (tx, rx) = oneshot::channel();
    shared.commands.send(Command::Report(report, tx)).map_err(|_| "the run has ended".to_owned())?;
    rx.await.map_err(|_| "the run has ended".to_owned())?
}

async fn command(req: Request<Incoming>, shared: &Shared) -> Reply {
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, "commands are JSON (Content-Type: application/json)");
    }
    if let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok())
        && !origin.strip_prefix("http://").is_some_and(|o| ours(o, shared.addr))
    {
        return refuse(StatusCode::FORBIDDEN, "commands are taken only from this server's own page");
    }
    let path = req.uri().path().to_owned();
    let body = match Limited::new(req.into_body(), MAX_COMMAND_BYTES).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return refuse(StatusCode::PAYLOAD_TOO_LARGE, "the command is too large"),
    };
    let parsed = match path.as_str() {
        "/api/start" => match serde_json::from_slice::<StartForm>(&body) {
            Ok(form) => match form.check() {
                Ok(start) => Ok(Command::Start(start)),
                Err(why) => return refuse(StatusCode::BAD_REQUEST, &why),
            },
            Err(e) => Err(e),
        },
        "/api/users" => serde_json::from_slice::<UsersForm>(&body)
            .map(|f| Command::Users { users: f.users, spawn_rate: f.spawn_rate.unwrap_or(f64::INFINITY) }),
        "/api/stop" => Ok(Command::Stop),
        _ => Ok(Command::Reset),
    };
    match parsed {
        Ok(command) => match shared.commands.send(command) {
            Ok(()) => reply(StatusCode::ACCEPTED, "application/json", "{\"ok\":true}"),
            Err(_) => refuse(StatusCode::CONFLICT, "the run has ended"),
        },
        Err(e) => refuse(StatusCode::BAD_REQUEST, &format!("cannot read the command: {e}")),
    }
}

#[derive(Debug, Deserialize)]
struct UsersForm {
    users: u32,
    spawn_rate: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::ours;

    #[test]
    fn only_the_servers_own_names_are_accepted() {
        let addr = "127.0.0.1:8089".parse().expect("addr");
        assert!(ours("127.0.0.1:8089", addr));
        assert!(ours("localhost:8089", addr));
        assert!(!ours("evil.example:8089", addr));
        assert!(!ours("127.0.0.1:80", addr));
    }
}
