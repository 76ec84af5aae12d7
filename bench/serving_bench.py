"""Serving benchmark: the pushed-model SavedModels in process (the limit) against fer-serve over
gRPC and REST, server-side batching, and version swaps (first request, errors under load).

  python -m bench.serving_bench [--output-dir outputs] [--archs vgg16,resnet50,ensemble]

Uses the models the Trainers and the Ensemble of a local run exported (`make run` first): every
candidate, as the Pusher would push it (warm-up records included). fer-serve runs as its own
process, as users start it; the clients run in this process. Prints Markdown for
BENCHMARKS.md#serving and writes the raw figures to <output-dir>/bench/serving_bench.json.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures
from typing import Dict, List

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from components import contract, warmup  # noqa: E402
from pipeline import configs, local_outputs  # noqa: E402
from pipeline.pipeline import ENSEMBLE_ID  # noqa: E402
from serving import client as client_lib  # noqa: E402
from serving import server as fer_serve  # noqa: E402

CLIENT_COUNTS = (1, 4, 16)


def trained_model(output_dir: str, candidate: str) -> str:
    """The latest SavedModel of a candidate: an architecture's Trainer's, or the Ensemble's."""
    component = ENSEMBLE_ID if candidate == contract.ENSEMBLE else f"Trainer_{candidate}"
    pattern = os.path.join(local_outputs.OutputLayout(output_dir).pipeline_root,
                           component, "model", "*", "Format-Serving")
    found = sorted(glob.glob(pattern), key=lambda p: int(p.split(os.sep)[-2]))
    if not found:
        raise SystemExit(f"no exported {candidate} model under {pattern}: run `make run` first")
    return found[-1]


def percentiles(seconds: List[float]) -> Dict[str, float]:
    ms = np.array(seconds) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "n": len(ms)}


def test_images(count: int) -> List[bytes]:
    return warmup.warmup_images(count)  # real encoded 48 and 96 px PNG/JPEG


def in_process(model_dir: str, requests: int, batches: int) -> Dict[str, float]:
    import tensorflow as tf

    serve = tf.saved_model.load(model_dir).signatures[contract.SERVING_SIGNATURE]
    one, batch = tf.constant(test_images(1)), tf.constant(test_images(32))
    for _ in range(10):
        serve(image_bytes=one)
    times = []
    for _ in range(requests):
        t = time.perf_counter()
        serve(image_bytes=one)["probabilities"].numpy()
        times.append(time.perf_counter() - t)
    for _ in range(2):
        serve(image_bytes=batch)
    t = time.perf_counter()
    for _ in range(batches):
        serve(image_bytes=batch)["probabilities"].numpy()
    return {**percentiles(times), "b32_images_per_s": 32 * batches / (time.perf_counter() - t)}


class Server:
    """fer-serve as its own process; `checkout` runs another checkout's fer-serve (A/B)."""

    def __init__(self, base: str, *extra: str, checkout: str = configs.PROJECT_ROOT):
        self.log_path = os.path.join(os.path.dirname(base), f"fer-serve-{time.time_ns()}.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "serving.server", "--model-base-path", base, "--port", "0",
             "--rest-port", "0", "--poll-interval", "0.1", *extra],
            cwd=checkout, stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.time() + 300
        while time.time() < deadline:
            ports = next(filter(None, map(fer_serve.ready_ports,
                                          open(self.log_path).read().splitlines())), None)
            if ports:
                self.grpc = f"127.0.0.1:{ports[0]}"
                self.rest = f"http://127.0.0.1:{ports[1]}"
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise SystemExit("fer-serve did not start:\n" + open(self.log_path).read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()


def _address(server: Server, protocol: str) -> str:
    return server.grpc if protocol == "grpc" else server.rest


def latency(server: Server, protocol: str, requests: int) -> Dict[str, float]:
    image = test_images(1)
    with client_lib.connect(protocol, _address(server, protocol)) as client:
        for _ in range(10):
            client.predict(image)
        times = []
        for _ in range(requests):
            t = time.perf_counter()
            client.predict(image)
            times.append(time.perf_counter() - t)
    return percentiles(times)


def throughput(server: Server, protocol: str, clients: int, requests_per_client: int,
               batch_size: int) -> Dict[str, float]:
    images = test_images(batch_size)
    times: List[float] = []
    failures: List[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def run():
        with client_lib.connect(protocol, _address(server, protocol)) as client:
            client.predict(images)  # connect + warm
            barrier.wait()
            for _ in range(requests_per_client):
                t = time.perf_counter()
                try:
                    client.predict(images, batch_size=batch_size)
                    with lock:
                        times.append(time.perf_counter() - t)
                except client_lib.ClientError as e:
                    with lock:
                        failures.append(e.code)

    with futures.ThreadPoolExecutor(clients) as pool:
        jobs = [pool.submit(run) for _ in range(clients)]
        barrier.wait()
        started = time.perf_counter()
        for job in jobs:
            job.result()
        wall = time.perf_counter() - started
    return {"images_per_s": batch_size * len(times) / wall, "failures": len(failures),
            **percentiles(times)}


def push_copy(model_dir: str, base: str) -> int:
    from components.pusher.executor import publish_atomically

    return int(os.path.basename(publish_atomically(model_dir, base)))


def first_request_after_swap(server: Server, model_dir: str, base: str) -> Dict[str, float]:
    """Pushes a version, waits until the server reports it AVAILABLE, then times the first
    request (pinned to that version) and the next ten."""
    version = push_copy(model_dir, base)
    pushed = time.perf_counter()
    image = test_images(1)
    with client_lib.GrpcClient(server.grpc, version=version) as client:
        while True:
            try:
                states = {s["version"]: s["state"] for s in client.status()}
            except client_lib.ClientError:
                states = {}
            if states.get(version) == "AVAILABLE":
                break
            time.sleep(0.02)
        ready = time.perf_counter() - pushed
        t = time.perf_counter()
        client.predict(image)
        first = time.perf_counter() - t
        after = []
        for _ in range(10):
            t = time.perf_counter()
            client.predict(image)
            after.append(time.perf_counter() - t)
    return {"push_to_available_s": ready, "first_ms": first * 1000,
            "next_p50_ms": float(np.median(after) * 1000)}


def swap_under_load(server: Server, model_dir: str, base: str, clients: int = 8
                    ) -> Dict[str, float]:
    stop = threading.Event()
    counts = {"ok": 0, "failed": 0, "new": 0}
    errors: List[str] = []
    lock = threading.Lock()
    image = test_images(1)
    new_version = [None]

    def run(protocol):
        with client_lib.connect(protocol, _address(server, protocol)) as client:
            while not stop.is_set():
                try:
                    (p,) = client.predict(image)
                    with lock:
                        counts["ok"] += 1
                        counts["new"] += p.version == new_version[0]
                except client_lib.ClientError as e:
                    with lock:
                        counts["failed"] += 1
                        errors.append(f"{e.code}: {e.message}")

    threads = [threading.Thread(target=run, args=("grpc" if i % 2 else "rest",))
               for i in range(clients)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    new_version[0] = push_copy(model_dir, base)
    deadline = time.time() + 120
    while time.time() < deadline:
        with lock:
            if counts["new"] >= 50:
                break
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join()
    return {"requests": counts["ok"] + counts["failed"], "failed": counts["failed"],
            "answered_by_new_version": counts["new"], "errors": errors[:5]}


def bench_arch(arch: str, model_dir: str, args) -> Dict[str, object]:
    result: Dict[str, object] = {"model_dir": model_dir}
    print(f"[{arch}] in process", flush=True)
    result["in_process"] = in_process(model_dir, args.requests, args.batches)
    work = tempfile.mkdtemp(prefix=f"serving-bench-{arch}-")
    base = os.path.join(work, contract.MODEL_NAME)
    push_copy(model_dir, base)
    server = Server(base)
    try:
        for protocol in ("grpc", "rest"):
            print(f"[{arch}] {protocol} batch 1", flush=True)
            result[f"{protocol}_b1"] = latency(server, protocol, args.requests)
            for clients in CLIENT_COUNTS:
                print(f"[{arch}] {protocol} batch 32, {clients} clients", flush=True)
                per_client = max(2, args.batches // clients)
                result[f"{protocol}_b32_c{clients}"] = throughput(
                    server, protocol, clients, per_client, 32)
        print(f"[{arch}] batch-1 requests, 16 clients, no server-side batching", flush=True)
        result["b1_c16_unbatched"] = throughput(server, "grpc", 16, args.requests // 16, 1)
        print(f"[{arch}] swap under load", flush=True)
        result["swap_under_load"] = swap_under_load(server, model_dir, base)
        print(f"[{arch}] first request after swap (warm-up on)", flush=True)
        result["swap_with_warmup"] = first_request_after_swap(server, model_dir, base)
    finally:
        server.stop()
    server = Server(base, "--enable-batching", "--max-batch-size", "32",
                    "--batch-timeout-ms", "2")
    try:
        print(f"[{arch}] batch-1 requests, 16 clients, server-side batching", flush=True)
        result["b1_c16_batched"] = throughput(server, "grpc", 16, args.requests // 16, 1)
    finally:
        server.stop()
    server = Server(base, "--no-warmup")
    try:
        print(f"[{arch}] first request after swap (warm-up off)", flush=True)
        result["swap_without_warmup"] = first_request_after_swap(server, model_dir, base)
    finally:
        server.stop()
    shutil.rmtree(work, ignore_errors=True)
    return result


def markdown(results: Dict[str, Dict]) -> str:
    lines = ["| model | path | batch 1 p50 / p99 (ms) | p50 − in-process (ms) | "
             "batch 32 img/s, 1 / 4 / 16 clients | ÷ in-process |",
             "|---|---|---|---|---|---|"]
    for arch, r in results.items():
        base = r["in_process"]
        lines.append(f"| {arch} | in process (limit) | {base['p50_ms']:.1f} / "
                     f"{base['p99_ms']:.1f} | – | {base['b32_images_per_s']:.0f} | 1.00 |")
        for protocol in ("grpc", "rest"):
            b1 = r[f"{protocol}_b1"]
            rates = [r[f"{protocol}_b32_c{c}"]["images_per_s"] for c in CLIENT_COUNTS]
            ratios = " / ".join(f"{x / base['b32_images_per_s']:.2f}" for x in rates)
            lines.append(f"| {arch} | {protocol} | {b1['p50_ms']:.1f} / {b1['p99_ms']:.1f} | "
                         f"{b1['p50_ms'] - base['p50_ms']:+.1f} | "
                         f"{' / '.join(f'{x:.0f}' for x in rates)} | {ratios} |")
    lines += ["", "| model | batch-1 img/s, 16 gRPC clients: unbatched / batched | "
              "swap under load: requests / failed / by new version | first request after "
              "swap (ms), warm-up on / off | next requests p50 (ms) |", "|---|---|---|---|---|"]
    for arch, r in results.items():
        s = r["swap_under_load"]
        lines.append(
            f"| {arch} | {r['b1_c16_unbatched']['images_per_s']:.0f} / "
            f"{r['b1_c16_batched']['images_per_s']:.0f} | {s['requests']} / {s['failed']} / "
            f"{s['answered_by_new_version']} | {r['swap_with_warmup']['first_ms']:.0f} / "
            f"{r['swap_without_warmup']['first_ms']:.0f} | "
            f"{r['swap_with_warmup']['next_p50_ms']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="serving_bench", description=__doc__.split("\n")[0])
    p.add_argument("--output-dir", default=local_outputs.DEFAULT_OUTPUT_DIR)
    p.add_argument("--archs", default=",".join(contract.CANDIDATES),
                   help="candidates: architectures and the ensemble")
    p.add_argument("--requests", type=int, default=200, help="batch-1 requests per measure")
    p.add_argument("--batches", type=int, default=32, help="batch-32 requests per measure")
    args = p.parse_args(argv)
    results = {}
    for arch in args.archs.split(","):
        results[arch] = bench_arch(arch, trained_model(args.output_dir, arch), args)
    out = os.path.join(args.output_dir, "bench", "serving_bench.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump({"machine": f"{platform.processor() or platform.machine()}, "
                              f"{os.cpu_count()} CPUs", "results": results}, f, indent=2)
    print(markdown(results))
    print(f"\nraw figures: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
