import json
import socket

import numpy as np
import pytest

from serving import client as client_lib
from serving import client_cli
from serving.conftest import push
from serving.server import FerServer, ServerConfig


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_exports):
    base = str(tmp_path_factory.mktemp("client") / "fer")
    push(tiny_exports[0], base)
    with FerServer(ServerConfig(base, grpc_port=0, rest_port=0)) as running:
        yield running


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_both_clients_give_the_same_answers_in_batches(server, face_images, protocol):
    address = (f"127.0.0.1:{server.grpc_port}" if protocol == "grpc"
               else f"http://127.0.0.1:{server.rest_port}")
    with client_lib.connect(protocol, address) as client:
        in_batches = client.predict(face_images * 3, batch_size=5)
        whole = client.predict(face_images * 3, batch_size=32)
        np.testing.assert_allclose([p.probabilities for p in in_batches],
                                   [p.probabilities for p in whole], rtol=1e-5, atol=1e-7)
        version = server.store.available_versions()[0]
        assert {p.version for p in in_batches} == {version}
        top = in_batches[0].top(3)
        assert top[0][0] == in_batches[0].predicted_class and top[0][1] >= top[1][1] >= top[2][1]
        assert client.status()[0] == {"version": version, "state": "AVAILABLE",
                                      "error_code": "OK", "error_message": ""}
        metadata = client.metadata()
        assert metadata["version"] == version
        assert metadata["signatures"]["serving_default"]["inputs"] == {
            "image_bytes": "DT_STRING [-1]"}


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_unavailable_is_retried_with_exponential_backoff(protocol):
    sleeps = []
    port = _free_port()  # nothing listens there
    address = f"127.0.0.1:{port}" if protocol == "grpc" else f"http://127.0.0.1:{port}"
    retry = client_lib.RetryPolicy(attempts=4, initial_backoff_s=0.01, multiplier=2.0)
    with client_lib.connect(protocol, address, retry=retry, timeout_s=5,
                            sleep=sleeps.append) as client:
        with pytest.raises(client_lib.ClientError) as e:
            client.status()
    assert e.value.code == "UNAVAILABLE"
    assert sleeps == [0.01, 0.02, 0.04]


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_other_errors_are_not_retried(server, protocol):
    sleeps = []
    address = (f"127.0.0.1:{server.grpc_port}" if protocol == "grpc"
               else f"http://127.0.0.1:{server.rest_port}")
    with client_lib.connect(protocol, address, sleep=sleeps.append) as client:
        with pytest.raises(client_lib.ClientError) as e:
            client.predict([b"not an image"])
    assert e.value.code == "INVALID_ARGUMENT" and "image 0" in e.value.message
    assert sleeps == []


def test_version_label_or_number_is_sent(server):
    version = server.store.available_versions()[0]
    with client_lib.GrpcClient(f"127.0.0.1:{server.grpc_port}", version=version) as client:
        assert client.status()[0]["version"] == version
    with client_lib.RestClient(f"http://127.0.0.1:{server.rest_port}",
                               version_label="canary") as client:
        with pytest.raises(client_lib.ClientError) as e:
            client.status()
    assert e.value.code == "NOT_FOUND" and "canary" in e.value.message
    with pytest.raises(ValueError):
        client_lib.GrpcClient("127.0.0.1:1", version=1, version_label="x")


def test_cli_prints_a_table_and_json_lines(server, face_images, tmp_path, capsys):
    files = []
    for i, data in enumerate(face_images[:2]):
        path = tmp_path / f"face{i}.jpg"
        path.write_bytes(data)
        files.append(str(path))
    assert client_cli.main(["predict", *files, "--server",
                            f"127.0.0.1:{server.grpc_port}"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["file", "class", "prob"]
    assert table[1].startswith("face0.jpg") and table[2].startswith("face1.jpg")
    assert table[-1].startswith("(2 classified by version")

    assert client_cli.main(["predict", *files, "--protocol", "rest", "--format", "jsonl",
                            "--top-k", "2", "--server",
                            f"http://127.0.0.1:{server.rest_port}"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["file"] for r in rows] == files
    assert all(len(r["top_k"]) == 2 and r["top_k"][0][0] == r["class"] for r in rows)


def test_cli_reports_server_errors_and_missing_files(server, tmp_path, capsys):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    assert client_cli.main(["predict", str(bad), "--server",
                            f"127.0.0.1:{server.grpc_port}"]) == 1
    assert "INVALID_ARGUMENT" in capsys.readouterr().err
    assert client_cli.main(["predict", str(tmp_path / "missing.jpg"), "--server",
                            f"127.0.0.1:{server.grpc_port}"]) == 2
    assert "missing.jpg" in capsys.readouterr().err
