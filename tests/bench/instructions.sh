#!/usr/bin/env bash
# Instructions, not seconds: what a request and a VU cost the runner in user space, counted by
# valgrind's callgrind on the VU worker thread. CPU time on a shared machine drifts by tens of
# percent between runs of the same build (see the README's Performance section); these counts
# repeat within about 2 % per request, 5 % per VU and 8 % in cold lines (rounds of one build),
# so they show a change of a few percent between builds, side by side in one run.
#
#     tests/bench/instructions.sh [BIN...]     (default: target/dist/runner; PROBE as in run.sh)
#
# Each BIN runs on core 1 against the runner's built-in target (the first BIN's, on core 0):
#   per request  20 VUs with no wait, 1,000 against 200 iterations each: the difference in
#                instructions / the 16,000 requests it adds;
#   per VU       25 against 5 idle VUs (the probe with PROBE_WAIT=constant:600000: one
#                request, then a 10-minute wait, so they hibernate), each started, woken at the
#                end of a 3 s run and stopped: the difference / 20.
#   cold lines   with 25 VUs, 400 against 80 iterations each, valgrind's cache model with a
#                256 KiB last-level cache (callgrind --cache-sim): the data cache lines a request
#                misses there / 8,000. 25 VUs' state does not fit in it, so this counts what a
#                request reads and writes of its VU (its stack, memory, store, connection,
#                buffers) when the VU comes round cold: what makes requests dearer with hundreds
#                of VUs (README, Performance), where instruction counts do not change.
# Each is the median of ROUNDS (3) pairs. Counted: the thread that runs the VUs (the busiest
# but the main one, which with one core is the only worker), wasm code included. Left out: the
# main thread (its once-a-second statistics grow with valgrind's slow-down), the epoch ticker,
# and the kernel (system calls and page faults per VU: start_counts.sh). Under valgrind only
# about 30 VUs fit in the address space (each memory reserves 4 GiB), hence the small counts.
# TOP=N also prints, per BIN, the N functions with the most instructions and the most cold
# lines per request (self cost, from the first round). Needs valgrind (Debian: valgrind) and
# python3; takes about two minutes per BIN.
set -euo pipefail
shopt -s inherit_errexit
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

# count BIN NAME EVENT [OPTIONS...]: runs BIN under callgrind (with the cache model when EVENT
# is `misses`) with the `runner run` OPTIONS, one output file per thread under NAME, and
# prints the VU thread's instructions (EVENT `instructions`) or last-level data cache misses,
# and its file.
count() {
    local bin="$1" name="$2" event="$3" cache=()
    shift 3
    [[ "$event" == misses ]] && cache=(--cache-sim=yes --D1=32768,8,64 --LL=262144,8,64)
    rm -f "$tmp/$name".*
    taskset -c 1 valgrind --tool=callgrind --separate-threads=yes "${cache[@]}" --callgrind-out-file="$tmp/$name.out" \
        "$bin" run "$PROBE" --headless --host "$target_url" -r 1000000 -q "$@" >/dev/null 2>"$tmp/$name.err" \
        || { tail -n 20 "$tmp/$name.err" >&2; echo "error: $bin failed under valgrind" >&2; exit 1; }
    python3 - "$tmp/$name.out" "$event" <<'EOF'
import glob, sys
# One file per thread, NAME.out-NN; thread 01 is the main thread. The VU thread is the busiest
# of the others.
counts = {}
for path in glob.glob(sys.argv[1] + "-*"):
    events = []
    for line in open(path):
        if line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith(("summary:", "totals:")):
            counts[path] = dict(zip(events, map(int, line.split()[1:])))
            break
workers = {p: c for p, c in counts.items() if not p.endswith("-01")}
busiest = max(workers, key=lambda p: workers[p]["Ir"])
c = workers[busiest]
print(c["Ir"] if sys.argv[2] == "instructions" else c["DLmr"] + c["DLmw"], busiest)
EOF
}

# top.py HIGH LOW REQUESTS N EVENT...: the N functions whose self cost in EVENTs grew most
# from callgrind file LOW to HIGH, per request (REQUESTS apart). Reads callgrind's own format:
# names are compressed ("fn=(7) name", later "fn=(7)"), and the line after "calls=" is a
# call's inclusive cost, left out here.
cat >"$tmp/top.py" <<'EOF'
import collections, re, sys

def self_costs(path, wanted):
    names, costs, events, function, call = {}, collections.Counter(), [], None, False
    for line in open(path):
        if line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith(("fn=", "cfn=")):
            m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line.strip())
            if m and m.group(2):
                names[m.group(1)] = m.group(2)
            if line.startswith("fn="):
                function = names.get(m.group(1)) if m else line[3:].strip()
        elif line.startswith("calls="):
            call = True
        elif line[:1].isdigit() or line[:1] in "+-*":
            if call:
                call = False
                continue
            values = dict(zip(events, map(int, line.split()[1:])))
            costs[function] += sum(values.get(e, 0) for e in wanted)
    return costs

high, low = self_costs(sys.argv[1], sys.argv[5:]), self_costs(sys.argv[2], sys.argv[5:])
per = {name: (n - low.get(name, 0)) / int(sys.argv[3]) for name, n in high.items()}
for name, n in sorted(per.items(), key=lambda kv: -kv[1])[: int(sys.argv[4])]:
    print(f"{n:10.1f}  {name[:110]}")
EOF

source tests/bench/lib.sh

# measure_pair BIN NAME EVENT UNITS "HIGH OPTIONS" "LOW OPTIONS": counts EVENT for both runs and
# prints (HIGH - LOW) / UNITS, then the two runs' VU-thread files.
measure_pair() {
    local bin="$1" name="$2" event="$3" units="$4" out high low high_file low_file
    # Assigned first: a failed count then stops the script (a here-string would hide it).
    out="$(count "$bin" "$name-hi" "$event" $5)"
    read -r high high_file <<<"$out"
    out="$(count "$bin" "$name-lo" "$event" $6)"
    read -r low low_file <<<"$out"
    echo "$(( (high - low) / units )) $high_file $low_file"
}

# What each figure runs, and the units its difference is divided by.
request_runs=("-u 20 --iterations 1000" "-u 20 --iterations 200") request_units=$((20 * (1000 - 200)))
idle="-t 3s --stop-timeout 2s --env PROBE_WAIT=constant:600000"
vu_runs=("-u 25 $idle" "-u 5 $idle") vu_units=$((25 - 5))
cold_runs=("-u 25 --iterations 400" "-u 25 --iterations 80") cold_units=$((25 * (400 - 80)))

declare -A per_request per_vu cold top_files
index=0
for bin in "$@"; do
    index=$((index + 1))
    requests=() vus=() lines=()
    for round in $(seq "$ROUNDS"); do
        # Each build's and round's files have names of their own: the first round's stay
        # for TOP.
        out="$(measure_pair "$bin" "$index-req-$round" instructions "$request_units" "${request_runs[@]}")"
        read -r per_req req_files_hi req_files_lo <<<"$out"
        out="$(measure_pair "$bin" "$index-vu-$round" instructions "$vu_units" "${vu_runs[@]}")"
        read -r per_vu_now _ _ <<<"$out"
        out="$(measure_pair "$bin" "$index-cold-$round" misses "$cold_units" "${cold_runs[@]}")"
        read -r cold_now cold_files_hi cold_files_lo <<<"$out"
        [[ "$round" == 1 ]] && top_files[$bin]="$req_files_hi $req_files_lo $cold_files_hi $cold_files_lo"
        requests+=("$per_req") vus+=("$per_vu_now") lines+=("$cold_now")
        echo "$bin round $round: $per_req per request, $per_vu_now per VU, $cold_now cold lines per request" >&2
    done
    per_request[$bin]="$(printf '%s\n' "${requests[@]}" | median)"
    per_vu[$bin]="$(printf '%s\n' "${vus[@]}" | median)"
    cold[$bin]="$(printf '%s\n' "${lines[@]}" | median)"
done

echo
echo "user space on the VU thread (callgrind, median of $ROUNDS)"
printf '%-40s %14s %14s %14s\n' build "instr/request" "instr/VU" "cold lines/req"
for bin in "$@"; do
    printf '%-40s %14s %14s %14s\n' "$bin" "${per_request[$bin]}" "${per_vu[$bin]}" "${cold[$bin]}"
done
if (( $# > 1 )); then
    first="$1"
    change() { awk "BEGIN { print ($1 / $2 - 1) * 100 }"; }
    for bin in "${@:2}"; do
        printf '%-40s %13.1f%% %13.1f%% %13.1f%%\n' "  $bin / $first" \
            "$(change "${per_request[$bin]}" "${per_request[$first]}")" "$(change "${per_vu[$bin]}" "${per_vu[$first]}")" \
            "$(change "${cold[$bin]}" "${cold[$first]}")"
    done
fi
echo "instr/request: 20 VUs, 1,000 against 200 iterations. instr/VU: 25 against 5 idle VUs (start,"
echo "first request, hibernation, waking, on_stop, teardown). cold lines/req: last-level data cache"
echo "misses per request with 25 VUs in a 256 KiB cache (400 against 80 iterations)."

if (( TOP > 0 )); then
    for bin in "$@"; do
        read -r hi lo cold_hi cold_lo <<<"${top_files[$bin]}"
        echo
        echo "$bin: functions with the most instructions per request (self cost)"
        python3 "$tmp/top.py" "$hi" "$lo" "$request_units" "$TOP" Ir
        echo "$bin: functions with the most cold lines per request (last-level data misses, self)"
        python3 "$tmp/top.py" "$cold_hi" "$cold_lo" "$cold_units" "$TOP" DLmr DLmw
    done
fi
