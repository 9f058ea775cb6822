//! Many users in one process: more VUs than wasmtime's default 4 GiB memory reservations
//! fit in the address space start with compact reservations, and VUs the kernel's
//! memory-map limit leaves no room for fail with that limit named (after the runner has
//! carved stacks from shared mappings and copied memory images to fit more).

use std::time::Duration;

use e2e::{Runner, Server, guests};

/// More than the 32,005 VUs whose default reservations fit in 126 TiB.
const USERS: u64 = 33_000;

#[test]
fn more_users_than_full_reservations_allow_start_with_compact_ones_or_the_map_limit_is_named() {
    let server = Server::start();
    // Idle VUs that send nothing: one process may not open a connection for each.
    let run = Runner::run(guests::PROBE)
        .host(&server)
        .env("PROBE_QUIET", "1")
        .env("PROBE_WAIT", "constant:600000")
        .args(&["-u", &USERS.to_string(), "-r", "1000000", "-t", "4s", "--stop-timeout", "1s"])
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
        // Copied memory images fit about (maps - 200) / 5 VUs, or (maps - 200) / 3 with stacks
        // carved from shared mappings (Linux 6.13+); the rest are refused, by the runner or
        // the kernel, and every refusal names the limit.
        let carved = run.stderr.contains("carving VU stacks from shared mappings");
        let per_vu = if carved { 3 } else { 5 };
        assert!(run.stderr.contains("copying memory images"), "{}", run.stderr);
        assert!(running >= (maps - 200) / per_vu * 9 / 10, "{spawned} with vm.max_map_count {maps}");
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
