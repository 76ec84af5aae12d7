"""What the gRPC and REST front ends share: finding the version a request names, running it
(directly or through the batcher), the model status and metadata.
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Mapping, Optional

import numpy as np

from serving import errors, prediction
from serving.batching import Batcher
from serving.metrics import ServingMetrics
from serving.model_store import LoadedVersion, ModelStore, VersionStatus


class FerService:
    def __init__(self, stores: Mapping[str, ModelStore], metrics: Optional[ServingMetrics] = None,
                 batcher: Optional[Batcher] = None):
        self.stores = dict(stores)
        self.metrics = metrics or ServingMetrics()
        self.batcher = batcher

    def store(self, model_name: str) -> ModelStore:
        if not model_name:
            raise errors.invalid("the request names no model (model_spec.name)")
        if model_name not in self.stores:
            raise errors.not_found(f"model '{model_name}' is not served; served: "
                                   f"{sorted(self.stores)}")
        return self.stores[model_name]

    def resolve(self, model_name: str, version: Optional[int] = None,
                label: Optional[str] = None) -> LoadedVersion:
        return self.store(model_name).get(version, label)

    def run(self, version: LoadedVersion, signature_name: str,
            inputs: Mapping[str, np.ndarray], output_filter: Iterable[str] = ()
            ) -> Dict[str, np.ndarray]:
        """prediction.run, through the batcher when it is on and the request is smaller than a
        batch."""
        size = next(iter(inputs.values())).shape[0] if inputs else 0
        if self.batcher is None or not inputs or size >= self.batcher.max_batch_size \
                or any(a.ndim == 0 for a in inputs.values()):
            outputs = prediction.run(version, signature_name, inputs, output_filter)
        else:
            signature_def = prediction.signature_def_of(version, signature_name)
            wanted = prediction.check_output_filter(signature_def, signature_name, output_filter)
            outputs = self.batcher.run(version, signature_name, inputs)
            if wanted:
                outputs = {k: v for k, v in outputs.items() if k in wanted}
        self.metrics.images.labels(version.model_name).inc(size)
        return outputs

    def status(self, model_name: str, version: Optional[int] = None) -> List[VersionStatus]:
        return self.store(model_name).status(version)

    def stop(self) -> None:
        for store in self.stores.values():
            store.stop()
        if self.batcher:
            self.batcher.stop()
