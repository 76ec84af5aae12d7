import json
import socket

import numpy as np
import pytest

from serving import client as client_lib
from serving import client_cli
from serving import faces as faces_lib
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
    assert e.value.code == "INVALID_ARGUMENT" and "canary" in e.value.message
    with pytest.raises(ValueError, match="give a version or a version label, not both"):
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


def test_cli_reads_image_bytes_from_stdin(server, face_images, monkeypatch, capsys):
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(face_images[0])))
    assert client_cli.main(["predict", "-", "--format", "jsonl", "--server",
                            f"127.0.0.1:{server.grpc_port}"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["file"] == "-" and row["class"]


def test_cli_reports_server_errors_and_missing_files(server, tmp_path, capsys):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    assert client_cli.main(["predict", str(bad), "--server",
                            f"127.0.0.1:{server.grpc_port}"]) == 1
    assert "INVALID_ARGUMENT" in capsys.readouterr().err
    assert client_cli.main(["predict", str(tmp_path / "missing.jpg"), "--server",
                            f"127.0.0.1:{server.grpc_port}"]) == 2
    assert "missing.jpg" in capsys.readouterr().err


def test_grpc_over_tls_with_the_servers_certificate_as_ca(tmp_path, tiny_exports, face_images):
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    base = str(tmp_path / "fer")
    push(tiny_exports[0], base)
    config = ServerConfig(base, grpc_port=0, rest_port=None, ssl_cert=str(cert),
                          ssl_key=str(key))
    with FerServer(config) as server:
        with client_lib.GrpcClient(f"localhost:{server.grpc_port}", ca_file=str(cert)) as tls:
            assert len(tls.predict(face_images[:2])) == 2
        retry = client_lib.RetryPolicy(attempts=1)
        with client_lib.GrpcClient(f"localhost:{server.grpc_port}", retry=retry,
                                   timeout_s=5) as plain:
            with pytest.raises(client_lib.ClientError) as e:
                plain.predict(face_images[:1])  # plaintext against a TLS port fails
        assert e.value.code == "UNAVAILABLE"


def test_cli_finds_faces_in_photos_and_reports_photos_without_one(server, tmp_path, capsys):
    import cv2

    from tests.face_photos import fer_faces, photo_with

    crops = [c for c in fer_faces(20) if faces_lib.find_faces(photo_with([c], [(240, 100)]))]
    group = tmp_path / "group.jpg"
    group.write_bytes(photo_with(crops[:2], [(40, 100), (420, 100)]))
    empty = tmp_path / "wall.png"
    empty.write_bytes(cv2.imencode(".png", np.full((200, 300), 90, np.uint8))[1].tobytes())
    assert client_cli.main(["predict", "--faces", str(group), str(empty), "--format", "jsonl",
                            "--server", f"127.0.0.1:{server.grpc_port}"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["file"], r.get("face")) for r in rows] == [
        (str(group), 0), (str(group), 1), (str(empty), None)]
    assert all(len(r["box"]) == 4 and r["class"] for r in rows[:2])
    assert rows[2]["error"] == "no face found"
