#!/usr/bin/env bash
# Makes the runner's training profile for profile-guided optimisation (runner/pgo/), then
# builds `dist` with it (scripts/build-dist.sh). Run it when much of the hot path has
# changed since the checked-in profile was made, or for another rustc, and commit runner/pgo/.
#
#     scripts/build-pgo.sh            -> runner/pgo/*, then target/dist/runner
#
# Steps: an instrumented `dist` build (in target/pgo-generate), a training run of it against
# the built-in target on 127.0.0.1 (about 30 s: the probe plan's tight loop with 50 VUs, a
# burst of 2,000 idle VUs, 200 paced VUs, the shop demo), its counts merged (only the
# functions the training ran: `llvm-profdata merge --sparse`) and compressed into
# runner/pgo/runner.profdata.gz, with runner/pgo/made-with.txt saying which rustc and commit
# made it. About 25 minutes from nothing on 2 cores, the final build included. Needs
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

# The code the profile is made from (its own files aside).
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD -- runner sdk wit ':!runner/pgo' 2>/dev/null || commit="$commit with uncommitted changes"

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
# A plan cache of its own, empty: the first run compiles the plan (Cranelift's path into the
# profile), the later ones load it, whatever the user's cache holds. Without it, a warm cache
# left compilation out (2,504 functions in the profile instead of 5,727).
export WASMLOAD_CACHE_DIR="$profiles/plan-cache"
training=(
    # Requests in a tight loop, as the throughput benchmark runs them.
    "probe.wasm -u 50 -r 1000 -t 8s"
    # A burst of idle VUs: starting, the first request, hibernating, stopping.
    "probe.wasm -u 2000 -r 1000000 -t 3s --stop-timeout 5s --env PROBE_WAIT=constant:600000"
    # Paced VUs, which wake from short waits.
    "probe.wasm -u 200 -r 1000 -t 4s --env PROBE_WAIT=constant:100"
    # The demo plan: sessions, cookies, checks, JSON.
    "shop.wasm -u 20 -r 100 -t 5s"
)
for args in "${training[@]}"; do
    read -ra words <<<"$args"
    "$trainee" run "$guests/${words[0]}" "${words[@]:1}" --headless --host "$url" -q >/dev/null 2>&1 || true
done
kill "$target_pid" 2>/dev/null || true
wait "$target_pid" 2>/dev/null || true
trap - EXIT
ls "$profiles"/*.profraw >/dev/null 2>&1 || { echo "error: the training run wrote no profile" >&2; exit 1; }
"$profdata" merge --sparse -o "$profiles/merged.profdata" "$profiles"/*.profraw
mkdir -p runner/pgo
gzip -9 -n -c "$profiles/merged.profdata" >runner/pgo/runner.profdata.gz
{
    echo "# The training profile of scripts/build-pgo.sh, read by scripts/build-dist.sh."
    echo "rustc: $(rustc -V)"
    echo "llvm: $(rustc -vV | sed -n 's/^LLVM version: //p')"
    echo "commit: $commit"
    echo "made: $(date -u +%Y-%m-%d)"
    printf 'training: runner run %s\n' "${training[@]}"
} >runner/pgo/made-with.txt
echo "wrote runner/pgo/runner.profdata.gz ($(du -k runner/pgo/runner.profdata.gz | cut -f1) KiB) and runner/pgo/made-with.txt" >&2

echo "== 3/3: optimised build" >&2
exec scripts/build-dist.sh
