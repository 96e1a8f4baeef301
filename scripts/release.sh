#!/usr/bin/env bash
# Package kubectl-meshtrace for krew and fill in the plugin manifest.
#
#   URL_BASE=https://github.com/<owner>/meshtrace/releases/download/v0.1.0 bash scripts/release.sh
#
# For each platform with a binary — linux/amd64: $BIN_linux_amd64, default the static build of
# scripts/build-static.sh (built when missing); linux/arm64, darwin/amd64, darwin/arm64:
# $BIN_linux_arm64, $BIN_darwin_amd64, $BIN_darwin_arm64 (built elsewhere: the Containerfile
# builds linux/arm64 with PLATFORMS=linux/arm64; darwin needs a macOS machine) — it writes
#   $OUT/meshtrace_<version>_<os>_<arch>.tar.gz         kubectl-meshtrace + LICENSE, reproducible
#   $OUT/meshtrace_<version>_<os>_<arch>.tar.gz.sha256  `sha256sum -c` format
#   $OUT/meshtrace.yaml                                 plugins/meshtrace.yaml filled in: version,
#                                                       homepage, each archive's URI and SHA256
# ($OUT defaults to dist/). Platforms without a binary are left out of the manifest, with a note.
# Upload the archives to URL_BASE, then submit $OUT/meshtrace.yaml to a krew index.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${VERSION:-$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)}
out=${OUT:-dist}
remote=$(git remote get-url origin 2>/dev/null || true)
homepage=${HOMEPAGE:-${remote%.git}}
if [ -z "${URL_BASE:-}" ]; then
    echo "release.sh: set URL_BASE to where the archives will be downloaded from (e.g. https://github.com/<owner>/meshtrace/releases/download/v$version)" >&2
    exit 2
fi
if [ -z "$homepage" ]; then
    echo "release.sh: set HOMEPAGE (no git remote to take it from)" >&2
    exit 2
fi
default_bin=${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release/kubectl-meshtrace
if [ -z "${BIN_linux_amd64:-}" ] && [ "$(uname -s)/$(uname -m)" = "Linux/x86_64" ]; then
    [ -x "$default_bin" ] || bash scripts/build-static.sh >&2
    BIN_linux_amd64=$default_bin
fi
mkdir -p "$out"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
filled=()
for platform in linux_amd64 linux_arm64 darwin_amd64 darwin_arm64; do
    var="BIN_$platform"
    bin=${!var:-}
    if [ -z "$bin" ]; then
        echo "release.sh: no binary for ${platform/_//} (set $var): left out of the manifest" >&2
        continue
    fi
    if [ ! -f "$bin" ]; then
        echo "release.sh: $var=$bin: no such file" >&2
        exit 2
    fi
    dir="$stage/$platform"
    mkdir -p "$dir"
    install -m 0755 "$bin" "$dir/kubectl-meshtrace"
    install -m 0644 LICENSE "$dir/LICENSE"
    archive="meshtrace_${version}_${platform}.tar.gz"
    # Same bytes for the same inputs: sorted names, fixed times and owners, no gzip timestamp.
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$dir" -cf - LICENSE kubectl-meshtrace |
        gzip -9n >"$out/$archive"
    sum=$(sha256sum "$out/$archive" | cut -d' ' -f1)
    echo "$sum  $archive" >"$out/$archive.sha256"
    filled+=("$platform=$sum")
    echo "release.sh: $out/$archive sha256 $sum"
done
if [ ${#filled[@]} -eq 0 ]; then
    echo "release.sh: no binary for any platform; nothing to release" >&2
    exit 2
fi
python3 - "$version" "$URL_BASE" "$homepage" "$out/meshtrace.yaml" "${filled[@]}" <<'PY'
import re, sys
version, url_base, homepage, dest, *sums = sys.argv[1:]
sums = dict(s.split("=", 1) for s in sums)
text = open("plugins/meshtrace.yaml", encoding="utf-8").read()
head, _, platforms = text.partition("  platforms:\n")
# Template comments describe the template, not the release.
head = "".join(l for l in head.splitlines(True) if not l.startswith("#"))
blocks = re.split(r"(?m)^(?=    - selector:)", platforms)
kept = []
for b in blocks:
    if not b.strip():
        continue
    m = re.search(r"\{\{SHA256_(\w+)\}\}", b)
    if m and m.group(1) in sums:
        kept.append(b.replace(m.group(0), sums[m.group(1)]))
out = head + "  platforms:\n" + "".join(kept)
out = out.replace("{{VERSION}}", version).replace("{{URL_BASE}}", url_base.rstrip("/"))
out = out.replace("{{HOMEPAGE}}", homepage)
left = re.findall(r"\{\{\w+\}\}", out)
if left:
    sys.exit(f"release.sh: placeholders left in the manifest: {left}")
open(dest, "w", encoding="utf-8").write(out)
PY
echo "release.sh: $out/meshtrace.yaml (${#filled[@]} platform(s))"
