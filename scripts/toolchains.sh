#!/usr/bin/env bash
# Installs the guest-language toolchains `runner build` uses, from the package registries,
# into a folder of their own (default ~/.cache/wasmload/tools; WASMLOAD_TOOLS overrides), and
# prints the environment that points the runner at them:
#
#   eval "$(scripts/toolchains.sh)"
#
# - Python: componentize-py, in a virtual environment.
# - JavaScript: esbuild and componentize-qjs, from npm (Node.js must be installed).
# - The browser test: playwright-core from npm and Chromium from Debian (apt-get, as root).
# - C: clang, lld, wasi-libc and the wasm32 builtins from Debian (apt-get, as root).
# Installing again is a no-op; versions are pinned so plans build the same everywhere.
set -euo pipefail

tools="${WASMLOAD_TOOLS:-$HOME/.cache/wasmload/tools}"
mkdir -p "$tools"

venv="$tools/venv"
if [[ ! -x "$venv/bin/componentize-py" ]]; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "componentize-py==0.25.1" >&2
fi
echo "export WASMLOAD_COMPONENTIZE_PY='$venv/bin/componentize-py'"

node="$tools/node"
if [[ ! -x "$node/node_modules/.bin/componentize-qjs" || ! -x "$node/node_modules/.bin/esbuild" ]]; then
    mkdir -p "$node"
    npm install --prefix "$node" --no-audit --no-fund --silent esbuild@0.28.2 componentize-qjs@0.4.5 >&2
fi
echo "export WASMLOAD_NODE_MODULES='$node/node_modules'"

# The web UI's browser test: playwright-core (npm) driving Debian's Chromium.
if [[ ! -d "$node/node_modules/playwright-core" ]]; then
    npm install --prefix "$node" --no-audit --no-fund --silent playwright-core@1.65.1 >&2
fi
if ! command -v chromium >/dev/null; then
    { apt-get update -qq && apt-get install -y -qq chromium; } >&2
fi
echo "export WASMLOAD_CHROMIUM='$(command -v chromium)'"

# C: Debian's clang 14 with wasi-libc and the wasm32 compiler-rt builtins (clang links them
# into every module; without them every link fails). Bindings and the component are made
# by `runner build` itself.
if ! command -v clang >/dev/null || ! command -v wasm-ld >/dev/null || [[ ! -f /usr/lib/wasm32-wasi/libc.a ]] ||
    ! compgen -G "/usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a" >/dev/null; then
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends clang lld wasi-libc libclang-rt-14-dev-wasm32; } >&2
fi
