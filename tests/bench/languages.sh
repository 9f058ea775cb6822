#!/usr/bin/env bash
# Memory and start-up per virtual user (VU) for the same scenario written in Rust, C, Python
# and JavaScript (guest-examples/concert, c/concert.c, python/concert.py, js/concert.js): one interpreter
# per VU makes the scripted languages far heavier than Rust, and this measures by how much.
#
# Method
#   * Target: `runner target` (the built-in demo target) on a free 127.0.0.1 port.
#   * Each plan runs with USERS (100, then 1000) VUs all requested at once (`-r 1000000`),
#     for 8 s. The concert scenario waits 1-3 s between tasks, so the VUs are mostly idle.
#   * Start: the runner's stderr line `All users spawned: N running, S s after the first`.
#   * Memory, read from /proc/PID/smaps_rollup 3 s after all VUs started:
#       RSS   resident memory as `ps` shows it. It counts a page once per mapping, so a
#             plan's memory image, mapped copy-on-write into every VU, is counted once per VU.
#       PSS   proportional set size: shared pages divided among their mappings, so the
#             image counts once. This is what the machine actually spends.
#     and the marginal PSS per VU between the two counts.
#   * Plans are built (and their compilation cached) before anything is measured.
#
# Usage: tests/bench/languages.sh         (needs the toolchains: eval "$(scripts/toolchains.sh)")
#        USERS="100 1000" RUNNER=target/release/runner tests/bench/languages.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

RUNNER="${RUNNER:-target/release/runner}"
USERS="${USERS:-100 1000}"
out="$(mktemp -d)"
target_pid=""
cleanup() {
    [[ -n "$target_pid" ]] && kill "$target_pid" 2>/dev/null || true
    rm -rf "$out"
}
trap cleanup EXIT

eval "$(scripts/toolchains.sh)"
[[ -x "$RUNNER" ]] || cargo build --release -p runner
(cd guest-examples && cargo build --release --target wasm32-wasip2 -p concert >/dev/null 2>&1)
declare -A plans=(
    [rust]=guest-examples/target/wasm32-wasip2/release/concert.wasm
    [python]="$out/concert-py.wasm"
    [js]="$out/concert-js.wasm"
    [c]="$out/concert-c.wasm"
)
"$RUNNER" build guest-examples/python/concert.py -o "${plans[python]}" >/dev/null 2>&1
"$RUNNER" build guest-examples/js/concert.js -o "${plans[js]}" >/dev/null 2>&1
"$RUNNER" build guest-examples/c/concert.c -o "${plans[c]}" >/dev/null 2>&1

"$RUNNER" target --port 0 >"$out/target.log" 2>&1 &
target_pid=$!
for _ in $(seq 50); do grep -q "listening on" "$out/target.log" && break; sleep 0.1; done
host="$(grep -o 'http://127.0.0.1:[0-9]*' "$out/target.log" | head -1)"

field() { awk -v k="$1:" '$1 == k { print $2 }' "$2"; }
calc() { awk "BEGIN { print $1 }"; }

printf '%-8s %6s %10s %10s %10s %12s\n' plan VUs "start s" "RSS MiB" "PSS MiB" "plan MB"
for lang in rust c js python; do
    plan="${plans[$lang]}"
    size=$(stat -c %s "$plan")
    declare -A pss=()
    for users in $USERS; do
        log="$out/$lang-$users.log"
        "$RUNNER" run "$plan" --headless --host "$host" -u "$users" -r 1000000 -t 8s -q --stop-timeout 1s 2>"$log" >/dev/null &
        pid=$!
        for _ in $(seq 100); do grep -qs "All users spawned" "$log" && break; sleep 0.1; done
        sleep 3
        cp "/proc/$pid/smaps_rollup" "$out/smaps" 2>/dev/null || true
        wait "$pid" || true
        start=$(grep -o 'running, [0-9.]* s after' "$log" | grep -o '[0-9.]*' | head -1)
        rss=$(field Rss "$out/smaps")
        pss[$users]=$(field Pss "$out/smaps")
        printf '%-8s %6s %10s %10.1f %10.1f %12.1f\n' "$lang" "$users" "${start:-?}" \
            "$(calc "${rss:-0} / 1024")" "$(calc "${pss[$users]:-0} / 1024")" "$(calc "$size / 1000000")"
    done
    set -- $USERS
    if [[ $# -ge 2 ]]; then
        printf '%-8s marginal PSS per VU between %s and %s VUs: %.0f KiB\n' "$lang" "$1" "$2" \
            "$(calc "(${pss[$2]:-0} - ${pss[$1]:-0}) / ($2 - $1)")"
    fi
    unset pss
done
