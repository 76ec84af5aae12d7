#!/usr/bin/env bash
# Create (or refresh) the project virtualenv from the committed lock file.
#
#   scripts/bootstrap.sh            # -> .venv with every pinned dependency + this package
#   VENV=/path/to/venv scripts/bootstrap.sh
#   PYTHON=/path/to/python3.10 scripts/bootstrap.sh
#
# Idempotent: re-running with an unchanged lock file does nothing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
LOCK=$ROOT/requirements.lock
UV_VERSION=0.13.9   # installer only; not a runtime dependency

log() { printf '[bootstrap] %s\n' "$*" >&2; }

is_py310() { [ -n "$1" ] && "$1" -c 'import sys, venv; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; }

find_python310() {
  if [ -n "${PYTHON:-}" ]; then
    is_py310 "$PYTHON" && { echo "$PYTHON"; return; }
    log "PYTHON=$PYTHON is not a working Python 3.10"; return 1
  fi
  local c
  for c in python3.10 python3 python; do
    if command -v "$c" >/dev/null 2>&1 && is_py310 "$(command -v "$c")"; then command -v "$c"; return; fi
  done
  # pyenv installs 3.10 without making it the default (its shim then fails): ask pyenv directly.
  if command -v pyenv >/dev/null 2>&1; then
    local root; root=$(pyenv root)
    for c in $(ls -d "$root"/versions/3.10.* 2>/dev/null | sort -V -r); do
      is_py310 "$c/bin/python3.10" && { echo "$c/bin/python3.10"; return; }
    done
  fi
  return 1
}

stamp=$VENV/.fer-lock.sha256
want=$(cat "$LOCK" "$ROOT/setup.py" | sha256sum | cut -d' ' -f1)
if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  PY=$(find_python310) || {
    cat >&2 <<'MSG'
[bootstrap] ERROR: Python 3.10 not found.
  TFX 1.16 / TensorFlow 2.16 need Python 3.10 (3.9 is not supported by this lock, 3.11+ lacks wheels
  for part of the TFX stack). Install one of:
    - pyenv:   pyenv install 3.10.13          (no need to make it the default)
    - Debian/Ubuntu: apt-get install python3.10 python3.10-venv   (deadsnakes PPA on Ubuntu)
    - conda:   conda create -n py310 python=3.10
  or point the script at it:  PYTHON=/path/to/python3.10 scripts/bootstrap.sh
MSG
    exit 1
  }
  log "creating $VENV with $PY"
  # `python -m venv` (not `uv venv`): TFX installs module-file wheels with the venv's own pip.
  "$PY" -m venv "$VENV"
fi

log "installing pinned dependencies from requirements.lock (first run downloads ~3 GB)"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "uv==$UV_VERSION" \
  || log "could not install uv; falling back to pip (slower)"
if [ -x "$VENV/bin/uv" ]; then
  "$VENV/bin/uv" pip install --python "$VENV/bin/python" -r "$LOCK"
  "$VENV/bin/uv" pip install --python "$VENV/bin/python" --no-deps -e "$ROOT"
else
  # Every version is pinned, so pip installs without resolving (no backtracking).
  "$VENV/bin/python" -m pip install --disable-pip-version-check --no-deps -r "$LOCK"
  "$VENV/bin/python" -m pip install --disable-pip-version-check --no-deps -e "$ROOT"
fi
echo "$want" > "$stamp"
log "ready: $VENV"
