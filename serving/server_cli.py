"""`fer-serve`: TF Serving's gRPC and REST APIs over the directory the Pusher writes.

Parses options, starts the server (server.py) and stops it on SIGTERM or Ctrl-C. `--help` and
option errors answer without importing TensorFlow; its start-up lines go to the console only
with `-v` (components/quiet_start.py).
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
import signal
import sys
import threading
from typing import Optional, Sequence, Tuple

from components import quiet_start
from serving.config import ServerConfig
from serving.limits import FLAGS, Limits

log = logging.getLogger("fer_serve")

DEFAULTS = ServerConfig(model_base_path="")
READY_MESSAGE = "serving model"  # start of the log line that says both ports are open
_READY_PORTS = re.compile(r"gRPC \S+:(?P<grpc>\d+)(?:, REST https?://\S+:(?P<rest>\d+))?")


def ready_ports(log_line: str) -> Optional[Tuple[int, Optional[int]]]:
    """(gRPC port, REST port or None) from fer-serve's ready line; None for any other line.
    For scripts that start fer-serve with --port 0 and need the ports it chose."""
    if READY_MESSAGE not in log_line:
        return None
    match = _READY_PORTS.search(log_line)
    if match is None:
        return None
    return int(match["grpc"]), int(match["rest"]) if match["rest"] else None


def _version_label(text: str):
    label, _, version = text.partition("=")
    if not label or not version.isdigit():
        raise argparse.ArgumentTypeError(f"expected LABEL=VERSION, got {text!r}")
    return label, int(version)


def build_parser() -> argparse.ArgumentParser:
    """fer-serve's command line; its defaults are ServerConfig's (DEFAULTS), the limits' flags
    come from limits.FLAGS."""
    p = argparse.ArgumentParser(
        prog="fer-serve", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Serve the pushed FER model over TF Serving's gRPC and REST APIs.")
    p.add_argument("--model-base-path", required=True,
                   help="directory of numbered versions, e.g. outputs/serving/fer after make run")
    p.add_argument("--model-name", default=DEFAULTS.model_name)
    p.add_argument("--host", default=DEFAULTS.host, help="address to bind; 0.0.0.0 for all")
    p.add_argument("--port", type=int, default=DEFAULTS.grpc_port, help="gRPC port (0: free)")
    p.add_argument("--rest-port", type=int, default=DEFAULTS.rest_port,
                   help="REST port (0: free, -1: no REST)")
    p.add_argument("--poll-interval", type=float, default=DEFAULTS.poll_interval_s,
                   help="seconds between scans of the model directory")
    p.add_argument("--num-latest", type=int, default=DEFAULTS.num_latest,
                   help="newest versions to serve")
    p.add_argument("--pin", type=int, action="append", default=[], metavar="VERSION",
                   help="serve exactly these versions while on disk, as TF Serving's "
                        "'specific' policy (repeatable; --num-latest is then ignored)")
    p.add_argument("--version-label", type=_version_label, action="append", default=[],
                   metavar="LABEL=VERSION", help="name a version, e.g. stable=1700000000")
    p.add_argument("--max-load-retries", type=int, default=DEFAULTS.max_load_retries,
                   help="retries of a version that failed to load (TF Serving's "
                        "--max_num_load_retries)")
    p.add_argument("--load-retry-interval", type=float,
                   default=DEFAULTS.load_retry_interval_s,
                   help="seconds between those retries")
    limits = p.add_argument_group("limits (each named in the error it causes)")
    for flag, (name, kind, text) in FLAGS.items():
        limits.add_argument(flag, dest=name, type=kind, default=getattr(DEFAULTS.limits, name),
                            metavar="SECONDS" if name.endswith("_s") else "N", help=text)
    p.add_argument("--threads", type=int, default=DEFAULTS.threads,
                   help="worker threads that run REST requests")
    p.add_argument("--grace", type=float, default=DEFAULTS.grace_s,
                   help="seconds requests in flight get to finish when stopping")
    p.add_argument("--no-warmup", action="store_true",
                   help="load versions without replaying their warm-up requests")
    p.add_argument("--enable-batching", action="store_true",
                   help="batch concurrent small requests together (BENCHMARKS.md#fer-serve)")
    p.add_argument("--max-batch-size", type=int, default=DEFAULTS.max_batch_size)
    p.add_argument("--batch-timeout-ms", type=float,
                   default=DEFAULTS.batch_timeout_ms)
    p.add_argument("--ssl-cert", help="PEM certificate: serve gRPC and REST over TLS "
                                       "(with --ssl-key)")
    p.add_argument("--ssl-key", help="PEM private key of --ssl-cert")
    p.add_argument("--ssl-client-ca", help="PEM CA: require client certificates it signed "
                                            "(mutual TLS, both APIs)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show TensorFlow's start-up lines (CUDA, oneDNN) too")
    return p


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """The ServerConfig of parsed `args` (`--rest-port` below 0: no REST server). Raises
    SystemExit with the reason for --ssl-cert without --ssl-key or the reverse, --ssl-client-ca
    without them, a limit that is not positive, or a count or interval out of range."""
    if bool(args.ssl_cert) != bool(args.ssl_key):
        raise SystemExit("fer-serve: --ssl-cert and --ssl-key go together")
    if args.ssl_client_ca and not args.ssl_cert:
        raise SystemExit("fer-serve: --ssl-client-ca needs --ssl-cert and --ssl-key")
    limits = Limits(**{name: getattr(args, name) for name, _, _ in FLAGS.values()})
    for name, value in dataclasses.asdict(limits).items():
        if value <= 0:
            raise SystemExit(f"fer-serve: {name.replace('_', '-')} must be positive")
    # The other numbers: a traceback at start-up, or a scan of the directory without pause.
    for flag, value, least in (("--poll-interval", args.poll_interval, "positive"),
                               ("--num-latest", args.num_latest, "positive"),
                               ("--threads", args.threads, "positive"),
                               ("--max-batch-size", args.max_batch_size, "positive"),
                               ("--max-load-retries", args.max_load_retries, "0 or more"),
                               ("--load-retry-interval", args.load_retry_interval, "0 or more"),
                               ("--batch-timeout-ms", args.batch_timeout_ms, "0 or more"),
                               ("--grace", args.grace, "0 or more")):
        if value < 0 or (value == 0 and least == "positive"):
            raise SystemExit(f"fer-serve: {flag} must be {least}, got {value}")
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
    """Runs fer-serve on `argv` (None: sys.argv[1:]) until SIGTERM or SIGINT, then stops within
    the grace period (the process exits by force EXIT_MARGIN_S after it). Returns the exit
    status: 0 after a stop, 1 when a port cannot be bound; bad options raise SystemExit."""
    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    with quiet_start.quiet_start(args.verbose):
        from serving.metrics import METRICS_PATH
        from serving.server import EXIT_MARGIN_S, FerServer
    logging.basicConfig(level=logging.INFO, format="%(asctime)s fer-serve %(message)s",
                        datefmt="%H:%M:%S")
    server = FerServer(config)
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
    watchdog = threading.Timer(server.config.grace_s + EXIT_MARGIN_S, _exit_now,
                               args=(EXIT_MARGIN_S,))
    watchdog.daemon = True
    watchdog.start()
    server.stop()
    log.info("stopped")
    return 0


def _exit_now(margin_s: float) -> None:
    log.error("still busy %.0f s after the grace period: exiting", margin_s)
    logging.shutdown()
    os._exit(1)


if __name__ == "__main__":
    sys.exit(main())
