//! Many users in one process: idle VUs give their linear memory back and wake with it
//! intact; more VUs than wasmtime's default 4 GiB memory reservations fit in the address
//! space start with compact reservations, and VUs the kernel's memory-map limit leaves no
//! room for fail with that limit named.

use std::time::Duration;

use e2e::{Mapping, Runner, Server, collect, guests, smaps};

/// More than the 32,005 VUs whose default reservations fit in 126 TiB.
const USERS: u64 = 33_000;

#[test]
fn more_users_than_full_reservations_allow_start_with_compact_ones_or_the_map_limit_is_named() {
    let server = Server::start();
    // Idle VUs that send nothing: one process may not open a connection for each. Starting
    // them all takes 3.8-4.3 s on the 2-core AMD machine (2 s on the Intel one before it),
    // and a run that ends first stops starting VUs: 15 s leaves room for a slower machine.
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_QUIET", "1")
        .env("PROBE_WAIT", "constant:600000")
        .args(&["-u", &USERS.to_string(), "-r", "1000000", "-t", "15s", "--stop-timeout", "1s"])
        .finish(Duration::from_secs(180));
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(run.stderr.contains("reserving 256 MiB of address space for each VU's memory"), "{}", run.stderr);
    let spawned =
        run.stderr.lines().find(|l| l.starts_with("All users spawned:")).unwrap_or_else(|| panic!("{}", run.stderr));
    let count = |word: &str| -> u64 {
        let before = spawned.split(word).next().unwrap_or_default();
        before.rsplit(|c: char| !c.is_ascii_digit()).find(|s| !s.is_empty()).map_or(0, |n| n.parse().unwrap_or(0))
    };
    let running = count(" running");
    let failed = if spawned.contains("failed to start") { count(" failed to start") } else { 0 };
    assert_eq!(running + failed, USERS, "{spawned}");

    let maps: u64 = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|m| m.trim().parse().ok())
        .unwrap_or(65_530);
    if maps >= USERS * 7 + 1_000 {
        assert_eq!(failed, 0, "{spawned}");
    } else {
        // VUs whose memories map the plan's image, their host stacks in the room below,
        // fit about (maps - 200) / 3; the rest are refused, by the runner or the kernel, and
        // every refusal names the limit. Carving stacks or copying the image would fit no
        // more, so neither is done.
        assert!(!run.stderr.contains("carving VU stacks"), "{}", run.stderr);
        assert!(!run.stderr.contains("copying memory images"), "{}", run.stderr);
        assert!(running >= (maps - 200) / 3 * 9 / 10, "{spawned} with vm.max_map_count {maps}");
        let errors = run.report()["task_errors"].as_array().cloned().unwrap_or_default();
        let named: u64 = errors
            .iter()
            .filter(|e| {
                let text = e["error"].as_str().unwrap_or_default();
                text.contains("cannot create a VU") && text.contains(&format!("vm.max_map_count is {maps}"))
            })
            .map(|e| e["occurrences"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(named, failed, "{:#}", run.report()["task_errors"]);
        assert!(run.stderr.contains("may not all start"), "{}", run.stderr);
    }
    assert_eq!(server.total(), 0, "quiet VUs send nothing");
}

#[test]
fn idle_vus_give_their_memory_back_and_wake_with_it_intact() {
    let server = Server::start();
    // Each VU keeps on_start's response (its body, `start-<vu>`, lives in the guest's heap)
    // and reads it again in every task; between tasks it waits 6 s, long enough to
    // hibernate. The VUs' bodies differ, so all but one VU's heap differs from the plan's
    // reference pages.
    let (child, json) = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_KEEP", "2")
        .env("PROBE_WAIT", "constant:6000")
        .args(&["-u", "4", "-r", "100", "--iterations", "2"])
        .spawn();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while server.count("/") < 4 {
        assert!(std::time::Instant::now() < deadline, "the VUs' first tasks did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Every VU has finished its first task and waits for the next.
    std::thread::sleep(Duration::from_millis(500));
    let memories = vu_memories(child.id());
    let run = collect(child, json, Duration::from_secs(60));
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(memories.len(), 4, "one linear memory per VU: {memories:?}");
    assert!(memories.iter().all(|&(_, image)| image), "each maps the plan's memory image: {memories:?}");
    assert!(memories.iter().all(|&(kib, _)| kib == 0), "resident KiB of each waiting VU's memory: {memories:?}");
    // After waking, each task read on_start's response and its own, intact.
    assert_eq!(run.check("start response read later is right"), (8, 0));
    assert_eq!(run.check("bodies read late are right"), (8, 0));
    let starts = server.hits().into_iter().filter(|h| h.path == "/echo" && h.body.starts_with(b"start-")).count();
    assert_eq!(starts, 4);
    assert_eq!(server.count("/echo"), 4 + 8 * 2);
    assert_eq!(server.count("/"), 8);
}

/// Resident KiB of each VU linear memory in process `pid`, and whether it maps the plan's
/// memory image, read from `/proc/PID/smaps`: the read-write mapping right before an
/// inaccessible one of at least 4 GiB (the rest of the memory's reservation and its guard).
/// It maps the image's memfd itself, or (where the memfd could not be grown to the
/// reservation's length) follows a mapping of the image.
fn vu_memories(pid: u32) -> Vec<(u64, bool)> {
    let maps = smaps(pid);
    let is_image = |m: &Mapping| m.perms.starts_with("rw") && m.path.contains("wasmload-memory-image");
    (1..maps.len())
        .filter(|&j| maps[j].perms.starts_with("---") && maps[j].size >= 4 << 30 && maps[j - 1].perms.starts_with("rw"))
        .map(|j| {
            let before = j >= 2 && !is_image(&maps[j - 1]) && is_image(&maps[j - 2]);
            (maps[j - 1].rss_kib + if before { maps[j - 2].rss_kib } else { 0 }, before || is_image(&maps[j - 1]))
        })
        .collect()
}
