"""TF Serving's REST API over a FerService, on the bounded HTTP server of http_server.py.

  GET  /v1/models/<name>[/versions/<n>|/labels/<label>]            model status
  GET  /v1/models/<name>[/versions/<n>|/labels/<label>]/metadata   signature defs
  POST /v1/models/<name>[/versions/<n>|/labels/<label>]:predict    {"instances": [...]} (row) or
                                                                  {"inputs": ...} (columnar)
  GET  /monitoring/prometheus/metrics

Binary strings travel as {"b64": "..."}, as in TF Serving. Errors are {"error": "..."} with
TF Serving's HTTP codes; a body over the size limit gets 413 before it is read. Names in the
path are URL-decoded; a version that is not a decimal int64 is a 400. Responses carry
the version that answered in an `X-Model-Version` header (TF Serving's body format has no room
for it).
"""
from __future__ import annotations

import base64
import binascii
import inspect
import json
import logging
import re
import time
import urllib.parse
from typing import Any, Dict, List, Optional, Tuple

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.framework import types_pb2

from serving import errors, http_server, metrics, prediction
from serving.limits import DEFAULT_LIMITS, INT64_MAX, Limits
from serving.service import FerService

log = logging.getLogger("fer_serve")

_MODEL_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?:(?P<metadata>/metadata)|:(?P<verb>predict|classify|regress))?$")
VERSION_HEADER = "X-Model-Version"
MAX_JSON_INTEGER_DIGITS = 40


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


def parse_predict_body(body: Dict[str, Any], signature_def, signature_name: str,
                       limits: Limits = DEFAULT_LIMITS) -> Tuple[Dict[str, np.ndarray], bool]:
    """JSON request -> (arrays by input key, row format?)."""
    keys = list(signature_def.inputs)
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise errors.invalid("'instances' must be a list")
        prediction.check_batch_size("instances", len(instances), limits)
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
    for key, values in columns.items():
        if isinstance(values, list):  # before converting: the batch cap bounds the work
            prediction.check_batch_size(key, len(values), limits)
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
    """The JSON answer to a predict, in the request's format: `{"predictions": [...]}`, one
    entry per instance, with `row_format`, else columnar `{"outputs": ...}`. A lone output is
    given bare, not keyed by its name, as TF Serving does; bytes that are not UTF-8 go as
    {"b64": ...}."""
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
    """TF Serving's JSON model status of `statuses` (model_store.VersionStatus entries)."""
    return {"model_version_status": [
        {"version": str(s.version), "state": s.state,
         "status": {"error_code": s.error_code.name, "error_message": s.error_message}}
        for s in statuses]}


# Fields left at their defaults are printed too, as TF Serving prints them. protobuf renamed
# the option in 5.26 (the legacy stack has 3.20, the current one 6.x).
_PRINT_DEFAULTS = ("always_print_fields_with_no_presence"
                   if "always_print_fields_with_no_presence"
                   in inspect.signature(json_format.MessageToDict).parameters
                   else "including_default_value_fields")


def metadata_json(loaded) -> Dict[str, Any]:
    """TF Serving's JSON model metadata of `loaded` (a model_store.LoadedVersion): its
    signature defs, fields at their defaults included."""
    def as_dict(signature_def):
        return json_format.MessageToDict(signature_def, preserving_proto_field_name=True,
                                         **{_PRINT_DEFAULTS: True})

    return {
        "model_spec": {"name": loaded.model_name, "signature_name": "",
                       "version": str(loaded.version)},
        "metadata": {"signature_def": {
            "signature_def": {name: as_dict(sd) for name, sd in loaded.signature_defs.items()}}},
    }


def parse_version(text: Optional[str]) -> Optional[int]:
    """A version from the URL: decimal int64 (TF Serving answers 400 to anything else)."""
    if text is None:
        return None
    if not re.fullmatch(r"[0-9]{1,19}", text) or int(text) > INT64_MAX:
        raise errors.invalid(f"the version in the URL must be a decimal int64, got {text[:40]!r}")
    return int(text)


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_INTEGER_DIGITS:
        raise ValueError(f"an integer of {len(text)} digits; at most "
                         f"{MAX_JSON_INTEGER_DIGITS} are accepted")
    return int(text)


def parse_json(data: bytes) -> Dict[str, Any]:
    """The body as a JSON object. Nesting is bounded by Python's recursion limit and integers
    by MAX_JSON_INTEGER_DIGITS: both are 400s, not work."""
    try:
        body = json.loads(data or b"{}", parse_int=_bounded_int)
    except RecursionError:
        raise errors.invalid("the body is not valid JSON: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        raise errors.invalid(f"the body is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise errors.invalid("the body must be a JSON object")
    return body


def _json_bytes(payload: Any) -> bytes:
    return json.dumps(payload).encode("utf-8")


class RestApp(http_server.App):
    """The REST routes over a FerService: run on a worker thread once a request has arrived."""

    def __init__(self, service: FerService):
        self.service = service
        self.limits = service.limits

    # Predictions count against --max-concurrent-requests; status, metadata and metrics are
    # lookups and always run.
    def admit(self, request: http_server.Request) -> bool:
        """Takes a --max-concurrent-requests slot for a POST `request` (False: none left);
        other methods need none."""
        return request.method != "POST" or self.service.admission.try_acquire()

    def release(self, request: http_server.Request) -> None:
        """Gives back the slot a POST `request` took."""
        if request.method == "POST":
            self.service.admission.release()

    def error(self, status: int, message: str,
              request: Optional[http_server.Request] = None) -> http_server.Response:
        """`{"error": message}` with HTTP `status`, for a `request` refused before it ran
        (None: its head could not be read), counted in the metrics under the gRPC code of
        that status."""
        method = method_name(request.method, request.target) if request else "unknown"
        code = _CODE_OF_HTTP.get(status, grpc.StatusCode.INVALID_ARGUMENT)
        self.service.metrics.observe("rest", method, code.name, 0.0)
        return http_server.Response(status, _json_bytes({"error": message}))

    def handle(self, request: http_server.Request) -> http_server.Response:
        """Answers `request`: metrics, model status, metadata or predict. A ServingError is
        answered with its HTTP status and `{"error": message}`, any other exception with 500;
        the request is counted in the metrics before the answer goes out."""
        service = self.service
        started = time.perf_counter()
        method, code = method_name(request.method, request.target), grpc.StatusCode.OK
        service.metrics.in_flight.inc()
        headers: Dict[str, str] = {}
        try:
            path = request.target.split("?")[0]
            if path == metrics.METRICS_PATH and request.method in ("GET", "HEAD"):
                return http_server.Response(200, service.metrics.exposition(),
                                            metrics.CONTENT_TYPE)
            payload, headers = self._route(request, path)
            status = 200
        except errors.ServingError as e:
            code, status, payload = e.code, e.http_status, {"error": e.message}
        except Exception as e:  # a bug must not take the server down
            code, status = grpc.StatusCode.INTERNAL, 500
            log.exception("REST %s %s failed", request.method, request.target[:200])
            payload = {"error": f"{type(e).__name__}: {e}"}
        finally:
            service.metrics.in_flight.dec()
            # Counted before the answer goes out: a client that reads the metrics right after
            # its answer finds its request there.
            service.metrics.observe("rest", method, code.name, time.perf_counter() - started)
        return http_server.Response(status, _json_bytes(payload), headers=headers)

    def _route(self, request: http_server.Request, path: str) -> Tuple[Any, Dict[str, str]]:
        http_method = "GET" if request.method == "HEAD" else request.method
        match = _MODEL_PATH.match(path)
        if not match:
            raise errors.not_found(f"no such endpoint: {request.method} {path[:200]}")
        service = self.service
        name = urllib.parse.unquote(match["name"])
        label = urllib.parse.unquote(match["label"]) if match["label"] else None
        version = parse_version(urllib.parse.unquote(match["version"])
                                if match["version"] else None)
        verb = match["verb"]
        if verb:
            if http_method != "POST":
                raise _method_not_allowed(f":{verb} takes POST, got {request.method}")
            body = parse_json(request.body)
            if verb != "predict":
                raise errors.ServingError(grpc.StatusCode.UNIMPLEMENTED,
                                          f":{verb} is not served; use :predict")
            loaded = service.resolve(name, version, label)
            signature_name = body.get("signature_name")
            if signature_name is not None and not isinstance(signature_name, str):
                raise errors.invalid("'signature_name' must be a string")
            signature_name = prediction.signature_name_or_default(signature_name)
            signature_def = prediction.signature_def_of(loaded, signature_name)
            arrays, row_format = parse_predict_body(body, signature_def, signature_name,
                                                    self.limits)
            deadline = request.arrived + self.limits.rest_api_timeout_ms / 1000.0
            outputs = service.run(loaded, signature_name, arrays, deadline=deadline)
            return predict_response(outputs, row_format), {VERSION_HEADER: str(loaded.version)}
        if http_method != "GET":
            raise _method_not_allowed(f"{path[:200]} takes GET, got {request.method}")
        if match["metadata"]:
            return metadata_json(service.resolve(name, version, label)), {}
        if label:
            version = service.resolve(name, None, label).version
        return status_json(service.status(name, version)), {}


def _method_not_allowed(message: str) -> errors.ServingError:
    return errors.ServingError(grpc.StatusCode.INVALID_ARGUMENT, message, http_status=405)


# HTTP status of a request refused before it ran -> the gRPC code its metric is counted under.
_CODE_OF_HTTP = {408: grpc.StatusCode.DEADLINE_EXCEEDED, 413: grpc.StatusCode.RESOURCE_EXHAUSTED,
                 429: grpc.StatusCode.RESOURCE_EXHAUSTED, 431: grpc.StatusCode.RESOURCE_EXHAUSTED,
                 503: grpc.StatusCode.UNAVAILABLE}
