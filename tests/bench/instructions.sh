#!/usr/bin/env bash
# Instructions, not seconds: what a request and a VU cost the runner in user space, counted by
# valgrind's callgrind on the VU worker thread. CPU time on a shared machine drifts by tens of
# percent between runs of the same build (see the README's Performance section); these counts
# repeat within about 2 % per request and 5 % per VU (medians of 3), so they show a change of
# a few percent between builds, side by side in one run.
#
#     tests/bench/instructions.sh [BIN...]     (default: target/dist/runner; PROBE as in run.sh)
#
# Each BIN runs on core 1 against the runner's built-in target (the first BIN's, on core 0):
#   per request  20 VUs with no wait, 1,000 against 200 iterations each: the difference in
#                instructions / the 16,000 requests it adds;
#   per VU       25 against 5 idle VUs (the probe with PROBE_WAIT=constant:600000: one
#                request, then a 10-minute wait, so they hibernate), each started, woken at the
#                end of a 3 s run and stopped: the difference / 20.
# Each is the median of ROUNDS (3) pairs. Counted: the thread that runs the VUs (the busiest
# but the main one, which with one core is the only worker), wasm code included. Left out: the
# main thread (its once-a-second statistics grow with valgrind's slow-down), the epoch ticker,
# and the kernel (system calls and page faults per VU: start_counts.sh). Under valgrind only
# about 30 VUs fit in the address space (each memory reserves 4 GiB), hence the small counts.
# TOP=N also prints, per BIN, the N functions with the most instructions per request (self
# cost, from the first round). Needs valgrind (Debian: valgrind) and python3; takes about a
# minute and a half per BIN.
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS="${ROUNDS:-3}"
TOP="${TOP:-0}"
PROBE="${PROBE:-guest-examples/target/wasm32-wasip2/release/probe.wasm}"
(( $# > 0 )) || set -- target/dist/runner
command -v valgrind >/dev/null || { echo "error: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
for bin in "$@"; do
    [[ -x "$bin" ]] || { echo "error: $bin is not an executable runner (build it first: see tests/bench/README.md)" >&2; exit 1; }
done
[[ -f "$PROBE" ]] || { echo "error: $PROBE not found (build guest-examples first: see tests/bench/README.md)" >&2; exit 1; }

source scripts/lib/target.sh
tmp="$(mktemp -d)"
start_target "$1"
trap 'kill "$target_pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
taskset -a -p -c 0 "$target_pid" >/dev/null

# Runs BIN (first argument) under callgrind with the remaining `runner run` options, one
# output file per thread under NAME (second argument), and prints the VU thread's count.
count() {
    local bin="$1" name="$2"
    shift 2
    rm -f "$tmp/$name".*
    taskset -c 1 valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$tmp/$name.out" \
        "$bin" run "$PROBE" --headless --host "$target_url" -r 1000000 -q "$@" >/dev/null 2>"$tmp/$name.err" \
        || { tail -n 20 "$tmp/$name.err" >&2; echo "error: $bin failed under valgrind" >&2; exit 1; }
    python3 - "$tmp/$name.out" <<'EOF'
import glob, sys
# One file per thread, NAME.out-NN; thread 01 is the main thread.
totals = {}
for path in glob.glob(sys.argv[1] + "-*"):
    for line in open(path):
        if line.startswith(("summary:", "totals:")):
            totals[path] = int(line.split()[1])
            break
workers = {p: n for p, n in totals.items() if not p.endswith("-01")}
busiest = max(workers, key=workers.get)
print(workers[busiest], busiest)
EOF
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A per_request per_vu top_files
index=0
for bin in "$@"; do
    index=$((index + 1))
    requests=() vus=()
    for round in $(seq "$ROUNDS"); do
        result="$(count "$bin" "$index-req-hi-$round" -u 20 --iterations 1000)"
        read -r high high_file <<<"$result"
        result="$(count "$bin" "$index-req-lo-$round" -u 20 --iterations 200)"
        read -r low low_file <<<"$result"
        requests+=("$(( (high - low) / 16000 ))")
        # Each build's and round's files have names of their own: the first round's stay
        # for TOP.
        [[ "$round" == 1 ]] && top_files[$bin]="$high_file $low_file"
        idle=(-t 3s --stop-timeout 2s --env PROBE_WAIT=constant:600000)
        result="$(count "$bin" "$index-vu-hi-$round" -u 25 "${idle[@]}")"
        read -r many _ <<<"$result"
        result="$(count "$bin" "$index-vu-lo-$round" -u 5 "${idle[@]}")"
        read -r few _ <<<"$result"
        vus+=("$(( (many - few) / 20 ))")
        echo "$bin round $round: $(( (high - low) / 16000 )) per request, $(( (many - few) / 20 )) per VU" >&2
    done
    per_request[$bin]="$(printf '%s\n' "${requests[@]}" | median)"
    per_vu[$bin]="$(printf '%s\n' "${vus[@]}" | median)"
done

echo
echo "user-space instructions on the VU thread (callgrind, median of $ROUNDS)"
printf '%-40s %14s %14s\n' build "per request" "per VU"
for bin in "$@"; do
    printf '%-40s %14s %14s\n' "$bin" "${per_request[$bin]}" "${per_vu[$bin]}"
done
if (( $# > 1 )); then
    first="$1"
    for bin in "${@:2}"; do
        printf '%-40s %13.1f%% %13.1f%%\n' "  $bin / $first" \
            "$(awk "BEGIN { print (${per_request[$bin]} / ${per_request[$first]} - 1) * 100 }")" \
            "$(awk "BEGIN { print (${per_vu[$bin]} / ${per_vu[$first]} - 1) * 100 }")"
    done
fi
echo "per request: 20 VUs, 1,000 against 200 iterations. per VU: 25 against 5 idle VUs"
echo "(start, first request, hibernation, waking, on_stop, teardown)."

if (( TOP > 0 )); then
    for bin in "$@"; do
        read -r hi lo <<<"${top_files[$bin]}"
        echo
        echo "$bin: functions with the most instructions per request (self cost)"
        python3 - "$hi" "$lo" "$TOP" <<'EOF'
import collections, re, subprocess, sys

def costs(path):
    out = subprocess.run(["callgrind_annotate", "--auto=no", "--threshold=100", path],
                         capture_output=True, text=True, check=True).stdout
    found = collections.Counter()
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \([\s\d.]+%\)\s+(.*)", line)
        if m and "PROGRAM TOTALS" not in line:
            # "file:function [object]": the function and its object are enough.
            name = re.sub(r"^[^:]*:", "", re.sub(r" \[.*\]$", "", m.group(2)))
            found[name] += int(m.group(1).replace(",", ""))
    return found

high, low, top = costs(sys.argv[1]), costs(sys.argv[2]), int(sys.argv[3])
per = {name: (high[name] - low.get(name, 0)) / 16000 for name in high}
for name, n in sorted(per.items(), key=lambda kv: -kv[1])[:top]:
    print(f"{n:10.0f}  {name[:110]}")
EOF
    done
fi
