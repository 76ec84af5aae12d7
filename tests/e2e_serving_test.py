"""End to end: `fer-serve` as users start it, over a directory the Pusher's publish writes; the
project's clients (gRPC, REST) and the bare TF Serving stubs call it; a new version is pushed
while clients keep calling, and not one request fails."""
import os
import signal
import threading
import time

import grpc
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from serving import client as client_lib
from tests import image_folders, tiny_models
from tests.serve_process import ServeProcess

pytestmark = pytest.mark.e2e

SWAP_LOAD_LIMIT_S = 60   # the loop under load stops after this, or...
SWAP_LOAD_MAX_REQUESTS = 2000  # ...after this many requests


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("exports")
    return [tiny_models.export(str(root / f"v{seed}"), seed) for seed in (1, 2)]


def test_clients_and_stubs_classify_then_a_pushed_version_takes_over_under_load(
        tmp_path, exports):
    images = [image_folders.encode(image_folders.face(e, i))
              for i, e in enumerate(["happy", "sad", "fear"])]
    base = str(tmp_path / "serving" / "fer")
    first = tiny_models.push(exports[0], base)
    server = ServeProcess(base)
    try:
        grpc_target = f"127.0.0.1:{server.grpc_port}"
        rest_url = f"http://127.0.0.1:{server.rest_port}"
        with client_lib.GrpcClient(grpc_target) as g, client_lib.RestClient(rest_url) as r:
            by_grpc, by_rest = g.predict(images), r.predict(images)
        assert [p.version for p in by_grpc + by_rest] == [first] * 6
        assert [p.predicted_class for p in by_grpc] == [p.predicted_class for p in by_rest]

        # The bare stubs, exactly as an application written for TF Serving calls it.
        stub = prediction_service_pb2_grpc.PredictionServiceStub(
            grpc.insecure_channel(grpc_target))
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "fer"
        request.model_spec.signature_name = "serving_default"
        request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto(images))
        response = stub.Predict(request, timeout=30)
        assert [c.decode() for c in tf.make_ndarray(response.outputs["predicted_class"])] == \
            [p.predicted_class for p in by_grpc]

        # Concurrent clients call without pause while the next version is pushed.
        results, failures = [], []
        stop = threading.Event()
        lock = threading.Lock()

        def caller(protocol):
            address = grpc_target if protocol == "grpc" else rest_url
            with client_lib.connect(protocol, address, timeout_s=30) as client:
                while not stop.is_set():
                    started = time.monotonic()
                    try:
                        (prediction,) = client.predict(images[:1])
                        with lock:
                            results.append((started, time.monotonic(), prediction.version))
                    except Exception as e:  # every failure counts
                        with lock:
                            failures.append(repr(e))
                    with lock:
                        if len(results) + len(failures) >= SWAP_LOAD_MAX_REQUESTS:
                            stop.set()

        threads = [threading.Thread(target=caller, args=(p,))
                   for p in ("grpc", "grpc", "rest", "rest")]
        for t in threads:
            t.start()
        time.sleep(1.0)
        second = tiny_models.push(exports[1], base)
        deadline = time.monotonic() + SWAP_LOAD_LIMIT_S
        while time.monotonic() < deadline and not stop.is_set():
            with lock:
                new = [end for _, end, v in results if v == second]
            if new and time.monotonic() > new[0] + 1.0:  # a second of traffic after the swap
                break
            time.sleep(0.1)
        stop.set()
        for t in threads:
            t.join(timeout=60)

        assert failures == []
        versions = {v for _, _, v in results}
        assert versions == {first, second}, versions
        first_new_answer = min(end for _, end, v in results if v == second)
        # Requests started after the new version answered are all answered by it.
        assert {v for started, _, v in results if started > first_new_answer} == {second}
        assert "warm-up requests" in "".join(server.log)

        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=30) == 0
        assert "finishing requests in flight" in "".join(server.log)
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
    assert sorted(os.listdir(base)) == sorted([str(first), str(second)])
