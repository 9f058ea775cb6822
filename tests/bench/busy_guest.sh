#!/usr/bin/env bash
# What a guest that never stops computing costs the VUs that share its worker thread. The
# hostile test plan (tests/guests/hostile) runs 3 VUs for 8 s: VU 1 loops without end (with
# `--max-guest-cpu 10s`, so it is never stopped), VUs 2 and 3 send GET /ok every 20 ms; VU 3
# shares VU 1's thread. Against the runner's built-in target, per build: the /ok requests (the
# two VUs alone would make 762), their p99 and slowest response time, and the epoch ticker
# thread's wake-ups and CPU over 5 s of the run (from /proc).
#
#     tests/bench/busy_guest.sh BIN...      e.g. /tmp/runner-before target/dist/runner
set -euo pipefail
cd "$(dirname "$0")/../.."
(( $# > 0 )) || { echo "usage: $(basename "$0") BIN..." >&2; exit 1; }

cargo build -q --release --target wasm32-wasip2 --manifest-path tests/guests/Cargo.toml
plan="${CARGO_TARGET_DIR:-tests/guests/target}/wasm32-wasip2/release/hostile.wasm"
source scripts/lib/target.sh
start_target "$1"
report="$(mktemp)"
trap 'kill "$target_pid" 2>/dev/null || true; rm -f "$report"' EXIT

# utime + stime (clock ticks) and voluntary context switches of the process's epoch-ticker.
ticker() {
    local task
    task="$(grep -l '^epoch-ticker$' /proc/"$1"/task/*/comm | head -n 1)"
    task="${task%/comm}"
    echo "$(awk '{ print $14 + $15 }' "$task/stat") $(awk '/^voluntary_ctxt_switches/ { print $2 }' "$task/status")"
}

printf '%-40s %9s %9s %9s %14s %12s\n' build requests "p99 ms" "max ms" "ticker wakes/s" "ticker CPU %"
for bin in "$@"; do
    "$bin" run "$plan" --headless --host "$target_url" -u 3 -r 100 -t 8s --max-guest-cpu 10s \
        --env HOSTILE=loop --json "$report" -q >/dev/null 2>&1 &
    pid=$!
    sleep 1.5
    read -r cpu0 wakes0 < <(ticker "$pid")
    sleep 5
    read -r cpu1 wakes1 < <(ticker "$pid")
    wait "$pid" || true
    python3 - "$bin" "$report" "$((cpu1 - cpu0))" "$((wakes1 - wakes0))" "$(getconf CLK_TCK)" <<'EOF'
import json, sys
bin, report, cpu, wakes, hz = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
row = next(r for r in json.load(open(report))["rows"] if r["name"] == "/ok")
p99 = dict(row["percentiles"])["99%"]
print(f"{bin:40} {row['requests']:9} {p99:9.1f} {row['max_ms']:9.1f} {wakes / 5:14.0f} {cpu / hz / 5 * 100:12.1f}")
EOF
done
