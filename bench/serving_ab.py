"""Batch-1 latency of this checkout's fer-serve against another checkout's, interleaved in one
run: the check that a serving change costs a single request nothing.

  git worktree add /tmp/before <commit>
  python -m bench.serving_ab --before /tmp/before [--arch vgg16] [--rounds 6]

Both servers run at once on the model `make run` exported (each its own process, idle while the
other is measured); each round measures both over gRPC and REST, alternating which goes first.
Prints the median of the rounds' p50s and p99s.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

import numpy as np

from bench import serving_bench
from components import contract
from pipeline import local_outputs

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="serving_ab", description=__doc__.split("\n")[0])
    p.add_argument("--before", required=True, help="the other checkout (e.g. a git worktree)")
    p.add_argument("--output-dir", default=local_outputs.DEFAULT_OUTPUT_DIR)
    p.add_argument("--arch", default="vgg16", choices=contract.ARCHITECTURES)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--requests", type=int, default=200, help="requests per round and server")
    args = p.parse_args(argv)
    work = tempfile.mkdtemp(prefix="serving-ab-")
    base = os.path.join(work, contract.MODEL_NAME)
    serving_bench.push_copy(serving_bench.trained_model(args.output_dir, args.arch), base)
    servers = {"before": serving_bench.Server(base, checkout=os.path.abspath(args.before)),
               "after": serving_bench.Server(base)}
    figures = {(name, protocol): [] for name in servers for protocol in ("grpc", "rest")}
    try:
        for round_ in range(args.rounds):
            order = list(servers) if round_ % 2 == 0 else list(servers)[::-1]
            for name in order:
                for protocol in ("grpc", "rest"):
                    figures[name, protocol].append(
                        serving_bench.latency(servers[name], protocol, args.requests))
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{args.arch}, batch 1, {args.rounds} rounds x {args.requests} requests per server, "
          "median over rounds\n")
    print("| API | before p50 / p99 (ms) | after p50 / p99 (ms) | after − before p50 (ms) |")
    print("|---|---|---|---|")
    for protocol in ("grpc", "rest"):
        med = {name: (np.median([f["p50_ms"] for f in figures[name, protocol]]),
                      np.median([f["p99_ms"] for f in figures[name, protocol]]))
               for name in servers}
        print(f"| {protocol} | {med['before'][0]:.2f} / {med['before'][1]:.2f} | "
              f"{med['after'][0]:.2f} / {med['after'][1]:.2f} | "
              f"{med['after'][0] - med['before'][0]:+.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
