"""`fer-serve`: TF Serving's gRPC and REST APIs over the directory the Pusher writes.

For laptops and CI machines where neither Docker nor TF Serving's binary can be installed. In
production run TF Serving itself on the same directory (docs/serving.md); the API is the same.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import re
import signal
import sys
import threading
from concurrent import futures
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

from components import contract
from serving import grpc_api, http_server, model_store, rest_api, tls
from serving.batching import Batcher
from serving.limits import DEFAULT_LIMITS, FLAGS, Limits
from serving.metrics import METRICS_PATH, ServingMetrics
from serving.model_store import ModelStore
from serving.service import FerService

log = logging.getLogger("fer_serve")

EXIT_MARGIN_S = 5.0  # after the grace period, the process exits whatever a worker is doing


@dataclass
class ServerConfig:
    model_base_path: str
    model_name: str = contract.MODEL_NAME
    host: str = "127.0.0.1"
    grpc_port: int = contract.GRPC_PORT     # 0: a free port
    rest_port: Optional[int] = contract.REST_PORT  # None: no REST server
    poll_interval_s: float = 2.0
    num_latest: int = 1
    pinned_versions: Sequence[int] = ()
    version_labels: Dict[str, int] = field(default_factory=dict)
    max_load_retries: int = model_store.MAX_LOAD_RETRIES
    load_retry_interval_s: float = model_store.LOAD_RETRY_INTERVAL_S
    limits: Limits = DEFAULT_LIMITS
    threads: int = 16  # REST workers; gRPC has a thread per open call (limits.py)
    replay_warmup: bool = True
    enable_batching: bool = False
    max_batch_size: int = 32
    batch_timeout_ms: float = 2.0
    ssl_cert: Optional[str] = None   # PEM files: gRPC and REST over TLS when both are given
    ssl_key: Optional[str] = None
    ssl_client_ca: Optional[str] = None  # PEM CA: clients must present a certificate it signed
    grace_s: float = 10.0


class FerServer:
    """Both front ends over one model store: gRPC on its own threads, REST on an event loop
    thread and a worker pool. `start()` loads what is on disk first."""

    def __init__(self, config: ServerConfig):
        self.config = config
        self.metrics = ServingMetrics()
        self.store = ModelStore(config.model_name, config.model_base_path, config.num_latest,
                                config.pinned_versions, config.version_labels,
                                config.replay_warmup, self.metrics,
                                max_load_retries=config.max_load_retries,
                                load_retry_interval_s=config.load_retry_interval_s)
        batcher = (Batcher(config.max_batch_size, config.batch_timeout_ms / 1000.0,
                           observe_batch=self.metrics.batch_size.observe)
                   if config.enable_batching else None)
        self.service = FerService({config.model_name: self.store}, self.metrics, batcher,
                                  config.limits)
        self._executor = futures.ThreadPoolExecutor(config.threads, thread_name_prefix="fer-work")
        self._loop = asyncio.new_event_loop()
        self._loop_thread: Optional[threading.Thread] = None
        self._grpc = None
        self._rest: Optional[http_server.HttpServer] = None
        self.grpc_port: Optional[int] = None
        self.rest_port: Optional[int] = None

    def start(self) -> "FerServer":
        c = self.config
        self.store.refresh_safely()
        if not self.store.available_versions():
            log.warning("no loadable version under %s yet; answering NOT_FOUND until one "
                        "appears", c.model_base_path)
        self._grpc, self.grpc_port = grpc_api.make_server(self.service, c.host, c.grpc_port,
                                                          tls.grpc_credentials(c))
        self._grpc.start()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, name="fer-serve-io",
                                             daemon=True)
        self._loop_thread.start()
        try:
            self._on_loop(self._start_front_ends(), timeout=30)
        except BaseException:
            self._on_loop(self._stop_front_ends(0.0), timeout=10)
            self._grpc.stop(0)
            self._close_loop()
            raise
        self.store.start_polling(c.poll_interval_s)
        return self

    async def _start_front_ends(self) -> None:
        c = self.config
        if c.rest_port is not None:
            self._rest = http_server.HttpServer(rest_api.RestApp(self.service), c.limits,
                                                self._executor, tls.rest_context(c))
            self.rest_port = await self._rest.start(c.host, c.rest_port)

    async def _stop_front_ends(self, grace_s: float) -> None:
        if self._rest is not None:
            await self._rest.stop(grace_s)

    def _on_loop(self, coroutine, timeout: float):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def _close_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._loop_thread:
            self._loop_thread.join(timeout=5)

    def stop(self, grace_s: Optional[float] = None) -> None:
        """Refuses new connections at once, lets requests in flight finish within `grace_s`,
        then stops; a worker still busy after that is left behind (daemon threads)."""
        grace_s = self.config.grace_s if grace_s is None else grace_s
        if self._loop_thread is None:
            return
        # Both stop taking new connections and calls at once, then drain together.
        grpc_stopped = self._grpc.stop(grace_s)
        try:
            self._on_loop(self._stop_front_ends(grace_s), timeout=grace_s + EXIT_MARGIN_S)
        except (futures.TimeoutError, RuntimeError):
            log.warning("REST did not stop within %.0f s", grace_s + EXIT_MARGIN_S)
        grpc_stopped.wait(grace_s)
        self.service.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._close_loop()
        self._loop_thread = None

    def __enter__(self) -> "FerServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


READY_MESSAGE = "serving model"  # start of the log line that says both ports are open
_READY_PORTS = re.compile(r"gRPC \S+:(?P<grpc>\d+)(?:, REST https?://\S+:(?P<rest>\d+))?")


def ready_ports(log_line: str) -> Optional[Tuple[int, Optional[int]]]:
    """(gRPC port, REST port or None) from fer-serve's ready line; None for any other line.
    For scripts that start fer-serve with --port 0 and need the ports it chose."""
    if READY_MESSAGE not in log_line:
        return None
    match = _READY_PORTS.search(log_line)
    return int(match["grpc"]), int(match["rest"]) if match["rest"] else None


def _version_label(text: str):
    label, _, version = text.partition("=")
    if not label or not version.isdigit():
        raise argparse.ArgumentTypeError(f"expected LABEL=VERSION, got {text!r}")
    return label, int(version)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fer-serve", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Serve the pushed FER model over TF Serving's gRPC and REST APIs.")
    p.add_argument("--model-base-path", required=True,
                   help="directory of numbered versions, e.g. outputs/serving/fer after make run")
    p.add_argument("--model-name", default=contract.MODEL_NAME)
    p.add_argument("--host", default="127.0.0.1", help="address to bind; 0.0.0.0 for all")
    p.add_argument("--port", type=int, default=contract.GRPC_PORT, help="gRPC port (0: free)")
    p.add_argument("--rest-port", type=int, default=contract.REST_PORT,
                   help="REST port (0: free, -1: no REST)")
    p.add_argument("--poll-interval", type=float, default=2.0,
                   help="seconds between scans of the model directory")
    p.add_argument("--num-latest", type=int, default=1, help="newest versions to serve")
    p.add_argument("--pin", type=int, action="append", default=[], metavar="VERSION",
                   help="serve exactly these versions while on disk, as TF Serving's "
                        "'specific' policy (repeatable; --num-latest is then ignored)")
    p.add_argument("--version-label", type=_version_label, action="append", default=[],
                   metavar="LABEL=VERSION", help="name a version, e.g. stable=1700000000")
    p.add_argument("--max-load-retries", type=int, default=model_store.MAX_LOAD_RETRIES,
                   help="retries of a version that failed to load (TF Serving's "
                        "--max_num_load_retries)")
    p.add_argument("--load-retry-interval", type=float,
                   default=model_store.LOAD_RETRY_INTERVAL_S,
                   help="seconds between those retries")
    limits = p.add_argument_group("limits (each named in the error it causes)")
    for flag, (name, kind, text) in FLAGS.items():
        limits.add_argument(flag, dest=name, type=kind, default=getattr(DEFAULT_LIMITS, name),
                            metavar="SECONDS" if name.endswith("_s") else "N", help=text)
    p.add_argument("--threads", type=int, default=16,
                   help="worker threads that run REST requests")
    p.add_argument("--grace", type=float, default=10.0,
                   help="seconds requests in flight get to finish when stopping")
    p.add_argument("--no-warmup", action="store_true",
                   help="load versions without replaying their warm-up requests")
    p.add_argument("--enable-batching", action="store_true",
                   help="batch concurrent small requests together (see BENCHMARKS.md)")
    p.add_argument("--max-batch-size", type=int, default=32)
    p.add_argument("--batch-timeout-ms", type=float, default=2.0)
    p.add_argument("--ssl-cert", help="PEM certificate: serve gRPC and REST over TLS "
                                       "(with --ssl-key)")
    p.add_argument("--ssl-key", help="PEM private key of --ssl-cert")
    p.add_argument("--ssl-client-ca", help="PEM CA: require client certificates it signed "
                                            "(mutual TLS, both APIs)")
    return p


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    if bool(args.ssl_cert) != bool(args.ssl_key):
        raise SystemExit("fer-serve: --ssl-cert and --ssl-key go together")
    if args.ssl_client_ca and not args.ssl_cert:
        raise SystemExit("fer-serve: --ssl-client-ca needs --ssl-cert and --ssl-key")
    limits = Limits(**{name: getattr(args, name) for name, _, _ in FLAGS.values()})
    for name, value in dataclasses.asdict(limits).items():
        if value <= 0:
            raise SystemExit(f"fer-serve: {name.replace('_', '-')} must be positive")
    return ServerConfig(
        model_base_path=args.model_base_path, model_name=args.model_name, host=args.host,
        grpc_port=args.port, rest_port=None if args.rest_port < 0 else args.rest_port,
        poll_interval_s=args.poll_interval, num_latest=args.num_latest,
        pinned_versions=tuple(args.pin), version_labels=dict(args.version_label),
        max_load_retries=args.max_load_retries, load_retry_interval_s=args.load_retry_interval,
        limits=limits, threads=args.threads,
        replay_warmup=not args.no_warmup, enable_batching=args.enable_batching,
        max_batch_size=args.max_batch_size, batch_timeout_ms=args.batch_timeout_ms,
        ssl_cert=args.ssl_cert, ssl_key=args.ssl_key, ssl_client_ca=args.ssl_client_ca,
        grace_s=args.grace)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s fer-serve %(message)s",
                        datefmt="%H:%M:%S")
    server = FerServer(config_from_args(args))
    try:
        server.start()
    except OSError as e:
        print(f"fer-serve: {e}", file=sys.stderr)
        return 1
    host, scheme = args.host, "https" if args.ssl_cert else "http"
    log.info("%s '%s' from %s: gRPC %s:%d%s; versions %s", READY_MESSAGE, args.model_name,
             args.model_base_path, host, server.grpc_port,
             f", REST {scheme}://{host}:{server.rest_port} (metrics {METRICS_PATH})"
             if server.rest_port else "", server.store.available_versions() or "none yet")
    done = threading.Event()

    def on_signal(signum, frame):
        log.info("%s: finishing requests in flight, then stopping",
                 signal.Signals(signum).name)
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    done.wait()
    # Whatever a worker is doing (a model call cannot be interrupted), the process is gone by
    # grace + EXIT_MARGIN_S: the worker pool's threads would otherwise be joined at exit.
    watchdog = threading.Timer(server.config.grace_s + EXIT_MARGIN_S, _exit_now)
    watchdog.daemon = True
    watchdog.start()
    server.stop()
    log.info("stopped")
    return 0


def _exit_now() -> None:
    log.error("still busy %.0f s after the grace period: exiting", EXIT_MARGIN_S)
    logging.shutdown()
    os._exit(1)


if __name__ == "__main__":
    sys.exit(main())
