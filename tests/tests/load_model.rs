//! The Locust load model: users reached at the spawn rate, wait times, `--iterations`, the
//! run time, and stopping on Ctrl-C or the stop timeout with the summary still written.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use e2e::{Runner, Server, collect, guests, interrupt, smaps};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn users_start_at_the_spawn_rate_until_the_peak() {
    let server = Server::start();
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_WAIT", "constant:100")
        .args(&["-u", "10", "-r", "5", "-t", "3s"])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let mut first_seen: BTreeMap<u32, Duration> = BTreeMap::new();
    for hit in server.hits() {
        if let Some(vu) = hit.vu {
            first_seen.entry(vu).or_insert(hit.at);
        }
    }
    assert_eq!(first_seen.keys().copied().collect::<Vec<_>>(), (1..=10).collect::<Vec<_>>());
    // At 5 users/s, user k starts (k-1)/5 s after user 1.
    let start = first_seen[&1];
    for (vu, at) in &first_seen {
        let offset = at.saturating_sub(start).as_secs_f64();
        let expected = f64::from(vu - 1) / 5.0;
        assert!((offset - expected).abs() < 0.25, "VU {vu} started at {offset:.3}s, expected {expected:.1}s");
    }
}

#[test]
fn users_not_started_when_the_run_ends_are_not_started() {
    let server = Server::start();
    // 50 users at 5/s would take 10 s; the run ends after 2 s, when about 10 have started.
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_WAIT", "constant:100")
        .args(&["-u", "50", "-r", "5", "-t", "2s", "--stop-timeout", "1s"])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let vus = server.vus();
    assert!((8..=13).contains(&vus.len()), "VUs that sent requests: {vus:?}");
    assert!(!run.stderr.contains("All users spawned"), "{}", run.stderr);
}

#[test]
fn constant_wait_spaces_each_users_tasks() {
    let server = Server::start();
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_WAIT", "constant:200")
        .args(&["-u", "1", "--iterations", "6"])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_gaps(&server, 6, Duration::from_millis(195)..Duration::from_millis(400));
}

#[test]
fn users_waiting_a_second_keep_their_host_stacks() {
    // A wait of 1 s releases the VU's connection read buffer (each later task reads into one
    // another VU of the thread may have used before, which the probe's checks cover) but not
    // its host stack (`limits::RELEASE_BUFFERS_BEFORE_WAIT`).
    let released = users_release_during_waits_and_keep_working(1000);
    assert_eq!(released, 0, "host stacks given back during 1 s waits");
}

#[test]
fn users_that_give_their_stack_back_during_long_waits_keep_working() {
    // A wait of 3 s also releases the VU's host stack: each later task runs on fresh stack
    // pages (`limits::RELEASE_STACK_BEFORE_WAIT`).
    let released = users_release_during_waits_and_keep_working(3000);
    assert_eq!(released, VUS, "host stacks given back during 3 s waits");
}

const VUS: usize = 8;

/// Runs `VUS` probe VUs that log in, then run two tasks `wait_ms` apart, checking every status
/// and body, the cookie jar and the gaps. Returns how many VU host stacks held no resident
/// page while the VUs waited (`released_stacks`).
fn users_release_during_waits_and_keep_working(wait_ms: u64) -> usize {
    let server = Server::start();
    let (child, json) = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_WAIT", &format!("constant:{wait_ms}"))
        .env("PROBE_LOGIN", "1")
        .env("PROBE_METRICS", "1")
        .args(&["-u", &VUS.to_string(), "-r", "100", "--iterations", "2"])
        .spawn();
    let deadline = Instant::now() + LIMIT;
    while server.count("/") < VUS as u64 {
        assert!(Instant::now() < deadline, "the VUs' first tasks did not finish");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Every VU has finished its first task (the last 10 ms ago at most) and waits.
    std::thread::sleep(Duration::from_millis(300));
    let released = released_stacks(child.id());
    let run = collect(child, json, LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let report = run.report();
    assert_eq!(report["aggregated"]["requests"], VUS * 3, "{}", run.stdout);
    assert_eq!(report["aggregated"]["failures"], 0, "{}", run.stdout);
    let checks = report["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), 2, "status and body checks: {checks:?}");
    for check in checks {
        assert_eq!((check["passes"].as_u64(), check["fails"].as_u64()), (Some(VUS as u64 * 2), Some(0)), "{check}");
    }
    let mut per_vu: BTreeMap<u32, Vec<Duration>> = BTreeMap::new();
    for hit in server.hits().into_iter().filter(|h| h.path == "/") {
        let vu = hit.vu.expect("x-vu header");
        // The jar filled in `on_start` survives every release.
        assert_eq!(hit.cookie.as_deref(), Some(format!("session=vu-{vu}").as_str()));
        per_vu.entry(vu).or_default().push(hit.at);
    }
    assert_eq!(per_vu.len(), VUS);
    let wait = Duration::from_millis(wait_ms);
    for (vu, times) in &per_vu {
        assert_eq!(times.len(), 2, "VU {vu}");
        let gap = times[1] - times[0];
        assert!(gap >= wait - Duration::from_millis(10) && gap < wait + Duration::from_secs(1), "VU {vu}: gap {gap:?}");
    }
    released
}

/// How many host stacks of VUs in process `pid` hold no resident page, from
/// `/proc/PID/smaps` and `/proc/PID/pagemap`: a read-write anonymous mapping of 2 MiB right
/// after a one-page inaccessible one (its guard; `plan::stacks`), or the first 2 MiB of a
/// mapping of the plan's memory image after an inaccessible one (the room below the VU's
/// memory, `plan::memories`). Threads' own stacks look alike but are in use, so always hold
/// pages.
fn released_stacks(pid: u32) -> usize {
    const STACK: u64 = 2 << 20;
    let pagemap = std::fs::File::open(format!("/proc/{pid}/pagemap")).expect("open pagemap");
    // Whether no page of `[start, start + STACK)` is resident (bit 63 of each entry).
    let none_present = |start: u64| {
        let mut entries = vec![0u8; (STACK / 4096 * 8) as usize];
        std::os::unix::fs::FileExt::read_exact_at(&pagemap, &mut entries, start / 4096 * 8).expect("read pagemap");
        entries.chunks_exact(8).all(|e| u64::from_ne_bytes(e.try_into().expect("8 bytes")) >> 63 == 0)
    };
    smaps(pid)
        .windows(2)
        .filter(|pair| pair[0].perms.starts_with("---") && pair[1].perms.starts_with("rw"))
        .filter(|pair| {
            let stack = &pair[1];
            if stack.path.is_empty() {
                // A stack mapped on its own: a guard page, then the stack.
                pair[0].size == 4096 && stack.size == STACK && stack.rss_kib == 0
            } else {
                // A stack in the room below its VU's memory: after a guard, the first 2 MiB of
                // the mapping of the plan's memory image, the memory after it.
                stack.path.contains("wasmload-memory-image") && stack.size > STACK && none_present(stack.start)
            }
        })
        .count()
}

#[test]
fn constant_pacing_keeps_task_starts_apart_whatever_the_task_takes() {
    let server = Server::start();
    // Each task takes ~100 ms (host sleep after its request); pacing 300 ms leaves ~200 ms
    // of wait. A constant 300 ms wait would space the requests 400 ms apart; the range leaves
    // room for a few tens of ms of scheduling delay on a loaded machine (CI).
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_WAIT", "pacing:300")
        .env("PROBE_SLEEP_MS", "100")
        .args(&["-u", "1", "--iterations", "5"])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_gaps(&server, 5, Duration::from_millis(270)..Duration::from_millis(360));
}

/// The server saw `count` requests, each arriving within `range` of the one before.
fn assert_gaps(server: &Server, count: usize, range: std::ops::Range<Duration>) {
    let times: Vec<Duration> = server.hits().iter().map(|h| h.at).collect();
    assert_eq!(times.len(), count);
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(range.contains(&gap), "gap {gap:?} outside {range:?}");
    }
}

#[test]
fn iterations_stop_each_user_after_exactly_n_tasks() {
    let server = Server::start();
    let started = Instant::now();
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_STOP_PATH", "/bye")
        .args(&["-u", "3", "-r", "100", "--iterations", "7"])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(server.count("/"), 21);
    assert_eq!(server.count("/bye"), 3, "on_stop runs once per user");
    assert_eq!(run.report()["iterations"], 21);
    assert_eq!(run.requests(), 24);
    assert!(started.elapsed() < Duration::from_secs(10), "the run ends when the users are done");
}

#[test]
fn run_time_bounds_the_test() {
    let server = Server::start();
    let started = Instant::now();
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_WAIT", "constant:50")
        .args(&["-u", "2", "-t", "2s"])
        .finish(LIMIT);
    let took = started.elapsed();
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(6), "took {took:?}");
    assert_eq!(run.requests(), server.total());
    assert!(server.total() > 20, "requests flowed: {}", server.total());
}

#[test]
fn ctrl_c_stops_gracefully_and_still_writes_the_summary_and_report() {
    let server = Server::start();
    let (child, json) = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_WAIT", "constant:20")
        .env("PROBE_STOP_PATH", "/bye")
        .args(&["-u", "5", "-r", "100"])
        .spawn();
    // Wait until the users are clearly running, then press Ctrl-C.
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.count("/") < 50 {
        assert!(Instant::now() < deadline, "no traffic; server saw {:?}", server.counts());
        std::thread::sleep(Duration::from_millis(20));
    }
    interrupt(&child);
    let run = collect(child, json, Duration::from_secs(20));
    assert_eq!(run.code(), 130, "{}", run.stderr);
    assert!(run.stdout.contains("Aggregated"), "summary printed: {}", run.stdout);
    assert_eq!(run.report()["run"]["interrupted"], true);
    assert_eq!(server.count("/bye"), 5, "every user ran on_stop");
    assert_eq!(run.requests(), server.total(), "nothing measured is lost");
}

#[test]
fn the_stop_timeout_interrupts_tasks_that_do_not_finish() {
    let server = Server::start();
    let started = Instant::now();
    // Each task sleeps 30 s after its request; the run lasts 1 s and allows 1 s to stop.
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_SLEEP_MS", "30000")
        .args(&["-u", "3", "-r", "100", "-t", "1s", "--stop-timeout", "1s"])
        .finish(LIMIT);
    let took = started.elapsed();
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(took < Duration::from_secs(6), "took {took:?}");
    assert_eq!(server.total(), 3);
    assert_eq!(run.requests(), 3, "requests finished before the interruption are kept");
    assert!(run.stderr.contains("Stop timeout"), "{}", run.stderr);
}

#[test]
fn constant_throughput_caps_each_users_task_rate() {
    let server = Server::start();
    // Locust's constant_throughput(5): at most 5 tasks per second, so starts 200 ms apart.
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_WAIT", "throughput:5")
        .args(&["-u", "1", "--iterations", "5"])
        .finish(LIMIT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_gaps(&server, 5, Duration::from_millis(195)..Duration::from_millis(300));
}
