# Sourced by start_ab.sh and throughput_ab.sh, which take the same arguments: URL ROUNDS BIN...
# Sets root, PROBE, url, rounds and bins, or exits with the usage or the reason.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PROBE="${PROBE:-$root/guest-examples/target/wasm32-wasip2/release/probe.wasm}"
usage="usage: $(basename "$0") URL ROUNDS BIN..."
url="${1:?$usage}"
rounds="${2:?$usage}"
shift 2
(( $# > 0 )) || { echo "error: name at least one runner binary" >&2; exit 1; }
bins=("$@")
case "$url" in
    http://127.0.0.1:* | http://localhost:*) ;;
    *) echo "error: the URL must be a local server (http://127.0.0.1:PORT)" >&2; exit 1 ;;
esac
