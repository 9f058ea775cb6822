#!/usr/bin/env bash
# Builds the runner with profile-guided optimisation: the `dist` build (whole-program
# optimisation) laid out and inlined by where a load test actually spends its time.
#
#     scripts/build-pgo.sh            -> target/pgo/runner (or $CARGO_TARGET_DIR/pgo/runner)
#
# Three steps, about twice the time of `scripts/demo.sh`'s build: an instrumented `dist`
# build (in target/pgo-generate), a training run of it against the built-in target on
# 127.0.0.1 (the probe plan's tight loop with 50 VUs, a burst of 2,000 idle VUs, the shop
# demo; about 30 s), then the `pgo` profile (= `dist`) built with the merged profile. Needs
# rustup's llvm-tools component (installed here if missing) for llvm-profdata.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="${CARGO_TARGET_DIR:-target}"
guests="${CARGO_TARGET_DIR:-guest-examples/target}/wasm32-wasip2/release"
profiles="$target_dir/pgo-profiles"

rustup target add wasm32-wasip2 >/dev/null 2>&1 || rustup target add wasm32-wasip2
rustup component add llvm-tools >/dev/null 2>&1 || rustup component add llvm-tools
host="$(rustc -vV | sed -n 's/^host: //p')"
profdata="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
[[ -x "$profdata" ]] || { echo "error: llvm-profdata not found at $profdata (rustup component add llvm-tools)" >&2; exit 1; }

cargo build --release --target wasm32-wasip2 --manifest-path guest-examples/Cargo.toml

echo "== 1/3: instrumented build" >&2
rm -rf "$profiles"
mkdir -p "$profiles"
profiles="$(cd "$profiles" && pwd)"
RUSTFLAGS="-Cprofile-generate=$profiles" cargo build --profile dist -p runner --target-dir "$target_dir/pgo-generate"
trainee="$target_dir/pgo-generate/dist/runner"
# The build scripts and proc-macros built with the same flags wrote their own profiles.
rm -f "$profiles"/*.profraw

echo "== 2/3: training run" >&2
source scripts/lib/target.sh
# The target's own profile is left out: it is the server, not the load generator.
start_target "$trainee" LLVM_PROFILE_FILE=/dev/null
trap 'kill "$target_pid" 2>/dev/null || true' EXIT
url="$target_url"
ulimit -n "$(ulimit -Hn)"
train() { "$trainee" run "$@" --headless --host "$url" -q >/dev/null 2>&1 || true; }
# Requests in a tight loop, as the throughput benchmark runs them.
train "$guests/probe.wasm" -u 50 -r 1000 -t 8s
# A burst of idle VUs: starting, the first request, hibernating, stopping.
train "$guests/probe.wasm" -u 2000 -r 1000000 -t 3s --stop-timeout 5s --env PROBE_WAIT=constant:600000
# Paced VUs, which wake from short waits.
train "$guests/probe.wasm" -u 200 -r 1000 -t 4s --env PROBE_WAIT=constant:100
# The demo plan: sessions, cookies, checks, JSON.
train "$guests/shop.wasm" -u 20 -r 100 -t 5s
kill "$target_pid" 2>/dev/null || true
wait "$target_pid" 2>/dev/null || true
trap - EXIT
ls "$profiles"/*.profraw >/dev/null 2>&1 || { echo "error: the training run wrote no profile" >&2; exit 1; }
"$profdata" merge -o "$profiles/merged.profdata" "$profiles"/*.profraw

echo "== 3/3: optimised build" >&2
RUSTFLAGS="-Cprofile-use=$profiles/merged.profdata" cargo build --profile pgo -p runner
echo "built $target_dir/pgo/runner" >&2
