"""TF Serving's REST API over a FerService, with the standard library's threading HTTP server.

  GET  /v1/models/<name>[/versions/<n>|/labels/<label>]            model status
  GET  /v1/models/<name>[/versions/<n>|/labels/<label>]/metadata   signature defs
  POST /v1/models/<name>[/versions/<n>|/labels/<label>]:predict    {"instances": [...]} (row) or
                                                                  {"inputs": ...} (columnar)
  GET  /monitoring/prometheus/metrics

Binary strings travel as {"b64": "..."}, as in TF Serving. Errors are {"error": "..."} with
TF Serving's HTTP codes; a body over the size limit gets 413 before it is read. Responses carry
the version that answered in an `X-Model-Version` header (TF Serving's body format has no room
for it).
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.framework import types_pb2

from serving import errors, metrics, prediction
from serving.service import FerService

log = logging.getLogger("fer_serve")

_MODEL_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?:(?P<metadata>/metadata)|:(?P<verb>predict|classify|regress))?$")
VERSION_HEADER = "X-Model-Version"


def _to_bytes(value: Any, where: str) -> bytes:
    if isinstance(value, dict) and set(value) == {"b64"}:
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise errors.invalid(f"{where}: 'b64' is not valid base64") from None
    if isinstance(value, str):
        return value.encode("utf-8")
    raise errors.invalid(f"{where}: expected a string or {{\"b64\": ...}} (the signature "
                         f"takes DT_STRING), got {type(value).__name__}")


def _to_array(values: Any, dtype_enum: int, key: str) -> np.ndarray:
    if not isinstance(values, list):
        raise errors.invalid(f"input '{key}' must be a list (one entry per instance)")
    if dtype_enum == types_pb2.DT_STRING:
        return np.array([_to_bytes(v, f"instance {i} of input '{key}'")
                         for i, v in enumerate(values)], dtype=object)
    try:
        return np.asarray(values, dtype=tf.as_dtype(dtype_enum).as_numpy_dtype)
    except (TypeError, ValueError) as e:
        raise errors.invalid(f"input '{key}' does not convert to "
                             f"{prediction.dtype_name(dtype_enum)}: {e}") from None


def parse_predict_body(body: Dict[str, Any], signature_def, signature_name: str
                       ) -> Tuple[Dict[str, np.ndarray], bool]:
    """JSON request -> (arrays by input key, row format?)."""
    keys = list(signature_def.inputs)
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise errors.invalid("'instances' must be a list")
        named = (len(instances) > 0 and all(isinstance(i, dict) for i in instances)
                 and not any(set(i) == {"b64"} for i in instances))
        if named:
            columns: Dict[str, List[Any]] = {}
            for instance in instances:
                prediction.check_inputs(signature_def, signature_name, instance)
                for key, value in instance.items():
                    columns.setdefault(key, []).append(value)
        elif len(keys) == 1:
            columns = {keys[0]: instances}
        else:
            raise errors.invalid(f"the signature takes {keys}: each instance must be an object "
                                 "with those keys")
        row_format = True
    elif "inputs" in body:
        inputs = body["inputs"]
        named = isinstance(inputs, dict) and not set(inputs) == {"b64"}
        columns = inputs if named else {keys[0]: inputs} if len(keys) == 1 else None
        if columns is None:
            raise errors.invalid(f"the signature takes {keys}: 'inputs' must be an object "
                                 "with those keys")
        row_format = False
    else:
        raise errors.invalid("the request body needs 'instances' (row format) or 'inputs' "
                             "(columnar format)")
    prediction.check_inputs(signature_def, signature_name, columns)
    arrays = {key: _to_array(values, signature_def.inputs[key].dtype, key)
              for key, values in columns.items()}
    return arrays, row_format


def _jsonable(value: np.ndarray) -> Any:
    if value.dtype == object:
        def text(v):
            if isinstance(v, bytes):
                try:
                    return v.decode("utf-8")
                except UnicodeDecodeError:
                    return {"b64": base64.b64encode(v).decode("ascii")}
            return [text(x) for x in v] if isinstance(v, (list, np.ndarray)) else v
        return [text(v) for v in value] if value.ndim else text(value.item())
    return value.tolist()


def predict_response(outputs: Dict[str, np.ndarray], row_format: bool) -> Dict[str, Any]:
    if not row_format:
        columns = {k: _jsonable(v) for k, v in outputs.items()}
        return {"outputs": next(iter(columns.values())) if len(columns) == 1 else columns}
    keys = list(outputs)
    batch = len(next(iter(outputs.values())))
    rows = [{k: _jsonable(outputs[k][i:i + 1])[0] for k in keys} for i in range(batch)]
    return {"predictions": [r[keys[0]] for r in rows] if len(keys) == 1 else rows}


def method_name(http_method: str, path: str) -> str:
    """The TF Serving API method a REST request maps to, for metrics ('unknown' if none)."""
    match = _MODEL_PATH.match(path.split("?")[0])
    if not match:
        return "unknown"
    if match["verb"]:
        return {"predict": "Predict", "classify": "Classify", "regress": "Regress"}[match["verb"]]
    if http_method != "GET":
        return "unknown"
    return "GetModelMetadata" if match["metadata"] else "GetModelStatus"


def status_json(statuses) -> Dict[str, Any]:
    return {"model_version_status": [
        {"version": str(s.version), "state": s.state,
         "status": {"error_code": s.error_code.name, "error_message": s.error_message}}
        for s in statuses]}


def metadata_json(loaded) -> Dict[str, Any]:
    return {
        "model_spec": {"name": loaded.model_name, "signature_name": "",
                       "version": str(loaded.version)},
        "metadata": {"signature_def": {
            "signature_def": {name: json_format.MessageToDict(sd, preserving_proto_field_name=True)
                              for name, sd in loaded.signature_defs.items()}}},
    }


class RestServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, service: FerService, max_request_bytes: int,
                 max_concurrent_requests: int):
        self.service = service
        self.max_request_bytes = max_request_bytes
        self.slots = threading.BoundedSemaphore(max_concurrent_requests)
        self._active = 0
        self._active_lock = threading.Condition()
        super().__init__(address, _Handler)

    def track(self, delta: int) -> None:
        with self._active_lock:
            self._active += delta
            self._active_lock.notify_all()

    def wait_idle(self, timeout_s: float) -> bool:
        """Waits until no request is being handled; False if `timeout_s` passed first."""
        with self._active_lock:
            return self._active_lock.wait_for(lambda: self._active == 0, timeout_s)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle holds the body
    # until the client acknowledges the headers, which delayed ACK postpones by ~40 ms.
    disable_nagle_algorithm = True
    server: RestServer
    timeout = 30  # seconds an idle keep-alive connection stays open

    def log_message(self, format, *args):  # access log off: metrics count requests
        pass

    def _send(self, status: int, payload: Any, content_type: str = "application/json",
              headers: Optional[Dict[str, str]] = None) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.split("?")[0] == metrics.METRICS_PATH:
            self._send(200, self.server.service.metrics.exposition(), metrics.CONTENT_TYPE)
            return
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def _handle(self, http_method: str) -> None:
        service = self.server.service
        started = time.perf_counter()
        method, code = method_name(http_method, self.path), grpc.StatusCode.OK
        if not self.server.slots.acquire(blocking=False):
            self._drain_body()
            service.metrics.observe("rest", method, grpc.StatusCode.RESOURCE_EXHAUSTED.name, 0.0)
            self._send(429, {"error": "too many concurrent requests"})
            return
        service.metrics.in_flight.inc()
        self.server.track(+1)
        try:
            headers = None
            try:
                payload, headers = self._route(http_method)
                status = 200
            except errors.ServingError as e:
                code, status, payload = e.code, e.http_status, {"error": e.message}
            except Exception as e:  # a bug must not take the server down
                code, status = grpc.StatusCode.INTERNAL, 500
                log.exception("REST %s %s failed", http_method, self.path)
                payload = {"error": f"{type(e).__name__}: {e}"}
            finally:
                service.metrics.in_flight.dec()
                # Counted before the answer goes out: a client that reads the metrics right
                # after its answer finds its request there.
                service.metrics.observe("rest", method, code.name, time.perf_counter() - started)
            self._send(status, payload, headers=headers)
        finally:
            self.server.slots.release()
            self.server.track(-1)  # after the answer: a graceful stop waits for it

    def _drain_body(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if 0 < length <= self.server.max_request_bytes:
            self.rfile.read(length)
        elif length:
            self.close_connection = True

    def _read_json(self) -> Dict[str, Any]:
        length = self.headers.get("Content-Length")
        if length is None:
            self.close_connection = True
            raise errors.ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                                      "a Content-Length header is required")
        length = int(length)
        if length > self.server.max_request_bytes:
            self.close_connection = True  # the unread body must not be taken as a request
            raise errors.too_large(f"request body of {length} bytes is over the limit of "
                                   f"{self.server.max_request_bytes} bytes")
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise errors.invalid(f"the body is not valid JSON: {e}") from None
        if not isinstance(body, dict):
            raise errors.invalid("the body must be a JSON object")
        return body

    def _route(self, http_method: str) -> Tuple[Any, Dict[str, str]]:
        match = _MODEL_PATH.match(self.path.split("?")[0])
        if not match:
            if http_method == "POST":
                self._drain_body()
            raise errors.not_found(f"no such endpoint: {http_method} {self.path}")
        service = self.server.service
        name, label, verb = match["name"], match["label"], match["verb"]
        version = int(match["version"]) if match["version"] else None
        if verb:
            if http_method != "POST":
                raise errors.invalid(f":{verb} takes POST")
            body = self._read_json()
            if verb != "predict":
                raise errors.ServingError(grpc.StatusCode.UNIMPLEMENTED,
                                          f":{verb} is not served; use :predict")
            loaded = service.resolve(name, version, label)
            signature_name = prediction.signature_name_or_default(body.get("signature_name"))
            signature_def = prediction.signature_def_of(loaded, signature_name)
            arrays, row_format = parse_predict_body(body, signature_def, signature_name)
            outputs = service.run(loaded, signature_name, arrays)
            return predict_response(outputs, row_format), {VERSION_HEADER: str(loaded.version)}
        if http_method != "GET":
            self._drain_body()
            raise errors.invalid(f"{self.path} takes GET")
        if match["metadata"]:
            return metadata_json(service.resolve(name, version, label)), {}
        if label:
            version = service.resolve(name, None, label).version
        return status_json(service.status(name, version)), {}


def make_server(service: FerService, host: str, port: int, max_request_bytes: int,
                max_concurrent_requests: int) -> RestServer:
    return RestServer((host, port), service, max_request_bytes, max_concurrent_requests)
