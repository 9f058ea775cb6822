//! k6's executors against a recording server: arrival rates start iterations on schedule
//! (and count the ones they must drop), latency corrected for coordinated omission shows a
//! server stall that the plain latency hides, ramping VUs follow their stages, and shared
//! iterations are shared exactly.

use std::collections::BTreeMap;
use std::time::Duration;

use e2e::{Behaviour, Runner, Server, guests};

const LIMIT: Duration = Duration::from_secs(60);

fn ms(report: &serde_json::Value, table: &str, label: &str) -> f64 {
    let rows = report["aggregated"][table].as_array().unwrap_or_else(|| panic!("no {table} in {report:#}"));
    rows.iter()
        .find(|p| p[0] == label)
        .and_then(|p| p[1].as_f64())
        .unwrap_or_else(|| panic!("no {label} in {table}: {rows:?}"))
}

#[test]
fn a_constant_arrival_rate_starts_iterations_on_schedule() {
    let server = Server::start();
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .args(&["--arrival-rate", "200/s", "-u", "10", "-t", "3s"])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(run.stderr.contains("constant-arrival-rate"), "{}", run.stderr);
    let report = run.report();
    assert_eq!(report["run"]["executor"], "constant-arrival-rate");
    // 3 s at 200/s is 600 iterations; the schedule starts a few ms after the run's clock
    // (once the pre-allocated VUs are up), so a few may fall after the deadline.
    let hits = server.hits();
    let total = hits.len() as u64;
    assert_eq!(total, run.requests(), "the server saw every request the runner counted");
    assert!((580..=601).contains(&total), "{total} requests for 600 due");
    assert_eq!(report["dropped_iterations"], 0, "10 VUs keep up with 200/s of fast requests");
    // Spread evenly: every 500 ms window after the first gets 100 ± 10 requests.
    let first = hits.iter().map(|h| h.at).min().expect("hits");
    let mut windows: BTreeMap<u128, u64> = BTreeMap::new();
    for hit in &hits {
        *windows.entry((hit.at - first).as_millis() / 500).or_default() += 1;
    }
    for (window, count) in windows.iter().filter(|(w, _)| **w < 5) {
        assert!((90..=110).contains(count), "window {window}: {count} requests (expected 100): {windows:?}");
    }
    // Open-model runs report corrected percentiles too; with no stall they stay close.
    assert!(ms(report, "corrected_percentiles", "99%") < 100.0, "{:#}", report["aggregated"]);
    assert!(run.stdout.contains("Corrected for coordinated omission"), "{}", run.stdout);
}

#[test]
fn iterations_that_find_every_vu_busy_are_dropped_and_counted() {
    let server = Server::start();
    // One VU, each iteration 100 ms: it can run about 10 of the 100 due per second.
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_TASKS", "slow:1:/delay/100")
        .args(&["--arrival-rate", "100/s", "-u", "1", "--max-vus", "1", "-t", "2s"])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let report = run.report();
    let ran = report["iterations"].as_u64().expect("iterations");
    let dropped = report["dropped_iterations"].as_u64().expect("dropped_iterations");
    assert_eq!(server.count("/delay/100"), ran, "one request per iteration run");
    assert!((15..=25).contains(&ran), "{ran} iterations ran");
    assert!((185..=201).contains(&(ran + dropped)), "{ran} ran + {dropped} dropped of 200 due");
    assert!(run.stdout.contains(&format!("{dropped} dropped")), "{}", run.stdout);
}

#[test]
fn more_vus_are_started_up_to_max_vus_when_all_are_busy() {
    let server = Server::start();
    // 100/s of 100 ms iterations needs about 10 VUs; 2 are started first, up to 20 allowed.
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_TASKS", "slow:1:/delay/100")
        .args(&["--arrival-rate", "100/s", "-u", "2", "--max-vus", "20", "-t", "2s"])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let report = run.report();
    assert_eq!(report["dropped_iterations"], 0, "{:#}", report);
    let vus = server.vus();
    assert!((9..=20).contains(&vus.len()), "{} VUs used: {vus:?}", vus.len());
    assert!(vus.iter().all(|&vu| (1..=20).contains(&vu)), "{vus:?}");
}

#[test]
fn a_server_stall_shows_in_the_corrected_latency_only() {
    // Two VUs at 100 iterations/s of fast requests; the server stalls for 1 s once. Both
    // VUs wait out the stall (2 slow requests of about 400), while the ~100 iterations due
    // meanwhile queue (--max-delay) and start late: measured from their scheduled start,
    // as wrk2 does, their latency shows the stall.
    let server = Server::with(Behaviour {
        stall: Some((Duration::from_millis(1500), Duration::from_secs(1))),
        ..Behaviour::default()
    });
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .args(&["--arrival-rate", "100/s", "-u", "2", "--max-vus", "2", "--max-delay", "5s", "-t", "4s"])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let report = run.report();
    let uncorrected = ms(report, "percentiles", "99%");
    let corrected = ms(report, "corrected_percentiles", "99%");
    assert!(uncorrected < 100.0, "uncorrected p99 {uncorrected} ms hides the stall");
    assert!(corrected > 700.0, "corrected p99 {corrected} ms shows the 1 s stall");
    assert_eq!(report["dropped_iterations"], 0, "every iteration waited for a VU");
    assert_eq!(server.total(), run.requests());
    assert!(run.requests() >= 380, "{} of about 400 iterations ran", run.requests());
}

#[test]
fn ramping_vus_follow_their_stages_and_leave_gracefully() {
    let server = Server::start();
    // 0 -> 4 VUs over 1 s, 4 for 1 s, 4 -> 0 over 1 s.
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_WAIT", "constant:50")
        .env("PROBE_STOP_PATH", "/bye")
        .args(&["--stages", "4:1s,4:1s,0:1s"])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(run.report()["run"]["executor"], "ramping-vus");
    let mut seen: BTreeMap<u32, (Duration, Duration)> = BTreeMap::new();
    let hits = server.hits();
    let start = hits.iter().map(|h| h.at).min().expect("hits");
    for hit in hits.iter().filter(|h| h.path == "/") {
        let at = hit.at - start;
        let span = seen.entry(hit.vu.expect("x-vu")).or_insert((at, at));
        span.1 = at;
    }
    assert_eq!(seen.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3, 4], "VU ids stay within the peak");
    // VU k joins when the ramp passes k - 0.5 (at (k - 0.5) / 4 s, counted from VU 1 at
    // 0.125 s) and leaves when it falls below k - 0.5 again (2 s + (4.5 - k) / 4 s).
    for (vu, (first, last)) in &seen {
        let k = f64::from(*vu);
        let joins = (k - 0.5) / 4.0 - 0.125;
        let leaves = 2.0 + (4.5 - k) / 4.0 - 0.125;
        assert!((first.as_secs_f64() - joins).abs() < 0.2, "VU {vu} joined at {first:?}, expected {joins:.2}s");
        assert!((last.as_secs_f64() - leaves).abs() < 0.2, "VU {vu} left at {last:?}, expected {leaves:.2}s");
    }
    assert_eq!(server.count("/bye"), 4, "every VU ran on_stop when it left");
}

#[test]
fn shared_iterations_are_shared_exactly() {
    let server = Server::start();
    let run = Runner::run(guests::PROBE).host(&server).args(&["-u", "5", "--shared-iterations", "37"]).finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(server.count("/"), 37);
    assert_eq!(run.report()["iterations"], 37);
    assert_eq!(run.report()["run"]["executor"], "shared-iterations");
    let vus = server.vus();
    assert!(vus.len() > 1, "the iterations were shared: {vus:?}");
}

#[test]
fn conflicting_or_malformed_load_flags_are_refused_before_the_run() {
    for (args, says) in [
        (&["--stages", "10"][..], "is not a stage like"),
        (&["--arrival-rate", "fast"][..], "is not an arrival rate"),
        (&["--max-vus", "5"][..], "--arrival-rate"),
        (&["--arrival-rate", "10/s", "--iterations", "3"][..], "cannot be used with"),
        (&["--shared-iterations", "3", "--stages", "1:1s"][..], "cannot be used with"),
    ] {
        let run = Runner::run(guests::PROBE).args(args).finish(LIMIT);
        assert_eq!(run.code(), 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn setup_runs_once_before_the_users_and_teardown_once_after() {
    let server = Server::start();
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_SETUP", "/setup")
        .env("PROBE_TEARDOWN", "/teardown")
        .args(&["-u", "3", "-r", "100", "--iterations", "4"])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let hits = server.hits();
    assert_eq!(hits.first().map(|h| h.path.as_str()), Some("/setup"), "setup comes first");
    assert_eq!(hits.last().map(|h| h.path.as_str()), Some("/teardown"), "teardown comes last");
    assert_eq!((server.count("/setup"), server.count("/teardown"), server.count("/")), (1, 1, 12));
    for hit in hits.iter().filter(|h| h.path != "/setup") {
        assert_eq!(hit.headers.get("x-setup").map(String::as_str), Some("token-200"), "{hit:?}");
    }
    // Their requests count like any other.
    assert_eq!(run.requests(), 14);
}

#[test]
fn a_failing_setup_stops_the_run_before_any_user_starts() {
    let server = Server::start();
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_SETUP_FAIL", "1")
        .args(&["-u", "3", "--iterations", "4"])
        .finish(LIMIT);
    assert_eq!(run.code(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("error: the scenario's setup failed, so no user was started: no test data"),
        "{}",
        run.stderr
    );
    assert_eq!(server.total(), 0);
}

#[test]
fn a_load_shape_in_the_plan_moves_users_at_its_spawn_rates() {
    let server = Server::start();
    // 4 users at 8/s until 1 s, then down to 1 user at 10/s until 2 s; then the run ends.
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_SHAPE", "1000:4:8;2000:1:10")
        .env("PROBE_WAIT", "constant:50")
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(run.report()["run"]["executor"], "load-shape");
    let hits = server.hits();
    let start = hits.iter().map(|h| h.at).min().expect("hits");
    let mut last_seen: BTreeMap<u32, Duration> = BTreeMap::new();
    for hit in &hits {
        last_seen.insert(hit.vu.expect("x-vu"), hit.at - start);
    }
    assert_eq!(last_seen.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    // Down from 4 at 10/s from 1 s: VU 4 leaves at about 1.05 s, VU 2 at about 1.25 s.
    for vu in 2..=4 {
        let left = last_seen[&vu].as_secs_f64();
        assert!((0.9..1.5).contains(&left), "VU {vu} last seen at {left:.2}s");
    }
    assert!(last_seen[&1].as_secs_f64() > 1.7, "VU 1 stays to the end: {:?}", last_seen[&1]);
}

#[test]
fn an_arrival_rate_in_the_plan_is_used_unless_load_flags_replace_it() {
    let server = Server::start();
    let run = Runner::run(guests::PROBE).host(&server).env("PROBE_ARRIVAL", "50").args(&["-t", "2s"]).finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(run.report()["run"]["executor"], "constant-arrival-rate");
    assert!((95..=101).contains(&server.total()), "{} requests at 50/s for 2 s", server.total());

    let server = Server::start();
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_ARRIVAL", "50")
        .args(&["-u", "2", "--iterations", "3"])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(run.report()["run"]["executor"], "per-vu-iterations");
    assert_eq!(server.total(), 6);
}

#[test]
fn scenarios_run_side_by_side_with_their_own_tasks_start_and_end() {
    let server = Server::start();
    // `browsers` runs / with 2 users for 2 s; `buyers` runs /buy with 1 user from 1 s for 1 s.
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_TASKS", "browse:1:/,buy:1:/buy")
        .env("PROBE_WAIT", "constant:50")
        .env("PROBE_SCENARIOS", "browsers:browse:0:2000:2;buyers:buy:1000:1000:1")
        .args(&[
            "--threshold",
            "http_reqs{scenario:buyers}:count>5",
            "--threshold",
            "iterations{scenario:browsers}:count>20",
        ])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.report();
    assert_eq!(report["run"]["executor"], "scenarios");
    let hits = server.hits();
    let start = hits.iter().map(|h| h.at).min().expect("hits");
    let span = |path: &str| {
        let times: Vec<f64> = hits.iter().filter(|h| h.path == path).map(|h| (h.at - start).as_secs_f64()).collect();
        (times.iter().copied().fold(f64::MAX, f64::min), times.iter().copied().fold(0.0, f64::max))
    };
    let (first_buy, last_buy) = span("/buy");
    let (_, last_browse) = span("/");
    assert!((0.9..1.3).contains(&first_buy), "buyers started at {first_buy:.2}s");
    assert!((1.8..2.3).contains(&last_buy), "buyers ended at {last_buy:.2}s");
    assert!((1.8..2.3).contains(&last_browse), "browsers ended at {last_browse:.2}s");
    let buyers: Vec<u32> = hits.iter().filter(|h| h.path == "/buy").filter_map(|h| h.vu).collect();
    assert!(buyers.iter().all(|&vu| vu == 1), "one buyer: {buyers:?}");
    // Per-scenario rows agree with what the server saw.
    let rows = report["scenarios"].as_array().expect("scenarios");
    let row = |name: &str| rows.iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("{name}: {rows:?}"));
    assert_eq!(row("buyers")["requests"]["requests"].as_u64(), Some(server.count("/buy")));
    assert_eq!(row("browsers")["requests"]["requests"].as_u64(), Some(server.count("/")));
    assert!(run.stdout.contains("Scenarios"), "{}", run.stdout);
    assert!(run.stderr.contains("scenario `buyers`: constant-vus (1 users), from 1s for 1s"), "{}", run.stderr);
}

#[test]
fn a_scenario_with_a_start_time_spawns_its_users_at_its_rate_from_that_start() {
    let server = Server::start();
    // `late` starts 4 users at 4/s from 1 s: its first requests at about 1.0, 1.25, 1.5 and
    // 1.75 s, each user's only one in the run (a 10 s wait follows).
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_TASKS", "early:1:/early,late:1:/late")
        .env("PROBE_WAIT", "constant:10000")
        .env("PROBE_SCENARIOS", "early:early:0:2500:1;late:late:1000:1500:4")
        .args(&["-r", "4"])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout, run.stderr);
    let hits = server.hits();
    let start = hits.iter().find(|h| h.path == "/early").expect("the early user's request").at;
    let mut late: Vec<f64> = hits.iter().filter(|h| h.path == "/late").map(|h| (h.at - start).as_secs_f64()).collect();
    late.sort_by(f64::total_cmp);
    assert_eq!(late.len(), 4, "{late:?}");
    assert!((0.9..1.3).contains(&late[0]), "the first late user at {:.2}s", late[0]);
    // Spread over 0.75 s, not all at once because 1 s had passed since the run began.
    assert!((0.6..1.2).contains(&(late[3] - late[0])), "late users at {late:?}");
    let spawned = run
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("Scenario `late`: All users spawned: 4 running, "))
        .and_then(|rest| rest.strip_suffix(" s after the first"))
        .and_then(|secs| secs.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no spawn line for `late`: {}", run.stderr));
    assert!((0.6..1.0).contains(&spawned), "counted from the scenario's own start: {spawned} s");
}
