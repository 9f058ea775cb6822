#!/usr/bin/env bash
# Where the time to start many VUs goes: CPU microseconds per VU by system call, page faults
# and user-space library, sampled with `perf` over the start window only.
#
#     tests/bench/start_profile.sh URL [VUS] [quiet]
#
# URL is a server already listening on 127.0.0.1 (for example the private nginx that run.sh
# starts, kept with KEEP_LOGS=1, or one started from its config). The runner (RUNNER, default
# target/dist/runner) starts VUS (10000) idle VUs of the probe (PROBE) at once on core 1, as
# run.sh's start-time part does; `quiet` adds PROBE_QUIET=1 (no first request). The window is
# the runner's "All users spawned ... S s after the first", from the worker thread's first
# sample. perf itself adds about 10 %. CORES (default 1) runs the runner on those cores
# instead (`0,1`: one worker per core, the runner's default): every worker thread is then
# counted, each sample as 250 us of CPU, and each worker's share of the window on CPU is
# printed. WAIT (default 600000) is the probe's wait in ms (under 5,000 the VUs do not
# hibernate). Needs perf (Debian: linux-perf) and python3, and permission to profile (root,
# or kernel.perf_event_paranoid <= 1).
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
RUNNER="${RUNNER:-$root/target/dist/runner}"
PROBE="${PROBE:-$root/guest-examples/target/wasm32-wasip2/release/probe.wasm}"
url="${1:?usage: start_profile.sh URL [VUS] [quiet]}"
vus="${2:-10000}"
quiet=()
[[ "${3:-}" == quiet ]] && quiet=(--env PROBE_QUIET=1)
case "$url" in
    http://127.0.0.1:* | http://localhost:*) ;;
    *) echo "error: the URL must be a local server (http://127.0.0.1:PORT)" >&2; exit 1 ;;
esac
command -v perf >/dev/null || { echo "error: perf is not installed (apt-get install linux-perf)" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
ulimit -n "$(ulimit -Hn)"
cores="${CORES:-1}"
perf record -q -g -F 4000 -o "$tmp/perf.data" -- taskset -c "$cores" "$RUNNER" run "$PROBE" --headless \
    --host "$url" -u "$vus" -r 1000000 -t 3s --stop-timeout 1s --env "PROBE_WAIT=constant:${WAIT:-600000}" \
    "${quiet[@]}" -q >/dev/null 2>"$tmp/err"
window="$(grep -oE 'All users spawned: .* ([0-9.]+) s after the first' "$tmp/err" | grep -oE '[0-9.]+ s after' | cut -d' ' -f1)"
[[ -n "$window" ]] || { cat "$tmp/err" >&2; echo "error: no 'All users spawned' line" >&2; exit 1; }
# `head` closes the pipe early, which stops perf script with SIGPIPE: not an error here.
first="$(set +o pipefail; perf script -i "$tmp/perf.data" --comm vu-worker-0 -F time 2>/dev/null | head -n 1 | tr -d ' :')"
end="$(awk "BEGIN { print $first + $window }")"
perf script -i "$tmp/perf.data" --time "$first,$end" -F comm,ip,sym,dso 2>/dev/null >"$tmp/stacks.txt"
echo "$vus VUs started in $window s (under perf)"
python3 - "$tmp/stacks.txt" "$window" "$vus" "$cores" <<'PY'
import collections, sys

path, window, vus, cores = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
buckets, samples, threads = collections.Counter(), 0, collections.Counter()
for stack in open(path).read().split("\n\n"):
    lines = [l.strip() for l in stack.strip().split("\n") if l.strip()]
    if len(lines) < 2:
        continue
    samples += 1
    comm = lines[0].split()[0]
    threads[comm] += 1
    frames = []
    for line in lines[1:]:
        sym, _, dso = line.split(None, 1)[-1].rpartition(" (")
        frames.append((sym.split("+")[0], dso.rstrip(")")))
    if not comm.startswith("vu-worker-"):
        buckets["other thread: " + comm] += 1
    elif "kernel" in frames[0][1]:
        names = [name for name, _ in frames]
        # Entry points often missing from the stack (tail calls, inlined).
        inner = {"vm_mmap_pgoff": "__x64_sys_mmap", "vector_madvise": "__x64_sys_process_madvise"}
        names = [inner.get(n, n) for n in names]
        entry = next((n for n in names if n.startswith("__x64_sys_") or n.startswith("asm_exc_")), "kernel, other")
        buckets[entry.replace("__x64_sys_", "syscall ").replace("asm_exc_", "")] += 1
    else:
        buckets["user: " + frames[0][1].split("/")[-1][:40]] += 1
if cores.isdigit():
    # One worker: its samples fill the window, whatever perf's own slow-down.
    per_sample = window * 1e6 / vus / max(samples, 1)
else:
    per_sample = 1e6 / 4000 / vus
    for comm, count in sorted(threads.items()):
        if comm.startswith("vu-worker-"):
            print(f"{comm}: on CPU {count / 4000 / window:.0%} of the window")
print(f"{'us/VU':>7}  where ({samples} samples)")
for name, count in buckets.most_common(20):
    print(f"{count * per_sample:7.2f}  {name}")
print(f"{samples * per_sample:7.2f}  in all")
PY
