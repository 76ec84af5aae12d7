"""What the gRPC and REST front ends share: finding the version a request names, running it
(directly or through the batcher), the model status and metadata.
"""
from __future__ import annotations

import threading
import time
from typing import Dict, Iterable, List, Mapping, Optional

import grpc
import numpy as np

from serving import errors, prediction
from serving.batching import Batcher, deadline_exceeded
from serving.limits import DEFAULT_LIMITS, Limits, flag_of
from serving.metrics import ServingMetrics
from serving.model_store import LoadedVersion, ModelStore, VersionStatus


class FerService:
    """The calls both front ends make: `stores` maps each served model name to its ModelStore;
    requests run through `batcher` when one is given (server-side batching); `limits` bounds
    each request, and its max_concurrent_requests sizes `admission`; `metrics` (None: a
    registry of its own) counts the images classified."""

    def __init__(self, stores: Mapping[str, ModelStore], metrics: Optional[ServingMetrics] = None,
                 batcher: Optional[Batcher] = None, limits: Limits = DEFAULT_LIMITS):
        self.stores = dict(stores)
        self.metrics = metrics or ServingMetrics()
        self.batcher = batcher
        self.limits = limits
        self.admission = Admission(limits.max_concurrent_requests)

    def store(self, model_name: str) -> ModelStore:
        """The ModelStore of `model_name`: INVALID_ARGUMENT for an empty name, NOT_FOUND for a
        model not served."""
        if not model_name:
            raise errors.invalid("the request names no model (model_spec.name)")
        if model_name not in self.stores:
            raise errors.not_found(f"model '{model_name}' is not served; served: "
                                   f"{sorted(self.stores)}")
        return self.stores[model_name]

    def resolve(self, model_name: str, version: Optional[int] = None,
                label: Optional[str] = None) -> LoadedVersion:
        """The loaded version a request names (ModelStore.get): `version`, or `label`'s, or the
        newest with neither. Raises INVALID_ARGUMENT (no model name, unknown label) or
        NOT_FOUND (model not served, version not loaded)."""
        return self.store(model_name).get(version, label)

    def run(self, version: LoadedVersion, signature_name: str,
            inputs: Mapping[str, np.ndarray], output_filter: Iterable[str] = (),
            limits: Optional[Limits] = None, deadline: Optional[float] = None
            ) -> Dict[str, np.ndarray]:
        """Checks the request, then runs it: through the batcher when batching is on and the
        request is smaller than a batch. `deadline` (time.monotonic()) bounds the wait."""
        wanted = prediction.check(version, signature_name, inputs, output_filter,
                                  limits or self.limits)
        if deadline is not None and time.monotonic() >= deadline:
            raise deadline_exceeded("the request's deadline passed before it could run")
        size = next(iter(inputs.values())).shape[0]
        if self.batcher is None or size >= self.batcher.max_batch_size:
            outputs = prediction.execute(version, signature_name, inputs, wanted)
        else:
            outputs = self.batcher.run(version, signature_name, inputs, deadline)
            if wanted:
                outputs = {k: v for k, v in outputs.items() if k in wanted}
        self.metrics.images.labels(version.model_name).inc(size)
        return outputs

    def status(self, model_name: str, version: Optional[int] = None) -> List[VersionStatus]:
        """ModelStore.status of `model_name`: `version`'s entry, or every version's with None.
        Raises NOT_FOUND (INVALID_ARGUMENT without a model name)."""
        return self.store(model_name).status(version)

    def stop(self) -> None:
        """Stops each store's polling and the batcher (what is still queued there gets
        UNAVAILABLE)."""
        for store in self.stores.values():
            store.stop()
        if self.batcher:
            self.batcher.stop()


class Admission:
    """The requests being run, both APIs together: over `limit`, RESOURCE_EXHAUSTED at once.
    Taken only once a request has fully arrived, so slow senders hold none."""

    def __init__(self, limit: int):
        self.limit = limit
        self._running = 0
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        """Takes a slot: True, or False (nothing taken) when `limit` requests are running."""
        with self._lock:
            if self._running >= self.limit:
                return False
            self._running += 1
            return True

    def release(self) -> None:
        """Gives back a slot `try_acquire` took."""
        with self._lock:
            self._running -= 1

    @property
    def running(self) -> int:
        """The slots taken now."""
        return self._running


def too_many_requests() -> errors.ServingError:
    """The RESOURCE_EXHAUSTED (REST: 429) of a request over --max-concurrent-requests."""
    return errors.ServingError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"too many concurrent requests ({flag_of('max_concurrent_requests')})")
