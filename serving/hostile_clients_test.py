"""fer-serve against hostile clients, on loopback: each case of issue 22 over gRPC and REST.

Every case asserts the status the client gets, that the server's memory did not grow by more
than it was sent (RSS, bounded), that the answer came well before the old failure mode (a hang
or a 30 s timeout), and that a good request succeeds right after. Every loop here is bounded in
count and time, and every socket and call is closed by the test that opened it.
"""
import base64
import concurrent.futures
import contextlib
import json
import socket
import struct
import threading
import time
import zlib

import grpc
import numpy as np
import psutil
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving import client as client_lib
from serving.conftest import push
from serving.limits import Limits
from serving.server import FerServer, ServerConfig

LIMITS = Limits(max_request_bytes=256 << 10, max_images_per_request=64,
                max_concurrent_requests=8, max_connections=96, read_timeout_s=2.0,
                idle_timeout_s=2.0)
RSS_BOUND = 64 << 20       # growth a hostile request may cause: far below what it claims
ANSWER_BOUND_S = 5.0       # a hostile request is answered within this (old code: 30 s or never)
PREDICT_PATH = "/tensorflow.serving.PredictionService/Predict"


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_exports):
    base = str(tmp_path_factory.mktemp("hostile") / "fer")
    push(tiny_exports[0], base)
    config = ServerConfig(base, grpc_port=0, rest_port=0, poll_interval_s=60, limits=LIMITS,
                          threads=4)
    with FerServer(config) as running:
        yield running


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as opened:
        yield opened


@pytest.fixture(autouse=True)
def no_internal_errors(request):
    """A test fails if a hostile case reached the catch-all (INTERNAL / 500)."""
    yield
    if "server" in request.fixturenames:
        text = request.getfixturevalue("server").metrics.exposition().decode()
        assert 'code="INTERNAL"' not in text


def rss() -> int:
    return psutil.Process().memory_info().rss


@contextlib.contextmanager
def bounded(max_rss_growth=RSS_BOUND, max_seconds=ANSWER_BOUND_S):
    before, started = rss(), time.monotonic()
    yield
    assert time.monotonic() - started < max_seconds
    assert rss() - before < max_rss_growth


def predict_request(images, shape=None, dtype=tf.string) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "fer"
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto(images, dtype=dtype,
                                                                shape=shape))
    return request


def grpc_code(channel, request, timeout=ANSWER_BOUND_S):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    try:
        stub.Predict(request, timeout=timeout)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details()


def good_grpc(channel, face_images, timeout=ANSWER_BOUND_S):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    response = stub.Predict(predict_request(face_images[:2]), timeout=timeout)
    assert len(response.outputs["class_id"].int64_val) == 2
    status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "fer"}), timeout=timeout)
    assert status.model_version_status[0].state == get_model_status_pb2.ModelVersionStatus.AVAILABLE


def b64(data: bytes):
    return {"b64": base64.b64encode(data).decode()}


def http_request(method, path, body=b"", headers=None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def read_response(sock, timeout=ANSWER_BOUND_S):
    """(status, headers, body) of one HTTP response; reads at most 1 MiB."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 1 << 20:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    length = int(headers.get("Content-Length", 0))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def raw_http(server, data: bytes, timeout=ANSWER_BOUND_S):
    with socket.create_connection(("127.0.0.1", server.rest_port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_response(sock, timeout)


def rest_json(server, method, path, body=None):
    payload = json.dumps(body).encode() if body is not None else b""
    status, _, answer = raw_http(server, http_request(
        method, path, payload, {"Content-Length": len(payload), "Connection": "close"}))
    return status, json.loads(answer or b"{}")


def good_rest(server, face_images):
    status, body = rest_json(server, "POST", "/v1/models/fer:predict",
                             {"instances": [b64(face_images[0])]})
    assert status == 200, body
    assert rest_json(server, "GET", "/v1/models/fer")[0] == 200


def png_bomb(side: int) -> bytes:
    """A grayscale PNG of side x side zeros: tiny on the wire, side**2 bytes decoded."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    compressor, row, parts = zlib.compressobj(9), b"\x00" * (side + 1), []
    for _ in range(side):
        parts.append(compressor.compress(row))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit gray
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts))
            + chunk(b"IEND", b""))


def gif_of_frames(side: int, frames: int) -> bytes:
    """A GIF whose every one of `frames` frames decodes to a side x side screen."""
    screen = b"GIF89a" + struct.pack("<HHBBB", side, side, 0x80, 0, 0) + b"\x00" * 6
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x4c\x01\x00"
    return screen + frame * frames + b"\x3b"


@pytest.fixture(scope="module")
def bomb():
    return png_bomb(12000)


# --- 1. batching cannot lose a request (the unit cases are in batching_test.py) ---------------

def test_1_batching_survives_a_rank_2_request_in_the_window(tmp_path, tiny_exports,
                                                            face_images):
    base = str(tmp_path / "fer")
    push(tiny_exports[0], base)
    config = ServerConfig(base, grpc_port=0, rest_port=None, enable_batching=True,
                          max_batch_size=8, batch_timeout_ms=50, limits=LIMITS, threads=8)
    with FerServer(config) as running, \
            grpc.insecure_channel(f"127.0.0.1:{running.grpc_port}") as channel:
        rank_2 = predict_request(np.array([[face_images[0]]], dtype=object))
        requests = [predict_request([face_images[i % 4]]) for i in range(6)] + [rank_2]
        with concurrent.futures.ThreadPoolExecutor(len(requests)) as pool:
            codes = list(pool.map(lambda r: grpc_code(channel, r), requests))
        assert [c for c, _ in codes[:6]] == [grpc.StatusCode.OK] * 6
        assert codes[6][0] == grpc.StatusCode.INVALID_ARGUMENT and "rank 1" in codes[6][1]
        good_grpc(channel, face_images)
        assert running.service.admission.running == 0
        started = time.monotonic()
    assert time.monotonic() - started < config.grace_s  # the stop did not hang


# --- 2. a TensorProto's shape is checked before it is converted ------------------------------

@pytest.mark.parametrize("shape, values, text", [
    ([20000000, 1], 1, "rank 1"),
    ([20000000], 1, "limit of 64"),
    ([30], 1, "carries 1"),
    ([], 1, "got shape []"),
])
def test_2_a_shape_claiming_more_than_it_carries_costs_nothing(server, channel, face_images,
                                                               shape, values, text):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "fer"
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING)
    for size in shape:
        proto.tensor_shape.dim.add(size=size)
    proto.string_val.extend([face_images[0]] * values)
    request.inputs["image_bytes"].CopyFrom(proto)
    with bounded():
        code, details = grpc_code(channel, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and text in details
    good_grpc(channel, face_images)


def test_2_batch_size_is_capped_on_both_apis(server, channel, face_images):
    tiny = [b"x"] * (LIMITS.max_images_per_request + 1)
    with bounded():
        code, details = grpc_code(channel, predict_request(tiny))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "--max-images-per-request" in details
    status, body = rest_json(server, "POST", "/v1/models/fer:predict",
                             {"instances": [b64(b"x")] * len(tiny)})
    assert status == 400 and "--max-images-per-request" in body["error"]
    good_grpc(channel, face_images)


# --- 3. decompression bombs are refused from the header --------------------------------------

def test_3_a_png_bomb_is_refused_before_decoding(server, channel, face_images, bomb):
    assert len(bomb) < 200_000
    with bounded():
        code, details = grpc_code(channel, predict_request([face_images[0], bomb]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "image 1: 12000x12000 PNG" in details and "--max-pixels-per-image" in details
    with bounded():
        status, body = rest_json(server, "POST", "/v1/models/fer:predict",
                                 {"instances": [b64(bomb)]})
    assert status == 400 and "--max-pixels-per-image" in body["error"]
    good_grpc(channel, face_images)
    good_rest(server, face_images)


def test_3_decoded_bytes_per_request_are_capped_frames_included(server, channel, face_images):
    gif = gif_of_frames(2000, 6)  # 6 x 2000 x 2000 x 3 = 72 MB decoded, 120 bytes sent
    with bounded():
        code, details = grpc_code(channel, predict_request([gif]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "--max-decoded-bytes-per-request" in details
    good_grpc(channel, face_images)


# --- 4. REST bodies: framing validated, one deadline, the slot taken once the body is in -----

@pytest.mark.parametrize("headers, status, text", [
    ({"Content-Length": "-1"}, 400, "Content-Length must be a number"),
    ({"Content-Length": "abc"}, 400, "Content-Length must be a number"),
    ({"Content-Length": "10", "Transfer-Encoding": "chunked"}, 400, "together are refused"),
    ({"Transfer-Encoding": "chunked"}, 411, "chunked"),
    ({}, 411, "Content-Length header is required"),
    ({"Content-Length": "5", "content-length": "6"}, 400, "conflicting"),
])
def test_4_request_framing_is_validated(server, face_images, headers, status, text):
    body = b"5\r\n{\"a\":\r\n0\r\n\r\n"
    with bounded():
        got, _, answer = raw_http(server, http_request("POST", "/v1/models/fer:predict", body,
                                                       headers))
    assert got == status and text in json.loads(answer)["error"]
    good_rest(server, face_images)


def test_4_a_lying_content_length_gets_408_within_the_read_timeout(server, face_images):
    with socket.create_connection(("127.0.0.1", server.rest_port)) as sock:
        sock.sendall(http_request("POST", "/v1/models/fer:predict", b"{\"inst",
                                  {"Content-Length": 1000}))
        started = time.monotonic()
        good_rest(server, face_images)  # served while the liar waits
        status, _, body = read_response(sock, timeout=LIMITS.read_timeout_s + 3)
        assert status == 408 and "--read-timeout" in json.loads(body)["error"]
        assert time.monotonic() - started < LIMITS.read_timeout_s + 2


def test_4_slow_bodies_hold_no_request_slot(server, face_images):
    # More slow senders than --max-concurrent-requests (8): none of them may be refused a
    # good client's request with 429.
    count = 3 * LIMITS.max_concurrent_requests
    sockets = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", server.rest_port), timeout=5)
            sock.sendall(http_request("POST", "/v1/models/fer:predict", b"{",
                                      {"Content-Length": 100}))
            sockets.append(sock)
        for _ in range(3):
            good_rest(server, face_images)
    finally:
        for sock in sockets:
            sock.close()


def test_4_a_trickle_cannot_hold_a_connection_past_the_read_timeout(server):
    with socket.create_connection(("127.0.0.1", server.rest_port), timeout=5) as sock:
        sock.sendall(b"POST /v1/models/fer:predict HTTP/1.1\r\nContent-Length: 50\r\n\r\n")
        started, status = time.monotonic(), None
        for _ in range(20):  # one byte every 0.25 s: at most 5 s
            try:
                sock.sendall(b" ")
            except OSError:
                break
            time.sleep(0.25)
            sock.settimeout(0.01)
            try:
                if sock.recv(1, socket.MSG_PEEK):
                    status = read_response(sock)[0]
                    break
            except (BlockingIOError, socket.timeout):
                pass
        assert status == 408
        assert time.monotonic() - started < LIMITS.read_timeout_s + 1.5


def test_4_connections_over_the_cap_get_503_and_the_rest_are_served(server, face_images):
    sockets = []
    try:
        while server._rest.open_connections < LIMITS.max_connections and len(sockets) < 200:
            sockets.append(socket.create_connection(("127.0.0.1", server.rest_port), timeout=5))
            sockets[-1].sendall(b"G")  # a request started, never finished
            deadline = time.monotonic() + 2
            while (server._rest.open_connections < len(sockets)
                   and time.monotonic() < deadline):
                time.sleep(0.005)
        with bounded():
            status, _, body = raw_http(server, http_request("GET", "/v1/models/fer"))
        assert status == 503 and "--max-connections" in json.loads(body)["error"]
    finally:
        for sock in sockets:
            sock.close()
    deadline = time.monotonic() + 5
    while server._rest.open_connections and time.monotonic() < deadline:
        time.sleep(0.01)
    good_rest(server, face_images)


# --- 5. slow gRPC clients cannot starve the others -------------------------------------------

def test_5_calls_that_send_headers_and_no_message_starve_nobody(server, channel, face_images):
    release = threading.Event()

    def never_sends():  # a request stream that sends nothing until released (at most 20 s)
        release.wait(20)
        return
        yield

    method = channel.stream_unary(PREDICT_PATH,
                                  request_serializer=predict_pb2.PredictRequest.SerializeToString,
                                  response_deserializer=predict_pb2.PredictResponse.FromString)
    slow = [method.future(never_sends(), timeout=20) for _ in range(40)]  # > 16 threads
    try:
        time.sleep(0.3)  # they are open on the server
        started = time.monotonic()
        for _ in range(3):
            good_grpc(channel, face_images, timeout=3)
        assert time.monotonic() - started < 3
    finally:
        release.set()
        for call in slow:
            call.cancel()


# --- 6. bad input is 4xx / INVALID_ARGUMENT, never INTERNAL ----------------------------------

def test_6_a_scalar_string_input_is_invalid_argument(server, channel, face_images):
    code, details = grpc_code(channel, predict_request(face_images[0]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "must have rank 1" in details


@pytest.mark.parametrize("raw, text", [
    (b"[" * 100000 + b"]" * 100000, "not valid JSON"),
    (b'{"instances": [' + b"9" * 5000 + b"]}", "not valid JSON"),
    (b'{"signature_name": [1], "instances": []}', "'signature_name' must be a string"),
    (b'{"instances": [{"b64": 5}]}', "not valid base64"),
])
def test_6_hostile_json_is_400(server, face_images, raw, text):
    with bounded():
        status, _, body = raw_http(server, http_request(
            "POST", "/v1/models/fer:predict", raw, {"Content-Length": len(raw)}))
    assert status == 400 and text in json.loads(body)["error"]
    good_rest(server, face_images)


@pytest.mark.parametrize("version", ["9" * 5000, "99999999999999999999", "1.5", "%C2%B2"])
def test_6_a_bad_version_in_the_url_is_400(server, version):
    status, body = rest_json(server, "GET", f"/v1/models/fer/versions/{version}")
    assert status == 400 and "decimal int64" in body["error"]


# --- 7. the 413 arrives -----------------------------------------------------------------------

def test_7_an_oversized_body_gets_its_413_and_the_client_does_not_retry(server, face_images):
    import http.client

    body = b'{"instances": ["' + b"x" * (6 << 20) + b'"]}'
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=10)
    with bounded(max_rss_growth=16 << 20):
        connection.request("POST", "/v1/models/fer:predict", body=body)
        response = connection.getresponse()
        assert response.status == 413
        assert "--max-request-bytes" in json.loads(response.read())["error"]
    connection.close()

    sleeps = []
    with client_lib.RestClient(f"http://127.0.0.1:{server.rest_port}",
                               sleep=sleeps.append) as client:
        with pytest.raises(client_lib.ClientError) as e:
            client.predict([b"\xff\xd8\xff" + bytes(LIMITS.max_request_bytes)])
    assert e.value.code == "RESOURCE_EXHAUSTED" and sleeps == []
    good_rest(server, face_images)


# --- 9. stopping ------------------------------------------------------------------------------

def test_9_stop_refuses_new_connections_and_answers_a_body_in_transfer(tmp_path, tiny_exports,
                                                                       face_images):
    base = str(tmp_path / "fer")
    push(tiny_exports[0], base)
    server = FerServer(ServerConfig(base, grpc_port=0, rest_port=0, limits=LIMITS,
                                    grace_s=3.0)).start()
    body = json.dumps({"instances": [b64(face_images[0])]}).encode()
    with socket.create_connection(("127.0.0.1", server.rest_port), timeout=5) as sock:
        sock.sendall(http_request("POST", "/v1/models/fer:predict", body[:10],
                                  {"Content-Length": len(body)}))
        time.sleep(0.2)
        stopping = threading.Thread(target=server.stop)
        started = time.monotonic()
        stopping.start()
        time.sleep(0.3)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", server.rest_port), timeout=2).close()
        sock.sendall(body[10:])
        status, headers, _ = read_response(sock)
        assert status == 200 and headers["Connection"] == "close"
        stopping.join(timeout=10)
    assert not stopping.is_alive() and time.monotonic() - started < 3.0 + 1


def test_9_stop_returns_within_the_grace_period_whatever_a_worker_does(tmp_path, tiny_exports,
                                                                       face_images,
                                                                       monkeypatch):
    base = str(tmp_path / "fer")
    push(tiny_exports[0], base)
    server = FerServer(ServerConfig(base, grpc_port=0, rest_port=None, limits=LIMITS,
                                    grace_s=1.0)).start()
    stuck = threading.Event()
    monkeypatch.setattr(server.service, "run", lambda *a, **k: stuck.wait(15))
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    call = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict.future(
        predict_request(face_images[:1]), timeout=15)
    time.sleep(0.3)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1.0 + 2
    stuck.set()
    call.cancel()
    channel.close()


# --- 10. TLS on REST too, and client certificates on both APIs --------------------------------

@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    d = tmp_path_factory.mktemp("pki")

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-days", "1", "-subj", "/CN=test CA", "-keyout", "ca.key",
            "-out", "ca.pem")
    for name in ("server", "client"):
        openssl("req", *ec, "-subj", f"/CN={'localhost' if name == 'server' else 'client'}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr")
        with open(d / f"{name}.ext", "w") as f:
            f.write("subjectAltName=DNS:localhost\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "1", "-extfile", f"{name}.ext", "-out",
                f"{name}.pem")
    return {k: str(d / v) for k, v in {"ca": "ca.pem", "cert": "server.pem", "key": "server.key",
                                       "client_cert": "client.pem",
                                       "client_key": "client.key"}.items()}


def test_10_rest_speaks_tls_and_both_apis_require_a_client_certificate(tmp_path, tiny_exports,
                                                                      face_images, pki):
    base = str(tmp_path / "fer")
    push(tiny_exports[0], base)
    config = ServerConfig(base, grpc_port=0, rest_port=0, limits=LIMITS, ssl_cert=pki["cert"],
                          ssl_key=pki["key"], ssl_client_ca=pki["ca"])
    with FerServer(config) as running:
        no_retry = client_lib.RetryPolicy(attempts=1)
        for protocol, address in (("grpc", f"localhost:{running.grpc_port}"),
                                  ("rest", f"https://localhost:{running.rest_port}")):
            with client_lib.connect(protocol, address, ca_file=pki["ca"],
                                    cert_file=pki["client_cert"], key_file=pki["client_key"],
                                    timeout_s=5) as client:
                assert len(client.predict(face_images[:2])) == 2
            with client_lib.connect(protocol, address, ca_file=pki["ca"], retry=no_retry,
                                    timeout_s=5) as anonymous:
                with pytest.raises(client_lib.ClientError):
                    anonymous.status()  # no client certificate: refused
        with client_lib.RestClient(f"http://localhost:{running.rest_port}", retry=no_retry,
                                   timeout_s=5) as plaintext:
            with pytest.raises(client_lib.ClientError):
                plaintext.status()
