#!/usr/bin/env bash
# Build the Kubeflow image with no container registry: a debootstrap'd Debian + pyenv's CPython.
#
#   docker/build-debootstrap.sh [TAG]               # current stack: trixie + Python 3.12
#   STACK=legacy docker/build-debootstrap.sh [TAG]  # legacy stack: bookworm + Python 3.10
#   GPU=1 ...                                       # with TensorFlow's CUDA libraries
#
# Default TAG: localhost/fer-pipeline:<stack>[-gpu]. Needs root, apt (installs podman buildah runc
# debootstrap if missing), a Debian mirror, PyPI or a warm uv cache, and a CPython of the stack's
# version built for a glibc no newer than the suite's (PYTHON_PREFIX, default pyenv's X.Y.*).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK=${STACK:-current}
case "$STACK" in
  current) SUITE=trixie
           RUNTIME_PACKAGES="libssl3t64 libffi8 libsqlite3-0 libbz2-1.0 liblzma5 zlib1g libreadline8t64 libncursesw6 libuuid1 libexpat1 libnsl2 libtirpc3t64 libcrypt1" ;;
  legacy)  SUITE=bookworm
           RUNTIME_PACKAGES="libssl3 libffi8 libsqlite3-0 libbz2-1.0 liblzma5 zlib1g libreadline8 libncursesw6 libuuid1 libexpat1 libnsl2 libtirpc3 libcrypt1" ;;
  *) echo "STACK=$STACK: legacy or current" >&2; exit 2 ;;
esac
LOCK=$STACK$([ "${GPU:-0}" = 1 ] && echo -gpu || true)
TAG=${1:-localhost/fer-pipeline:$LOCK}
PYTHON_VERSION=$("$ROOT/scripts/stack.sh" python-version "$STACK")
ROOTFS=${ROOTFS:-/tmp/rootfs-$SUITE}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
BASE=localhost/debian-base-$SUITE
export CONTAINERS_CONF=$ROOT/docker/containers.conf   # runc + rlimits this sandbox allows

need=()
for t in podman buildah runc debootstrap; do command -v "$t" >/dev/null || need+=("$t"); done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}"
fi

if [ -z "${PYTHON_PREFIX:-}" ]; then
  PYTHON_PREFIX=$(ls -d "$(pyenv root)/versions/$PYTHON_VERSION".* | sort -V | tail -1)
fi
"$PYTHON_PREFIX/bin/python$PYTHON_VERSION" -c \
  "import sys; assert sys.version_info[:2] == tuple(map(int, '$PYTHON_VERSION'.split('.')))"

if ! podman image exists "$BASE"; then
  [ -x "$ROOTFS/bin/sh" ] || debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR"
  tar -C "$ROOTFS" -c . | podman import - "$BASE"
fi

vols=()
UV=${UV:-$(ls "$ROOT"/.venv*/bin/uv 2>/dev/null | head -1)}
UV_CACHE=${UV_CACHE:-$HOME/.cache/uv}
if [ -n "$UV" ] && [ -x "$UV" ]; then
  vols+=(-v "$UV:/usr/local/bin/uv:ro")
  [ -d "$UV_CACHE" ] && vols+=(-v "$UV_CACHE:/root/.cache/uv")
fi

# Egress here re-signs TLS with a local CA: hand the host's bundle to the install steps (not baked in).
BUILD_CA=${BUILD_CA:-/etc/ssl/certs/ca-certificates.crt}
[ -s "$BUILD_CA" ] && vols+=(-v "$BUILD_CA:/run/build-ca.crt:ro")

podman build -f "$ROOT/docker/Dockerfile.debootstrap" \
  --ignorefile "$ROOT/docker/dockerignore.debootstrap" \
  --build-context "python=$PYTHON_PREFIX" \
  --build-arg "BASE=$BASE" --build-arg "LOCK=$LOCK" --build-arg "PYTHON_VERSION=$PYTHON_VERSION" \
  --build-arg "RUNTIME_PACKAGES=$RUNTIME_PACKAGES" \
  "${vols[@]}" -t "$TAG" "$ROOT"
