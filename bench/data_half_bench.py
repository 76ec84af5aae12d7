"""Benchmark of the data half on FER2013: ExampleGen, StatisticsGen and Transform.

For a quarter, half and all of Training (plus all of PublicTest), this runs the data half with
LocalDagRunner (profile `cpu` by default), reads each component's wall time from ML Metadata
(execution start to finish, so it includes the component's own start-up), and times, in the same
run and on the same files, the limit: one process reading every file and writing TFRecords of
tf.Examples holding the raw bytes and the label, with no checks. A linear fit of time against
images per component separates fixed overhead from per-image cost.

  python -m bench.data_half_bench [--fractions 0.25,0.5,1] [--profile cpu] [--out FILE.json]

Not a test: it prints a Markdown table for BENCHMARKS.md#data-half-fer2013 and writes the raw
figures as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from typing import Dict, List

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from components import contract
from pipeline import configs, local_outputs, local_runner, run_summary  # noqa: E402
from tests import fer2013  # noqa: E402

COMPONENTS = ("ImageFolderExampleGen", "StatisticsGen", "Transform")


def subset_root(full_root: str, dest: str, fraction: float) -> int:
    """Symlinks the first `fraction` of each Training class folder (sorted) plus all of
    PublicTest (included classes only) into `dest`. Returns the number of images linked."""
    n = 0
    for split in ("Training", "PublicTest"):
        for cls in contract.DEFAULT_CLASSES:
            src = os.path.join(full_root, split, cls)
            files = sorted(os.listdir(src))
            if split == "Training":
                files = files[: int(round(len(files) * fraction))]
            os.makedirs(os.path.join(dest, split, cls))
            for f in files:
                os.symlink(os.path.join(src, f), os.path.join(dest, split, cls, f))
            n += len(files)
    return n


def read_write_limit(root: str, out_dir: str) -> float:
    """Seconds for one process to read every image and write label+bytes tf.Examples."""
    os.makedirs(out_dir, exist_ok=True)
    start = time.perf_counter()
    with tf.io.TFRecordWriter(os.path.join(out_dir, "limit.tfrecord")) as writer:
        for split in sorted(os.listdir(root)):
            for label, cls in enumerate(sorted(os.listdir(os.path.join(root, split)))):
                folder = os.path.join(root, split, cls)
                for name in os.listdir(folder):
                    with open(os.path.join(folder, name), "rb") as f:
                        data = f.read()
                    writer.write(tf.train.Example(features=tf.train.Features(feature={
                        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data])),
                        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                    })).SerializeToString())
    return time.perf_counter() - start


def component_seconds(metadata_path: str) -> Dict[str, float]:
    store = run_summary.sqlite_store(metadata_path)
    run = run_summary.latest_run(store, configs.PIPELINE_NAME)
    assert run and all(n.state == "COMPLETE" for n in run.nodes.values()), run
    out = {}
    for execution in store.get_executions():
        node = [c.name for c in store.get_contexts_by_execution(execution.id)
                if c.name.startswith(configs.PIPELINE_NAME + ".")]
        if node:
            out[node[0].split(".", 1)[1]] = (execution.last_update_time_since_epoch
                                             - execution.create_time_since_epoch) / 1000.0
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fractions", default="0.25,0.5,1")
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--out", default=os.path.join(local_outputs.DEFAULT_OUTPUT_DIR,
                                                      "bench_data_half.json"))
    parser.add_argument("--transform-statistics", action="store_true",
                        help="let Transform compute pre/post-transform statistics too")
    parser.add_argument("--work-dir", help="scratch directory (default: a temp dir, removed)")
    args = parser.parse_args(argv)
    if not fer2013.available():
        print(f"FER2013 archives not found in {fer2013.FER2013_DIR}", file=sys.stderr)
        return 1

    work = args.work_dir or tempfile.mkdtemp(prefix="fer_bench_")
    full = os.path.join(work, "fer2013")
    if not os.path.isdir(full):
        fer2013.extract(full)
    rows: List[Dict] = []
    for fraction in (float(f) for f in args.fractions.split(",")):
        tag = f"f{fraction:g}"
        root = os.path.join(work, tag, "data")
        shutil.rmtree(os.path.join(work, tag), ignore_errors=True)
        images = subset_root(full, root, fraction)
        limit = read_write_limit(root, os.path.join(work, tag, "limit"))
        out_dir = os.path.join(work, tag, "out")
        start = time.perf_counter()
        local_runner.run(data_root=root, output_dir=out_dir, profile=args.profile,
                         transform_statistics=args.transform_statistics, architectures=())
        total = time.perf_counter() - start
        seconds = component_seconds(local_outputs.OutputLayout(out_dir).metadata_path)
        row = {"fraction": fraction, "images": images, "limit_s": limit, "pipeline_s": total,
               **{f"{c}_s": seconds[c] for c in COMPONENTS}}
        rows.append(row)
        print(json.dumps(row), flush=True)
        shutil.rmtree(os.path.join(work, tag))

    fits = {}
    if len(rows) >= 2:
        n = np.array([r["images"] for r in rows], float)
        for c in COMPONENTS:
            slope, intercept = np.polyfit(n, [r[f"{c}_s"] for r in rows], 1)
            fits[c] = {"fixed_s": intercept, "per_1k_images_s": slope * 1000}
    result = {"machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
              "profile": args.profile, "transform_statistics": args.transform_statistics,
              "rows": rows, "linear_fit": fits}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)

    print("\n| Training share | images | limit (read+write) | ExampleGen | StatisticsGen "
          "| Transform | ExampleGen / limit | data half (all 6 components) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        eg = r["ImageFolderExampleGen_s"]
        print(f"| {r['fraction']:g} | {r['images']:,} | {r['limit_s']:.2f} s "
              f"({r['images'] / r['limit_s']:,.0f}/s) | {eg:.1f} s ({r['images'] / eg:,.0f}/s) "
              f"| {r['StatisticsGen_s']:.1f} s ({r['images'] / r['StatisticsGen_s']:,.0f}/s) "
              f"| {r['Transform_s']:.1f} s ({r['images'] / r['Transform_s']:,.0f}/s) "
              f"| {eg / r['limit_s']:.0f}x | {r['pipeline_s']:.0f} s |")
    if fits:
        print("\nLinear fit (time = fixed + per-image cost):")
        for c, fit in fits.items():
            print(f"- {c}: {fit['fixed_s']:.1f} s fixed + {fit['per_1k_images_s']:.2f} s per "
                  "1,000 images")
    print(f"\nraw figures: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
