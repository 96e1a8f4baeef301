#!/usr/bin/env bash
# Build a statically linked meshtrace (and kubectl-meshtrace) for Linux x86_64 with the host's
# toolchain, check that it is static and that it runs.
#
#   bash scripts/build-static.sh            # → target/x86_64-unknown-linux-gnu/release/{meshtrace,kubectl-meshtrace}
#   OUT=dist bash scripts/build-static.sh   # also copies both binaries to dist/
#
# Only the x86_64-unknown-linux-gnu target is needed: glibc is linked statically
# (`-C target-feature=+crt-static`). meshtrace links no OpenSSL (TLS is rustls) and no other C
# library but ring's own code. One glibc caveat: host names are resolved with getaddrinfo, which
# in a static glibc binary loads the NSS modules (libnss_files, libnss_dns) of the machine it
# runs on when they exist; where they do not (a distroless or scratch image), /etc/hosts and
# DNS lookups of the API server's host name can fail, while an IP address in the kubeconfig
# (what in-cluster configuration uses: KUBERNETES_SERVICE_HOST) always works. The container
# image (Containerfile) builds for the musl target instead, which has no such caveat.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
if [ "$(uname -s)/$(uname -m)" != "Linux/x86_64" ]; then
    echo "build-static.sh: builds for Linux x86_64 only (this is $(uname -s)/$(uname -m)); use the Containerfile elsewhere" >&2
    exit 2
fi
# The target folder is shared with ordinary builds; an explicit --target keeps the static
# artefacts (and their RUSTFLAGS) in their own subfolder, so neither build invalidates the other.
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --release --target "$target" --bins
dir="${CARGO_TARGET_DIR:-target}/$target/release"
for bin in meshtrace kubectl-meshtrace; do
    f="$dir/$bin"
    # `ldd` says "not a dynamic executable" (exit 1) for a static binary, and "statically
    # linked" (exit 0) for a static-pie one, which is what Rust's crt-static makes here.
    if deps=$(ldd "$f" 2>&1) && ! grep -qE 'statically linked|not a dynamic executable' <<<"$deps"; then
        echo "build-static.sh: $f is dynamically linked:" >&2
        echo "$deps" >&2
        exit 1
    fi
    if command -v file >/dev/null; then
        desc=$(file -b "$f")
        case "$desc" in
            *"statically linked"* | *"static-pie linked"*) ;;
            *) echo "build-static.sh: $f is not static: $desc" >&2; exit 1 ;;
        esac
    fi
    if command -v readelf >/dev/null && readelf -d "$f" | grep -q '(NEEDED)'; then
        echo "build-static.sh: $f needs shared libraries:" >&2
        readelf -d "$f" | grep '(NEEDED)' >&2
        exit 1
    fi
done
version=$("$dir/meshtrace" --version)
"$dir/kubectl-meshtrace" --version >/dev/null
echo "build-static.sh: $version, static: $dir/meshtrace ($(du -h "$dir/meshtrace" | cut -f1)), $dir/kubectl-meshtrace"
if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT"
    cp "$dir/meshtrace" "$dir/kubectl-meshtrace" "$OUT/"
    echo "build-static.sh: copied to $OUT/"
fi
