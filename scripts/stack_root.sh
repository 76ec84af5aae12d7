#!/usr/bin/env bash
# A Debian 13 (trixie) root filesystem for the current stack on machines whose glibc is too old for
# TFX 1.21's wheels (Debian 12: glibc 2.36 < 2.38). Commands run in it with chroot, in a private
# mount namespace, on this checkout at the same path; nothing is copied in or out.
#
#   scripts/stack_root.sh build        # debootstrap it once into .stack-root/ (git-ignored; ~40 s)
#   scripts/stack_root.sh run CMD ...  # run CMD in it (builds it first when missing)
#
# Needs root, debootstrap (installed with apt when missing) and a Debian mirror ($MIRROR). Seen
# inside: this checkout's parent folder (so ../shared too), the host's Python installs (pyenv's
# versions folder, read-only: the venv's interpreter, glibc 2.36 code that runs on 2.41), the
# host's CA bundle, DNS settings and ~/.cache (uv's and pip's caches), /proc, /sys and /dev.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOTFS=${ROOTFS:-$ROOT/.stack-root/trixie}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
# A compiler and make for the lock's sdist-only packages (pyfarmhash, crcmod); git for setuptools_scm.
PACKAGES=ca-certificates,g++,make,git
READY=$ROOTFS/.fer-stack-root   # written last: a build cut short is redone

log() { printf '[stack-root] %s\n' "$*" >&2; }

build() {
  [ -f "$READY" ] && return 0
  [ "$(id -u)" = 0 ] || { log "ERROR: building the Debian 13 root needs root (debootstrap, chroot)"; exit 1; }
  command -v debootstrap >/dev/null || {
    log "installing debootstrap"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  }
  log "building a Debian 13 root in $ROOTFS (debootstrap trixie, about a minute)"
  rm -rf "$ROOTFS"; mkdir -p "$ROOTFS"
  debootstrap --variant=minbase --include="$PACKAGES" trixie "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 || {
    log "ERROR: debootstrap failed; its log: $ROOTFS.log"; exit 1; }
  date -u +%FT%TZ >"$READY"
}

# The interpreter's install folder, mounted at the same path so the venv's symlinks resolve.
python_prefix() {
  local py; py=$("$ROOT/scripts/stack.sh" python current) || {
    log "ERROR: no Python $("$ROOT/scripts/stack.sh" python-version current) here for the current stack" \
        "(pyenv install 3.12, or PYTHON=/path/to/python3.12)"; exit 1; }
  dirname "$(dirname "$(readlink -f "$py")")"
}

run() {
  build
  local prefix; prefix=$(python_prefix)
  local share; share=$(dirname "$ROOT")
  local ca=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
  mkdir -p "$HOME/.cache"
  # The mounts live in this namespace only and vanish with it, whatever CMD does.
  exec unshare --mount --propagation private -- bash -euo pipefail -c '
    rootfs=$1 prefix=$2 share=$3 ca=$4; shift 4
    bind() { mkdir -p "$rootfs$2"; mount --bind "$1" "$rootfs$2"; [ "${3:-}" = ro ] && mount -o remount,bind,ro "$rootfs$2"; true; }
    mount -t proc proc "$rootfs/proc"
    mount --rbind /sys "$rootfs/sys"
    mount --rbind /dev "$rootfs/dev"
    bind "$share" "$share"
    bind "$prefix" "$prefix" ro
    bind "$HOME/.cache" "$HOME/.cache"
    # Name resolution of the host: debootstrap --variant=minbase writes no /etc/hosts, so
    # without it "localhost" does not resolve in the root.
    touch "$rootfs/etc/resolv.conf" "$rootfs/etc/hosts" "$rootfs/run/host-ca.crt"
    mount --bind /etc/resolv.conf "$rootfs/etc/resolv.conf"
    mount --bind /etc/hosts "$rootfs/etc/hosts"
    [ -s "$ca" ] && mount --bind "$ca" "$rootfs/run/host-ca.crt"
    cwd=$PWD
    exec chroot "$rootfs" /usr/bin/env FER_STACK_ROOT="$rootfs" HOME="$HOME" \
      PATH=/usr/local/bin:/usr/bin:/bin SSL_CERT_FILE=/run/host-ca.crt PIP_CERT=/run/host-ca.crt \
      REQUESTS_CA_BUNDLE=/run/host-ca.crt \
      bash -c "cd \"\$0\" && exec \"\$@\"" "$cwd" "$@"
  ' stack-root "$ROOTFS" "$prefix" "$share" "$ca" "$@"
}

case "${1:-}" in
  build) build ;;
  run) shift; [ $# -gt 0 ] || { log "usage: $0 run CMD ..."; exit 2; }; run "$@" ;;
  *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
