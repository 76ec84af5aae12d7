#!/usr/bin/env bash
# The device command of run 1 (results/run1); run 2 is this with extra flags (README.md).
# From the project root on the accelerator machine, with .gpu_recipe_data carried:
#   OUT=/some/dir bash bench/gpu_recipe/device_run.sh [more probe.py flags, which override]
# VGG16-fer then ResNet50-fer, one recipe, sequentially in one process, within ~470 s.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
export OUT=${OUT:-/tmp/gpu_recipe_probe_out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/nvidia_smi.txt" 2>&1
python3 -c "import sys, jax; print(sys.version); print('jax', jax.__version__, jax.devices())" \
  > "$OUT/env.txt" 2>&1
PROBE_TIMEOUT=${PROBE_TIMEOUT:-505} bash "$HERE/run.sh" \
  --archs vgg16,resnet50 --epochs 300 --budget-s 200 --deadline-s 470 --eval-reserve-s 30 \
  --optimizer sgd --lr 0.01 --weight-decay 1e-3 --warmup-epochs 3 --lr-floor 0 \
  --aug zoom --crop-pad 4 --erasing 0.5 --label-smoothing 0.1 --tta-shifts 2,4 \
  "$@"
rc=$?
python3 "$HERE/probe.py" --summarize "$OUT/results.json" > "$OUT/summary.txt" 2>&1 || true
exit $rc
