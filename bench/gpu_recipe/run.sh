#!/usr/bin/env bash
# Runs probe.py on the accelerator machine. Call it from the project root there, with the
# git-ignored data folder carried (see README.md), e.g.
#   bash bench/gpu_recipe/run.sh --archs vgg16 --epochs 30 --budget-s 150 --deadline-s 300
# GPU_RECIPE_DATA: the folder holding wheels/ and Training.tar.gz, PublicTest.tar.gz
# (default: .gpu_recipe_data in the project root). Extra arguments go to probe.py.
# Results: $OUT/results.json and $OUT/probe.log (OUT default: /tmp/gpu_recipe_probe_out).
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DATA="$(cd "${GPU_RECIPE_DATA:-$ROOT/.gpu_recipe_data}" && pwd)" || {
  echo "data folder ${GPU_RECIPE_DATA:-$ROOT/.gpu_recipe_data} not found (see README.md)" >&2
  exit 1
}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site "$DATA"/wheels/*.whl && export PYTHONPATH="/tmp/site:$ROOT" || exit 1
nvidia-smi -L || echo "(no nvidia-smi)"
OUT=${OUT:-/tmp/gpu_recipe_probe_out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
timeout -k 5 "${PROBE_TIMEOUT:-420}" python3 "$HERE/probe.py" --data "$DATA" --out "$OUT" "$@"
rc=$?
echo "probe exit code $rc"
exit $rc
