#!/usr/bin/env bash
# Benchmark of the runner against wrk, and of the runner's memory per virtual user (VU).
#
# Method
#   * Target: Debian's nginx with its own config in a temp dir (never the system config):
#     one worker pinned to core 0, `return 200 "ok"` on `/`, keep-alive for ever, no access
#     log. nginx counts the requests: its stub_status `requests` counter is read before and
#     after each run, so both tools are judged by the same, independent count (the two
#     stub_status requests themselves are subtracted).
#   * Load: `wrk -t1 -c50` and `runner run probe.wasm -u 50` (probe with no wait time: each VU
#     sends `GET /` in a tight loop), each pinned to core 1, alternating wrk, runner, wrk,
#     runner... for ROUNDS rounds of DURATION each. Each tool runs under GNU time, which
#     gives its wall time, its CPU time (user + sys of the whole process, all threads) and its
#     peak resident memory.
#   * Memory per VU: the runner with 10, 1000 and 10000 idle VUs (probe with a 10-minute
#     constant wait: each VU sends one request, keeps its connection, then waits), all
#     started within about a second, for 6 s; peak RSS from GNU time. With the default
#     vm.max_map_count (65530) only about 9,300 VUs fit with copy-on-write memory images, so
#     for 10,000 the runner copies the images instead (it says so on stderr, and the note
#     column shows it); past about 13,000 the kernel refuses VUs and the script reports how
#     many started and why the rest failed. Then 10 and 1000 idle VUs whose one request
#     fetched a PAGE_KIB page instead of `ok`: what a body the scenario never reads costs.
#   * Start time: the runner with START_VUS idle VUs (same idle probe, then again with
#     PROBE_QUIET=1: no connection, no request, then again with first requests but on both
#     cores, the runner's default of a worker per core, nginx keeping core 0) all requested at once
#     (`-r 1000000`), for 5 s; the runner's stderr line `All users spawned: R running, F failed
#     to start, S s after the first` gives how many started, how many failed and how long
#     starting them all took. Peak RSS / running VUs is printed as a cross-check of the memory
#     table (it includes the runner's fixed cost, so it is a little above the marginal KiB/VU).
#     Then the floor under it: tests/bench/connect_floor.c, a C program on core 1 opening as
#     many blocking connections to nginx one by one, alone and with one request each (run
#     first of all, before other parts leave sockets in TIME_WAIT).
#   * Many VUs: MANY_VUS idle VUs (probe with PROBE_QUIET=1: its task sends nothing, then
#     the 10-minute wait) all requested at once, for 30 s: start time from the runner's
#     stderr, peak RSS, and PSS, page tables and memory maps sampled 1 s after the last VU
#     started. Skipped, saying why, when vm.max_map_count or the free memory is too small.
#   * RSS flat in requests: the runner with 50 VUs and no wait time for exactly 100,000
#     requests (`--iterations 2000`) and exactly 1,000,000 (`--iterations 20000`), FLAT_ROUNDS
#     times; peak RSS of each and the ratio of the medians (about 1.00 means no memory grows
#     with the number of requests). With FLAT_LONG, also exactly 3,000,000 (`--iterations
#     60000`, about 30 s) and the ratio 3M / 1M. The runner's memory grows during a run's
#     first 10 s or so whatever its request rate (among other things, the 10 s of per-second
#     statistics behind the live figures fill), which the 100,000-request run (about 1 s)
#     ends before; both longer runs outlast it, so their ratio shows growth with requests alone.
#     The request count from the runner's JSON summary (`aggregated.requests`) must equal
#     nginx's; the script prints "counts match" or a MISMATCH line.
#   * Instructions: tests/bench/instructions.sh (RUNNER, and BASELINE beside it): the
#     user-space instructions per request and per VU, and the cache lines a request misses
#     with 25 VUs in a small simulated cache, on the thread that runs the VUs, under
#     valgrind's callgrind. They repeat within a few percent where the CPU seconds above
#     drift by tens of percent between runs, so they are the figures to compare builds by.
#
# Figures
#   requests    requests nginx served during the run
#   wall s      the tool's wall time, start-up and shut-down included (for the runner this
#               includes compiling the wasm component and the 50 ms ramp-up)
#   req/s       requests / wall s
#   CPU s       user + sys CPU seconds of the tool's process
#   req/CPU-s   requests / CPU s: the efficiency figure, the one that matters when the load
#               generator, not the target, is the bottleneck
#   RSS MiB     the tool's peak resident set size
#   user us, sys us   the tool's user-space and kernel CPU microseconds per request: which side
#               of the syscall boundary a difference between the tools is on
#   ratio       median runner req/CPU-s / median wrk req/CPU-s (1.00 = as efficient as wrk)
#   KiB/VU      marginal memory per VU: (RSS(1000) - RSS(10)) / 990, (RSS(10000) - RSS(1000)) / 9000
#               (with the VU counts that actually started, as counted by nginx)
#   start s     seconds from the first VU's start to the last VU started (or failed)
#   running / failed   VUs that started / could not start, from the runner's stderr
#
# Environment
#   DURATION=10s      length of each load run
#   ROUNDS=3          wrk/runner rounds (0 skips the throughput part)
#   PORT=18080        first port tried for nginx (the next free one is used)
#   MEMORY_MAX=10000  largest idle VU count measured (0 skips the memory part)
#   PAGE_KIB=64       size of the page fetched by the memory part's second table (0 skips it)
#   START_VUS=10000   idle VUs started at once for the start-time part (0 skips it)
#   START_ROUNDS=3    rounds of the start-time part (each with and without first requests)
#   MANY_VUS=100000   idle VUs without connections in one process (0 skips it; needs
#                     vm.max_map_count of 7 per VU and about 64 KiB of free memory per VU)
#   FLAT=1            0 skips the RSS-vs-requests part (100,000 and 1,000,000 requests)
#   FLAT_ROUNDS=3     rounds of that part (its ratio is of the medians of peak RSS)
#   FLAT_LONG=1       0 leaves the 3,000,000-request runs out of that part
#   PACED_VUS=500     VUs of the paced part, each waiting about 1 s, then about 3 s between
#                     requests, for 2 s and for 22 s (0 skips it)
#   WIDE=500          connections/VUs of a second throughput part, the same but wider: how
#                     the cost per request grows with the VUs (0 skips it)
#   INSTRUCTIONS=1    0 skips the instruction counts (about 2 minutes per build)
#   RUNNER=...        runner binary (default target/dist/runner, the build users run)
#   PROBE=...         probe component (default guest-examples/target/wasm32-wasip2/release/probe.wasm)
#   KEEP_LOGS=1       keep the temp dir: each run's stdout/stderr and nginx's error.log
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
RUNNER="${RUNNER:-$root/target/dist/runner}"
PROBE="${PROBE:-$root/guest-examples/target/wasm32-wasip2/release/probe.wasm}"
DURATION="${DURATION:-10s}"
ROUNDS="${ROUNDS:-3}"
PORT="${PORT:-18080}"
MEMORY_MAX="${MEMORY_MAX:-10000}"
PAGE_KIB="${PAGE_KIB:-64}"
START_VUS="${START_VUS:-10000}"
START_ROUNDS="${START_ROUNDS:-3}"
MANY_VUS="${MANY_VUS:-100000}"
FLAT="${FLAT:-1}"
FLAT_ROUNDS="${FLAT_ROUNDS:-3}"
FLAT_LONG="${FLAT_LONG:-1}"
PACED_VUS="${PACED_VUS:-500}"
WIDE="${WIDE:-500}"
INSTRUCTIONS="${INSTRUCTIONS:-1}"
# NO_LIMITS=1 adds "nolimits": the same runner with WASMLOAD_BENCH_NO_LIMITS=1 (no epoch
# interruption, no memory limiter), to show what the guest limits cost.
NO_LIMITS="${NO_LIMITS:-0}"
# BASELINE=PATH adds "baseline": another runner binary (an earlier commit), for A/B.
BASELINE="${BASELINE:-}"
# Runners from before the web UI (53a9781 and older) have no --headless; later ones need it.
baseline_flags=()
if [[ -n "$BASELINE" ]] && "$BASELINE" run --help 2>/dev/null | grep -q -- --headless; then
    baseline_flags=(--headless)
fi
tools=(wrk runner)
[[ "$NO_LIMITS" == 1 ]] && tools+=(nolimits)
[[ -n "$BASELINE" ]] && tools+=(baseline)

die() { echo "error: $*" >&2; exit 1; }
[[ -x "$RUNNER" ]] || die "runner binary not found at $RUNNER (scripts/build-dist.sh, or set RUNNER)"
[[ -f "$PROBE" ]] || die "probe component not found at $PROBE (cargo build --release --target wasm32-wasip2 --manifest-path guest-examples/Cargo.toml, or set PROBE)"
(( $(nproc) >= 2 )) || die "needs at least 2 cores (nginx on core 0, the load generator on core 1)"

# --- tools -------------------------------------------------------------------------------
missing=()
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
command -v wrk >/dev/null || missing+=(wrk)
[[ -x /usr/bin/time ]] || missing+=(time)
command -v curl >/dev/null || missing+=(curl)
command -v python3 >/dev/null || missing+=(python3)
[[ "$INSTRUCTIONS" == 0 ]] || command -v valgrind >/dev/null || missing+=(valgrind)
if (( ${#missing[@]} )); then
    echo "Installing ${missing[*]}..."
    sudo=""; (( EUID == 0 )) || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    # If the package starts the system nginx, it is left alone: the benchmark uses its own.
fi
export PATH="$PATH:/usr/sbin"

# --- nginx -------------------------------------------------------------------------------
tmp="$(mktemp -d /tmp/runner-bench.XXXXXX)"
chmod 755 "$tmp"
nginx_pid=""
cleanup() {
    if [[ -n "$nginx_pid" ]] && kill -0 "$nginx_pid" 2>/dev/null; then
        kill -QUIT "$nginx_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$nginx_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$nginx_pid" 2>/dev/null || true
    fi
    if [[ "${KEEP_LOGS:-0}" == 1 ]]; then echo "logs kept in $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in $(seq 20); do port_in_use "$PORT" || break; PORT=$((PORT + 1)); done
port_in_use "$PORT" && die "no free port found near $PORT"
base="http://127.0.0.1:$PORT"

mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile $(ulimit -Hn);
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/error.log;
events { worker_connections 16384; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    client_body_temp_path $tmp/nginx/client_body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    server {
        listen 127.0.0.1:$PORT;
        location / { return 200 "ok"; }
        location = /nginx_status { stub_status; }
        location = /page { default_type text/html; alias $tmp/nginx/page.html; }
    }
}
EOF
# A page of PAGE_KIB for the memory part's second table.
head -c "$((PAGE_KIB * 1024))" /dev/zero | tr '\0' 'x' >"$tmp/nginx/page.html"
taskset -c 0 nginx -p "$tmp/nginx" -e "$tmp/error.log" -c "$tmp/nginx/nginx.conf" &
nginx_pid=$!
for _ in $(seq 50); do curl -fs "$base/nginx_status" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "$base/nginx_status" >/dev/null || { cat "$tmp/error.log" >&2; die "nginx did not start"; }

# The `requests` counter of stub_status: third number of the third line.
nginx_requests() { curl -fs "$base/nginx_status" | awk 'NR == 3 { print $3 }'; }

# --- measuring ---------------------------------------------------------------------------
# measure NAME CMD...: runs CMD under GNU time; sets m_requests, m_wall, m_user, m_sys,
# m_rss_kib and m_status; CMD's stdout/stderr go to $tmp/NAME.out / $tmp/NAME.err.
measure() {
    local name="$1"; shift
    local before after
    before="$(nginx_requests)"
    m_status=0
    /usr/bin/time -f '%e %U %S %M' -o "$tmp/$name.time" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" || m_status=$?
    after="$(nginx_requests)"
    m_requests=$((after - before - 1)) # the `after` stub_status request counts itself
    # GNU time prefixes "Command exited with non-zero status N" on failure: take the last line.
    read -r m_wall m_user m_sys m_rss_kib < <(tail -n 1 "$tmp/$name.time")
}

# sample_pss SECONDS FILE: after SECONDS, the proportional set size (KiB) of the newest
# runner process, its page tables (VmPTE, KiB) and its memory maps, into FILE as
# "PSS PTE MAPS". PSS counts a page mapped N times as 1/N per mapping, so the copy-on-write
# memory image all VUs share counts once, where RSS counts it once per VU. Page tables are
# memory the kernel spends on the process that neither RSS nor PSS counts.
sample_pss() {
    sleep "$1"
    local pid pss pte maps
    pid="$(pgrep -n -f -- "$RUNNER run")" || return 0
    pss="$(awk '/^Pss:/ { print $2 }' "/proc/$pid/smaps_rollup" 2>/dev/null)" || return 0
    pte="$(awk '/^VmPTE:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)" || return 0
    maps="$(wc -l <"/proc/$pid/maps" 2>/dev/null)" || return 0
    echo "$pss $pte $maps" >"$2"
}

calc() { awk "BEGIN { printf \"$1\", $2 }"; }
# per_request_us SECONDS: microseconds per request of the last measure (0 requests count as 1).
per_request_us() { calc '%.2f' "$1 * 1000000 / ($m_requests > 0 ? $m_requests : 1)"; }
# must_succeed NAME WHAT: stops the benchmark, with the run's stderr, if the last measure failed.
must_succeed() {
    (( m_status == 0 )) && return 0
    echo "$2 failed (exit $m_status):" >&2
    cat "$tmp/$1.err" >&2
    exit 1
}
source "$root/tests/bench/lib.sh"

# The issue's goals as this run measured them, one line per goal, printed last ("Goals").
goals=()
# goal NAME TARGET MEASURED MET(1/0) [REFERENCE]
# (MET "-": a reference line, no verdict)
goal() {
    local verdict="NOT met"
    [[ "$4" == 1 ]] && verdict="met"
    [[ "$4" == - ]] && verdict="-"
    goals+=("$(printf '%-36s %-10s %-12s %-8s %s' "$1" "$2" "$3" "$verdict" "${5:-}")")
}
# at_least A B / at_most A B: prints 1 if A >= B (A <= B), else 0; an A that is not a number
# (a figure that could not be measured, "-") is 0.
at_least() { awk -v a="$1" -v b="$2" 'BEGIN { print (a ~ /^[0-9.]+$/ && a + 0 >= b + 0) ? 1 : 0 }'; }
at_most() { awk -v a="$1" -v b="$2" 'BEGIN { print (a ~ /^[0-9.]+$/ && a + 0 <= b + 0) ? 1 : 0 }'; }

# --- machine facts -----------------------------------------------------------------------
echo "== Machine"
echo "cores:   $(nproc)"
echo "cpu:     $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
echo "kernel:  $(uname -r)   vm.max_map_count: $(cat /proc/sys/vm/max_map_count 2>/dev/null || echo '?')"
echo "nginx:   $(nginx -v 2>&1)"
echo "wrk:     $(wrk -v 2>&1 | head -n 1)"
echo "runner:  $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo ' (uncommitted changes)')  $RUNNER"
echo "target:  nginx, 1 worker on core 0, $base/ (200 \"ok\"); load generators on core 1"
echo

# --- the kernel's floor under the start time -----------------------------------------------
# Before anything else connects: a C program on core 1 opening START_VUS connections to nginx
# one by one (tests/bench/connect_floor.c), then again with a request each. Sockets left in
# TIME_WAIT by earlier runs make its connects (the kernel's search for a free local port)
# several times dearer, so their number is printed with it. Shown in the start-time part.
floor_lines=()
if (( START_VUS > 0 )); then
    if command -v cc >/dev/null && cc -O2 -o "$tmp/connect_floor" "$root/tests/bench/connect_floor.c" 2>"$tmp/cc.err"; then
        waiting="?"
        if command -v ss >/dev/null; then waiting="$(ss -tan state time-wait | tail -n +2 | wc -l)"; fi
        for mode in connect request; do
            line="$( (ulimit -n "$(ulimit -Hn)"; taskset -c 1 "$tmp/connect_floor" "$PORT" "$START_VUS" "$mode") 2>&1 | tail -n 1)"
            floor_lines+=("$(printf 'floor, %-8s %s' "$mode:" "$line")")
            [[ "$mode" == request ]] && floor_request_s="$(grep -oE '[0-9.]+ s CPU' <<<"$line" | cut -d' ' -f1)"
        done
        floor_lines+=("floor: what the kernel alone charges core 1 for $START_VUS blocking connections to nginx"
            "(connect), and for each also sending GET / and reading the response (request), from a C"
            "program (tests/bench/connect_floor.c) run before the benchmark's other parts, with $waiting"
            "sockets in TIME_WAIT on the machine.")
    else
        floor_lines+=("floor: skipped (no C compiler: cc)")
    fi
fi

# --- throughput and CPU ------------------------------------------------------------------
# throughput CONNECTIONS: ROUNDS alternating rounds of wrk -c CONNECTIONS and the runner with
# as many VUs (and nolimits, baseline); prints each run, the medians and the ratios, and sets
# median_rpc (per tool), ratio (runner / wrk of the medians) and round_ratios.
throughput() {
    local conns="$1" round tool cpu rps rpc rss user_us sys_us c cols
    echo "== Throughput: $conns connections/VUs for $DURATION, $ROUNDS rounds"
    row() { printf '%-7s %5s %10s %7s %9s %7s %10s %8s %9s %8s\n' "$@"; }
    row tool round requests "wall s" "req/s" "CPU s" "req/CPU-s" "RSS MiB" "user us" "sys us"
    declare -A results=()
    for round in $(seq "$ROUNDS"); do
        for tool in "${tools[@]}"; do
            case $tool in
                wrk) measure "wrk-$conns-$round" taskset -c 1 wrk -t1 -c"$conns" -d"$DURATION" "$base/" ;;
                runner) measure "runner-$conns-$round" taskset -c 1 "$RUNNER" run "$PROBE" --headless --host "$base" \
                    -u "$conns" -r 1000 -t "$DURATION" -q ;;
                nolimits) measure "nolimits-$conns-$round" env WASMLOAD_BENCH_NO_LIMITS=1 taskset -c 1 "$RUNNER" run "$PROBE" \
                    --headless --host "$base" -u "$conns" -r 1000 -t "$DURATION" -q ;;
                baseline) measure "baseline-$conns-$round" taskset -c 1 "$BASELINE" run "$PROBE" "${baseline_flags[@]}" --host "$base" \
                    -u "$conns" -r 1000 -t "$DURATION" -q ;;
            esac
            must_succeed "$tool-$conns-$round" "$tool round $round"
            cpu="$(calc '%.2f' "$m_user + $m_sys")"
            rps="$(calc '%.0f' "$m_requests / $m_wall")"
            rpc="$(calc '%.0f' "$m_requests / ($cpu > 0 ? $cpu : 0.01)")"
            rss="$(calc '%.1f' "$m_rss_kib / 1024")"
            user_us="$(per_request_us "$m_user")"
            sys_us="$(per_request_us "$m_sys")"
            row "$tool" "$round" "$m_requests" "$m_wall" "$rps" "$cpu" "$rpc" "$rss" "$user_us" "$sys_us"
            results[$tool]+="$m_requests $m_wall $rps $cpu $rpc $rss $user_us $sys_us"$'\n'
        done
    done
    echo
    echo "Medians"
    row tool "" requests "wall s" "req/s" "CPU s" "req/CPU-s" "RSS MiB" "user us" "sys us"
    median_rpc=()
    for tool in "${tools[@]}"; do
        cols=()
        for c in 1 2 3 4 5 6 7 8; do
            cols+=("$(printf '%s' "${results[$tool]}" | awk -v c="$c" 'NF { print $c }' | median)")
        done
        median_rpc[$tool]="${cols[4]}"
        row "$tool" "" "$(calc '%.0f' "${cols[0]}")" "${cols[1]}" "$(calc '%.0f' "${cols[2]}")" "${cols[3]}" \
            "$(calc '%.0f' "${cols[4]}")" "${cols[5]}" "${cols[6]}" "${cols[7]}"
    done
    echo "user us / sys us: the tool's user-space / kernel CPU microseconds per request (GNU time); the"
    echo "kernel part is mostly the loopback TCP path, which runs nginx's receive side on the sender's core"
    ratio="$(calc '%.2f' "${median_rpc[runner]} / ${median_rpc[wrk]}")"
    echo "ratio runner/wrk of req/CPU-s: $ratio"
    # On a noisy machine the rounds drift together: each runner round against the wrk round
    # just before it is steadier than the ratio of the medians.
    round_ratios="$(paste <(awk 'NF { print $5 }' <<<"${results[runner]}") <(awk 'NF { print $5 }' <<<"${results[wrk]}") |
        awk '{ printf "%.2f\n", $1 / $2 }')"
    echo "ratio per round (runner / the wrk run before it): $(echo $round_ratios), median $(median <<<"$round_ratios")"
    [[ -n "${median_rpc[nolimits]:-}" ]] &&
        echo "ratio runner/nolimits of req/CPU-s (the guest limits' cost): $(calc '%.3f' "${median_rpc[runner]} / ${median_rpc[nolimits]}")"
    [[ -n "${median_rpc[baseline]:-}" ]] &&
        echo "ratio runner/baseline of req/CPU-s: $(calc '%.3f' "${median_rpc[runner]} / ${median_rpc[baseline]}")"
    echo
}
declare -A median_rpc=()

if (( ROUNDS > 0 )); then
    throughput 50
    goal "requests per CPU-second (50 VUs)" ">= 100000" "${median_rpc[runner]}" "$(at_least "${median_rpc[runner]}" 100000)" \
        "wrk in the same run: ${median_rpc[wrk]}"
    goal "share of wrk's requests per CPU-s" ">= 0.70" "$ratio" "$(at_least "$ratio" 0.70)" \
        "per round: $(echo $round_ratios)"
    if (( WIDE > 0 )); then
        throughput "$WIDE"
        goal "share of wrk's at $WIDE VUs" "-" "$ratio" - \
            "runner ${median_rpc[runner]}, wrk ${median_rpc[wrk]} req/CPU-s; per round: $(echo $round_ratios)"
    fi
fi

# --- memory per VU -----------------------------------------------------------------------
if (( MEMORY_MAX > 0 )); then
    echo "== Memory: idle VUs (one request each, then a 10-minute wait), 6 s run"
    mrow() { printf '%6s %8s %8s %8s %8s %8s %8s %8s  %s\n' "$@"; }
    mrow VUs started "RSS MiB" "KiB/VU" "PSS MiB" "KiB/VU" "PT MiB" "KiB/VU" note
    previous_vus="" previous_rss="" previous_pss="" previous_pte=""
    for vus in 10 1000 10000; do
        (( vus <= MEMORY_MAX )) || continue
        name="memory-$vus"
        sample_pss 5 "$tmp/$name.pss" &
        sampler=$!
        measure "$name" taskset -c 1 "$RUNNER" run "$PROBE" --headless --host "$base" \
            -u "$vus" -r 20000 -t 6s --stop-timeout 1s -q --env PROBE_WAIT=constant:600000
        wait "$sampler" || true
        pss_kib="" pte_kib=""
        [[ -s "$tmp/$name.pss" ]] && read -r pss_kib pte_kib _ <"$tmp/$name.pss"
        # Each VU sends exactly one request, so nginx's count is the number of VUs that started.
        started="$m_requests"
        notes=()
        (( m_status == 0 )) || notes+=("exit status $m_status: $(tail -n 1 "$tmp/$name.err")")
        # Near the kernel's vm.max_map_count the runner copies memory images or warns on stderr,
        # and the VUs it cannot instantiate show up as "instantiate" task errors in its summary.
        if grep -q 'copying memory images' "$tmp/$name.err"; then notes+=("memory images copied (map limit)"); fi
        if grep -q '^Warning:.*max_map_count' "$tmp/$name.err"; then notes+=("runner warned about vm.max_map_count"); fi
        failed="$(awk '/TASK +instantiate:/ { n += $1 } END { print n + 0 }' "$tmp/$name.out")"
        if (( failed > 0 )); then
            why="$(grep -m 1 'TASK *instantiate:' "$tmp/$name.out" | sed -E 's/.*TASK +instantiate: //; s/^cannot create VU [0-9]+: //; s/; raise it.*//')"
            notes+=("$failed VUs failed to start: $why")
        fi
        per_vu="-" pss_per_vu="-" pss_mib="-" pte_per_vu="-" pte_mib="-"
        [[ -n "$pss_kib" ]] && pss_mib="$(calc '%.1f' "$pss_kib / 1024")"
        [[ -n "$pte_kib" ]] && pte_mib="$(calc '%.1f' "$pte_kib / 1024")"
        if [[ -n "$previous_vus" && $m_status -eq 0 ]] && (( started > previous_vus )); then
            per_vu="$(calc '%.1f' "($m_rss_kib - $previous_rss) / ($started - $previous_vus)")"
            if [[ -n "$pss_kib" && -n "$previous_pss" ]]; then
                pss_per_vu="$(calc '%.1f' "($pss_kib - $previous_pss) / ($started - $previous_vus)")"
                pte_per_vu="$(calc '%.1f' "($pte_kib - $previous_pte) / ($started - $previous_vus)")"
            fi
        fi
        note="$(IFS=';'; echo "${notes[*]:-}")"
        mrow "$vus" "$started" "$(calc '%.1f' "$m_rss_kib / 1024")" "$per_vu" "$pss_mib" "$pss_per_vu" \
            "$pte_mib" "$pte_per_vu" "${note//;/; }"
        case $vus in
            10) base_mib="$(calc '%.1f' "$m_rss_kib / 1024")"
                goal "base RSS (10 idle VUs)" "<= 20 MiB" "$base_mib MiB" "$(at_most "$base_mib" 20)" ;;
            1000) goal "KiB per idle VU (RSS, 10 -> 1,000)" "<= 24" "$per_vu" "$(at_most "$per_vu" 24)" "PSS: $pss_per_vu" ;;
        esac
        if (( m_status == 0 )); then
            previous_vus="$started" previous_rss="$m_rss_kib" previous_pss="$pss_kib" previous_pte="$pte_kib"
        fi
    done
    echo "started: VUs that sent their request (nginx's count). KiB/VU: RSS (peak), PSS or page"
    echo "tables (PT, the kernel's VmPTE; PSS and PT 5 s in) difference to the previous row /"
    echo "difference in started VUs. RSS counts a copy-on-write memory-image page once per VU"
    echo "that maps it; PSS counts it once; neither counts page tables. Each idle VU holds its"
    echo "wasm instance, its task and one kept-alive connection, and hibernates for its wait."
    echo
    if (( PAGE_KIB > 0 && MEMORY_MAX >= 1000 )); then
        echo "== Memory: idle VUs after one ${PAGE_KIB} KiB response (GET /page), 6 s run"
        previous_vus="" previous_rss=""
        for vus in 10 1000; do
            measure "page-$vus" taskset -c 1 "$RUNNER" run "$PROBE" --headless --host "$base" \
                -u "$vus" -r 20000 -t 6s --stop-timeout 1s -q --env PROBE_WAIT=constant:600000 \
                --env PROBE_TASKS=page:1:/page
            per_vu="-"
            if [[ -n "$previous_vus" && $m_status -eq 0 ]] && (( m_requests > previous_vus )); then
                per_vu="$(calc '%.1f' "($m_rss_kib - $previous_rss) / ($m_requests - $previous_vus)")"
            fi
            echo "$vus VUs: $m_requests started, peak RSS $(calc '%.1f' "$m_rss_kib / 1024") MiB, $per_vu KiB/VU"
            (( m_status == 0 )) && previous_vus="$m_requests" previous_rss="$m_rss_kib"
        done
        echo "A body the scenario does not read stays on the host (http.send-bare): KiB/VU as above."
        echo
    fi
fi

# --- time to start idle VUs --------------------------------------------------------------
if (( START_VUS > 0 )); then
    echo "== Start time: idle VUs all requested at once (-r 1000000), 5 s runs, $START_ROUNDS rounds"
    vus="$START_VUS"
    srow() { printf '%-14s %5s %9s %8s %7s %8s %8s %8s %7s  %s\n' "$@"; }
    srow "first request" round requested running failed "start s" nginx "RSS MiB" "KiB/VU" note
    declare -A start_secs=() start_all=([sent]=1 [none]=1 [both]=1)
    for round in $(seq "$START_ROUNDS"); do
    for variant in sent none both; do
        name="start-$vus-$variant-$round"
        quiet=() cores=1
        [[ "$variant" == none ]] && quiet=(--env PROBE_QUIET=1)
        [[ "$variant" == both ]] && cores=0,1
        measure "$name" taskset -c "$cores" "$RUNNER" run "$PROBE" --headless --host "$base" \
            -u "$vus" -r 1000000 -t 5s --stop-timeout 1s --env PROBE_WAIT=constant:600000 "${quiet[@]}"
        # e.g. "All users spawned: 9530 running, 470 failed to start, 1.68 s after the first"
        spawned="$(grep -o 'All users spawned:.*' "$tmp/$name.err" | head -n 1 || true)"
        running="-" failed="-" secs="-" per_vu="-"
        notes=()
        if [[ -n "$spawned" ]]; then
            running="$(sed -E 's/^All users spawned: ([0-9]+) running.*/\1/' <<<"$spawned")"
            failed="$(grep -oE '[0-9]+ failed to start' <<<"$spawned" | awk '{ print $1 }' || true)"
            failed="${failed:-0}"
            secs="$(sed -E 's/.* ([0-9.]+) s after the first.*/\1/' <<<"$spawned")"
            if (( running > 0 )); then per_vu="$(calc '%.1f' "$m_rss_kib / $running")"; fi
        else
            notes+=("no 'All users spawned' line on stderr")
        fi
        (( m_status == 0 )) || notes+=("exit status $m_status: $(tail -n 1 "$tmp/$name.err")")
        if grep -q 'copying memory images' "$tmp/$name.err"; then notes+=("memory images copied (map limit)"); fi
        if grep -q '^Warning:.*max_map_count' "$tmp/$name.err"; then notes+=("runner warned about vm.max_map_count"); fi
        note="$(IFS=';'; echo "${notes[*]:-}")"
        srow "$variant" "$round" "$vus" "$running" "$failed" "$secs" "$m_requests" \
            "$(calc '%.1f' "$m_rss_kib / 1024")" "$per_vu" "${note//;/; }"
        start_secs[$variant]+="$secs"$'\n'
        [[ "$running" == "$vus" ]] || start_all[$variant]=0
    done
    done
    for variant in sent none both; do
        rounds_secs="$(grep -E '^[0-9.]+$' <<<"${start_secs[$variant]}" || true)"
        median_secs=""
        [[ -n "$rounds_secs" ]] && median_secs="$(median <<<"$rounds_secs")"
        start_secs[$variant]="$median_secs"
        echo "$variant: median of $START_ROUNDS rounds ${median_secs:--} s$( ((start_all[$variant])) || echo ', not all VUs started')"
    done
    # start_goal VARIANT NAME REFERENCE: the goals-table line of a variant's median (met when
    # under 1 s and every VU of every round started).
    start_goal() {
        local met
        met="$(at_most "${start_secs[$1]}" 0.999)"
        (( start_all[$1] )) || met=0
        goal "$2" "< 1 s" "${start_secs[$1]:--} s" "$met" "median of $START_ROUNDS; $3"
    }
    start_goal sent "$vus VUs started (first requests)" \
        "the kernel alone: ${floor_request_s:-?} s of CPU for as many connections and requests"
    start_goal both "the same on both cores" "the runner's default, a worker per core, nginx on core 0 too"
    echo "start s: from the first VU's start to the last one started (or failed), from the runner's"
    echo "stderr. first request: sent = each VU opens its connection and sends its request while"
    echo "later VUs start, on the same core (the benchmark's figure); none = PROBE_QUIET=1, the VUs"
    echo "only instantiate and run on_start (what starting alone costs); both = sent, with the"
    echo "runner on both cores (its default: a worker per core), nginx still on core 0. nginx:"
    echo "requests served."
    echo "KiB/VU: peak RSS / running VUs, the runner's fixed memory included."
    printf '%s\n' "${floor_lines[@]}"
    echo
fi

# --- many idle VUs in one process -------------------------------------------------------
if (( MANY_VUS > 0 )); then
    echo "== $MANY_VUS idle VUs in one process (no connections), 30 s run"
    maps_needed=$((MANY_VUS * 7 + 1000))
    mem_needed_kib=$((MANY_VUS * 64))
    maps_now="$(cat /proc/sys/vm/max_map_count 2>/dev/null || echo 0)"
    mem_now_kib="$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)"
    if (( maps_now < maps_needed )); then
        echo "skipped: needs vm.max_map_count >= $maps_needed (7 maps per VU; it is $maps_now):"
        echo "         sysctl -w vm.max_map_count=1048576"
    elif (( mem_now_kib < mem_needed_kib )); then
        echo "skipped: needs about $((mem_needed_kib / 1024)) MiB of available memory; $((mem_now_kib / 1024)) MiB are"
    else
        name="many-$MANY_VUS"
        # Sampled once every VU has started: the line below appears on stderr then.
        (
            for _ in $(seq 600); do
                grep -q 'All users spawned' "$tmp/$name.err" 2>/dev/null && break
                sleep 0.1
            done
            sample_pss 1 "$tmp/$name.pss"
        ) &
        sampler=$!
        measure "$name" taskset -c 1 "$RUNNER" run "$PROBE" --headless --host "$base" \
            -u "$MANY_VUS" -r 1000000 -t 30s --stop-timeout 5s -q \
            --env PROBE_WAIT=constant:600000 --env PROBE_QUIET=1
        wait "$sampler" || true
        spawned="$(grep -o 'All users spawned:.*' "$tmp/$name.err" | head -n 1 || true)"
        echo "runner:  ${spawned:-no 'All users spawned' line on stderr}"
        (( m_status == 0 )) || echo "exit status $m_status: $(tail -n 1 "$tmp/$name.err")"
        grep -E '^(Note|Warning):' "$tmp/$name.err" | sed 's/^/         /' || true
        if [[ -s "$tmp/$name.pss" ]]; then
            read -r pss_kib pte_kib maps <"$tmp/$name.pss"
            running="$(sed -E 's/^All users spawned: ([0-9]+) running.*/\1/' <<<"$spawned")"
            running="${running:-$MANY_VUS}"
            printf '%-28s %10s %10s\n' "" total "per VU"
            printf '%-28s %8.1f MiB %7.1f KiB\n' "peak RSS" "$(calc '%f' "$m_rss_kib / 1024")" \
                "$(calc '%f' "$m_rss_kib / $running")"
            printf '%-28s %8.1f MiB %7.1f KiB\n' "PSS (1 s after all started)" "$(calc '%f' "$pss_kib / 1024")" \
                "$(calc '%f' "$pss_kib / $running")"
            printf '%-28s %8.1f MiB %7.1f KiB\n' "page tables (VmPTE)" "$(calc '%f' "$pte_kib / 1024")" \
                "$(calc '%f' "$pte_kib / $running")"
            printf '%-28s %10s %10s\n' "memory maps" "$maps" "$(calc '%.1f' "$maps / $running")"
        fi
        many_started="$(sed -E 's/^All users spawned: ([0-9]+) running.*/\1/' <<<"$spawned")"
        goal "$MANY_VUS idle VUs in one process" "all" "${many_started:-none}" "$([[ "$many_started" == "$MANY_VUS" ]] && echo 1 || echo 0)" \
            "$(calc '%.1f' "$m_rss_kib / $MANY_VUS") KiB of peak RSS per VU"
        echo "nginx:   $m_requests requests (the VUs send none: PROBE_QUIET=1)"
        echo "Each VU holds its instance and task, but no connection: one process may open only"
        echo "$(ulimit -Hn) files here (ulimit -Hn); a connection per VU needs a hard limit above the VU count"
        echo "and more than one target port (about 28,000 local ports per target address and port)."
    fi
    echo
fi

# --- paced requests ------------------------------------------------------------------------
# What a request costs when VUs wait between requests, as Locust and k6 scenarios do: a wait
# of 1 s or more makes each VU give its read buffer back first
# (limits::RELEASE_BUFFERS_BEFORE_WAIT), one of 3 s or more its host stack's pages too
# (limits::RELEASE_STACK_BEFORE_WAIT); 990 and 2990 ms are the waits just under each; and
# nginx idles between requests.
if (( PACED_VUS > 0 )); then
    echo "== Paced: $PACED_VUS VUs, each waiting between its requests, for 2 s and for 22 s"
    prow() { printf '%-8s %9s %8s %8s %8s %9s %8s\n' "$@"; }
    prow wait requests "wall s" "CPU s" "us/req" "marginal" "RSS MiB"
    for wait in 990 1000 2990 3000; do
        declare -A paced_cpu=() paced_requests=()
        for secs in 2 22; do
            name="paced-$wait-$secs"
            measure "$name" taskset -c 1 "$RUNNER" run "$PROBE" --headless --host "$base" \
                -u "$PACED_VUS" -r 1000000 -t "${secs}s" --stop-timeout 1s -q --env "PROBE_WAIT=constant:$wait"
            must_succeed "$name" "paced runner ($wait ms, $secs s)"
            paced_cpu[$secs]="$(calc '%.2f' "$m_user + $m_sys")"
            paced_requests[$secs]="$m_requests"
        done
        extra=$((paced_requests[22] - paced_requests[2]))
        marginal="-"
        if (( extra > 0 )); then
            marginal="$(calc '%.1f' "(${paced_cpu[22]} - ${paced_cpu[2]}) * 1000000 / $extra")"
        fi
        prow "$wait ms" "${paced_requests[22]}" "$m_wall" "${paced_cpu[22]}" "$(per_request_us "${paced_cpu[22]}")" \
            "$marginal" "$(calc '%.1f' "$m_rss_kib / 1024")"
    done
    echo "us/req: the 22 s run's CPU (starting and stopping the VUs included) / requests nginx served."
    echo "marginal: the CPU the 20 s more cost / the requests they added, which leaves starting and"
    echo "stopping out. RSS: the 22 s run's peak. From 1000 ms each VU gives its connection's read"
    echo "buffer back before every wait, from 3000 ms its host stack's pages too (faulted back in by"
    echo "its next task); 990 and 2990 ms keep them. Compare a request in the tight loop of the"
    echo "throughput part (user us + sys us)."
    echo
fi

# --- RSS flat in the number of requests --------------------------------------------------
if [[ "$FLAT" != 0 ]]; then
    flat_iterations=(2000 20000) flat_what="100,000 and 1,000,000"
    if [[ "$FLAT_LONG" != 0 ]]; then
        flat_iterations+=(60000) flat_what="100,000, 1,000,000 and 3,000,000"
    fi
    echo "== RSS vs. requests: 50 VUs, no wait, exactly $flat_what requests, $FLAT_ROUNDS rounds"
    frow() { printf '%10s %6s %10s %10s %8s %8s\n' "$@"; }
    frow expected round nginx runner "wall s" "RSS MiB"
    declare -A flat_rss=()
    mismatches=()
    for round in $(seq "$FLAT_ROUNDS"); do
        for iterations in "${flat_iterations[@]}"; do
            expected=$((50 * iterations))
            name="flat-$expected-$round"
            measure "$name" taskset -c 1 "$RUNNER" run "$PROBE" --headless --host "$base" \
                -u 50 -r 1000 --iterations "$iterations" -q --json "$tmp/$name.json"
            must_succeed "$name" "runner with $expected requests"
            reported="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["aggregated"]["requests"])' \
                "$tmp/$name.json")"
            flat_rss[$expected]+="$m_rss_kib"$'\n'
            frow "$expected" "$round" "$m_requests" "$reported" "$m_wall" "$(calc '%.1f' "$m_rss_kib / 1024")"
            if (( reported != m_requests || m_requests != expected )); then
                mismatches+=("$expected (round $round): runner reported $reported, nginx counted $m_requests")
            fi
        done
    done
    for expected in "${!flat_rss[@]}"; do
        flat_rss[$expected]="$(printf '%s' "${flat_rss[$expected]}" | median)"
    done
    # rss_ratio MORE FEWER / rss_mib MORE FEWER: the median peak RSS after MORE requests over
    # that after FEWER, and both in MiB.
    rss_ratio() { calc '%.2f' "${flat_rss[$1]} / ${flat_rss[$2]}"; }
    rss_mib() { calc '(%.1f / %.1f MiB)' "${flat_rss[$1]} / 1024, ${flat_rss[$2]} / 1024"; }
    flat_ratio="$(rss_ratio 1000000 100000)"
    echo "RSS ratio 1M/100k of the medians: $flat_ratio $(rss_mib 1000000 100000)"
    if [[ "$FLAT_LONG" != 0 ]]; then
        long_ratio="$(rss_ratio 3000000 1000000)"
        echo "RSS ratio 3M/1M of the medians: $long_ratio $(rss_mib 3000000 1000000)"
    fi
    echo "RSS: peak (GNU time). It moves by a few hundred KiB between runs of the same build (the"
    echo "binary's pages mapped), hence the rounds. It also grows during a run's first 10 s or so"
    echo "(among other things, the 10 s of per-second statistics behind the live figures fill),"
    if [[ "$FLAT_LONG" != 0 ]]; then
        echo "which the 100,000-request run ends before and the 1M and 3M runs outlast: 3M / 1M is"
        echo "the growth with requests alone."
    else
        echo "which the 100,000-request run ends before: 1M / 100k includes it."
    fi
    goal "RSS flat in requests (1M / 100k)" "<= 1.05" "$flat_ratio" "$(at_most "$flat_ratio" 1.05)"
    if [[ "$FLAT_LONG" != 0 ]]; then
        goal "the same, 3M / 1M requests" "-" "$long_ratio" - "both past the live figures' 10 s window"
    fi
    if (( ${#mismatches[@]} == 0 )); then
        echo "counts match (runner == nginx == 50 VUs x iterations)"
        goal "request counts, runner vs nginx" "equal" "equal" 1
    else
        for m in "${mismatches[@]}"; do echo "MISMATCH for $m"; done
        goal "request counts, runner vs nginx" "equal" "MISMATCH" 0
    fi
    echo
fi

# --- instructions -------------------------------------------------------------------------
if [[ "$INSTRUCTIONS" != 0 ]]; then
    echo "== Instructions (tests/bench/instructions.sh, against the runner's built-in target)"
    builds=("$RUNNER")
    [[ -n "$BASELINE" ]] && builds+=("$BASELINE")
    # Its own rounds (3), not the throughput part's; the per-round lines go to stderr.
    ROUNDS=3 TOP=0 "$root/tests/bench/instructions.sh" "${builds[@]}" 2>"$tmp/instructions.err" \
        || { tail -n 5 "$tmp/instructions.err"; echo "(the instruction counts failed; the other parts stand)"; }
    echo
fi

# --- goals -------------------------------------------------------------------------------
if (( ${#goals[@]} > 0 )); then
    echo "== Goals (issue 3) as this run measured them"
    printf '%-36s %-10s %-12s %-8s %s\n' goal target measured verdict reference
    printf '%s\n' "${goals[@]}"
    echo "The absolute targets (requests per CPU-second, start time) were set on a machine where wrk"
    echo "reached 141,000 requests per CPU-second; the reference column is this machine's own."
fi
