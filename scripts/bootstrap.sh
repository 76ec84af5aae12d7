#!/usr/bin/env bash
# Create (or refresh) the project virtualenv for one dependency stack from its committed lock.
#
#   scripts/bootstrap.sh                 # the stack this machine runs (scripts/stack.sh) -> .venv
#   STACK=current scripts/bootstrap.sh   # or STACK=legacy; VENV=/path/to/venv to choose the folder
#   GPU=1 scripts/bootstrap.sh           # with TensorFlow's CUDA libraries (requirements/*-gpu.lock)
#   PYTHON=/path/to/python3.12 ...       # the interpreter, when it cannot be found by itself
#
# Idempotent: re-running with an unchanged lock does nothing. Run the current stack on a machine
# whose glibc is too old for it through scripts/stack_root.sh (the Makefile does).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK_SH=$ROOT/scripts/stack.sh
UV_VERSION=0.13.9   # installer only; not a runtime dependency

log() { printf '[bootstrap] %s\n' "$*" >&2; }

stack=$("$STACK_SH" choose)
VENV=${VENV:-$ROOT/.venv}
variant=""; [ "${GPU:-0}" = 1 ] && variant=-gpu
LOCK=$ROOT/requirements/$stack$variant.lock
pyver=$("$STACK_SH" python-version "$stack")

if "$STACK_SH" needs-root "$stack"; then
  log "ERROR: $("$STACK_SH" reason "$stack")"
  log "  run it there: scripts/stack_root.sh run scripts/bootstrap.sh (make does: make test STACK=$stack)"
  exit 1
fi

stamp=$VENV/.fer-lock.sha256
want=$(cat "$LOCK" "$ROOT/setup.py" | sha256sum | cut -d' ' -f1)
if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

log "$("$STACK_SH" reason "$stack")"

# A venv made for the other stack (or an older interpreter) is rebuilt, not patched.
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c \
    "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$pyver'.split('.'))))" 2>/dev/null; then
  log "$VENV is not a Python $pyver venv: rebuilding it"
  rm -rf "$VENV"
fi

if [ ! -x "$VENV/bin/python" ]; then
  PY=$("$STACK_SH" python "$stack") || {
    cat >&2 <<MSG
[bootstrap] ERROR: Python $pyver not found for the $stack stack.
  Install one of:
    - pyenv:   pyenv install $pyver          (no need to make it the default)
    - Debian/Ubuntu: apt-get install python$pyver python$pyver-venv   (deadsnakes PPA on Ubuntu)
    - conda:   conda create -n py${pyver/./} python=$pyver
  or point the script at it:  PYTHON=/path/to/python$pyver scripts/bootstrap.sh
  The other stack: STACK=$([ "$stack" = legacy ] && echo current || echo legacy) (docs/stacks.md).
MSG
    exit 1
  }
  log "creating $VENV with $PY"
  # `python -m venv` (not `uv venv`): TFX installs module-file wheels with the venv's own pip.
  "$PY" -m venv "$VENV"
fi

log "installing requirements/$(basename "$LOCK") (the first time downloads ~3 GB; pip output in $VENV/install.log)"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "uv==$UV_VERSION" >"$VENV/install.log" 2>&1 \
  || log "could not install uv; falling back to pip (slower)"
if [ -x "$VENV/bin/uv" ]; then
  # sync, not install: the venv holds exactly the lock (a GPU=1 venv taken back to CPU loses CUDA),
  # plus the venv's own pip (TFX needs it) and uv.
  seed=$(mktemp); trap 'rm -f "$seed"' EXIT
  "$VENV/bin/python" -m pip --version | awk '{print "pip==" $2}' >"$seed"
  echo "uv==$UV_VERSION" >>"$seed"
  "$VENV/bin/uv" pip sync --python "$VENV/bin/python" "$LOCK" "$seed" >>"$VENV/install.log" 2>&1 \
    || { log "ERROR: install failed; see $VENV/install.log"; tail -5 "$VENV/install.log" >&2; exit 1; }
  "$VENV/bin/uv" pip install --python "$VENV/bin/python" --no-deps -e "$ROOT" >>"$VENV/install.log" 2>&1
else
  # Every version is pinned, so pip installs without resolving (no backtracking).
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r "$LOCK" >>"$VENV/install.log" 2>&1
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e "$ROOT" >>"$VENV/install.log" 2>&1
fi
echo "$want" > "$stamp"
log "ready: $VENV ($stack stack, $("$VENV/bin/python" -c 'import platform; print("Python", platform.python_version())'))"
