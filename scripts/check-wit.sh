#!/usr/bin/env bash
# Checks that the WIT contract in wit/ stays bindable from Python: componentize-py (from
# PyPI, pinned) must generate bindings for the `load-test` world. The same WIT is used by the
# Rust SDK (wit-bindgen) and the host (wasmtime bindgen), which the Rust build checks.
set -euo pipefail
cd "$(dirname "$0")/.."

tools_env="$(scripts/toolchains.sh)"
eval "$tools_env"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"$WASMLOAD_COMPONENTIZE_PY" -d wit -w load-test bindings "$out"
for module in exports/scenario.py imports/http.py imports/vu.py imports/metrics.py; do
    [[ -f "$out/wit_world/$module" ]] || { echo "componentize-py produced no wit_world/$module" >&2; exit 1; }
done
echo "componentize-py accepts wit/ (world load-test)"
