#!/usr/bin/env bash
# What starting one VU asks of the kernel, counted exactly: `perf stat` of the benchmark's
# start command with 2,000 and with 6,000 idle VUs (the runner on core 1), and the
# difference per VU of every system call, context switches and page faults (so the
# runner's own start and stop cancel out).
#
#     tests/bench/start_counts.sh URL [quiet]          (RUNNER, PROBE as in run.sh)
#
# CORES (default 1) runs the runner on those cores instead (`0,1`: one worker per core).
# URL is a server already listening on 127.0.0.1. Needs perf (Debian: linux-perf) with
# tracepoints readable (root, or kernel.perf_event_paranoid <= -1) and python3.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
RUNNER="${RUNNER:-$root/target/dist/runner}"
PROBE="${PROBE:-$root/guest-examples/target/wasm32-wasip2/release/probe.wasm}"
url="${1:?usage: start_counts.sh URL [quiet]}"
case "$url" in
    http://127.0.0.1:* | http://localhost:*) ;;
    *) echo "error: the URL must be a local server (http://127.0.0.1:PORT)" >&2; exit 1 ;;
esac
command -v perf >/dev/null || { echo "error: perf is not installed (apt-get install linux-perf)" >&2; exit 1; }
quiet=()
[[ "${2:-}" == quiet ]] && quiet=(--env PROBE_QUIET=1)
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
ulimit -n "$(ulimit -Hn)"
for vus in 2000 6000; do
    perf stat -e 'syscalls:sys_enter_*' -e context-switches,page-faults -o "$tmp/$vus.txt" -- \
        taskset -c "${CORES:-1}" "$RUNNER" run "$PROBE" --headless --host "$url" -u "$vus" -r 1000000 -t 3s \
        --stop-timeout 5s --env PROBE_WAIT=constant:600000 "${quiet[@]}" -q >/dev/null 2>"$tmp/$vus.err"
    grep -o 'All users spawned:.*' "$tmp/$vus.err" || { cat "$tmp/$vus.err" >&2; exit 1; }
done
python3 - "$tmp/2000.txt" "$tmp/6000.txt" <<'PY'
import re, sys

def load(path):
    counts = {}
    for line in open(path):
        m = re.match(r"\s*([\d,]+)\s+(\S+)", line)
        if m:
            counts[m.group(2)] = int(m.group(1).replace(",", ""))
    return counts

few, many = load(sys.argv[1]), load(sys.argv[2])
per_vu = {k: (many[k] - few.get(k, 0)) / 4000 for k in many}
calls = {k.removeprefix("syscalls:sys_enter_"): v for k, v in per_vu.items() if k.startswith("syscalls:")}
print(f"per VU (6,000 against 2,000 VUs): {sum(calls.values()):.2f} system calls, "
      f"{per_vu.get('context-switches', 0):.2f} context switches, {per_vu.get('page-faults', 0):.2f} page faults")
for name, v in sorted(calls.items(), key=lambda kv: -kv[1]):
    if abs(v) >= 0.05:
        print(f"{v:7.2f}  {name}")
PY
