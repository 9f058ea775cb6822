#!/usr/bin/env bash
# Every check CI runs: formatting, lints (host and guests), all tests, and that the WIT
# stays bindable from Python. The tests build the guest components themselves
# (tests/build.rs) and run the real runner against real servers on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2 >/dev/null 2>&1 || rustup target add wasm32-wasip2
rustup component add rustfmt clippy >/dev/null 2>&1 || true

# componentize-py (and the npm packages) for the Python and JavaScript scenario tests.
# (Assigned first, so a failed install stops the script: `eval "$(...)"` alone would not.)
tools_env="$(scripts/toolchains.sh)"
eval "$tools_env"

# The shell scripts (demo, PGO build, benchmark) at least parse; they run by hand.
for script in scripts/*.sh tests/bench/*.sh; do bash -n "$script"; done
cargo fmt --all --check
(cd guest-examples && cargo fmt --all --check)
cargo clippy --release --workspace --all-targets -- -D warnings
(cd guest-examples && cargo clippy --release --target wasm32-wasip2 -- -D warnings)
(cd tests/guests && cargo fmt --all --check && cargo clippy --release --target wasm32-wasip2 -- -D warnings)
cargo test --release --workspace
scripts/check-wit.sh
