"""The fer-serve server: TF Serving's gRPC and REST APIs over the directory the Pusher writes.

For laptops and CI machines where neither Docker nor TF Serving's binary can be installed. In
production run TF Serving itself on the same directory (docs/serving.md); the API is the same.
The command line is server_cli.py.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from concurrent import futures
from typing import Optional

from serving import grpc_api, http_server, rest_api, tls
from serving.batching import Batcher
from serving.config import ServerConfig
from serving.metrics import ServingMetrics
from serving.model_store import ModelStore
from serving.service import FerService

__all__ = ["EXIT_MARGIN_S", "FerServer", "ServerConfig"]

log = logging.getLogger("fer_serve")

EXIT_MARGIN_S = 5.0  # after the grace period, the process exits whatever a worker is doing


class FerServer:
    """Both front ends over one model store: gRPC on its own threads, REST on an event loop
    thread and a worker pool, as `config` (a ServerConfig) says. `start()` loads what is on
    disk first; `stop()` drains. A context manager: `with FerServer(config) as server:`."""

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
        """Loads the versions on disk (none loadable yet: logged, and requests get NOT_FOUND
        until one appears), starts gRPC, then REST, then the polling of the model directory;
        returns self, with `grpc_port` and `rest_port` set to the bound ports (port 0 in the
        config: a free one; `rest_port` stays None without REST). Raises OSError when a port
        cannot be bound, after stopping what had started."""
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
