#!/usr/bin/env bash
# The two dependency stacks, and which one this machine runs. The one place that knows them:
# scripts/bootstrap.sh, scripts/stack_root.sh and the Makefile ask it.
#
#   scripts/stack.sh choose            # "legacy" or "current": $STACK if set, else what this machine runs
#   scripts/stack.sh reason [STACK]    # one line: the stack and why
#   scripts/stack.sh python STACK      # the interpreter for STACK (exit 1 when there is none)
#   scripts/stack.sh needs-root STACK  # exit 0 when STACK must run in the Debian 13 root here
#   scripts/stack.sh lock              # re-resolve requirements/*.in into their locks (needs PyPI)
#
#   legacy:  TFX 1.16 / TensorFlow 2.16 / Python 3.10, any glibc >= 2.28 (requirements/legacy.lock)
#   current: TFX 1.21 / TensorFlow 2.21 / Python 3.12; ml-metadata and TFDV 1.21 ship only
#            manylinux_2_39 wheels, which need glibc >= 2.38 (requirements/current.lock)
# STACK_ROOT=1 runs the current stack in the Debian 13 root even where glibc could load it natively.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

python_version() { case "$1" in legacy) echo 3.10 ;; current) echo 3.12 ;; *) return 1 ;; esac; }
lock_platform() { case "$1" in legacy) echo x86_64-manylinux_2_28 ;; current) echo x86_64-manylinux_2_39 ;; esac; }
CURRENT_MIN_GLIBC=2.38

glibc_version() { getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}'; }
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]; }

is_python() {  # is_python PATH X.Y
  [ -n "$1" ] && "$1" -c "import sys, venv; sys.exit(sys.version_info[:2] != tuple(map(int, '$2'.split('.'))))" \
    >/dev/null 2>&1
}

# $PYTHON if set, else pythonX.Y/python3/python on PATH, else the newest X.Y.* that pyenv installed
# (it need not be pyenv's default: its shim then fails, so look in its versions folder).
find_python() {
  local want=$1 c
  if [ -n "${PYTHON:-}" ]; then is_python "$PYTHON" "$want" && { echo "$PYTHON"; return; }; return 1; fi
  for c in "python$want" python3 python; do
    if command -v "$c" >/dev/null 2>&1 && is_python "$(command -v "$c")" "$want"; then
      command -v "$c"; return
    fi
  done
  local pyenv_root=${PYENV_ROOT:-}
  [ -z "$pyenv_root" ] && command -v pyenv >/dev/null 2>&1 && pyenv_root=$(pyenv root)
  [ -z "$pyenv_root" ] && pyenv_root=$HOME/.pyenv
  for c in $(ls -d "$pyenv_root/versions/$want".* 2>/dev/null | sort -V -r); do
    is_python "$c/bin/python$want" "$want" && { echo "$c/bin/python$want"; return; }
  done
  return 1
}

native_current() { version_ge "$(glibc_version)" "$CURRENT_MIN_GLIBC"; }

needs_root() {  # the current stack where this glibc cannot load it, or STACK_ROOT=1; never inside the root
  [ "$1" = current ] || return 1
  [ -n "${FER_STACK_ROOT:-}" ] && return 1
  [ "${STACK_ROOT:-0}" = 1 ] && return 0
  ! native_current
}

choose() {
  if [ -n "${STACK:-}" ]; then
    python_version "$STACK" >/dev/null || { echo "STACK=$STACK: not a stack (legacy or current)" >&2; return 2; }
    echo "$STACK"; return
  fi
  if native_current && find_python 3.12 >/dev/null; then echo current; return; fi
  if find_python 3.10 >/dev/null; then echo legacy; return; fi
  native_current && echo current || echo legacy   # the bootstrap then says what to install
}

reason() {
  local stack=${1:-$(choose)} glibc py
  glibc=$(glibc_version)
  py=$(python_version "$stack")
  if [ -n "${FER_STACK_ROOT:-}" ]; then
    echo "stack: $stack (${STACK:+STACK=$STACK; }in the Debian 13 root $FER_STACK_ROOT, glibc $glibc, Python $py)"
  elif [ -n "${STACK:-}" ]; then
    if needs_root "$stack"; then
      echo "stack: $stack (STACK=$stack; glibc $glibc here, so in the Debian 13 root: scripts/stack_root.sh)"
    else
      echo "stack: $stack (STACK=$stack; glibc $glibc, Python $py)"
    fi
  elif [ "$stack" = current ]; then
    echo "stack: current (TFX 1.21, Python $py: glibc $glibc >= $CURRENT_MIN_GLIBC; STACK=legacy for TFX 1.16)"
  else
    echo "stack: legacy (TFX 1.16, Python $py: glibc $glibc < $CURRENT_MIN_GLIBC that TFX 1.21's wheels need;" \
      "STACK=current runs it in a Debian 13 root)"
  fi
}

lock() {  # every requirements/*.in for its stack's Python and platform
  local uv=${UV:-$(command -v uv || echo "$ROOT/.venv/bin/uv")} in stack
  for in in "$ROOT"/requirements/*.in; do
    stack=$(basename "$in" .in); stack=${stack%-gpu}
    (cd "$ROOT/requirements" && "$uv" pip compile --quiet --python-version "$(python_version "$stack")" \
      --python-platform "$(lock_platform "$stack")" "$(basename "$in")" -o "$(basename "$in" .in).lock")
    echo "requirements/$(basename "$in" .in).lock"
  done
}

case "${1:-}" in
  choose) choose ;;
  reason) reason "${2:-}" ;;
  python) find_python "$(python_version "$2")" ;;
  python-version) python_version "$2" ;;
  needs-root) needs_root "$2" ;;
  lock) lock ;;
  *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
