#!/usr/bin/env bash
# The figures BENCHMARKS.md#two-stacks compares between the two stacks, for one stack, one run each:
# `make run` (demo), serving (bench.serving_bench on that run's models), and the `cpu` profile on
# FER2013 (whole run, per-component times including the data half, accuracy and macro-F1).
#
#   bench/stacks.sh STACK [FER2013_DIR]     # STACK: legacy or current; default data/fer2013
#
# Writes under outputs/bench-stacks/STACK/ (inside the checkout, so that the Debian 13 root sees
# it) and prints the times; the Markdown comes from bench.run_report and bench.serving_bench.
set -euo pipefail
cd "$(dirname "$0")/.."
stack=${1:?usage: bench/stacks.sh legacy|current [FER2013_DIR]}
fer=${2:-data/fer2013}
out=outputs/bench-stacks/$stack
rm -rf "$out"; mkdir -p "$out"
make -s bootstrap STACK="$stack"
lscpu | grep -m1 'Model name' | tee "$out/machine.txt"
timed() {  # timed NAME CMD...: wall seconds into $out/NAME.seconds
  local name=$1; shift; local t0=$SECONDS
  "$@" >"$out/$name.log" 2>&1 || { echo "$name failed: $out/$name.log" >&2; return 1; }
  echo "$name: $((SECONDS - t0)) s" | tee "$out/$name.seconds"
}
timed make-run make run STACK="$stack" ARGS="--output-dir $out/demo"
timed serving make bench-serving STACK="$stack" ARGS="--output-dir $out/demo"
timed cpu-profile make run STACK="$stack" ARGS="--data-root $fer --profile cpu --output-dir $out/fer2013"
make -s py STACK="$stack" ARGS="-m bench.run_report --output-dir $out/fer2013" >"$out/cpu-profile.md" 2>"$out/run-report.log"
echo "Markdown: $out/serving.log (serving), $out/cpu-profile.md (cpu profile)"
