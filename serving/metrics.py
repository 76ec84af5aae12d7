"""Prometheus metrics of fer-serve, served at /monitoring/prometheus/metrics as TF Serving does.

Each server owns a registry (several servers can run in one process, e.g. in tests).
"""
from __future__ import annotations

from typing import Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

disable_created_metrics()  # no `*_created` series: TF Serving has none either

METRICS_PATH = "/monitoring/prometheus/metrics"
CONTENT_TYPE = CONTENT_TYPE_LATEST
# Seconds; batch-1 requests take milliseconds, batch-32 ResNet50 requests up to seconds on 2 cores.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServingMetrics:
    """fer-serve's metrics in a `registry` of their own: requests by API, method and status
    code and their latency, images classified, requests in flight, loaded versions, the
    batcher's batch sizes and version loads by outcome."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "fer_serve_requests", "Requests by API, method and status code",
            ["api", "method", "code"], registry=self.registry)
        self.latency = Histogram(
            "fer_serve_request_latency_seconds", "Request latency, successful or not",
            ["api", "method"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.images = Counter(
            "fer_serve_images", "Images classified", ["model"], registry=self.registry)
        self.in_flight = Gauge(
            "fer_serve_requests_in_flight", "Requests being handled", registry=self.registry)
        self.loaded_version = Gauge(
            "fer_serve_loaded_version", "Newest loaded (default) version of each model",
            ["model"], registry=self.registry)
        self.loaded_versions = Gauge(
            "fer_serve_loaded_versions", "Number of loaded versions of each model",
            ["model"], registry=self.registry)
        self.batch_size = Histogram(
            "fer_serve_batch_size", "Images per model call of the server-side batcher",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=self.registry)
        self.loads = Counter(
            "fer_serve_version_loads", "Version loads by outcome (ok, failed)",
            ["model", "outcome"], registry=self.registry)

    def observe(self, api: str, method: str, code: str, seconds: float) -> None:
        """Counts one finished request of `api` ("grpc" or "rest") to TF Serving's `method`
        (e.g. "Predict") that ended with `code` (a gRPC status name), and its latency in
        `seconds`."""
        self.requests.labels(api, method, code).inc()
        self.latency.labels(api, method).observe(seconds)

    def set_versions(self, model: str, versions: Sequence[int]) -> None:
        """Records the loaded `versions` of `model`: their number, and the newest (left as it
        was when there is none)."""
        self.loaded_versions.labels(model).set(len(versions))
        if versions:
            self.loaded_version.labels(model).set(max(versions))

    def load_finished(self, model: str, ok: bool) -> None:
        """Counts a load of a version of `model`: succeeded (`ok`) or failed."""
        self.loads.labels(model, "ok" if ok else "failed").inc()

    def exposition(self) -> bytes:
        """Every metric in Prometheus' text format (CONTENT_TYPE), as served at
        METRICS_PATH."""
        return generate_latest(self.registry)
