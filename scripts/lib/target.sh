# Sourced by scripts that load the runner's built-in target (scripts/build-pgo.sh,
# tests/bench/busy_guest.sh).
#
#     start_target BIN [NAME=VALUE...]
#
# Starts `BIN target --port 0` in the background, with the given environment, and sets
# target_pid and target_url (http://127.0.0.1:PORT, read from the target's "listening on"
# line: the port is the one it bound, so no other process can take it in between). The
# caller stops target_pid.
start_target() {
    local bin="$1" log
    shift
    log="$(mktemp)"
    env "$@" "$bin" target --port 0 >/dev/null 2>"$log" &
    target_pid=$!
    target_url=""
    for _ in $(seq 100); do
        target_url="$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$log" | head -n 1 || true)"
        [[ -n "$target_url" ]] && break
        kill -0 "$target_pid" 2>/dev/null || break
        sleep 0.1
    done
    rm -f "$log"
    [[ -n "$target_url" ]] || { echo "error: the built-in target did not start ($bin target --port 0)" >&2; return 1; }
}
