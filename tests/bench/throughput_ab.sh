#!/usr/bin/env bash
# Throughput of runner builds side by side: alternating rounds of the benchmark's load (the
# probe with 50 VUs and no wait, the runner on core 1), printing per round and per build the
# requests per CPU-second and the CPU per request split into user space and kernel, then each
# build's medians. User space is where builds of the same code differ (the kernel part is the
# loopback TCP path, the same for every build, and drifts with the machine); on a machine
# whose speed drifts, only many alternating rounds compare builds.
#
#     tests/bench/throughput_ab.sh URL ROUNDS BIN...   e.g. http://127.0.0.1:18090 8 /tmp/nopgo/dist/runner target/dist/runner
#
# URL is a server already listening on 127.0.0.1 (run.sh's nginx config, started by hand,
# with nginx on core 0). VUS (50), SECONDS_PER_ROUND (5), PROBE as in run.sh. Requests are the
# runner's own count (the end-to-end tests hold it equal to the server's); CPU is GNU time's.
set -euo pipefail

source "$(dirname "$0")/ab_args.sh"
[[ -x /usr/bin/time ]] || { echo "error: GNU time is not installed (apt-get install time)" >&2; exit 1; }
results="$(mktemp)"
trap 'rm -f "$results"' EXIT
printf '%-40s %5s %10s %10s %8s %8s\n' build round requests req/CPU-s "user us" "sys us"
for round in $(seq "$rounds"); do
    for bin in "${bins[@]}"; do
        out="$({ /usr/bin/time -f 'cpu %U %S' taskset -c 1 "$bin" run "$PROBE" --headless --host "$url" \
            -u "${VUS:-50}" -r 1000 -t "${SECONDS_PER_ROUND:-5}s" -q; } 2>&1 || true)"
        requests="$(awk '$1 == "Aggregated" { print $2; exit }' <<<"$out")"
        user="" sys=""
        read -r user sys < <(awk '$1 == "cpu" { print $2, $3 }' <<<"$out") || true
        if [[ -z "$requests" || -z "$user" || "$requests" == 0 ]]; then
            echo "error: $bin gave no request count in round $round:" >&2
            tail -n 5 <<<"$out" >&2
            exit 1
        fi
        awk -v b="$bin" -v r="$round" -v n="$requests" -v u="$user" -v s="$sys" 'BEGIN {
            printf "%-40s %5d %10d %10.0f %8.2f %8.2f\n", b, r, n, n / (u + s), u * 1e6 / n, s * 1e6 / n }' |
            tee -a "$results"
    done
done
echo
echo "medians:"
for bin in "${bins[@]}"; do
    awk -v b="$bin" '$1 == b { rate[++n] = $4; user[n] = $5; sys[n] = $6 }
        function median(v, n,   i, j, t) {
            for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
            return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
        }
        END { printf "%-40s %d rounds: %.0f req/CPU-s, user %.2f us, sys %.2f us per request\n", b, n, median(rate, n), median(user, n), median(sys, n) }' "$results"
done
