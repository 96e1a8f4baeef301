#!/usr/bin/env bash
# Render `meshtrace report` for the seed 000 and seed 003 bundles and parse every Mermaid block
# with Mermaid's own parser (npm package `mermaid`, run in node with jsdom). Needs node and npm.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
work="${CARGO_TARGET_DIR:-$root/target}/mermaid-check"
mkdir -p "$work"
cp scripts/mermaid-check/package.json scripts/mermaid-check/check.mjs "$work/"
if [[ ! -d "$work/node_modules/mermaid" ]]; then
    (cd "$work" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi
cargo build -q
bin="${CARGO_TARGET_DIR:-$root/target}/debug/meshtrace"
status=0
for args in "4791d0d3-e742-4eac-8c56-4c87eb22f1a9 --bundle testdata/bundles/rhoai-400-app-error" \
            "211ebf7c-1bc2-4008-aa50-9730fa6300dc --bundle testdata/bundles/kind-rbac-403" \
            "10.134.1.22:48216 --bundle testdata/bundles/odh-out-of-mesh-client --redact"; do
    out="$work/report.md"
    # shellcheck disable=SC2086
    "$bin" report $args > "$out" || [[ $? -eq 1 ]]
    if node "$work/check.mjs" "$out"; then
        echo "mermaid: ok: report $args"
    else
        echo "mermaid: FAILED: report $args" >&2
        status=1
    fi
done
exit $status
