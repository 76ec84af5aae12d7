"""`fer-client predict --tflite`: the Pusher's TFLite twin answers on this machine what the served
SavedModel answers through fer-serve (same rows, same version, probabilities within the
parity tolerance of components/pusher/tflite_test.py); where PATH may point; bad images named as
fer-serve names them."""
import json
import os

import pytest

from components import contract
from components.pusher import executor as pusher
from components.pusher import tflite
from serving import client as client_lib
from serving import client_cli, tflite_predict
from serving.server import FerServer, ServerConfig
from tests import image_folders, tflite_models

PROBABILITY_TOLERANCE = 0.002  # as components/pusher/tflite_test.py states it


@pytest.fixture(scope="module")
def pushed(tmp_path_factory):
    """The ensemble export pushed as the Pusher pushes it: SavedModel and TFLite twin."""
    exports = tflite_models.shared_trained_exports()
    root = tmp_path_factory.mktemp("tflite_push")
    tflite_dir = root / "tflite"
    tflite.write_version(exports.ensemble, str(tflite_dir))
    base = str(root / "serving" / contract.MODEL_NAME)
    version = os.path.basename(pusher.publish_atomically(exports.ensemble, base, str(tflite_dir)))
    files = []
    for i, data in enumerate(exports.images[:6]):
        path = root / "faces" / f"face{i}.jpg"
        image_folders.write(str(path), data)
        files.append(str(path))
    return {"base": base, "tflite_base": contract.tflite_base_path(base),
            "version": int(version), "files": files}


def _jsonl(capsys, argv):
    assert client_cli.main(argv) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_tflite_rows_match_the_servers_rows(pushed, capsys):
    with FerServer(ServerConfig(pushed["base"], grpc_port=0, rest_port=None)) as server:
        served = _jsonl(capsys, ["predict", "--format", "jsonl", "--server",
                                 f"127.0.0.1:{server.grpc_port}", *pushed["files"]])
    local = _jsonl(capsys, ["predict", "--format", "jsonl", "--tflite", pushed["tflite_base"],
                            *pushed["files"]])
    assert len(local) == len(served) == len(pushed["files"])
    for here, there in zip(local, served, strict=True):
        assert here.keys() == there.keys()
        assert (here["file"], here["class"], here["version"]) == \
            (there["file"], there["class"], there["version"])
        assert [c for c, _ in here["top_k"]] == [c for c, _ in there["top_k"]]
        assert abs(here["probability"] - there["probability"]) <= PROBABILITY_TOLERANCE


def test_tflite_table_names_the_version(pushed, capsys):
    assert client_cli.main(["predict", "--tflite", pushed["tflite_base"],
                            *pushed["files"][:2]]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["file", "class", "prob"]
    assert table[1].startswith("face0.jpg")
    assert table[-1] == f"(2 classified by version {pushed['version']})"


def test_path_may_be_the_file_its_version_directory_or_the_base(pushed, tmp_path):
    version_dir = os.path.join(pushed["tflite_base"], str(pushed["version"]))
    file = os.path.join(version_dir, contract.TFLITE_FILE)
    for path in (file, version_dir, pushed["tflite_base"]):
        assert tflite_predict.model_file(path) == file
    # The newest version wins; staging folders and other names are no versions.
    newer = tmp_path / "fer-tflite"
    for name in ("7", "12", ".staging-13-abcd", "notes"):
        (newer / name).mkdir(parents=True)
        (newer / name / contract.TFLITE_FILE).write_bytes(b"")
    assert tflite_predict.model_file(str(newer)) == str(newer / "12" / contract.TFLITE_FILE)
    assert tflite_predict.version_of(str(newer / "12" / contract.TFLITE_FILE)) == 12
    assert tflite_predict.version_of(file) == pushed["version"]
    with pytest.raises(FileNotFoundError, match="neither"):
        tflite_predict.model_file(str(tmp_path))
    with pytest.raises(FileNotFoundError):
        tflite_predict.model_file(str(tmp_path / "missing"))


def test_bad_images_are_named_as_fer_serve_names_them(pushed, tmp_path, capsys):
    classifier = tflite_predict.TFLiteClassifier(pushed["tflite_base"])
    good = open(pushed["files"][0], "rb").read()
    with pytest.raises(client_lib.ClientError) as e:
        classifier.predict([good, b"not an image", good[:40]])
    assert e.value.code == "INVALID_ARGUMENT"
    assert "image 1: unsupported format" in e.value.message and "image 2" in e.value.message

    bad = tmp_path / "notes.jpg"
    bad.write_text("hello")
    assert client_cli.main(["predict", "--tflite", pushed["tflite_base"], str(bad)]) == 1
    assert "the TFLite model refused INVALID_ARGUMENT" in capsys.readouterr().err
    assert client_cli.main(["predict", "--tflite", str(tmp_path / "none"), str(bad)]) == 2
    assert "no TFLite model at" in capsys.readouterr().err


def test_a_file_without_class_names_is_refused(tmp_path):
    path = tmp_path / "plain.tflite"
    model = tflite.convert(tflite_models.shared_trained_exports().single)
    path.write_bytes(_without_metadata(model))
    with pytest.raises(ValueError, match=contract.TFLITE_CLASS_NAMES_METADATA):
        tflite_predict.TFLiteClassifier(str(path))


def _without_metadata(model: bytes) -> bytes:
    from tensorflow.lite.tools import flatbuffer_utils

    model_t = flatbuffer_utils.convert_bytearray_to_object(bytearray(model))
    model_t.metadata = [m for m in model_t.metadata
                        if m.name.decode() != contract.TFLITE_CLASS_NAMES_METADATA]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model_t))


def test_fer_client_with_tflite_prints_only_its_own_lines(pushed):
    """TensorFlow's and TFLite's start-up lines (device errors without a GPU, the XNNPACK
    delegate's INFO line) stay off the console, as for the server path (tests/commands_test.py)."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "serving.client_cli", "predict", "--tflite",
         pushed["tflite_base"], *pushed["files"][:2]],
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 4 and lines[-1] == f"(2 classified by version {pushed['version']})"
