"""The data half on Beam's DirectRunner vs its PortableRunner (LOOPBACK workers, Beam's local job
service on loopback), interleaved in one run on the same machine.

For each dataset (the generated demo faces, and with --fer2013-per-class N a slice of FER2013:
the first N images of each class folder of both archives, the way tests/fer2013.py extracts
them), each round runs `fer-pipeline run --architectures none --no-cache` once per runner, in a
fresh process and output folder, the runners' order alternating between rounds (ABBA...). It
reads each Beam component's wall time from ML Metadata (bench/data_half_bench.py) and times the
whole command (start-up included).

  python -m bench.beam_runner_bench [--rounds 2] [--fer2013-per-class 300] [--out FILE.json]

Not a test: it prints a Markdown table for BENCHMARKS.md#beam-runners (medians over the rounds)
and writes the raw figures as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

from bench.data_half_bench import component_seconds
from components import contract
from pipeline import beam_runners, configs, demo_data, local_outputs
from tests import beam_job_service, fer2013

BEAM_COMPONENTS = ("ImageFolderExampleGen", "StatisticsGen", "Transform")
RUNNERS = (beam_runners.DIRECT, beam_runners.PORTABLE)
RUN_TIMEOUT_S = 3600


def cpu_model() -> Dict[str, object]:
    model, flags = platform.processor() or "?", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
    except OSError:
        pass
    return {"model": model, "avx512f": "avx512f" in flags, "cores": os.cpu_count()}


def count_images(root: str) -> int:
    """Files in the class folders a run reads (the default classes: FER2013's disgust is not)."""
    return sum(len(files) for folder, _, files in os.walk(root)
               if os.path.basename(folder) in contract.DEFAULT_CLASSES)


def run_data_half(data: str, out: str, runner: str, endpoint: str) -> Dict[str, float]:
    argv = [sys.executable, "-m", "pipeline.cli", "run", "--data-root", data, "--output-dir",
            out, "--architectures", "none", "--no-cache", "--beam-runner", runner]
    if runner == beam_runners.PORTABLE:
        argv += [f"--beam-arg=--{beam_runners.JOB_ENDPOINT}={endpoint}",
                 f"--beam-arg=--{beam_runners.ENVIRONMENT_TYPE}={beam_runners.LOOPBACK}"]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                          cwd=configs.PROJECT_ROOT)
    total = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{runner} run failed: {done.stdout[-3000:]}{done.stderr[-3000:]}")
    seconds = component_seconds(local_outputs.OutputLayout(out).metadata_path)
    return {"command_s": total, **{f"{c}_s": seconds[c] for c in BEAM_COMPONENTS},
            "beam_components_s": sum(seconds[c] for c in BEAM_COMPONENTS)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--fer2013-per-class", type=int, default=0,
                        help="also a FER2013 slice of N images per class folder (0: none)")
    parser.add_argument("--out", default=os.path.join(local_outputs.DEFAULT_OUTPUT_DIR,
                                                      "bench_beam_runners.json"))
    args = parser.parse_args(argv)

    work = tempfile.mkdtemp(prefix="fer_beam_bench_")
    datasets = {"demo": os.path.join(work, "demo")}
    demo_data.write_demo_dataset(datasets["demo"])
    images = {"demo": count_images(datasets["demo"])}
    if args.fer2013_per_class:
        if not fer2013.available():
            print(f"FER2013 archives not found in {fer2013.FER2013_DIR}", file=sys.stderr)
            return 1
        name = f"fer2013 ({args.fer2013_per_class}/class)"
        datasets[name] = os.path.join(work, "fer2013")
        fer2013.extract(datasets[name], args.fer2013_per_class)
        images[name] = count_images(datasets[name])
    rows: List[Dict] = []
    try:
        with beam_job_service.local_job_service(os.path.join(work, "job_service")) as endpoint:
            for r in range(args.rounds):
                for name, data in datasets.items():
                    order = RUNNERS if r % 2 == 0 else RUNNERS[::-1]
                    for runner in order:
                        out = os.path.join(work, "out")
                        shutil.rmtree(out, ignore_errors=True)
                        row = {"round": r + 1, "dataset": name, "images": images[name],
                               "runner": runner,
                               **run_data_half(data, out, runner, endpoint)}
                        rows.append(row)
                        print(json.dumps(row), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    result = {"cpu": cpu_model(), "python": platform.python_version(), "rounds": args.rounds,
              "rows": rows}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"\nCPU: {result['cpu']}")
    print("\n| data | images | runner | ExampleGen | StatisticsGen | Transform "
          "| 3 Beam components | whole command |")
    print("|---|---|---|---|---|---|---|---|")
    for name in datasets:
        for runner in RUNNERS:
            mine = [r for r in rows if r["dataset"] == name and r["runner"] == runner]
            med = {k: statistics.median(r[k] for r in mine)
                   for k in ("command_s", "beam_components_s",
                             *(f"{c}_s" for c in BEAM_COMPONENTS))}
            print(f"| {name} | {images[name]:,} | {runner} | "
                  + " | ".join(f"{med[f'{c}_s']:.1f} s" for c in BEAM_COMPONENTS)
                  + f" | {med['beam_components_s']:.1f} s | {med['command_s']:.0f} s |")
    print(f"\nmedians of {args.rounds} rounds; raw figures: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
