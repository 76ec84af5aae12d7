"""The ensemble export: a fresh process with TensorFlow alone serves the mean of its members'
served probabilities; the executor lays it out as a Trainer's model; bad members are named."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components import contract, warmup
from components.ensemble import ensemble, executor
from components.models import export, input_pipeline, trainer, warm_start
from components.models.training_config import TrainConfig
from tests import image_folders, transform_graphs

IMAGE_SIZE = transform_graphs.IMAGE_SIZE
LABELS = transform_graphs.LABELS
# Each member with other test-time views, one of them augmenting inside its training model.
MEMBER_SETTINGS = {"vgg16": {"test_time_augmentation": "flip", "augment_in_model": True},
                   "resnet50": {"test_time_augmentation": "crops", "tta_shift": 3}}


def _train_member(arch: str, model_uri: str, tf_transform_output, seed: int) -> str:
    """A Trainer's model artifact, as run_fn leaves it: keras/ and the export (random weights:
    the ensemble is plumbing, whatever the networks learned)."""
    import keras

    config = TrainConfig(architecture=arch, label_names=LABELS, width=0.0625,
                         **MEMBER_SETTINGS[arch])
    hparams = trainer.default_hyperparameters(config)
    shape = input_pipeline.image_shape(tf_transform_output)
    keras.utils.set_random_seed(seed)
    model = trainer.build_model(config, hparams, shape)
    serving_model_dir = path_utils.serving_model_dir(model_uri)
    warm_start.save(model, config, shape, hparams, serving_model_dir)
    export.export_model(trainer.classifier(model), tf_transform_output, LABELS,
                              serving_model_dir, config.test_time_augmentation, config.tta_shift)
    return model_uri


def _artifact(cls, uri):
    artifact = cls()
    artifact.uri = uri
    return artifact


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A transform graph, two Trainers' models, and the Ensemble executor's output over them."""
    import tensorflow_transform as tft

    root = tmp_path_factory.mktemp("ensemble")
    graph = transform_graphs.write(str(root / "transform_graph"))
    tf_transform_output = tft.TFTransformOutput(graph)
    members = {arch: _train_member(arch, str(root / f"Trainer_{arch}" / "model"),
                                   tf_transform_output, seed)
               for seed, arch in enumerate(contract.ARCHITECTURES)}
    output = _artifact(standard_artifacts.Model, str(root / "Ensemble" / "model"))
    inputs = {executor.TRANSFORM_GRAPH_KEY: [_artifact(standard_artifacts.TransformGraph, graph)],
              **{executor.input_key(arch): [_artifact(standard_artifacts.Model, uri)]
                 for arch, uri in members.items()}}
    executor.Executor().Do(inputs, {executor.MODEL_KEY: [output]}, {})
    return {"root": root, "graph": graph, "members": members, "output": output}


# Runs with TensorFlow alone: the project's editable install is taken off the import system and
# its checkout is not the working directory, so nothing of this project can be imported.
FRESH_PROCESS = r"""
import importlib.util, json, sys
sys.meta_path[:] = [f for f in sys.meta_path
                    if not getattr(f, "__module__", "").startswith("__editable__")]
sys.path[:] = [p for p in sys.path if "__editable__" not in p]
assert importlib.util.find_spec("components") is None, "the project is importable"
import tensorflow as tf

request = json.loads(sys.stdin.read())
images = tf.constant([bytes.fromhex(b) for b in request["images"]])
examples = tf.constant([tf.train.Example(features=tf.train.Features(feature={
    "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b]))})).SerializeToString()
    for b in images.numpy()])
out = {}
for name, path in request["models"].items():
    model = tf.saved_model.load(path)
    served = model.signatures["serving_default"](image_bytes=images)
    out[name] = {
        "signatures": sorted(model.signatures),
        "outputs": sorted(served),
        "probabilities": served["probabilities"].numpy().tolist(),
        "predicted_class": [c.decode() for c in served["predicted_class"].numpy()],
        "from_examples": model.signatures["serving_examples"](examples=examples)[
            "probabilities"].numpy().tolist()}
out["modules"] = sorted(m for m in sys.modules
                        if m.split(".")[0] in ("components", "tensorflow_transform", "tfx"))
print(json.dumps(out))
"""


def test_a_fresh_process_with_tensorflow_alone_serves_the_mean_of_the_members(run, tmp_path):
    ensemble_dir = path_utils.serving_model_dir(run["output"].uri)
    models = {"ensemble": ensemble_dir,
              **{arch: path_utils.serving_model_dir(uri) for arch, uri in run["members"].items()}}
    images = [image_folders.encode(image_folders.face(name, seed), fmt)
              for seed, name in enumerate(LABELS * 2) for fmt in ("JPEG", "PNG")]
    images.append(image_folders.encode(np.stack([image_folders.face("sad", 9, 96)] * 3, -1),
                                       "PNG"))  # colour, another size: the Transform resizes
    done = subprocess.run(
        [sys.executable, "-I", "-c", FRESH_PROCESS], cwd=str(tmp_path), timeout=300,
        input=json.dumps({"models": models, "images": [b.hex() for b in images]}),
        capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr[-3000:]
    served = json.loads(done.stdout.splitlines()[-1])
    assert served["modules"] == []

    ensemble_p = np.array(served["ensemble"]["probabilities"])
    member_p = [np.array(served[arch]["probabilities"]) for arch in contract.ARCHITECTURES]
    assert ensemble_p.shape == (len(images), len(LABELS))
    np.testing.assert_allclose(ensemble_p, np.mean(member_p, axis=0), rtol=0, atol=1e-5)
    # The members disagree well beyond that tolerance, so the mean is no member's own.
    assert np.abs(member_p[0] - member_p[1]).max() > 1e-3
    np.testing.assert_allclose(np.array(served["ensemble"]["from_examples"]), ensemble_p,
                               rtol=0, atol=1e-6)
    assert served["ensemble"]["predicted_class"] == [LABELS[i] for i in ensemble_p.argmax(1)]
    # The members' signatures and outputs, and their warm-up records.
    for arch in contract.ARCHITECTURES:
        assert served["ensemble"]["signatures"] == served[arch]["signatures"] == sorted(
            [contract.SERVING_SIGNATURE, contract.EXAMPLES_SIGNATURE])
        assert served["ensemble"]["outputs"] == served[arch]["outputs"] == sorted(
            contract.OUTPUT_KEYS)
    assert warmup.read_warmup_requests(ensemble_dir) == warmup.read_warmup_requests(
        models["vgg16"])


def test_the_executor_writes_a_trainers_layout_and_names_the_members(run):
    assert os.path.isfile(os.path.join(run["output"].uri, "Format-Serving", "saved_model.pb"))
    assert sorted(os.listdir(run["output"].uri)) == ["Format-Serving"]
    assert json.loads(run["output"].get_string_custom_property(
        executor.MEMBERS_PROPERTY)) == list(contract.ARCHITECTURES)


def test_a_member_saved_without_its_classifier_is_named(run, tmp_path):
    member_dirs = {}
    for arch, uri in run["members"].items():
        shutil.copytree(uri, tmp_path / arch)
        member_dirs[arch] = path_utils.serving_model_dir(str(tmp_path / arch))
    keras_dir = tmp_path / "resnet50" / warm_start.WEIGHTS_DIR
    os.remove(keras_dir / warm_start.CLASSIFIER_FILE)
    with pytest.raises(warm_start.NoClassifierError,
                       match=rf"resnet50/keras lacks {warm_start.CLASSIFIER_FILE}.*train it again"):
        ensemble.export(member_dirs, run["graph"], str(tmp_path / "out"))
    spec = json.loads((keras_dir / warm_start.SPEC_FILE).read_text())
    del spec["test_time_augmentation"]  # a model saved before the spec recorded its views
    (keras_dir / warm_start.SPEC_FILE).write_text(json.dumps(spec))
    with pytest.raises(warm_start.NoClassifierError, match="'test_time_augmentation'"):
        ensemble.export(member_dirs, run["graph"], str(tmp_path / "out"))


def test_members_must_be_two_and_agree_on_classes(run, tmp_path):
    dirs = {arch: path_utils.serving_model_dir(uri) for arch, uri in run["members"].items()}
    with pytest.raises(ValueError, match="at least 2 members"):
        ensemble.export({"vgg16": dirs["vgg16"]}, run["graph"], str(tmp_path / "one"))
    shutil.copytree(run["members"]["resnet50"], tmp_path / "resnet50")
    spec_path = tmp_path / "resnet50" / warm_start.WEIGHTS_DIR / warm_start.SPEC_FILE
    spec = json.loads(spec_path.read_text())
    spec_path.write_text(json.dumps({**spec, "label_names": ["angry", "fear", "happy"]}))
    dirs["resnet50"] = path_utils.serving_model_dir(str(tmp_path / "resnet50"))
    with pytest.raises(ValueError, match="member resnet50 classifies"):
        ensemble.export(dirs, run["graph"], str(tmp_path / "two"))
