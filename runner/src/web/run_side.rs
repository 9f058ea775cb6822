//! The run's side of the web UI: the start form's wait, the view published every second,
//! the reports rendered for downloads, and the commands the page sends into the run loop.

use std::time::Duration;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};

use super::{Command, FinishedReports, Report, StartForm, StartRequest, View, Web};
use crate::config::{Requested, RunConfig, ScenarioConfig, show_duration};
use crate::load::Executor;
use crate::output::history::History;
use crate::output::monitor::RunnerUsage;
use crate::output::{html, json, prometheus};
use crate::run::{first, run_info};
use crate::stats::{Aggregator, Snapshot};
use crate::thresholds::{self, Verdict};

/// `/api/stats`: what the page polls every second.
#[derive(serde::Serialize)]
struct PageStats<'a> {
    /// `ready`, `running`, `stopping` or `stopped`.
    state: &'a str,
    host: Option<&'a str>,
    /// The start form's values.
    defaults: &'a StartForm,
    /// Whether "Edit users" applies (a single constant-VUs scenario).
    can_edit_users: bool,
    /// The runner's own warning (its CPU is saturated), if any.
    warning: Option<&'a str>,
    snapshot: &'a Snapshot,
    history: &'a History,
}

impl PageStats<'_> {
    fn to_json(&self) -> String {
        // Plain data with string keys: encoding cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Shows the start form with the run's defaults and waits for the page's Start (`None`:
/// Ctrl-C came first).
pub(crate) async fn wait_for_start(
    web: &mut Web,
    requested: &Requested,
    plan: &crate::bindings::Plan,
) -> anyhow::Result<Option<StartRequest>> {
    let defaults = StartForm {
        users: requested.load.users.or(plan.options.users).or(Some(1)),
        spawn_rate: requested.load.spawn_rate.or(plan.options.spawn_rate).or(Some(1.0)),
        host: requested.host.as_ref().map(|h| h.as_str().to_owned()).or_else(|| plan.options.host.clone()),
        run_time: requested
            .load
            .run_time
            .or(plan.options.run_time_ms.map(Duration::from_millis))
            .map(|t| show_duration(t).to_string()),
    };
    let stats = PageStats {
        state: "ready",
        host: defaults.host.as_deref(),
        defaults: &defaults,
        can_edit_users: false,
        warning: None,
        snapshot: &Aggregator::new().0.snapshot(0),
        history: &History::default(),
    };
    web.publish(View { stats: stats.to_json().into(), ..View::default() });
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot install the Ctrl-C handler")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    loop {
        tokio::select! {
            command = web.command() => match command {
                Some(Command::Start(start)) => return Ok(Some(start)),
                Some(Command::Report(_, reply)) => {
                    let _ = reply.send(Err("no test has run yet".into()));
                }
                Some(_) => {}
                None => return Ok(None),
            },
            _ = first(&mut interrupt, &mut terminate) => return Ok(None),
        }
    }
}

/// The next command from the page, or never without a page.
pub(crate) async fn next_command(web: &mut Option<Web>) -> Command {
    match web {
        Some(web) => match web.command().await {
            Some(command) => command,
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// What the page shows now.
pub(crate) fn view(
    state: &str,
    cfg: &RunConfig,
    stats: &Aggregator,
    now: &Snapshot,
    history: &History,
    can_edit_users: bool,
    warning: Option<&str>,
) -> View {
    let defaults = StartForm {
        users: Some(cfg.max_users()),
        spawn_rate: match cfg.scenarios.as_slice() {
            [ScenarioConfig { executor: Executor::Users { spawn_rate, .. }, .. }] => Some(*spawn_rate),
            _ => None,
        },
        host: cfg.host.as_ref().map(|h| h.as_str().to_owned()),
        run_time: cfg.run_time.map(|t| show_duration(t).to_string()),
    };
    let page = PageStats {
        state,
        host: defaults.host.as_deref(),
        defaults: &defaults,
        can_edit_users,
        warning,
        snapshot: now,
        history,
    };
    View {
        stats: page.to_json().into(),
        metrics: prometheus::render(stats, now, cfg.max_users()).into(),
        finished: None,
    }
}

/// A report of the run so far, for the page's downloads.
pub(crate) fn render_report(
    report: Report,
    cfg: &RunConfig,
    stats: &Aggregator,
    now: &Snapshot,
    history: &History,
    users_failed: u64,
    usage: RunnerUsage,
) -> Result<String, String> {
    let info = run_info(cfg, false, users_failed, usage);
    let (verdicts, _) = thresholds::evaluate_all(&cfg.thresholds, stats);
    let text = match report {
        Report::Json => json::render(&info, now, &verdicts),
        Report::Html => html::render(&info, now, &verdicts, history),
        Report::StatsCsv => csv_text(|out| crate::output::csv::write_stats(out, now)),
        Report::FailuresCsv => csv_text(|out| crate::output::csv::write_failures(out, now)),
    };
    text.map_err(|e| format!("{e:#}"))
}

fn csv_text(write: impl FnOnce(&mut Vec<u8>) -> anyhow::Result<()>) -> anyhow::Result<String> {
    let mut out = Vec::new();
    write(&mut out)?;
    String::from_utf8(out).context("the CSV is not UTF-8")
}

/// The reports of the finished run, kept for the page's downloads.
pub(crate) fn finished_reports(
    cfg: &RunConfig,
    snapshot: &Snapshot,
    verdicts: &[Verdict],
    history: &History,
    interrupted: bool,
    users_failed: u64,
    usage: RunnerUsage,
) -> FinishedReports {
    let info = run_info(cfg, interrupted, users_failed, usage);
    let or_error = |r: anyhow::Result<String>| r.unwrap_or_else(|e| format!("cannot render this report: {e:#}"));
    FinishedReports {
        json: or_error(json::render(&info, snapshot, verdicts)),
        html: or_error(html::render(&info, snapshot, verdicts, history)),
        stats_csv: or_error(csv_text(|out| crate::output::csv::write_stats(out, snapshot))),
        failures_csv: or_error(csv_text(|out| crate::output::csv::write_failures(out, snapshot))),
    }
}
