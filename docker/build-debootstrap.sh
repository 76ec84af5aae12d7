#!/usr/bin/env bash
# Build the Kubeflow image with no container registry: debootstrap'd bookworm + pyenv's CPython 3.10.
#
#   docker/build-debootstrap.sh [TAG]        # default TAG=localhost/fer-pipeline:debootstrap
#
# Needs root, apt (installs podman buildah runc debootstrap if missing), a Debian mirror, PyPI or a
# warm uv cache, and a CPython 3.10 built for glibc >= 2.36 (PYTHON310_PREFIX, default pyenv's 3.10.x).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TAG=${1:-localhost/fer-pipeline:debootstrap}
ROOTFS=${ROOTFS:-/tmp/rootfs}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
export CONTAINERS_CONF=$ROOT/docker/containers.conf   # runc + rlimits this sandbox allows

need=()
for t in podman buildah runc debootstrap; do command -v "$t" >/dev/null || need+=("$t"); done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}"
fi

if [ -z "${PYTHON310_PREFIX:-}" ]; then
  PYTHON310_PREFIX=$(ls -d "$(pyenv root)"/versions/3.10.* | sort -V | tail -1)
fi
"$PYTHON310_PREFIX/bin/python3.10" -c 'import sys; assert sys.version_info[:2] == (3, 10)'

if ! podman image exists localhost/debian-base; then
  [ -x "$ROOTFS/bin/sh" ] || debootstrap --variant=minbase bookworm "$ROOTFS" "$MIRROR"
  tar -C "$ROOTFS" -c . | podman import - localhost/debian-base
fi

vols=()
UV=${UV:-$ROOT/.venv/bin/uv}
UV_CACHE=${UV_CACHE:-$HOME/.cache/uv}
if [ -x "$UV" ]; then
  vols+=(-v "$UV:/usr/local/bin/uv:ro")
  [ -d "$UV_CACHE" ] && vols+=(-v "$UV_CACHE:/root/.cache/uv")
fi

# Egress here re-signs TLS with a local CA: hand the host's bundle to the install steps (not baked in).
BUILD_CA=${BUILD_CA:-/etc/ssl/certs/ca-certificates.crt}
[ -s "$BUILD_CA" ] && vols+=(-v "$BUILD_CA:/run/build-ca.crt:ro")

podman build -f "$ROOT/docker/Dockerfile.debootstrap" \
  --ignorefile "$ROOT/docker/dockerignore.debootstrap" \
  --build-context "python310=$PYTHON310_PREFIX" \
  "${vols[@]}" -t "$TAG" "$ROOT"
