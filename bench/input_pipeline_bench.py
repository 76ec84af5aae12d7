"""Input pipeline throughput: the Trainer's `input_fn` (transformed TFRecords -> shuffled,
optionally augmented batches) in images/s, on one core and on all cores of this machine.

  python -m bench.input_pipeline_bench [--output-dir outputs] [--batch 128] [--batches 100]
      [--reads stream,cache] [--augments off,basic,gpu]

Reads the Transform output of a local run (`make run` first). Each configuration runs in its
own process, pinned to its cores (`os.sched_setaffinity`) with TensorFlow's thread pools sized
to match; the first 5 batches are a warm-up. Nothing trains: this is the rate at which the
input pipeline alone can feed an accelerator. Prints Markdown for BENCHMARKS.md#input-pipeline.
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
cores, read, augment, batch, batches, examples_uri, graph_uri = sys.argv[1:8]
cores, batch, batches = int(cores), int(batch), int(batches)
os.sched_setaffinity(0, set(range(cores)))
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(cores)
tf.config.threading.set_inter_op_parallelism_threads(cores)
import tensorflow_transform as tft
from tfx.components.trainer import fn_args_utils
from tfx.types import standard_artifacts
from components.models import input_pipeline
from pipeline import configs

examples = standard_artifacts.Examples()
examples.uri = examples_uri
examples.split_names = json.dumps(["train", "eval"])
graph = standard_artifacts.TransformGraph()
graph.uri = graph_uri
fn_args = fn_args_utils.get_common_fn_args(
    {"examples": [examples], "transform_graph": [graph]},
    {"train_args": '{"num_steps": 0}', "eval_args": '{"num_steps": 0}'}, working_dir="/tmp")
n = sum(input_pipeline.count_labels(fn_args.train_files, 7))
gpu = configs.get_profile("gpu").training_config("vgg16")
augmenter = {"off": None, "basic": input_pipeline.augmenter(42),
             "gpu": input_pipeline.augmenter(42, gpu["zoom"], gpu["crop_pad"], gpu["erasing"])}
dataset = input_pipeline.input_fn(fn_args.train_files, fn_args.data_accessor,
                                tft.TFTransformOutput(graph_uri), batch, training=True,
                                augment=augmenter[augment],
                                # stream: no num_examples, so no cache (and a 10k buffer)
                                num_examples=n if read == "cache" else 0)
iterator = iter(dataset)
# Warm-up: 5 batches, and the whole first epoch when the split is cached.
for _ in range(5 + (-(-n // batch) if read == "cache" else 0)):
    next(iterator)
start = time.perf_counter()
for _ in range(batches):
    images, labels = next(iterator)
elapsed = time.perf_counter() - start
print(json.dumps({"cores": cores, "read": read, "augment": augment,
                  "images_per_s": batch * batches / elapsed,
                  "image_shape": list(images.shape[1:])}))
"""


def latest(pattern: str) -> str:
    found = sorted(glob.glob(pattern), key=lambda p: int(os.path.basename(p)))
    if not found:
        raise SystemExit(f"nothing matches {pattern}: run the pipeline first (`make run`, "
                         "or `fer-pipeline run --architectures none` on FER2013)")
    return found[-1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="input_pipeline_bench", description=__doc__.split("\n")[0])
    p.add_argument("--output-dir", default=local_outputs.DEFAULT_OUTPUT_DIR)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--batches", type=int, default=100)
    p.add_argument("--reads", default="stream,cache",
                   help="stream: read and parse every epoch; cache: the Trainer's in-memory "
                        "cache (timed after the first epoch)")
    p.add_argument("--augments", default="off,basic,gpu",
                   help="off, basic (the default augmenter) or gpu (the gpu profile's)")
    args = p.parse_args(argv)
    root = local_outputs.OutputLayout(args.output_dir).pipeline_root
    examples = latest(os.path.join(root, "Transform", "transformed_examples", "*"))
    graph = latest(os.path.join(root, "Transform", "transform_graph", "*"))
    all_cores = len(os.sched_getaffinity(0))
    rows = []
    configs_to_run = [(read, augment) for augment in args.augments.split(",")
                      for read in args.reads.split(",")]
    for read, augment in configs_to_run:
        for cores in sorted({1, all_cores}):
            out = subprocess.run(
                [sys.executable, "-c", _CHILD, str(cores), read, augment, str(args.batch),
                 str(args.batches), examples, graph],
                cwd=configs.PROJECT_ROOT, capture_output=True, text=True)
            if out.returncode != 0:
                raise SystemExit(out.stderr[-3000:])
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    print(f"\nbatch {args.batch}, {args.batches} timed batches, image {rows[0]['image_shape']}")
    print("| read | augmentation | cores | images/s | images/s per core |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['read']} | {r['augment']} | {r['cores']} | {r['images_per_s']:,.0f} | "
              f"{r['images_per_s'] / r['cores']:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
