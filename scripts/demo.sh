#!/usr/bin/env bash
# The demo: builds the runner and the example scenarios, then runs the shop example against
# the built-in target on 127.0.0.1 for 10 seconds with live progress and the summary.
# Extra arguments go to `runner demo` (e.g. -u 50 -t 30s).
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2 >/dev/null 2>&1 || rustup target add wasm32-wasip2
cargo build --release --target wasm32-wasip2 --manifest-path guest-examples/Cargo.toml
# The `dist` profile (whole-program and profile-guided optimisation) is what users run.
scripts/build-dist.sh
runner="${CARGO_TARGET_DIR:-target}/dist/runner"
plan="${CARGO_TARGET_DIR:-guest-examples/target}/wasm32-wasip2/release/shop.wasm"
exec "$runner" demo "$plan" "$@"
