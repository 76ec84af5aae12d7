"""Benchmark of scheduled retraining on the demo data: first run, cached re-run, warm-started span.

Writes the demo faces as span 1, runs `fer-pipeline retrain` (profile demo: both architectures,
VGG16 tuned) four times in one output folder: on span 1, again on span 1 unchanged, on a span 2
of new demo faces (another seed, same distribution), then on span 2 again with
`--window-spans 2` (Transform, Tuner and Trainers read spans 1 and 2). Prints, per component,
the wall time of each run's execution (ML Metadata: start to end, so cached executions show the
cost of the cache lookup) and the command's own wall time, plus each run's outcome line.

  python -m bench.retraining_bench [--keep DIR]

Not a test: it prints a Markdown table for BENCHMARKS.md#retraining.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

from bench.run_report import node_executions
from pipeline import configs, demo_data, local_outputs, run_summary

STEPS = (("first", "span 1, first run"), ("cached", "span 1 again"),
         ("warm", "span 2, warm start"), ("window", "span 2, window of spans 1-2"))
STEP_OPTIONS = {"window": ("--window-spans", "2")}


def _retrain(data: str, out: str, *options: str) -> tuple:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "retrain", "--data-root", data,
                           "--output-dir", out, *options], capture_output=True, text=True,
                          cwd=configs.PROJECT_ROOT)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"retrain failed ({done.returncode}): {done.stderr}")
    store = run_summary.sqlite_store(local_outputs.OutputLayout(out).metadata_path)
    run = run_summary.latest_run(store, configs.PIPELINE_NAME)
    executions = node_executions(store, run)
    per_node = {node: ((e.last_update_time_since_epoch - e.create_time_since_epoch) / 1000.0,
                       run.nodes[node].state) for node, e in executions.items()}
    return seconds, per_node, done.stdout.strip()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", help="work in this folder and keep it (default: a temp dir)")
    args = parser.parse_args(argv)
    work = args.keep or tempfile.mkdtemp(prefix="retraining_bench_")
    data, out = os.path.join(work, "data"), os.path.join(work, "out")
    shutil.rmtree(work, ignore_errors=True)
    demo_data.write_demo_dataset(os.path.join(data, "span-1"))
    results = {}
    for step, _ in STEPS:
        if step == "warm":
            demo_data.write_demo_dataset(os.path.join(data, "span-2"), seed=configs.DEMO_SEED + 1)
        results[step] = _retrain(data, out, *STEP_OPTIONS.get(step, ()))
        print(f"{step}: {results[step][0]:.0f} s | {results[step][2]}", flush=True)

    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print("\n| component | " + " | ".join(label for _, label in STEPS) + " |")
    print("|---|" + "---:|" * len(STEPS))
    nodes = dict.fromkeys(n for step, _ in STEPS for n in results[step][1])  # first seen first
    for node in nodes:
        cells = []
        for step, _ in STEPS:
            seconds, state = results[step][1].get(node, (None, None))
            cells.append("–" if seconds is None else
                         f"{seconds:.1f} s{' (cached)' if state == 'CACHED' else ''}")
        print(f"| {node} | " + " | ".join(cells) + " |")
    print("| **`fer-pipeline retrain`, wall** | " + " | ".join(
        f"**{results[step][0]:.0f} s**" for step, _ in STEPS) + " |")
    first = results["first"][0]
    print(f"\nratios to the first run: cached {results['cached'][0] / first:.2f}x, "
          f"warm span {results['warm'][0] / first:.2f}x, "
          f"window {results['window'][0] / first:.2f}x")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
