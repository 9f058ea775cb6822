//! One run from start to end: load the plan, resolve the settings, start the VUs, show
//! live progress, stop on time or on Ctrl-C (gracefully, then by force after the stop
//! timeout), and always print the summary and write the reports with what was measured.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::cli::SummaryStyle;
use crate::client::HttpShared;
use crate::config::{Requested, RunConfig, ScenarioConfig, show_duration};
use crate::host::HostShared;
use crate::load::{self, Executor, LiveTarget, Phase, Population, VuContext, sleep_until_opt};
use crate::output::csv::CsvReports;
use crate::output::history::History;
use crate::output::monitor::{Monitor, RunnerUsage};
use crate::output::{console, html, json, k6, starting, summary};
use crate::plan::{self, Layout};
use crate::policy::Policy;
use crate::stats::{Aggregator, Snapshot};
use crate::thresholds::{self, Verdict};
use crate::web::{Command, Web, finished_reports, next_command, render_report, view, wait_for_start};

/// How often statistics are merged and the status line redrawn.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// Exit code of a run stopped by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: i32 = 130;

/// What a finished run measured.
#[derive(Debug)]
pub struct RunOutcome {
    pub snapshot: Snapshot,
    pub interrupted: bool,
    /// The process exit code this outcome calls for.
    pub exit_code: i32,
}

/// Runs the plan as `requested`.
pub async fn run(mut requested: Requested) -> anyhow::Result<RunOutcome> {
    let policy = match &requested.policy {
        Some(path) => Policy::load(path)?,
        None => Policy::none(),
    };
    if crate::limits::limits_off_for_benchmark() {
        if requested.policy.is_some() {
            anyhow::bail!("WASMLOAD_BENCH_NO_LIMITS=1 turns the guest limits off, so it cannot run under --policy");
        }
        console::line(
            "Warning: WASMLOAD_BENCH_NO_LIMITS=1: guests run without CPU or memory limits (for measuring their cost only)",
        );
    }
    crate::open_files::raise();
    let bytes = plan::read(&requested.plan_path)?;
    let data = plan::image::read(&bytes);
    let layout = Layout::for_plan(requested.load.peak_users(), data.as_ref().map(|d| d.bytes));
    for note in layout.notes() {
        console::line(&note);
    }
    let probe_shared = HostShared {
        // `describe` only declares the plan: it may not send anything.
        http: Arc::new(HttpShared::describe_only()?),
        env: requested.env.clone().into(),
        limits: requested.limits,
        setup_data: None,
    };
    let engine = plan::engine(layout, bytes.len() as u64, data.and_then(|d| d.image).as_deref())?;
    let _ticker = crate::epoch::EpochTicker::start(engine.engine.clone());
    let loaded = Arc::new(plan::load(&requested.plan_path, &bytes, engine, layout, &probe_shared).await?);
    drop(bytes);
    release_compiler_memory();
    let mut web = match requested.web {
        Some(settings) => Some(Web::start(settings.addr).await?),
        None => None,
    };
    let autostart = requested.web.is_none_or(|w| w.autostart);
    if let Some(web) = &mut web {
        let waiting = if autostart { "" } else { ": start the test there (Ctrl-C quits)" };
        console::line(&format!("Web UI on {}{waiting}", web.url()));
        if !autostart {
            match wait_for_start(web, &requested, &loaded.plan).await? {
                Some(start) => {
                    requested.load.users = Some(start.users);
                    requested.load.spawn_rate = Some(start.spawn_rate);
                    requested.load.run_time = start.run_time;
                    if start.host.is_some() {
                        requested.host = start.host;
                    }
                }
                None => return Ok(RunOutcome::not_started()),
            }
        }
    }
    let mut cfg = requested.resolve(&loaded.plan)?;
    policy.enforce(&mut cfg).map_err(|why| anyhow::anyhow!("the run was refused: {why}"))?;
    cfg.limits.host.apply_to_process();
    let network = policy.network(cfg.host.as_ref().map(|h| h.origin()), &cfg.allow_hosts);
    // Created now so that an unwritable prefix stops the run before it starts.
    let mut csv = match &cfg.output.csv {
        Some(prefix) => Some(CsvReports::create(prefix, cfg.output.csv_full_history)?),
        None => None,
    };
    let mut csv_history = csv.is_some();
    let mut history = History::default();
    let mut monitor = Monitor::new();
    warn_about_capacity(cfg.max_users(), layout);
    crate::open_files::warn_if_short(cfg.max_users());

    let (mut aggregator, recorder) = Aggregator::new();
    let mut shared = HostShared {
        http: Arc::new(HttpShared::new(
            cfg.host.clone(),
            cfg.insecure,
            network,
            cfg.timeouts,
            policy.max_request_rate,
            cfg.limits.host,
        )?),
        env: cfg.env.clone().into(),
        limits: cfg.limits,
        setup_data: None,
    };
    shared.setup_data = load::hooks::setup(&loaded, &shared, recorder.clone())
        .await
        .map_err(|why| anyhow::anyhow!("the scenario's setup failed, so no user was started: {why}"))?
        .map(Arc::from);
    let shared = Arc::new(shared);
    let population = Arc::new(Population::default());
    let named = cfg.scenarios.len() > 1;
    // The page may change the users of a single constant-VUs scenario (Locust's "edit users").
    let live_users = match cfg.scenarios.as_slice() {
        [ScenarioConfig { executor: Executor::Users { users, spawn_rate, iterations: None }, .. }] if web.is_some() => {
            Some(watch::channel(LiveTarget { users: *users, spawn_rate: *spawn_rate }))
        }
        _ => None,
    };
    let scenarios: Vec<_> = cfg
        .scenarios
        .iter()
        .map(|s| {
            let mut context =
                VuContext::new(loaded.clone(), shared.clone(), recorder.clone(), population.clone(), s, named);
            if let Some((_, target)) = &live_users {
                context = context.with_live_users(target.clone());
            }
            (Arc::new(context), s.clone())
        })
        .collect();
    let (phase_tx, phase_rx) = watch::channel(Phase::Running);

    for line in starting::describe(&cfg, &loaded.plan.tasks) {
        console::line(&line);
    }
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot install the Ctrl-C handler")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    aggregator.start_clock();
    let started = Instant::now();
    let deadline = cfg.run_time.map(|t| started + t);
    let mut kill_at: Option<Instant> = None;
    let mut interrupted = false;
    let mut ticker = tokio::time::interval(REPORT_INTERVAL);
    ticker.tick().await;
    let workers = Arc::new(load::Workers::start().context("cannot start the VU worker threads")?);
    let mut load = tokio::spawn(load::run_scenarios(scenarios, phase_rx, workers.clone(), cfg.stop_timeout));

    let stop = |phase_tx: &watch::Sender<Phase>, kill_at: &mut Option<Instant>| {
        if *phase_tx.borrow() == Phase::Running {
            phase_tx.send_replace(Phase::Stopping);
            *kill_at = Some(Instant::now() + cfg.stop_timeout);
        }
    };
    loop {
        let phase = *phase_tx.borrow();
        tokio::select! {
            _ = &mut load => break,
            _ = ticker.tick() => {
                aggregator.collect();
                if phase == Phase::Running && let Some(crossed) = crossed_abort_threshold(&cfg, &aggregator, started.elapsed()) {
                    console::line(&format!("Threshold `{crossed}` failed (abortOnFail): stopping the run"));
                    stop(&phase_tx, &mut kill_at);
                }
                let now = aggregator.snapshot(population.running());
                history.record(&now);
                if let Some(warning) = monitor.sample() {
                    console::line(&format!("Warning: {warning}"));
                }
                if let Some(web) = &web {
                    let state = if phase == Phase::Running { "running" } else { "stopping" };
                    let warning = monitor.warning();
                    web.publish(view(state, &cfg, &aggregator, &now, &history, live_users.is_some(), warning.as_deref()));
                }
                if !cfg.output.quiet {
                    console::status(&status_line(&now, &cfg, phase));
                }
                if csv_history
                    && let Some(reports) = &mut csv
                    && let Err(e) = reports.append_history(&now)
                {
                    console::line(&format!("Warning: the CSV history can no longer be written ({e:#})"));
                    csv_history = false;
                }
            }
            _ = sleep_until_opt(deadline), if phase == Phase::Running => stop(&phase_tx, &mut kill_at),
            _ = sleep_until_opt(kill_at), if phase == Phase::Stopping => {
                console::line(&format!("Stop timeout ({}) reached: interrupting the VUs still running a task", show_duration(cfg.stop_timeout)));
                phase_tx.send_replace(Phase::Killed);
            }
            command = next_command(&mut web) => match command {
                Command::Users { users, spawn_rate } => {
                    if let Some((target, _)) = &live_users {
                        let rate = if spawn_rate.is_finite() { spawn_rate } else { target.borrow().spawn_rate };
                        target.send_replace(LiveTarget { users, spawn_rate: rate });
                        console::line(&format!("Web UI: moving to {users} users at {rate}/s"));
                    }
                }
                Command::Stop => {
                    console::line("Web UI: stopping the test");
                    stop(&phase_tx, &mut kill_at);
                }
                Command::Reset => {
                    aggregator.reset();
                    history = History::default();
                    console::line("Web UI: statistics reset");
                }
                Command::Report(report, reply) => {
                    let now = aggregator.snapshot(population.running());
                    let usage = monitor.usage();
                    let _ = reply.send(render_report(report, &cfg, &aggregator, &now, &history, population.failed(), usage));
                }
                Command::Start(_) => {}
            },
            _ = first(&mut interrupt, &mut terminate) => {
                interrupted = true;
                if phase == Phase::Running {
                    console::line("Stopping: VUs finish their current task (press Ctrl-C again to stop at once)");
                    stop(&phase_tx, &mut kill_at);
                } else {
                    phase_tx.send_replace(Phase::Killed);
                }
            }
        }
    }
    if *phase_tx.borrow() != Phase::Killed {
        load::hooks::teardown(&loaded, &shared, recorder, cfg.stop_timeout).await;
    }
    aggregator.collect();
    let snapshot = aggregator.snapshot(0);
    let (verdicts, thresholds_passed) = thresholds::evaluate_all(&cfg.thresholds, &aggregator);
    console::clear_status();
    let failed = population.failed();
    if failed > 0 {
        console::line(&format!(
            "Warning: {failed} of {} users could not start (see `instantiate` or `on_start` in Task errors)",
            population.started()
        ));
    }
    let usage = monitor.usage();
    let finished =
        web.as_ref().map(|_| finished_reports(&cfg, &snapshot, &verdicts, &history, interrupted, failed, usage));
    let end =
        RunEnd { verdicts: &verdicts, thresholds_passed, interrupted, users_failed: failed, history: &history, usage };
    let outcome = finish(&cfg, snapshot, &end)?;
    if let Some(reports) = &mut csv {
        reports.finish(&outcome.snapshot)?;
    }
    if let Some(web) = &web {
        let mut last = view("stopped", &cfg, &aggregator, &outcome.snapshot, &history, false, None);
        last.finished = finished.map(Arc::new);
        web.publish(last);
        if !autostart && !interrupted {
            console::line(&format!("The test has ended; its results stay on {} until Ctrl-C", web.url()));
            first(&mut interrupt, &mut terminate).await;
        }
    }
    Ok(outcome)
}

/// The first `abortOnFail` threshold that fails now (once its delay has passed).
fn crossed_abort_threshold(cfg: &RunConfig, stats: &Aggregator, elapsed: Duration) -> Option<String> {
    cfg.thresholds
        .iter()
        .filter(|t| t.abort_on_fail.is_some_and(|delay| elapsed >= delay))
        .map(|t| t.evaluate(stats))
        .find(|v| !v.passed)
        .map(|v| v.threshold)
}

/// Prints the summary and writes the reports.
/// How a run ended, for the summary and the reports.
struct RunEnd<'a> {
    verdicts: &'a [Verdict],
    thresholds_passed: bool,
    interrupted: bool,
    users_failed: u64,
    history: &'a History,
    usage: RunnerUsage,
}

fn finish(cfg: &RunConfig, snapshot: Snapshot, end: &RunEnd<'_>) -> anyhow::Result<RunOutcome> {
    let RunEnd { verdicts, thresholds_passed, interrupted, users_failed, history, usage } = *end;
    // Not `println!`: a closed stdout (`runner run ... | head`) must not panic the runner
    // before the reports are written.
    let mut text = match cfg.output.summary {
        SummaryStyle::Locust => {
            let mut text = summary::render(&snapshot);
            if !verdicts.is_empty() {
                text.push('\n');
                text.push_str(&summary::thresholds(verdicts));
            }
            text
        }
        SummaryStyle::K6 => k6::render(&snapshot, verdicts, cfg.max_users()),
    };
    let _ = write!(
        text,
        "\nRunner: peak CPU {:.0}% (of {} cores: {}%), {:.1} CPU seconds, peak memory {:.0} MiB\n",
        usage.peak_cpu_percent,
        usage.cores,
        usage.cores * 100,
        usage.cpu_seconds,
        usage.peak_rss_mib
    );
    let _ = writeln!(std::io::stdout().lock(), "{text}");
    if cfg.output.json.is_some() || cfg.output.html.is_some() {
        let info = run_info(cfg, interrupted, users_failed, usage);
        if let Some(path) = &cfg.output.json {
            json::write(path, &info, &snapshot, verdicts)?;
        }
        if let Some(path) = &cfg.output.html {
            html::write(path, &info, &snapshot, verdicts, history)?;
        }
    }
    let exit_code = if interrupted {
        EXIT_INTERRUPTED
    } else if !thresholds_passed {
        thresholds::EXIT_THRESHOLDS_FAILED
    } else if snapshot.aggregated.failures > 0 {
        cfg.output.exit_code_on_error
    } else {
        0
    };
    Ok(RunOutcome { snapshot, interrupted, exit_code })
}

/// The settings the reports show.
pub(crate) fn run_info(cfg: &RunConfig, interrupted: bool, users_failed: u64, runner: RunnerUsage) -> json::RunInfo {
    json::RunInfo {
        plan: cfg.plan_path.display().to_string(),
        host: cfg.host.as_ref().map(|h| h.as_str().to_owned()),
        executor: match cfg.scenarios.as_slice() {
            [only] => only.executor.name(),
            _ => "scenarios",
        },
        users: cfg.max_users(),
        spawn_rate: match cfg.scenarios.as_slice() {
            [ScenarioConfig { executor: Executor::Users { spawn_rate, .. }, .. }] => Some(*spawn_rate),
            _ => None,
        },
        run_time_s: cfg.run_time.map(|t| t.as_secs_f64()),
        iterations_per_vu: match cfg.scenarios.as_slice() {
            [ScenarioConfig { executor: Executor::Users { iterations, .. }, .. }] => *iterations,
            _ => None,
        },
        scenarios: cfg
            .scenarios
            .iter()
            .map(|s| json::ScenarioInfo {
                name: s.name.clone(),
                executor: s.executor.name(),
                max_users: s.executor.max_users(),
                start_s: s.start.as_secs_f64(),
                run_time_s: s.run_time.map(|t| t.as_secs_f64()),
            })
            .collect(),
        interrupted,
        users_failed_to_start: users_failed,
        runner,
    }
}

impl RunOutcome {
    /// A web-UI run quit before a test was started from the page.
    fn not_started() -> Self {
        Self { snapshot: Aggregator::new().0.snapshot(0), interrupted: true, exit_code: EXIT_INTERRUPTED }
    }
}

fn status_line(s: &Snapshot, cfg: &RunConfig, phase: Phase) -> String {
    let state = match phase {
        Phase::Running => "",
        Phase::Stopping => " stopping |",
        Phase::Killed => " killing |",
    };
    format!(
        "[{:>5.0}s]{state} users {}/{} | reqs {} | {:.1} req/s | fails {} ({:.1}%) | p95 {} ms{}",
        s.elapsed_s,
        s.users,
        cfg.max_users(),
        s.aggregated.requests,
        s.current_rps,
        s.aggregated.failures,
        s.aggregated.failure_ratio() * 100.0,
        summary::ms(s.current_p95_ms),
        if s.dropped_iterations > 0 { format!(" | dropped {}", s.dropped_iterations) } else { String::new() },
    )
}

/// Warns before the run when the kernel's limits leave room for fewer VUs than it may start.
fn warn_about_capacity(users: u32, layout: Layout) {
    if u64::from(users) > layout.vu_capacity().0 {
        console::line(&format!("Warning: {users} users may not all start: {}", layout.capacity_sentence()));
    }
}

pub(crate) async fn first(a: &mut tokio::signal::unix::Signal, b: &mut tokio::signal::unix::Signal) {
    tokio::select! {
        _ = a.recv() => {}
        _ = b.recv() => {}
    }
}

/// Gives the memory the compiler used and freed back to the system. Compiling a plan
/// allocates tens of MiB of short-lived data (on the compiler threads' own malloc arenas),
/// which glibc otherwise keeps for the whole run; trimming lowers the runner's base RSS.
fn release_compiler_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: `malloc_trim` only returns free heap pages to the kernel; it has no
    // preconditions and touches no memory the program still uses.
    unsafe {
        libc::malloc_trim(0);
    }
}
