"""`fer-serve`: TF Serving's gRPC and REST APIs over the directory the Pusher writes.

For laptops and CI machines where neither Docker nor TF Serving's binary can be installed. In
production run TF Serving itself on the same directory (README, "Serving"); the API is the same.
"""
from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
import threading
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

import grpc

from components import contract
from serving import grpc_api, rest_api
from serving.batching import Batcher
from serving.metrics import METRICS_PATH, ServingMetrics
from serving.model_store import ModelStore
from serving.service import FerService

log = logging.getLogger("fer_serve")

DEFAULT_MAX_REQUEST_BYTES = 4 << 20


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
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_concurrent_requests: int = 64
    threads: int = 16
    replay_warmup: bool = True
    enable_batching: bool = False
    max_batch_size: int = 32
    batch_timeout_ms: float = 2.0
    ssl_cert: Optional[str] = None   # PEM files; gRPC over TLS when both are given
    ssl_key: Optional[str] = None


class FerServer:
    """Both front ends over one model store. `start()` loads what is on disk first."""

    def __init__(self, config: ServerConfig):
        self.config = config
        self.metrics = ServingMetrics()
        self.store = ModelStore(config.model_name, config.model_base_path, config.num_latest,
                                config.pinned_versions, config.version_labels,
                                config.replay_warmup, self.metrics)
        batcher = (Batcher(config.max_batch_size, config.batch_timeout_ms / 1000.0,
                           observe_batch=self.metrics.batch_size.observe)
                   if config.enable_batching else None)
        self.service = FerService({config.model_name: self.store}, self.metrics, batcher)
        self._grpc: Optional[grpc.Server] = None
        self._rest: Optional[rest_api.RestServer] = None
        self._rest_thread: Optional[threading.Thread] = None
        self.grpc_port: Optional[int] = None
        self.rest_port: Optional[int] = None

    def start(self) -> "FerServer":
        c = self.config
        self.store.refresh()
        if not self.store.available_versions():
            log.warning("no loadable version under %s yet; serving UNAVAILABLE until one "
                        "appears", c.model_base_path)
        credentials = None
        if c.ssl_cert and c.ssl_key:
            with open(c.ssl_key, "rb") as k, open(c.ssl_cert, "rb") as crt:
                credentials = grpc.ssl_server_credentials([(k.read(), crt.read())])
        self._grpc, self.grpc_port = grpc_api.make_server(
            self.service, c.host, c.grpc_port, c.max_request_bytes, c.max_concurrent_requests,
            c.threads, credentials)
        self._grpc.start()
        if c.rest_port is not None:
            self._rest = rest_api.make_server(self.service, c.host, c.rest_port,
                                              c.max_request_bytes, c.max_concurrent_requests)
            self.rest_port = self._rest.server_address[1]
            self._rest_thread = threading.Thread(target=self._rest.serve_forever,
                                                 name="fer-rest", daemon=True)
            self._rest_thread.start()
        self.store.start_polling(c.poll_interval_s)
        return self

    def stop(self, grace_s: float = 10.0) -> None:
        """Stops taking requests, lets the running ones finish (up to `grace_s`), then exits."""
        stopped = self._grpc.stop(grace_s) if self._grpc else None
        if self._rest:
            self._rest.shutdown()  # no new connections; handlers already running go on
            self._rest.wait_idle(grace_s)
            self._rest.server_close()
        if stopped:
            stopped.wait(grace_s)
        self.service.stop()

    def __enter__(self) -> "FerServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


READY_MESSAGE = "serving model"  # start of the log line that says both ports are open
_READY_PORTS = re.compile(r"gRPC \S+:(?P<grpc>\d+)(?:, REST http://\S+:(?P<rest>\d+))?")


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
                   help="also serve this version while it is on disk (repeatable)")
    p.add_argument("--version-label", type=_version_label, action="append", default=[],
                   metavar="LABEL=VERSION", help="name a version, e.g. stable=1700000000")
    p.add_argument("--max-request-bytes", type=int, default=DEFAULT_MAX_REQUEST_BYTES)
    p.add_argument("--max-concurrent-requests", type=int, default=64)
    p.add_argument("--threads", type=int, default=16, help="gRPC worker threads")
    p.add_argument("--no-warmup", action="store_true",
                   help="load versions without replaying their warm-up requests")
    p.add_argument("--enable-batching", action="store_true",
                   help="batch concurrent small requests together (see BENCHMARKS.md)")
    p.add_argument("--max-batch-size", type=int, default=32)
    p.add_argument("--batch-timeout-ms", type=float, default=2.0)
    p.add_argument("--ssl-cert", help="PEM certificate: serve gRPC over TLS (with --ssl-key)")
    p.add_argument("--ssl-key", help="PEM private key of --ssl-cert")
    return p


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    if bool(args.ssl_cert) != bool(args.ssl_key):
        raise SystemExit("fer-serve: --ssl-cert and --ssl-key go together")
    return ServerConfig(
        model_base_path=args.model_base_path, model_name=args.model_name, host=args.host,
        grpc_port=args.port, rest_port=None if args.rest_port < 0 else args.rest_port,
        poll_interval_s=args.poll_interval, num_latest=args.num_latest,
        pinned_versions=tuple(args.pin), version_labels=dict(args.version_label),
        max_request_bytes=args.max_request_bytes,
        max_concurrent_requests=args.max_concurrent_requests, threads=args.threads,
        replay_warmup=not args.no_warmup, enable_batching=args.enable_batching,
        max_batch_size=args.max_batch_size, batch_timeout_ms=args.batch_timeout_ms,
        ssl_cert=args.ssl_cert, ssl_key=args.ssl_key)


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
    host = args.host
    log.info("%s '%s' from %s: gRPC %s:%d%s; versions %s", READY_MESSAGE, args.model_name,
             args.model_base_path, host, server.grpc_port,
             f", REST http://{host}:{server.rest_port} (metrics {METRICS_PATH})"
             if server.rest_port else "", server.store.available_versions() or "none yet")
    done = threading.Event()

    def on_signal(signum, frame):
        log.info("%s: finishing requests in flight, then stopping",
                 signal.Signals(signum).name)
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    done.wait()
    server.stop()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
