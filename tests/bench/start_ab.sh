#!/usr/bin/env bash
# Start time of runner builds side by side: alternating rounds of the benchmark's start
# command (10,000 idle VUs requested at once, the runner on core 1), printing each build's
# start times sorted and their median. On a machine whose speed drifts, only many
# alternating rounds compare builds; the exact counts come from start_counts.sh.
#
#     tests/bench/start_ab.sh URL ROUNDS BIN...     e.g. http://127.0.0.1:18090 6 /tmp/old target/dist/runner
#
# URL is a server already listening on 127.0.0.1 (run.sh's nginx config, started by hand).
# VUS (10000), QUIET=1 (PROBE_QUIET: no first requests), PROBE as in run.sh.
set -euo pipefail

source "$(dirname "$0")/ab_args.sh"
quiet=()
[[ "${QUIET:-0}" == 1 ]] && quiet=(--env PROBE_QUIET=1)
ulimit -n "$(ulimit -Hn)"
declare -A times=()
for _ in $(seq "$rounds"); do
    for bin in "${bins[@]}"; do
        secs="$(taskset -c 1 "$bin" run "$PROBE" --headless --host "$url" -u "${VUS:-10000}" -r 1000000 -t 4s \
            --stop-timeout 1s --env PROBE_WAIT=constant:600000 "${quiet[@]}" -q 2>&1 >/dev/null |
            grep -oE '[0-9.]+ s after the first' | cut -d' ' -f1 || true)"
        times[$bin]+="${secs:-none} "
        sleep 1
    done
done
for bin in "${bins[@]}"; do
    sorted="$(tr ' ' '\n' <<<"${times[$bin]}" | grep -E '^[0-9.]+$' | sort -g || true)"
    median="$(awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }' <<<"$sorted")"
    missing="$(grep -o none <<<"${times[$bin]}" | wc -l || true)"
    echo "$bin: $(echo $sorted) s (median $median)$( ((missing)) && echo ", $missing rounds without 'All users spawned'")"
done
