"""Training throughput of the model builders on this machine: images/s per architecture,
variant, width, input size and precision (fp32 vs bf16 mixed precision).

  python -m bench.train_throughput [--sizes 48] [--widths 1,0.5] [--steps 5] [--batch 32]

Each configuration runs in its own process (mixed precision is a global Keras policy): one
warm-up step (graph tracing, reported separately), then `--steps` timed steps of
`train_on_batch` on random data. Not a test: prints a Markdown table for
BENCHMARKS.md#training-throughput.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys

_CHILD = r"""
import json, os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np, keras
from components.models import resnet50, vgg16
arch, variant, px, precision, steps, batch, width = sys.argv[1:8]
px, steps, batch, width = int(px), int(steps), int(batch), float(width)
keras.mixed_precision.set_global_policy(precision)
model = {"vgg16": vgg16.build, "resnet50": resnet50.build}[arch]((px, px, 1), 6, variant=variant,
                                                                 width=width)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
rng = np.random.default_rng(0)
x = rng.random((batch, px, px, 1), dtype=np.float32)
y = rng.integers(0, 6, batch)
t = time.perf_counter(); model.train_on_batch(x, y); warmup = time.perf_counter() - t
t = time.perf_counter()
for _ in range(steps):
    model.train_on_batch(x, y)
per_step = (time.perf_counter() - t) / steps
print(json.dumps({"arch": arch, "variant": variant, "width": width, "px": px,
                  "precision": precision, "params": model.count_params(),
                  "warmup_s": warmup, "images_per_s": batch / per_step}))
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", default="vgg16,resnet50")
    parser.add_argument("--variants", default="fer")
    parser.add_argument("--sizes", default="48")
    parser.add_argument("--widths", default="1")
    parser.add_argument("--precisions", default="float32,mixed_bfloat16")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args(argv)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    rows = []
    for arch, variant, width, px, precision in itertools.product(
            args.archs.split(","), args.variants.split(","), args.widths.split(","),
            args.sizes.split(","), args.precisions.split(",")):
        out = subprocess.run([sys.executable, "-c", _CHILD, arch, variant, px, precision,
                              str(args.steps), str(args.batch), width], cwd=root, check=True,
                             capture_output=True, text=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\n| architecture | variant | width | parameters | input | precision "
          f"| images/s (batch {args.batch}) | first step (tracing) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['arch']} | {r['variant']} | {r['width']} | {r['params']:,} | {r['px']} px "
              f"| {r['precision']} | {r['images_per_s']:.1f} | {r['warmup_s']:.1f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
