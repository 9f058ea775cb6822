#!/usr/bin/env bash
# Installs the guest-language toolchains `runner build` uses, from the package registries,
# into a folder of their own (default ~/.cache/wasmload/tools; WASMLOAD_TOOLS overrides), and
# prints the environment that points the runner at them:
#
#   eval "$(scripts/toolchains.sh)"
#
# - Python: componentize-py, in a virtual environment.
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
