#!/usr/bin/env bash
# Throughput of runner builds compared at the same moments: in each round every build runs
# at once, all on core 1, so the machine's drift in speed (here tens of percent from one
# round to the next, see the README's Performance section) hits them alike, and the ratio of
# each build's requests per CPU-second to the first build's, round by round, is steady to a
# percent or two where alternating rounds (throughput_ab.sh) scatter by 30 %.
#
#     tests/bench/concurrent_ab.sh URL ROUNDS BIN...   e.g. http://127.0.0.1:18090 8 /tmp/old /tmp/new
#
# URL is a server already listening on 127.0.0.1 (run.sh's nginx config, started by hand,
# with nginx on core 0). Each build runs the probe with VUS (50) VUs and no wait for
# SECONDS_PER_ROUND (8). Requests are each runner's own count (the end-to-end tests hold it
# equal to the server's); CPU is GNU time's. The builds share the core and its caches, so the
# absolute figures are lower than a build alone gets; the ratio is the measure. A build
# against a copy of itself gave ratios of 0.999-1.020 (500 VUs, 6 rounds): differences under
# about 2 % need more rounds.
set -euo pipefail

source "$(dirname "$0")/ab_args.sh"
source "$(dirname "$0")/lib.sh"
[[ -x /usr/bin/time ]] || { echo "error: GNU time is not installed (apt-get install time)" >&2; exit 1; }
(( ${#bins[@]} >= 2 )) || { echo "error: name at least two runner binaries to compare" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
printf '%-40s %5s %10s %10s %8s %8s %7s\n' build round requests req/CPU-s "user us" "sys us" ratio
order=("${!bins[@]}")
for round in $(seq "$rounds"); do
    # Started in turn, first to last, then last to first: the one started first may fare a
    # little differently (an A/A run: 1.008 of the medians, 0.999-1.020).
    for i in "${order[@]}"; do
        { /usr/bin/time -f 'cpu %U %S' taskset -c 1 "${bins[$i]}" run "$PROBE" --headless --host "$url" \
            -u "${VUS:-50}" -r 1000000 -t "${SECONDS_PER_ROUND:-8}s" -q; } >"$tmp/$i.out" 2>&1 &
    done
    wait || true
    order=($(printf '%s\n' "${order[@]}" | tac))
    first=""
    for i in "${!bins[@]}"; do
        requests="$(awk '$1 == "Aggregated" { print $2; exit }' "$tmp/$i.out")"
        user="" sys=""
        read -r user sys < <(awk '$1 == "cpu" { print $2, $3 }' "$tmp/$i.out") || true
        if [[ -z "$requests" || -z "$user" || "$requests" == 0 ]]; then
            echo "error: ${bins[$i]} gave no request count in round $round:" >&2
            tail -n 5 "$tmp/$i.out" >&2
            exit 1
        fi
        rate="$(awk -v n="$requests" -v u="$user" -v s="$sys" 'BEGIN { printf "%.0f", n / (u + s) }')"
        first="${first:-$rate}"
        awk -v b="${bins[$i]}" -v r="$round" -v n="$requests" -v u="$user" -v s="$sys" -v rate="$rate" -v f="$first" 'BEGIN {
            printf "%-40s %5d %10d %10d %8.2f %8.2f %7.3f\n", b, r, n, rate, u * 1e6 / n, s * 1e6 / n, rate / f }' |
            tee -a "$tmp/results"
    done
done
echo
echo "ratio of requests per CPU-second to the first build's, median of the rounds (and range):"
for bin in "${bins[@]:1}"; do
    ratios="$(awk -v b="$bin" '$1 == b { print $7 }' "$tmp/results")"
    printf '%-40s %s (%s to %s)\n' "$bin" "$(median <<<"$ratios")" "$(sort -g <<<"$ratios" | head -n 1)" \
        "$(sort -g <<<"$ratios" | tail -n 1)"
done
