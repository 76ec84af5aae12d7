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
from typing import Optional, Tuple

import grpc
from google.protobuf import any_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)

from serving import errors, prediction
from serving.service import FerService

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


def _instrumented(method_name: str):
    """Times a servicer method, counts its status code and turns ServingError into a status."""
    def wrap(method):
        @functools.wraps(method)
        def handler(self, request, context):
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            self.service.metrics.in_flight.inc()
            try:
                return method(self, request, context)
            except errors.ServingError as e:
                code = e.code
                context.abort(e.code, e.message)
            except Exception as e:  # a bug must not take the server down
                code = grpc.StatusCode.INTERNAL
                log.exception("%s failed", method_name)
                context.abort(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}")
            finally:
                self.service.metrics.in_flight.dec()
                self.service.metrics.observe("grpc", method_name, code.name,
                                             time.perf_counter() - started)
        return handler
    return wrap


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, service: FerService):
        self.service = service

    @_instrumented("Predict")
    def Predict(self, request, context):
        version, label = version_of(request.model_spec)
        loaded = self.service.resolve(request.model_spec.name, version, label)
        return prediction.predict_request(loaded, request, runner=self.service.run)

    @_instrumented("GetModelMetadata")
    def GetModelMetadata(self, request, context):
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
    def __init__(self, service: FerService):
        self.service = service

    @_instrumented("GetModelStatus")
    def GetModelStatus(self, request, context):
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


def make_server(service: FerService, host: str, port: int, max_request_bytes: int,
                max_concurrent_requests: int, threads: int,
                credentials: Optional[grpc.ServerCredentials] = None) -> Tuple[grpc.Server, int]:
    """A started-not gRPC server bound to host:port (0 picks a free port); returns it and the
    port. Requests over `max_request_bytes` and calls over `max_concurrent_requests` get
    RESOURCE_EXHAUSTED from gRPC itself."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fer-grpc"),
        maximum_concurrent_rpcs=max_concurrent_requests,
        options=[("grpc.max_receive_message_length", max_request_bytes),
                 ("grpc.max_send_message_length", max(max_request_bytes, 64 << 20)),
                 ("grpc.so_reuseport", 0)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(service), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(service), server)
    address = f"{host}:{port}"
    bound = (server.add_secure_port(address, credentials) if credentials
             else server.add_insecure_port(address))
    if not bound:
        raise OSError(f"cannot bind gRPC to {address}")
    return server, bound
