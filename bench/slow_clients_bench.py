"""Slow-client benchmark: a good client's batch-1 latency with and without slow connections held
open against fer-serve, in one run, on loopback.

  python -m bench.slow_clients_bench [--output-dir outputs] [--arch vgg16] [--slow 200]

Each round measures the good client alone, then beside the slow ones, which are then closed;
the medians of the rounds are printed (one round varies by up to ±30% here). The slow ones are
REST connections that sent a request head and one byte of a 1000-byte body, and gRPC calls that
sent their headers and no message, as a slowloris client would. fer-serve runs as its own
process on the model `make run` exported. Prints Markdown for BENCHMARKS.md#slow-clients and
writes the raw figures to <output-dir>/bench/slow_clients_bench.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import sys
import tempfile
import threading
import time
import urllib.parse
from typing import Dict, List

import grpc
import numpy as np

from bench import serving_bench
from components import contract
from pipeline import local_outputs

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HOLD_LIMIT_S = 25.0  # under fer-serve's 30 s read timeout: the slow REST requests stay open


def hold_rest(url: str, count: int) -> List[socket.socket]:
    parsed = urllib.parse.urlsplit(url)
    sockets = []
    for _ in range(count):
        sock = socket.create_connection((parsed.hostname, parsed.port), timeout=10)
        sock.sendall(b"POST /v1/models/fer:predict HTTP/1.1\r\nContent-Length: 1000\r\n\r\n{")
        sockets.append(sock)
    return sockets


def hold_grpc(target: str, count: int, release: threading.Event):
    from tensorflow_serving.apis import predict_pb2

    channel = grpc.insecure_channel(target)
    method = channel.stream_unary("/tensorflow.serving.PredictionService/Predict",
                                  request_serializer=predict_pb2.PredictRequest.SerializeToString,
                                  response_deserializer=predict_pb2.PredictResponse.FromString)

    def nothing():  # sends no message until released (HOLD_LIMIT_S at most)
        release.wait(HOLD_LIMIT_S)
        return
        yield

    calls = [method.future(nothing(), timeout=HOLD_LIMIT_S + 5) for _ in range(count)]
    return channel, calls


def measure(server, requests: int) -> Dict[str, Dict[str, float]]:
    return {protocol: serving_bench.latency(server, protocol, requests)
            for protocol in ("grpc", "rest")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="slow_clients_bench", description=__doc__.split("\n")[0])
    p.add_argument("--output-dir", default=local_outputs.DEFAULT_OUTPUT_DIR)
    p.add_argument("--arch", default="vgg16", choices=contract.ARCHITECTURES)
    p.add_argument("--slow", type=int, default=200, help="slow connections of each API")
    p.add_argument("--requests", type=int, default=300, help="good batch-1 requests a measure")
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)

    work = tempfile.mkdtemp(prefix="slow-clients-bench-")
    base = os.path.join(work, contract.MODEL_NAME)
    serving_bench.push_copy(serving_bench.trained_model(args.output_dir, args.arch), base)
    server = serving_bench.Server(base)
    rounds: List[Dict[str, object]] = []
    try:
        for round_ in range(args.rounds):
            print(f"round {round_ + 1}: good client alone, then beside {args.slow} slow REST "
                  f"connections and {args.slow} slow gRPC calls", flush=True)
            alone = measure(server, args.requests)
            release = threading.Event()
            held_at = time.monotonic()
            sockets = hold_rest(server.rest, args.slow)
            channel, calls = hold_grpc(server.grpc, args.slow, release)
            try:
                time.sleep(0.5)  # all open on the server
                with_slow = measure(server, args.requests)
                held_s = time.monotonic() - held_at
                still_open = sum(not call.done() for call in calls)
            finally:
                release.set()
                for sock in sockets:
                    sock.close()
                for call in calls:
                    call.cancel()
                channel.close()
            if held_s > HOLD_LIMIT_S:
                raise SystemExit(f"measuring took {held_s:.0f} s: the slow REST requests may "
                                 "have timed out; use fewer --requests")
            rounds.append({"alone": alone, "with_slow": with_slow,
                           "slow_grpc_calls_still_open": still_open, "held_s": held_s})
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    results = {"arch": args.arch, "slow_per_api": args.slow, "rounds": rounds}
    out = os.path.join(args.output_dir, "bench", "slow_clients_bench.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump({"machine": f"{platform.processor() or platform.machine()}, "
                              f"{os.cpu_count()} CPUs", "results": results}, f, indent=2)
    still_open = min(r["slow_grpc_calls_still_open"] for r in rounds)
    print(f"\n{args.arch}, batch 1, {args.requests} good requests a measure, median of "
          f"{args.rounds} rounds; {args.slow} slow connections held on each API (at least "
          f"{still_open} gRPC ones still open at the end of each round)\n")
    print("| API | p50 / p99 alone (ms) | p50 / p99 with the slow ones (ms) | ratio p50 / p99 |")
    print("|---|---|---|---|")
    for protocol in ("grpc", "rest"):
        def median(kind, key, protocol=protocol):
            return float(np.median([r[kind][protocol][key] for r in rounds]))
        a50, a99 = median("alone", "p50_ms"), median("alone", "p99_ms")
        w50, w99 = median("with_slow", "p50_ms"), median("with_slow", "p99_ms")
        print(f"| {protocol} | {a50:.2f} / {a99:.2f} | {w50:.2f} / {w99:.2f} | "
              f"{w50 / a50:.2f} / {w99 / a99:.2f} |")
    print(f"\nraw figures: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
