"""fer-serve's gRPC and REST front ends, called the way applications call TF Serving: the bare
`tensorflow_serving.apis` stubs with `tf.make_tensor_proto`, and plain HTTP + JSON."""
import base64
import concurrent.futures
import http.client
import json

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving.conftest import push
from serving.limits import Limits
from serving.server import FerServer, ServerConfig

MAX_REQUEST_BYTES = 256 << 10


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_exports):
    base = str(tmp_path_factory.mktemp("served") / "fer")
    version = push(tiny_exports[0], base)
    server = FerServer(ServerConfig(base, grpc_port=0, rest_port=0, poll_interval_s=60,
                                    limits=Limits(max_request_bytes=MAX_REQUEST_BYTES))).start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    yield {"server": server, "version": version,
           "stub": prediction_service_pb2_grpc.PredictionServiceStub(channel),
           "models": model_service_pb2_grpc.ModelServiceStub(channel)}
    channel.close()
    server.stop()


def grpc_predict(stub, images, name="fer", key="image_bytes", dtype=tf.string, version=None):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = "serving_default"
    if version is not None:
        request.model_spec.version.value = version
    request.inputs[key].CopyFrom(tf.make_tensor_proto(images, dtype=dtype))
    return stub.Predict(request, timeout=30)


def rest(served, method, path, body=None, raw=None):
    connection = http.client.HTTPConnection("127.0.0.1", served["server"].rest_port, timeout=30)
    data = raw if raw is not None else json.dumps(body).encode() if body is not None else None
    connection.request(method, path, body=data)
    response = connection.getresponse()
    payload = json.loads(response.read() or b"{}")
    connection.close()
    return response.status, payload


def b64(data: bytes):
    return {"b64": base64.b64encode(data).decode()}


def test_stock_stubs_classify_a_batch(served, face_images):
    response = grpc_predict(served["stub"], face_images)
    assert response.model_spec.name == "fer"
    assert response.model_spec.version.value == served["version"]
    probabilities = tf.make_ndarray(response.outputs["probabilities"])
    assert probabilities.shape == (4, 6)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    predicted = [c.decode() for c in tf.make_ndarray(response.outputs["predicted_class"])]
    classes = tf.make_ndarray(response.outputs["classes"])
    assert predicted == [classes[i][probabilities[i].argmax()].decode() for i in range(4)]


def test_rest_predict_matches_grpc_in_row_and_columnar_format(served, face_images):
    expected = tf.make_ndarray(grpc_predict(served["stub"], face_images)
                               .outputs["probabilities"])
    status, rows = rest(served, "POST", "/v1/models/fer:predict",
                        {"instances": [b64(i) for i in face_images]})
    assert status == 200
    np.testing.assert_allclose([r["probabilities"] for r in rows["predictions"]], expected,
                               rtol=1e-5)
    status, columns = rest(served, "POST", f"/v1/models/fer/versions/{served['version']}:predict",
                           {"inputs": {"image_bytes": [b64(i) for i in face_images]}})
    assert status == 200
    np.testing.assert_allclose(columns["outputs"]["probabilities"], expected, rtol=1e-5)


def test_status_and_metadata_over_both_apis(served):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "fer"
    status = served["models"].GetModelStatus(request, timeout=10).model_version_status
    assert [(s.version, s.state) for s in status] == [
        (served["version"], get_model_status_pb2.ModelVersionStatus.AVAILABLE)]

    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "fer"
    response = served["stub"].GetModelMetadata(request, timeout=10)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    assert list(signatures.signature_def["serving_default"].inputs) == ["image_bytes"]

    code, body = rest(served, "GET", "/v1/models/fer")
    assert code == 200 and body["model_version_status"][0]["state"] == "AVAILABLE"
    code, body = rest(served, "GET", "/v1/models/fer/metadata")
    assert code == 200
    assert "image_bytes" in body["metadata"]["signature_def"]["signature_def"][
        "serving_default"]["inputs"]


def _bad_requests(face, version):
    """name -> (gRPC call args, REST (path, body or raw bytes), gRPC code, HTTP status, text)."""
    truncated = face[: len(face) // 3]
    too_big = [b"\xff\xd8\xff" + bytes(MAX_REQUEST_BYTES)]
    p = "/v1/models/fer:predict"
    return {
        "empty_image": (dict(images=[face, b""]), (p, {"instances": [b64(face), b64(b"")]}),
                        grpc.StatusCode.INVALID_ARGUMENT, 400, "image 1: empty bytes"),
        "unsupported_format": (dict(images=[b"GIF0notreally", face]),
                               (p, {"instances": [b64(b"%PDF-1.4 x"), b64(face)]}),
                               grpc.StatusCode.INVALID_ARGUMENT, 400, "image 0: unsupported"),
        "undecodable": (dict(images=[face, face, truncated]),
                        (p, {"instances": [b64(face), b64(face), b64(truncated)]}),
                        grpc.StatusCode.INVALID_ARGUMENT, 400, "image 2: cannot be decoded"),
        "wrong_input_key": (dict(images=[face], key="pixels"),
                            (p, {"instances": [{"pixels": b64(face)}]}),
                            grpc.StatusCode.INVALID_ARGUMENT, 400, "unknown input key"),
        "wrong_dtype": (dict(images=[1.0, 2.0], dtype=tf.float32),
                        (p, {"instances": [1.0, 2.0]}),
                        grpc.StatusCode.INVALID_ARGUMENT, 400, "DT_STRING"),
        "empty_batch": (dict(images=np.array([], dtype=object)), (p, {"instances": []}),
                        grpc.StatusCode.INVALID_ARGUMENT, 400, "empty batch"),
        "oversized": (dict(images=too_big), (p, {"instances": [b64(too_big[0])]}),
                      grpc.StatusCode.RESOURCE_EXHAUSTED, 413, ""),
        "unknown_model": (dict(images=[face], name="nope"),
                          ("/v1/models/nope:predict", {"instances": [b64(face)]}),
                          grpc.StatusCode.NOT_FOUND, 404, "model 'nope'"),
        "unknown_version": (dict(images=[face], version=version + 999),
                            (f"/v1/models/fer/versions/{version + 999}:predict",
                             {"instances": [b64(face)]}),
                            grpc.StatusCode.NOT_FOUND, 404, f"version {version + 999}"),
        "not_json": (None, (p, b"{instances"), None, 400, "not valid JSON"),
    }


CASES = ["empty_image", "unsupported_format", "undecodable", "wrong_input_key", "wrong_dtype",
         "empty_batch", "oversized", "unknown_model", "unknown_version", "not_json"]


@pytest.mark.parametrize("case", CASES)
def test_bad_request_gets_its_code_and_the_next_good_one_works(served, face_images, case):
    grpc_args, (path, body), code, http_status, text = _bad_requests(
        face_images[0], served["version"])[case]
    if grpc_args is not None:
        with pytest.raises(grpc.RpcError) as e:
            grpc_predict(served["stub"], **grpc_args)
        assert e.value.code() == code
        assert text in e.value.details()
        assert len(grpc_predict(served["stub"], face_images[:1]).outputs["class_id"]
                   .int64_val) == 1

    status, payload = rest(served, "POST", path, raw=body if isinstance(body, bytes) else None,
                           body=None if isinstance(body, bytes) else body)
    assert status == http_status, payload
    assert text in payload["error"]
    status, _ = rest(served, "POST", "/v1/models/fer:predict",
                     {"instances": [b64(face_images[0])]})
    assert status == 200


def test_bad_image_in_a_batch_does_not_shift_or_drop_answers(served, face_images):
    with pytest.raises(grpc.RpcError) as e:
        grpc_predict(served["stub"], [face_images[0], b"", face_images[1], b"junk"])
    assert "image 1" in e.value.details() and "image 3" in e.value.details()
    assert "2 of 4 images rejected" in e.value.details()


def test_metrics_count_requests_by_code_and_show_the_loaded_version(served, face_images):
    grpc_predict(served["stub"], face_images[:1])
    with pytest.raises(grpc.RpcError) as e:
        grpc_predict(served["stub"], [b""])
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    connection = http.client.HTTPConnection("127.0.0.1", served["server"].rest_port)
    connection.request("GET", "/monitoring/prometheus/metrics")
    text = connection.getresponse().read().decode()
    assert 'fer_serve_requests_total{api="grpc",code="OK",method="Predict"}' in text
    assert 'fer_serve_requests_total{api="grpc",code="INVALID_ARGUMENT",method="Predict"}' \
        in text
    assert 'fer_serve_request_latency_seconds_bucket{api="grpc",le="0.01",method="Predict"}' \
        in text
    rest(served, "POST", "/v1/models/fer:predict", {"instances": [b64(b"")]})
    text = served["server"].metrics.exposition().decode()
    assert 'fer_serve_requests_total{api="rest",code="INVALID_ARGUMENT",method="Predict"}' \
        in text
    loaded = next(line for line in text.splitlines()
                  if line.startswith('fer_serve_loaded_version{model="fer"}'))
    assert float(loaded.split()[-1]) == served["version"]


def test_server_side_batching_answers_each_request_as_alone(tmp_path, tiny_exports,
                                                            face_images):
    base = str(tmp_path / "fer")
    push(tiny_exports[0], base)
    config = ServerConfig(base, grpc_port=0, rest_port=None, enable_batching=True,
                          max_batch_size=8, batch_timeout_ms=20)
    with FerServer(config) as server:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(
            grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}"))
        alone = [tf.make_ndarray(grpc_predict(stub, [i]).outputs["probabilities"])[0]
                 for i in face_images]
        requests = [[face_images[i % 4]] for i in range(16)] + [[face_images[0], b""]]

        def call(images):
            try:
                return tf.make_ndarray(grpc_predict(stub, images).outputs["probabilities"])
            except grpc.RpcError as e:
                return e

        with concurrent.futures.ThreadPoolExecutor(17) as pool:
            results = list(pool.map(call, requests))
    for i, result in enumerate(results[:16]):
        np.testing.assert_allclose(result[0], alone[i % 4], rtol=1e-5, atol=1e-7)
    assert isinstance(results[16], grpc.RpcError)
    assert "image 1: empty bytes" in results[16].details()
    text = server.metrics.exposition().decode()
    value = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
             if line.startswith("fer_serve_batch_size_")}
    # 16 good requests + 4 alone before them, in fewer model calls than requests: some were
    # merged. The request with an empty image is refused before it joins a batch.
    assert value["fer_serve_batch_size_sum"] == 4 + 16
    assert value["fer_serve_batch_size_count"] < 4 + 17


def test_rest_refuses_requests_over_the_concurrency_limit(tmp_path, tiny_exports, face_images):
    base = str(tmp_path / "fer")
    push(tiny_exports[0], base)
    config = ServerConfig(base, grpc_port=0, rest_port=0,
                          limits=Limits(max_concurrent_requests=1))
    with FerServer(config) as server:
        served = {"server": server}
        body = {"instances": [b64(face_images[0])]}
        assert server.service.admission.try_acquire()  # one request is being run
        status, payload = rest(served, "POST", "/v1/models/fer:predict", body)
        assert status == 429 and "too many concurrent requests" in payload["error"]
        server.service.admission.release()
        assert rest(served, "POST", "/v1/models/fer:predict", body)[0] == 200


def test_ready_line_gives_the_ports_it_names():
    from serving import server_cli

    assert server_cli.ready_ports("11:34:10 fer-serve serving model 'fer' from x: gRPC "
                                  "127.0.0.1:8500, REST http://127.0.0.1:8501 (metrics /m); "
                                  "versions [1]") == (8500, 8501)
    assert server_cli.ready_ports(
        "serving model 'fer' from x: gRPC 0.0.0.0:41000; versions []") == (41000, None)
    assert server_cli.ready_ports("model fer: loading version 1") is None


def test_outputs_fill_the_typed_fields_as_tf_serving_does(served, face_images):
    outputs = grpc_predict(served["stub"], face_images).outputs
    probabilities = outputs["probabilities"]
    assert not probabilities.tensor_content and len(probabilities.float_val) == 4 * 6
    assert [d.size for d in probabilities.tensor_shape.dim] == [4, 6]
    np.testing.assert_allclose(np.reshape(probabilities.float_val, (4, 6)),
                               tf.make_ndarray(probabilities))
    assert len(outputs["class_id"].int64_val) == 4 and not outputs["class_id"].tensor_content
    assert len(outputs["predicted_class"].string_val) == 4


def test_answers_follow_tf_serving_where_they_used_to_differ(served, face_images):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "fer"
    request.model_spec.version_label = "nope"
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto(face_images[:1]))
    with pytest.raises(grpc.RpcError) as e:
        served["stub"].Predict(request, timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert rest(served, "GET", "/v1/models/fer/labels/nope")[0] == 400
    assert rest(served, "GET", "/v1/models/fer/versions/x1")[0] == 400
    assert rest(served, "GET", "/v1/models/%66er")[0] == 200  # paths are URL-decoded
    code, body = rest(served, "GET", "/v1/models/fer/metadata")
    serving_default = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert serving_default["inputs"]["image_bytes"]["tensor_shape"]["unknown_rank"] is False
    assert serving_default["method_name"] == "tensorflow/serving/predict"
    code, body = rest(served, "PUT", "/v1/models/fer", {})
    assert code == 405 and "takes GET" in body["error"]
    connection = http.client.HTTPConnection("127.0.0.1", served["server"].rest_port, timeout=10)
    connection.request("HEAD", "/v1/models/fer")
    response = connection.getresponse()
    assert response.status == 200 and response.read() == b""
    connection.close()


def test_nothing_loaded_is_not_found_on_both_apis(tmp_path, face_images):
    with FerServer(ServerConfig(str(tmp_path / "empty"), grpc_port=0, rest_port=0)) as server:
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            with pytest.raises(grpc.RpcError) as e:
                grpc_predict(stub, face_images[:1])
            assert e.value.code() == grpc.StatusCode.NOT_FOUND
        served = {"server": server}
        assert rest(served, "POST", "/v1/models/fer:predict",
                    {"instances": [b64(face_images[0])]})[0] == 404
        assert rest(served, "GET", "/v1/models/fer")[0] == 404


def test_every_limit_has_its_flag_and_defaults_come_from_one_table():
    from serving import server_cli
    from serving.limits import DEFAULT_LIMITS

    args = server_cli.build_parser().parse_args(["--model-base-path", "x", "--read-timeout", "3",
                                                 "--max-images-per-request", "9"])
    limits = server_cli.config_from_args(args).limits
    assert limits.read_timeout_s == 3.0 and limits.max_images_per_request == 9
    assert limits.max_request_bytes == DEFAULT_LIMITS.max_request_bytes
    with pytest.raises(SystemExit):
        server_cli.config_from_args(server_cli.build_parser().parse_args(
            ["--model-base-path", "x", "--max-connections", "0"]))
    # The command line's defaults are ServerConfig's.
    assert server_cli.config_from_args(server_cli.build_parser().parse_args(
        ["--model-base-path", "x"])) == server_cli.ServerConfig(model_base_path="x")
