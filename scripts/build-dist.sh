#!/usr/bin/env bash
# Builds the runner as users run it: the `dist` profile (whole-program optimisation, see
# Cargo.toml), laid out and inlined by the checked-in training profile in runner/pgo/
# (profile-guided optimisation) when this toolchain is the one that made it.
#
#     scripts/build-dist.sh           -> target/dist/runner (or $CARGO_TARGET_DIR/dist/runner)
#     PGO=0 scripts/build-dist.sh     the same build without the profile (for comparisons)
#
# The profile (runner/pgo/runner.profdata.gz) comes from scripts/build-pgo.sh. It is matched
# to the code function by function: a function changed since it was made is built as without
# a profile (rustc warns "function control flow change detected" for each), the rest keep
# theirs, so it ages gently; refresh it with scripts/build-pgo.sh when many have changed.
# LLVM reads a profile only with the rustc that wrote it (same LLVM, same code generation),
# so with another rustc the build goes on without it and says so.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="${CARGO_TARGET_DIR:-target}"
profile=runner/pgo/runner.profdata.gz
made_with="$(sed -n 's/^rustc: //p' runner/pgo/made-with.txt 2>/dev/null || true)"
have="$(rustc -V)"

if [[ "${PGO:-1}" == 0 ]]; then
    echo "Building without the training profile (PGO=0)" >&2
elif [[ ! -f "$profile" || -z "$made_with" ]]; then
    echo "Note: no training profile in runner/pgo/ (scripts/build-pgo.sh makes one); building without it" >&2
elif [[ "$made_with" != "$have" ]]; then
    echo "Note: the training profile in runner/pgo/ was made with $made_with, this is $have; building without it (scripts/build-pgo.sh makes one for this toolchain)" >&2
else
    # Named by its content: rustc tracks -Cprofile-use by path, so a new profile must have a
    # new path for cargo to rebuild with it.
    sum="$(sha256sum "$profile" | cut -c1-16)"
    unpacked="$target_dir/pgo-profile/$sum.profdata"
    if [[ ! -f "$unpacked" ]]; then
        mkdir -p "$target_dir/pgo-profile"
        gzip -dc "$profile" >"$unpacked.tmp"
        mv "$unpacked.tmp" "$unpacked"
    fi
    unpacked="$(cd "$(dirname "$unpacked")" && pwd)/$(basename "$unpacked")"
    export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-Cprofile-use=$unpacked"
    echo "Building with the training profile runner/pgo/ (made from $(sed -n 's/^commit: //p' runner/pgo/made-with.txt))" >&2
fi
cargo build --profile dist -p runner
