"""Input pipeline throughput: the Trainer's `input_fn` (transformed TFRecords -> shuffled,
optionally augmented batches) in images/s, on one core and on all cores of this machine.

  python -m bench.input_pipeline_bench [--output-dir outputs] [--batch 128] [--batches 100]

Reads the Transform output of a local run (`make run` first). Each configuration runs in its
own process, pinned to its cores (`os.sched_setaffinity`) with TensorFlow's thread pools sized
to match; the first 5 batches are a warm-up. Nothing trains: this is the rate at which the
input pipeline alone can feed an accelerator. Prints Markdown for BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys

from pipeline import configs, local_outputs

_CHILD = r"""
import json, os, sys, time
cores, augment, batch, batches, examples_uri, graph_uri = sys.argv[1:7]
cores, augment, batch, batches = int(cores), augment == "1", int(batch), int(batches)
os.sched_setaffinity(0, set(range(cores)))
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(cores)
tf.config.threading.set_inter_op_parallelism_threads(cores)
import tensorflow_transform as tft
from tfx.components.trainer import fn_args_utils
from tfx.types import standard_artifacts
from components.models import trainer_base

examples = standard_artifacts.Examples()
examples.uri = examples_uri
examples.split_names = json.dumps(["train", "eval"])
graph = standard_artifacts.TransformGraph()
graph.uri = graph_uri
fn_args = fn_args_utils.get_common_fn_args(
    {"examples": [examples], "transform_graph": [graph]},
    {"train_args": '{"num_steps": 0}', "eval_args": '{"num_steps": 0}'}, working_dir="/tmp")
dataset = trainer_base.input_fn(fn_args.train_files, fn_args.data_accessor,
                                tft.TFTransformOutput(graph_uri), batch, training=True,
                                augment=augment)
iterator = iter(dataset)
for _ in range(5):
    next(iterator)
start = time.perf_counter()
for _ in range(batches):
    images, labels = next(iterator)
elapsed = time.perf_counter() - start
print(json.dumps({"cores": cores, "augment": augment, "images_per_s": batch * batches / elapsed,
                  "image_shape": list(images.shape[1:])}))
"""


def latest(pattern: str) -> str:
    found = sorted(glob.glob(pattern), key=lambda p: int(os.path.basename(p)))
    if not found:
        raise SystemExit(f"nothing matches {pattern}: run `make run` first")
    return found[-1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="input_pipeline_bench", description=__doc__.split("\n")[0])
    p.add_argument("--output-dir", default=local_outputs.DEFAULT_OUTPUT_DIR)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--batches", type=int, default=100)
    args = p.parse_args(argv)
    root = local_outputs.OutputLayout(args.output_dir).pipeline_root
    examples = latest(os.path.join(root, "Transform", "transformed_examples", "*"))
    graph = latest(os.path.join(root, "Transform", "transform_graph", "*"))
    all_cores = len(os.sched_getaffinity(0))
    rows = []
    for augment in (False, True):
        for cores in sorted({1, all_cores}):
            out = subprocess.run(
                [sys.executable, "-c", _CHILD, str(cores), str(int(augment)), str(args.batch),
                 str(args.batches), examples, graph],
                cwd=configs.PROJECT_ROOT, capture_output=True, text=True)
            if out.returncode != 0:
                raise SystemExit(out.stderr[-3000:])
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    print(f"\nbatch {args.batch}, {args.batches} timed batches, image {rows[0]['image_shape']}")
    print("| augmentation | cores | images/s | images/s per core |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {'on' if r['augment'] else 'off'} | {r['cores']} | {r['images_per_s']:,.0f} | "
              f"{r['images_per_s'] / r['cores']:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
