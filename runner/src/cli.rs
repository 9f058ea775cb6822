//! Command-line flags (clap derive) and their value parsers. No logic beyond parsing and
//! validating single values; `config` turns flags and the plan's defaults into a run.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::client::BaseUrl;

#[derive(Debug, Parser)]
#[command(name = "runner", version, about = "Load tests whose scenarios are WebAssembly components")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a plan (a scenario component built for wasm32-wasip2) against a target.
    Run(Box<RunArgs>),
    /// Build a scenario written in Python (.py) or JavaScript (.js, k6 style) into a plan.
    Build(BuildArgs),
    /// Start the built-in demo target on 127.0.0.1 and run the example plan against it.
    Demo(DemoArgs),
    /// Serve the built-in demo target on 127.0.0.1 until Ctrl-C (to try `runner run` on).
    Target(TargetArgs),
}

/// How the load is applied, shared by `run` and `demo`.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Peak number of concurrent virtual users [default: the plan's, else 1].
    #[arg(short = 'u', long, value_parser = parse_users)]
    pub users: Option<u32>,
    /// Users started per second until the peak is reached [default: the plan's, else 1].
    #[arg(short = 'r', long, value_parser = parse_rate)]
    pub spawn_rate: Option<f64>,
    /// Stop after this long, e.g. 30s, 5m, 1h30m [default: the plan's, else until Ctrl-C
    /// or --iterations].
    #[arg(short = 't', long, value_parser = parse_duration)]
    pub run_time: Option<Duration>,
    /// Each VU stops after this many iterations (one task and its wait): k6's
    /// per-vu-iterations.
    #[arg(short = 'i', long, value_parser = parse_positive_u64)]
    pub iterations: Option<u64>,
    /// The VUs share this many iterations in all, then stop: k6's shared-iterations.
    #[arg(long, value_parser = parse_positive_u64, conflicts_with_all = ["iterations", "stages", "arrival_rate"])]
    pub shared_iterations: Option<u64>,
    /// Ramp the number of VUs through stages of TARGET:DURATION, linearly from 0, e.g.
    /// 10:30s,100:2m,0:30s (k6's ramping-vus). With --arrival-rate the targets are
    /// iterations per second instead (k6's ramping-arrival-rate). The run lasts as long as
    /// the stages unless --run-time says otherwise.
    #[arg(long, value_parser = crate::load::parse_stages, conflicts_with = "iterations")]
    pub stages: Option<crate::load::Stages>,
    /// Start iterations at this rate whatever the response times, e.g. 2000/s or 100/1m: an
    /// open model (k6's constant-arrival-rate). -u then sets the VUs started beforehand
    /// (k6 preAllocatedVUs); iterations due while every VU is busy are counted as dropped.
    /// No wait time is applied between iterations.
    #[arg(long, value_name = "RATE", value_parser = crate::load::parse_rate, conflicts_with = "iterations")]
    pub arrival_rate: Option<f64>,
    /// With --arrival-rate: start more VUs, up to this many, when every VU is busy
    /// [default: -u, as k6].
    #[arg(long, value_parser = parse_users, requires = "arrival_rate")]
    pub max_vus: Option<u32>,
    /// With --arrival-rate: how long a due iteration may wait for a busy VU before it is
    /// dropped; its requests' corrected latency includes the wait (as wrk2 measures) [default:
    /// 0s, dropped at once as in k6].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "arrival_rate")]
    pub max_delay: Option<Duration>,
    /// Time a stopping VU gets to finish its current task before it is interrupted.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub stop_timeout: Duration,
}

impl LoadArgs {
    /// Whether the flags describe the load model, replacing the plan's (as k6 does).
    pub fn chooses_executor(&self) -> bool {
        self.users.is_some()
            || self.iterations.is_some()
            || self.shared_iterations.is_some()
            || self.stages.is_some()
            || self.arrival_rate.is_some()
    }

    /// The most VUs these flags can start, when they say.
    pub fn peak_users(&self) -> Option<u32> {
        let stages = match (&self.stages, self.arrival_rate) {
            (Some(stages), None) => Some(stages.0.iter().map(|s| s.target.ceil() as u32).max().unwrap_or(0)),
            _ => None,
        };
        [self.users, self.max_vus, stages].into_iter().flatten().max()
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The plan: a WebAssembly component built against the wasmload:scenario WIT.
    pub plan: PathBuf,
    /// Base URL that request paths are joined to, e.g. http://127.0.0.1:8080.
    #[arg(short = 'H', long, value_parser = parse_host)]
    pub host: Option<BaseUrl>,
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Environment variable for the guest, KEY=VALUE (repeatable). Guests see no other.
    #[arg(short = 'e', long = "env", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Accept any TLS certificate (self-signed test servers).
    #[arg(short = 'k', long)]
    pub insecure: bool,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
    #[command(flatten)]
    pub timeouts: TimeoutArgs,
    /// Another host the plan may reach besides --host (repeatable): example.test,
    /// *.example.test (its subdomains), 127.0.0.1:8080. With neither, any host is allowed.
    #[arg(long = "allow-host", value_name = "PATTERN")]
    pub allow_hosts: Vec<crate::client::HostPattern>,
    /// Operator policy file (TOML): ceilings on users, duration, arrival rate, guest memory
    /// and CPU, the hosts runs may target, and whether loopback and private addresses may
    /// be reached. A run asking for more is refused before it starts.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Change a limit on what a guest can make the host allocate (repeatable): url,
    /// headers, header-bytes, request-body, response-body, log-line, log-rate,
    /// metric-series, resources; e.g. --limit request-body=1MiB --limit log-rate=50.
    #[arg(long = "limit", value_name = "NAME=VALUE", value_parser = crate::limits::parse_limit)]
    pub limits: Vec<(String, usize)>,
    #[command(flatten)]
    pub web: WebArgs,
}

/// The web UI (Locust's): on unless `--headless`.
#[derive(Debug, Clone, Args)]
pub struct WebArgs {
    /// No web UI: start at once and print progress on the terminal only.
    #[arg(long)]
    pub headless: bool,
    /// With the web UI: start the test at once instead of waiting for the page's Start, and
    /// quit when it ends.
    #[arg(long, conflicts_with = "headless")]
    pub autostart: bool,
    /// Address the web UI listens on (0.0.0.0 serves other machines too).
    #[arg(long, default_value = "127.0.0.1", value_name = "IP")]
    pub web_host: std::net::IpAddr,
    /// Port of the web UI.
    #[arg(long, default_value_t = 8089)]
    pub web_port: u16,
}

#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Also write Locust's CSV reports: PREFIX_stats.csv, PREFIX_stats_history.csv (a row
    /// every second) and PREFIX_failures.csv.
    #[arg(long, value_name = "PREFIX")]
    pub csv: Option<PathBuf>,
    /// Also write a self-contained HTML report (tables, charts over time, failures) to this
    /// file, at the end of the run and when it is interrupted.
    #[arg(long, value_name = "PATH")]
    pub html: Option<PathBuf>,
    /// With --csv: a history row for every request name each second, not only the aggregate.
    #[arg(long, requires = "csv")]
    pub csv_full_history: bool,
    /// Exit code when any request failed (as Locust's --exit-code-on-error).
    #[arg(long, default_value_t = 0)]
    pub exit_code_on_error: i32,
    /// The end-of-test summary's layout: Locust's tables, or k6's metric lines.
    #[arg(long, value_enum, default_value_t = SummaryStyle::Locust)]
    pub summary: SummaryStyle,
    /// No live status line; only the summary.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Pass/fail criterion (repeatable), k6 style: METRIC[{TAG:VALUE}]:STAT OP VALUE, e.g.
    /// 'http_req_duration{name:/login}:p(95)<300ms', 'http_req_failed:rate<1%',
    /// 'checks:rate>0.99'; add ',abortOnFail' or ',abortOnFail=10s' to stop the run as soon
    /// as it fails. The run exits with code 99 when any threshold fails.
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<crate::thresholds::Threshold>,
}

/// The end-of-test summary's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SummaryStyle {
    Locust,
    K6,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The scenario file: Python with an HttpUser class (Locust style), or JavaScript or
    /// TypeScript with a default function (k6 style).
    pub scenario: PathBuf,
    /// Where to write the plan [default: the scenario's path with the extension .wasm].
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The example plan to run.
    #[arg(default_value = "guest-examples/target/wasm32-wasip2/release/shop.wasm")]
    pub plan: PathBuf,
    #[arg(short = 'u', long, default_value_t = 20, value_parser = parse_users)]
    pub users: u32,
    #[arg(short = 'r', long, default_value_t = 10.0, value_parser = parse_rate)]
    pub spawn_rate: f64,
    #[arg(short = 't', long, default_value = "10s", value_parser = parse_duration)]
    pub run_time: Duration,
    /// Also show the run in the web UI (it starts at once; the runner quits at the end).
    #[arg(long)]
    pub web: bool,
    /// With --web: the web UI's port on 127.0.0.1.
    #[arg(long, default_value_t = 8089, requires = "web")]
    pub web_port: u16,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(short, long, default_value_t = 8080)]
    pub port: u16,
}

/// Limits on each VU's guest (see `limits.rs` for the reasons behind the defaults).
#[derive(Debug, Clone, clap::Args)]
pub struct SandboxArgs {
    /// Linear memory each VU's guest may grow to, e.g. 64MiB, 512MiB, 1GiB; growing past it
    /// stops that VU's instance.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "64MiB")]
    pub max_vu_memory: usize,
    /// Compute a guest may do without sending a request or sleeping, e.g. 10s, 500ms; past
    /// it that VU's instance is stopped.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    pub max_guest_cpu: Duration,
}

/// How long each step of a request may take.
#[derive(Debug, Clone, clap::Args)]
pub struct TimeoutArgs {
    /// Opening a connection (DNS, TCP, TLS handshake).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    pub connect_timeout: Duration,
    /// From sending a request to the first byte of its response.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    pub first_byte_timeout: Duration,
    /// The longest a response may go without a byte.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    pub idle_timeout: Duration,
    /// A whole request, unless the scenario sets its own timeout.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub request_timeout: Duration,
}

impl TimeoutArgs {
    pub fn timeouts(&self) -> crate::client::Timeouts {
        crate::client::Timeouts {
            connect: self.connect_timeout,
            first_byte: self.first_byte_timeout,
            idle: self.idle_timeout,
            request: self.request_timeout,
            ceiling: None,
        }
    }
}

/// A byte count: a number with an optional unit B, KiB, MiB or GiB (KB, MB, GB and K, M, G
/// are read as the binary units too).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("`{s}` is not a size like 64MiB or 1GiB")),
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("`{s}` is not a size above 0 like 64MiB or 1GiB"))
}

/// `30s`, `5m`, `1h30m`, `250ms`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(s).map_err(|e| format!("`{s}` is not a duration like 30s, 5m or 1h30m ({e})"))
}

/// A user count of at least 1.
pub fn parse_users(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(0) => Err("the number of users must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{s}` is not a whole number of users")),
    }
}

/// A spawn rate above 0 users per second.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        Ok(_) => Err("the spawn rate must be a number of users per second above 0".into()),
        Err(_) => Err(format!("`{s}` is not a number of users per second")),
    }
}

fn parse_positive_u64(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(0) | Err(_) => Err(format!("`{s}` is not a whole number above 0")),
        Ok(n) => Ok(n),
    }
}

/// An `http://` or `https://` base URL.
pub fn parse_host(s: &str) -> Result<BaseUrl, String> {
    BaseUrl::parse(s).map_err(|_| format!("`{s}` is not a base URL like http://127.0.0.1:8080"))
}

/// `KEY=VALUE`.
pub fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("0MiB").is_err());
        assert!(parse_size("lots").is_err());
        assert!(parse_size("12PiB").is_err());
    }

    #[test]
    fn durations_accept_locust_forms() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-3s").is_err());
    }

    #[test]
    fn counts_and_rates_refuse_nonsense() {
        assert_eq!(parse_users("100"), Ok(100));
        assert!(parse_users("0").is_err());
        assert!(parse_users("-1").is_err());
        assert!(parse_users("many").is_err());
        assert_eq!(parse_rate("0.5"), Ok(0.5));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("inf").is_err());
        assert!(parse_rate("NaN").is_err());
        assert!(parse_positive_u64("0").is_err());
    }

    #[test]
    fn hosts_and_env_pairs() {
        assert_eq!(
            parse_host("http://127.0.0.1:8080/").map(|b| b.as_str().to_owned()),
            Ok("http://127.0.0.1:8080".into())
        );
        assert!(parse_host("127.0.0.1:8080").is_err());
        assert!(parse_host("ftp://x").is_err());
        assert_eq!(parse_env("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert!(parse_env("=x").is_err());
        assert!(parse_env("novalue").is_err());
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
