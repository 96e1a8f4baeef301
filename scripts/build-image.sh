#!/usr/bin/env bash
# Build the container images of Containerfile with podman, buildah or docker (the first found;
# ENGINE=docker to choose). Needs the base images (docker.io rust:alpine, gcr.io distroless
# static, registry.access.redhat.com ubi9 ubi-minimal) and crates.io, so it is not run in CI
# here (no image registry is reachable); CI builds and checks the static binary instead.
#
#   bash scripts/build-image.sh                       # localhost/meshtrace:<version> and
#                                                     # localhost/meshtrace-must-gather:<version>
#   IMAGE=quay.io/acme/meshtrace bash scripts/build-image.sh
#   PLATFORMS=linux/amd64,linux/arm64 ENGINE=podman bash scripts/build-image.sh   # multi-arch manifest
#   PUSH=1 IMAGE=quay.io/acme/meshtrace bash scripts/build-image.sh
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
image=${IMAGE:-localhost/meshtrace}
tag=${TAG:-$version}
source_url=${SOURCE:-$(git remote get-url origin 2>/dev/null || true)}
revision=$(git rev-parse HEAD 2>/dev/null || true)
engine=${ENGINE:-}
if [ -z "$engine" ]; then
    for e in podman buildah docker; do
        if command -v "$e" >/dev/null; then engine=$e; break; fi
    done
fi
if [ -z "$engine" ]; then
    echo "build-image.sh: no podman, buildah or docker found; install one, or build the static binary with scripts/build-static.sh" >&2
    exit 2
fi
args=(--file Containerfile --build-arg "VERSION=$version" --build-arg "SOURCE=$source_url" --build-arg "REVISION=$revision")
build() { # build <target> <name>
    local target=$1 name=$2
    local out=(--tag "$name:$tag")
    if [ -n "${PLATFORMS:-}" ]; then
        case "$engine" in
            podman | buildah) out=(--platform "$PLATFORMS" --manifest "$name:$tag") ;;
            docker) out=(--platform "$PLATFORMS" --tag "$name:$tag") ;;
        esac
    fi
    case "$engine" in
        buildah) buildah bud "${args[@]}" --target "$target" "${out[@]}" . ;;
        podman) podman build "${args[@]}" --target "$target" "${out[@]}" . ;;
        docker)
            if [ -n "${PLATFORMS:-}" ]; then
                # A multi-platform result cannot be loaded into the local store: pushed (PUSH=1)
                # or kept in the build cache.
                docker buildx build "${args[@]}" --target "$target" "${out[@]}" ${PUSH:+--push} .
            else
                DOCKER_BUILDKIT=1 docker build "${args[@]}" --target "$target" "${out[@]}" .
            fi ;;
        *) echo "build-image.sh: unknown ENGINE=$engine (podman, buildah or docker)" >&2; exit 2 ;;
    esac
    echo "build-image.sh: built $name:$tag ($target) with $engine"
}
build runtime "$image"
build must-gather "$image-must-gather"
if [ -n "${PUSH:-}" ]; then
    for name in "$image" "$image-must-gather"; do
        case "$engine" in
            podman) if [ -n "${PLATFORMS:-}" ]; then podman manifest push --all "$name:$tag" "docker://$name:$tag"; else podman push "$name:$tag"; fi ;;
            buildah) if [ -n "${PLATFORMS:-}" ]; then buildah manifest push --all "$name:$tag" "docker://$name:$tag"; else buildah push "$name:$tag"; fi ;;
            docker) [ -n "${PLATFORMS:-}" ] || docker push "$name:$tag" ;;
        esac
    done
fi
cat <<MSG
Run it:
  $engine run --rm --read-only --tmpfs /tmp --user "\$(id -u)" -v "\$HOME/.kube:/kube:ro,Z" -v "\$PWD:/out:Z" \\
      $image:$tag collect --kubeconfig /kube/config -n <namespace> --archive /out/bundle.tar.gz
In the cluster: kubectl apply -k deploy/ (after: cd deploy && kustomize edit set image meshtrace=$image:$tag)
Must-gather:    oc adm must-gather --image=$image-must-gather:$tag -- gather -n <namespace>
MSG
