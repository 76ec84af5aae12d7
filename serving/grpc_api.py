"""TF Serving's gRPC API: `tensorflow.serving.PredictionService` (Predict, GetModelMetadata) and
`tensorflow.serving.ModelService` (GetModelStatus), over a FerService.

The servicers come from `tensorflow-serving-api`'s generated stubs, so a client written for TF
Serving works here unchanged.
"""
from __future__ import annotations

import functools
import logging
import time
from concurrent import futures
from typing import Callable, Optional, Tuple

import grpc
from google.protobuf import any_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)

from serving import errors, prediction
from serving.service import FerService, too_many_requests

log = logging.getLogger("fer_serve")

SIGNATURE_DEF_FIELD = "signature_def"  # the one metadata field TF Serving serves


def version_of(model_spec) -> Tuple[Optional[int], Optional[str]]:
    """(version, label) a ModelSpec asks for; (None, None) means the newest."""
    choice = model_spec.WhichOneof("version_choice")
    if choice == "version":
        return model_spec.version.value, None
    if choice == "version_label":
        return None, model_spec.version_label
    return None, None


class _Calls:
    """Runs a servicer method's work on the gRPC thread that took the call, times it, counts
    its status code and turns ServingError into the call's status. Predict counts against
    --max-concurrent-requests."""

    def __init__(self, service: FerService):
        self.service = service

    def run(self, method_name: str, context, work: Callable[[Optional[float]], object],
            admitted: bool = False):
        metrics = self.service.metrics
        started = time.perf_counter()
        code, message = grpc.StatusCode.OK, ""
        if admitted and not self.service.admission.try_acquire():
            code, message = grpc.StatusCode.RESOURCE_EXHAUSTED, too_many_requests().message
        else:
            metrics.in_flight.inc()
            try:
                remaining = context.time_remaining()
                return work(None if remaining is None else time.monotonic() + remaining)
            except errors.ServingError as e:
                code, message = e.code, e.message
            except Exception as e:  # a bug must not take the server down
                code, message = grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}"
                log.exception("%s failed", method_name)
            finally:
                metrics.in_flight.dec()
                if admitted:
                    self.service.admission.release()
                metrics.observe("grpc", method_name, code.name, time.perf_counter() - started)
        context.abort(code, message)


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """TF Serving's `tensorflow.serving.PredictionService` over the FerService of `calls`."""

    def __init__(self, calls: _Calls):
        self.calls = calls
        self.service = calls.service

    def Predict(self, request, context):
        """TF Serving's PredictionService.Predict."""
        def work(deadline):
            version, label = version_of(request.model_spec)
            loaded = self.service.resolve(request.model_spec.name, version, label)
            return prediction.predict_request(
                loaded, request, functools.partial(self.service.run, deadline=deadline),
                self.service.limits)
        return self.calls.run("Predict", context, work, admitted=True)

    def GetModelMetadata(self, request, context):
        """TF Serving's PredictionService.GetModelMetadata (the signature_def field only)."""
        return self.calls.run("GetModelMetadata", context,
                                    lambda deadline: self._metadata(request))

    def _metadata(self, request):
        fields = set(request.metadata_field)
        if fields != {SIGNATURE_DEF_FIELD}:
            raise errors.invalid(f"metadata_field must be ['{SIGNATURE_DEF_FIELD}'], got "
                                 f"{sorted(fields)}")
        version, label = version_of(request.model_spec)
        loaded = self.service.resolve(request.model_spec.name, version, label)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = loaded.model_name
        response.model_spec.version.value = loaded.version
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, signature_def in loaded.signature_defs.items():
            signature_map.signature_def[name].CopyFrom(signature_def)
        packed = any_pb2.Any()
        packed.Pack(signature_map)
        response.metadata[SIGNATURE_DEF_FIELD].CopyFrom(packed)
        return response


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    """TF Serving's `tensorflow.serving.ModelService` over the FerService of `calls`."""

    def __init__(self, calls: _Calls):
        self.calls = calls
        self.service = calls.service

    def GetModelStatus(self, request, context):
        """TF Serving's ModelService.GetModelStatus."""
        return self.calls.run("GetModelStatus", context,
                                    lambda deadline: self._status(request))

    def _status(self, request):
        version, label = version_of(request.model_spec)
        store = self.service.store(request.model_spec.name)
        if label:
            version = store.get(label=label).version
        response = get_model_status_pb2.GetModelStatusResponse()
        for status in store.status(version):
            entry = response.model_version_status.add()
            entry.version = status.version
            entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(status.state)
            entry.status.error_code = status.error_code.value[0]
            entry.status.error_message = status.error_message
        return response


def make_server(service: FerService, host: str, port: int,
                credentials: Optional[grpc.ServerCredentials] = None) -> Tuple[grpc.Server, int]:
    """A gRPC server bound to host:port (0 picks a free port), not started; returns it and the
    port.

    A call holds its thread from its headers on, so a call that sends headers and no message
    holds one too: the pool has a thread for every call allowed open at once
    (`max_connections`; more get RESOURCE_EXHAUSTED from gRPC itself), so slow callers cannot
    take the threads of others, and --max-concurrent-requests bounds the model calls. Threads
    are made as calls need them. Messages over `max_request_bytes` get RESOURCE_EXHAUSTED.
    (grpc.aio holds no thread per call but costs batch-1 requests ~0.5 ms more:
    BENCHMARKS.md#slow-clients.)"""
    limits = service.limits
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=limits.max_connections,
                                   thread_name_prefix="fer-grpc"),
        maximum_concurrent_rpcs=limits.max_connections,
        options=[("grpc.max_receive_message_length", limits.max_request_bytes),
                 ("grpc.max_send_message_length", max(limits.max_request_bytes, 64 << 20)),
                 ("grpc.so_reuseport", 0)])
    calls = _Calls(service)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(calls), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(calls), server)
    address = f"{host}:{port}"
    try:
        bound = (server.add_secure_port(address, credentials) if credentials
                 else server.add_insecure_port(address))
    except RuntimeError:
        bound = 0
    if not bound:
        raise OSError(f"cannot bind gRPC to {address}")
    return server, bound
