"""Clients of TF Serving's APIs (TF Serving itself or fer-serve): gRPC on the stock stubs of
`tensorflow-serving-api`, and REST. Both return the same `ImagePrediction`s.

Retries: only UNAVAILABLE (gRPC) / 503 and refused connections (REST), with exponential
backoff; every other error (413 included) is the caller's to see at once.
"""
from __future__ import annotations

import base64
import http.client
import json
import ssl
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from components import contract

DEFAULT_GRPC_TARGET = contract.DEFAULT_GRPC_TARGET  # here too: applications import them from here
DEFAULT_REST_URL = contract.DEFAULT_REST_URL
RETRY_STATUS_HTTP = 503


@dataclass
class ImagePrediction:
    """The model's answer for one image: `probabilities[i]` is the probability of `classes[i]`
    (class names, in the order the model returns them); `version` is the model version that
    answered, None when the server did not say (a REST server that sends no `X-Model-Version`
    header, as TF Serving's)."""

    classes: List[str]
    probabilities: List[float]
    version: Optional[int] = None

    @property
    def predicted_class(self) -> str:
        """The most probable class."""
        return self.classes[int(np.argmax(self.probabilities))]

    @property
    def probability(self) -> float:
        """The probability of `predicted_class`."""
        return float(max(self.probabilities))

    def top(self, k: int) -> List[Tuple[str, float]]:
        """The `k` most probable classes as (class, probability) pairs, most probable first;
        all of them when the model has fewer than `k`."""
        order = np.argsort(self.probabilities)[::-1][:k]
        return [(self.classes[i], float(self.probabilities[i])) for i in order]


class ClientError(Exception):
    """A call that failed for good: `code` is the gRPC status name (REST: mapped from HTTP, e.g.
    413 and 429 are RESOURCE_EXHAUSTED; a status with no such name is `HTTP_<status>`), and
    `message` the server's error text. UNAVAILABLE comes once the retries are spent (REST: at
    once for a refused TLS handshake)."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass
class RetryPolicy:
    """How a client retries a call the server could not take (gRPC UNAVAILABLE; REST 503, or a
    connection refused, reset or closed by the server): `attempts` tries in all, the first
    included (1: no retry); the first retry waits `initial_backoff_s` seconds, each next one
    `multiplier` times longer, at most `max_backoff_s` seconds."""

    attempts: int = 4           # the first try included
    initial_backoff_s: float = 0.1
    multiplier: float = 2.0
    max_backoff_s: float = 5.0

    def delays(self):
        """The waits before the retries, in seconds: `attempts - 1` of them, lazily."""
        delay = self.initial_backoff_s
        for _ in range(self.attempts - 1):
            yield delay
            delay = min(delay * self.multiplier, self.max_backoff_s)


def _batches(items: Sequence[Any], batch_size: int):
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    for start in range(0, len(items), batch_size):
        yield items[start:start + batch_size]


@dataclass
class _Target:
    model_name: str = contract.MODEL_NAME
    version: Optional[int] = None
    version_label: Optional[str] = None
    signature_name: str = contract.SERVING_SIGNATURE


class GrpcClient:
    """TF Serving's PredictionService and ModelService over gRPC. Use it in a `with` block or
    call `close()`. The channel connects on the first call: a server that is not up shows as
    ClientError UNAVAILABLE there (after the retries), not here.

    Args:
      target: the server's host:port; default TF Serving's gRPC port on this machine.
      model_name: the served model to call.
      version: the version number to call; None (and no `version_label`): the newest the
        server serves.
      version_label: a version label to call instead (e.g. "stable"); `version` and
        `version_label` together are a ValueError.
      signature_name: the signature `predict` runs.
      timeout_s: deadline of each call, in seconds (each try, when retried).
      retry: when and how often to retry UNAVAILABLE; None: `RetryPolicy()`'s defaults.
      ca_file: PEM CA certificate that signed the server's; with it (or `cert_file`) the
        channel uses TLS, without it gRPC's default roots verify the server.
      cert_file: PEM client certificate, for mutual TLS (with `key_file`).
      key_file: PEM private key of `cert_file`; alone it does not turn TLS on.
      max_message_bytes: largest message sent or received, in bytes.
      sleep: called with each backoff delay, in seconds (tests pass one that records them).

    Raises OSError when a PEM file cannot be read.
    """

    def __init__(self, target: str = DEFAULT_GRPC_TARGET, model_name: str = contract.MODEL_NAME,
                 version: Optional[int] = None, version_label: Optional[str] = None,
                 signature_name: str = contract.SERVING_SIGNATURE, timeout_s: float = 30.0,
                 retry: Optional[RetryPolicy] = None, ca_file: Optional[str] = None,
                 cert_file: Optional[str] = None, key_file: Optional[str] = None,
                 max_message_bytes: int = 64 << 20, sleep: Callable[[float], None] = time.sleep):
        if version is not None and version_label:
            raise ValueError("give a version or a version label, not both")
        self.spec = _Target(model_name, version, version_label, signature_name)
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        options = [("grpc.max_receive_message_length", max_message_bytes),
                   ("grpc.max_send_message_length", max_message_bytes)]
        if ca_file or cert_file:
            read = lambda path: open(path, "rb").read() if path else None  # noqa: E731
            credentials = grpc.ssl_channel_credentials(read(ca_file), read(key_file),
                                                       read(cert_file))
            self.channel = grpc.secure_channel(target, credentials, options)
        else:
            self.channel = grpc.insecure_channel(target, options)
        self.predictions = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)

    def close(self) -> None:
        """Closes the channel; calls made after fail."""
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _model_spec(self, spec) -> None:
        spec.name = self.spec.model_name
        if self.spec.version is not None:
            spec.version.value = self.spec.version
        elif self.spec.version_label:
            spec.version_label = self.spec.version_label

    def _call(self, method, request):
        delays = self.retry.delays()
        while True:
            try:
                return method(request, timeout=self.timeout_s)
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.UNAVAILABLE:
                    delay = next(delays, None)
                    if delay is not None:
                        self._sleep(delay)
                        continue
                raise ClientError(e.code().name, e.details() or "") from None

    def predict_request(self, images: Sequence[bytes]) -> predict_pb2.PredictRequest:
        """The PredictRequest `predict` sends for `images` (encoded image bytes, one batch):
        this client's model, version and signature, and the images as a 1-D string tensor."""
        request = predict_pb2.PredictRequest()
        self._model_spec(request.model_spec)
        request.model_spec.signature_name = self.spec.signature_name
        request.inputs[contract.SERVING_INPUT_KEY].CopyFrom(
            tf.make_tensor_proto(list(images), dtype=tf.string))
        return request

    def predict(self, images: Sequence[bytes], batch_size: int = 32) -> List[ImagePrediction]:
        """Classifies `images` (encoded JPEG, PNG, BMP or GIF bytes: face crops) in calls of at
        most `batch_size` images; returns one ImagePrediction per image, in their order ([]
        for no image, without a call).

        Raises ClientError when a call fails, which fails the whole list: INVALID_ARGUMENT
        naming each bad image of the batch, RESOURCE_EXHAUSTED over a server limit (a smaller
        `batch_size` may pass), NOT_FOUND when the model or version is not served,
        UNAVAILABLE once the retries are spent. ValueError for a `batch_size` below 1.
        """
        results = []
        for batch in _batches(images, batch_size):
            response = self._call(self.predictions.Predict, self.predict_request(batch))
            probabilities = tf.make_ndarray(response.outputs[contract.PROBABILITIES_KEY])
            classes = tf.make_ndarray(response.outputs[contract.CLASSES_KEY])
            version = response.model_spec.version.value
            results += [ImagePrediction([c.decode() for c in classes[i]],
                                        probabilities[i].tolist(), version)
                        for i in range(len(batch))]
        return results

    def metadata(self) -> Dict[str, Any]:
        """The served version's signatures (GetModelMetadata): `{"model": name, "version": n,
        "signatures": {name: {"inputs": {key: "DT_STRING [-1]"}, "outputs": {...}}}}`, each
        tensor as its dtype and shape (-1: any size; "?": unknown rank). Raises ClientError
        (NOT_FOUND while no version is loaded)."""
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._model_spec(request.model_spec)
        response = self._call(self.predictions.GetModelMetadata, request)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        return {"model": response.model_spec.name, "version": response.model_spec.version.value,
                "signatures": _describe_signatures(signatures.signature_def)}

    def status(self) -> List[Dict[str, Any]]:
        """The model's versions and their states (GetModelStatus): one `{"version": n, "state":
        "AVAILABLE", "error_code": "OK", "error_message": ""}` per version the server reports
        (only the version this client names; fer-serve: or its label's); a version that failed
        to load is END with its error. Raises ClientError (NOT_FOUND: no such model or
        version)."""
        request = get_model_status_pb2.GetModelStatusRequest()
        self._model_spec(request.model_spec)
        response = self._call(self.models.GetModelStatus, request)
        state = get_model_status_pb2.ModelVersionStatus.State.Name
        return [{"version": s.version, "state": state(s.state),
                 "error_code": grpc.StatusCode(_code_tuple(s.status.error_code)).name
                 if s.status.error_code else "OK",
                 "error_message": s.status.error_message}
                for s in response.model_version_status]


def _code_tuple(value: int):
    return next(c.value for c in grpc.StatusCode if c.value[0] == value)


def _describe_signatures(signature_defs) -> Dict[str, Dict[str, Dict[str, str]]]:
    from tensorflow.core.framework import types_pb2

    def tensors(infos):
        def shape(info):
            dims = info.tensor_shape.dim
            return "?" if info.tensor_shape.unknown_rank else [d.size for d in dims]
        return {k: f"{types_pb2.DataType.Name(v.dtype)} {shape(v)}" for k, v in infos.items()}

    return {name: {"inputs": tensors(sd.inputs), "outputs": tensors(sd.outputs)}
            for name, sd in signature_defs.items()}


_HTTP_TO_CODE = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 408: "DEADLINE_EXCEEDED",
                 413: "RESOURCE_EXHAUSTED", 429: "RESOURCE_EXHAUSTED", 501: "UNIMPLEMENTED",
                 503: "UNAVAILABLE"}


class RestClient:
    """TF Serving's REST API. One connection, kept alive (opened again when the server closes
    it); not for sharing between threads. Use it in a `with` block or call `close()`.

    Args:
      url: the server's http://host:port, or https:// for TLS; default TF Serving's REST port
        on this machine. Anything else is a ValueError.
      model_name: the served model to call.
      version: the version number to call; None (and no `version_label`): the newest the
        server serves.
      version_label: a version label to call instead (e.g. "stable"); `version` and
        `version_label` together are a ValueError.
      signature_name: the signature `predict` runs.
      timeout_s: socket timeout of each call, in seconds (connecting, then each read); when it
        passes, ClientError DEADLINE_EXCEEDED, not retried.
      retry: when and how often to retry 503 and refused or dropped connections; None:
        `RetryPolicy()`'s defaults.
      ca_file: PEM CA certificate that signed the server's (https only); None: the system's
        CAs.
      cert_file: PEM client certificate, for mutual TLS (https only, with `key_file`).
      key_file: PEM private key of `cert_file`; None: the key is in `cert_file`.
      sleep: called with each backoff delay, in seconds (tests pass one that records them).

    `last_version` is the `X-Model-Version` header of the last answer (None without one).
    Raises OSError (ssl.SSLError included) when a PEM file cannot be read or used.
    """

    def __init__(self, url: str = DEFAULT_REST_URL, model_name: str = contract.MODEL_NAME,
                 version: Optional[int] = None, version_label: Optional[str] = None,
                 signature_name: str = contract.SERVING_SIGNATURE, timeout_s: float = 30.0,
                 retry: Optional[RetryPolicy] = None, ca_file: Optional[str] = None,
                 cert_file: Optional[str] = None, key_file: Optional[str] = None,
                 sleep: Callable[[float], None] = time.sleep):
        if version is not None and version_label:
            raise ValueError("give a version or a version label, not both")
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"expected http(s)://host:port, got {url!r}")
        self.spec = _Target(model_name, version, version_label, signature_name)
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._host, self._port = parsed.hostname, parsed.port
        self._context = None
        if parsed.scheme == "https":
            self._context = ssl.create_default_context(cafile=ca_file)
            if cert_file:
                self._context.load_cert_chain(cert_file, key_file)
        self._connection: Optional[http.client.HTTPConnection] = None
        self.last_version: Optional[int] = None

    def close(self) -> None:
        """Closes the connection, if open; the next call opens a new one."""
        if self._connection:
            self._connection.close()
            self._connection = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _path(self, suffix: str = "") -> str:
        path = f"/v1/models/{urllib.parse.quote(self.spec.model_name)}"
        if self.spec.version is not None:
            path += f"/versions/{self.spec.version}"
        elif self.spec.version_label:
            path += f"/labels/{urllib.parse.quote(self.spec.version_label)}"
        return path + suffix

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            if self._context is not None:
                self._connection = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self.timeout_s, context=self._context)
            else:
                self._connection = http.client.HTTPConnection(self._host, self._port,
                                                              timeout=self.timeout_s)
        return self._connection

    def _request(self, method: str, path: str, body: Optional[Dict[str, Any]] = None):
        data = json.dumps(body).encode("utf-8") if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        delays = self.retry.delays()
        while True:
            try:
                connection = self._connect()
                try:
                    connection.request(method, path, body=data, headers=headers)
                except (BrokenPipeError, ConnectionResetError):
                    # The server may have answered before reading the whole body (413): that
                    # answer, not the broken pipe, is what the caller needs to see.
                    pass
                response = connection.getresponse()
                payload = response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self.close()
                if response.status == RETRY_STATUS_HTTP:
                    raise ConnectionRefusedError(payload.decode("utf-8", "replace"))
            except (ConnectionError, http.client.RemoteDisconnected,
                    http.client.CannotSendRequest) as e:
                self.close()
                delay = next(delays, None)
                if delay is None:
                    raise ClientError("UNAVAILABLE", str(e) or type(e).__name__) from None
                self._sleep(delay)
                continue
            except ssl.SSLError as e:  # a handshake refused (e.g. no client certificate)
                self.close()
                raise ClientError("UNAVAILABLE", f"TLS: {e}") from None
            except TimeoutError:
                self.close()
                raise ClientError("DEADLINE_EXCEEDED",
                                  f"no answer within {self.timeout_s} s") from None
            try:
                decoded = json.loads(payload)
            except json.JSONDecodeError:
                decoded = {"error": payload.decode("utf-8", "replace")}
            if response.status != 200:
                raise ClientError(_HTTP_TO_CODE.get(response.status, f"HTTP_{response.status}"),
                                  decoded.get("error", str(decoded)))
            version = response.getheader("X-Model-Version")
            self.last_version = int(version) if version else None
            return decoded

    def predict(self, images: Sequence[bytes], batch_size: int = 32) -> List[ImagePrediction]:
        """Classifies `images` (encoded JPEG, PNG, BMP or GIF bytes: face crops) in POSTs of at
        most `batch_size` images (base64 in the row format); returns one ImagePrediction per
        image, in their order ([] for no image, without a call).

        Raises ClientError when a call fails, which fails the whole list: INVALID_ARGUMENT
        (400) naming each bad image of the batch, RESOURCE_EXHAUSTED (413, 429) over a server
        limit, NOT_FOUND (404), DEADLINE_EXCEEDED, UNAVAILABLE once the retries are spent.
        ValueError for a `batch_size` below 1.
        """
        results = []
        for batch in _batches(images, batch_size):
            body = {"signature_name": self.spec.signature_name,
                    "instances": [{"b64": base64.b64encode(b).decode("ascii")} for b in batch]}
            response = self._request("POST", self._path(":predict"), body)
            results += [ImagePrediction(p[contract.CLASSES_KEY], p[contract.PROBABILITIES_KEY],
                                        self.last_version)
                        for p in response["predictions"]]
        return results

    def metadata(self) -> Dict[str, Any]:
        """The served version's signatures (GET .../metadata), in `GrpcClient.metadata`'s
        format (a shape is the list of its dimensions, -1: any size). Raises ClientError
        (NOT_FOUND while no version is loaded)."""
        response = self._request("GET", self._path("/metadata"))
        spec = response["model_spec"]
        signatures = response["metadata"]["signature_def"]["signature_def"]

        def tensors(infos):
            return {k: f"{v['dtype']} {[int(d['size']) for d in v['tensor_shape'].get('dim', [])]}"
                    for k, v in infos.items()}

        return {"model": spec["name"], "version": int(spec["version"]),
                "signatures": {name: {"inputs": tensors(sd.get("inputs", {})),
                                      "outputs": tensors(sd.get("outputs", {}))}
                               for name, sd in signatures.items()}}

    def status(self) -> List[Dict[str, Any]]:
        """The model's versions and their states (GET /v1/models/<name>...), in
        `GrpcClient.status`'s format. Raises ClientError (NOT_FOUND: no such model or
        version)."""
        response = self._request("GET", self._path())
        return [{"version": int(s["version"]), "state": s["state"],
                 "error_code": s.get("status", {}).get("error_code", "OK"),
                 "error_message": s.get("status", {}).get("error_message", "")}
                for s in response["model_version_status"]]


def connect(protocol: str, server: Optional[str] = None, **options):
    """A GrpcClient (`protocol` 'grpc') or RestClient ('rest') for `server`: host:port for
    gRPC, an http(s) URL for REST; None: TF Serving's port on this machine
    (DEFAULT_GRPC_TARGET, DEFAULT_REST_URL). `options` are the client's other constructor
    arguments (model_name, version, timeout_s, retry, ca_file...). Raises ValueError for
    another protocol."""
    if protocol == "grpc":
        return GrpcClient(server or DEFAULT_GRPC_TARGET, **options)
    if protocol == "rest":
        return RestClient(server or DEFAULT_REST_URL, **options)
    raise ValueError(f"protocol must be 'grpc' or 'rest', got {protocol!r}")
