#!/usr/bin/env bash
# Regenerate testdata/explain/openshift-router.log: a real HAProxy (the Debian/Ubuntu `haproxy`
# package; the OpenShift router is HAProxy) on 127.0.0.8:8080 with backends named as the
# OpenShift router names them (be_http/be_secure:<namespace>:<route>, servers
# pod:<pod>:<service>:<port name>:<ip>:<port>, openshift_default), in front of a small HTTP
# server on 127.0.0.7:8443 (backend.py). One request per scenario; HAProxy writes its
# `option httplog` lines to standard output. Timeouts are shortened (1 s) so a run takes
# seconds; the OpenShift router's defaults are 30 s (server) and 5 s (connect).
# Usage: scripts/haproxy-lab/run.sh [OUT]   (default: testdata/explain/openshift-router.log)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/../../testdata/explain/openshift-router.log}"
command -v haproxy >/dev/null || { echo "haproxy-lab: install haproxy (apt-get install haproxy)" >&2; exit 2; }
tmp="$(mktemp -d)"
cleanup() { kill "${hap:-}" "${be:-}" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
cd "$here"
timeout 60 python3 backend.py 2>/dev/null & be=$!
timeout 60 haproxy -f haproxy.cfg -db >"$tmp/lines" 2>"$tmp/err" & hap=$!
sleep 1
c() { # host [max-time] [path]
    curl -s -o /dev/null --max-time "${2:-10}" -H "Host: $1" -H 'Content-Type: application/json' \
        -d '{"prompt":"hi"}' "http://127.0.0.8:8080${3:-/v1/completions}" || true
}
c granite-aiproject.apps.example.com                               # 200 ----
c granite-aiproject.apps.example.com 10 /forbidden/v1/completions  # 403 from the pod
c slow-aiproject.apps.example.com 10 /slow/v1/completions          # 504 sH-- (server timeout)
c down-aiproject.apps.example.com                                  # 503 SC-- (refused)
c noready-aiproject.apps.example.com                               # 503 <NOSRV> (no ready server)
c unknown.apps.example.com 10 /                                    # 503 openshift_default
c granite-aiproject.apps.example.com 1 /slow/v1/completions        # the client gives up first
c granite-aiproject.apps.example.com 10 /crash                     # 502 SH-- (closed, no answer)
python3 -c "
import socket, time
s = socket.create_connection(('127.0.0.8', 8080))
s.send(b'POST /v1/completions HTTP/1.1\r\nHost: granite')
time.sleep(1.5)
s.close()"                                                         # 408 cR-- (incomplete request)
sleep 3.5
kill "$hap" "$be" 2>/dev/null || true
wait "$hap" 2>/dev/null || true
grep -v '^\[' "$tmp/lines" >"$out"
echo "haproxy-lab: $(wc -l <"$out") lines in $out ($(haproxy -v | head -1))"
