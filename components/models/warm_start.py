"""The Keras network every trained model keeps: for the warm start and for the ensemble.

Every trained Model artifact keeps its Keras weights and what they fit beside the SavedModel
(`<model uri>/keras/`, outside `Format-Serving`, so TF Serving never sees them). A later Trainer
given that model as `base_model` loads them when the network is the same (architecture,
variant, width, input shape, classes, augmentation layers); otherwise it starts cold and says
why. The exported classifier is kept there too, as a `.keras` file with its test-time views in
the spec, for components/ensemble to serve it beside other networks (`load_classifier`).
"""
from __future__ import annotations

import hashlib
import json
import os
import posixpath
import tempfile
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import keras
import tensorflow as tf

from components.models.training_config import TrainConfig

WEIGHTS_DIR = "keras"
WEIGHTS_FILE = "model.weights.h5"   # Keras 3 wants this suffix
SPEC_FILE = "network.json"          # what the weights fit, and their digest
# The exported classifier (no training wrapper, no optimizer), as keras.saving.load_model reads
# it, and the spec fields of how its export serves it (export.Member).
CLASSIFIER_FILE = "classifier.keras"
SERVING_SPEC_KEYS = ("test_time_augmentation", "tta_shift")


def network_spec(config: TrainConfig, image_shape: Sequence[int],
                 hparams: Mapping[str, Any]) -> Dict[str, Any]:
    """What must match for weights to load into a freshly built training model (the head's
    width is a tuned hyperparameter)."""
    return {"architecture": config.architecture, "variant": config.variant,
            "width": config.width, "image_shape": [int(d) for d in image_shape],
            "label_names": list(config.label_names),
            "head_units": int(hparams["head_units"]),
            "augment_in_model": bool(config.augment and config.augment_in_model)}


def weights_digest(model: keras.Model) -> str:
    """sha256 over every weight array, in the model's order."""
    digest = hashlib.sha256()
    for array in model.get_weights():
        digest.update(array.tobytes())
    return digest.hexdigest()


def _weights_dir(serving_model_dir: str) -> str:
    """`<model uri>/keras` for the model artifact whose SavedModel is `serving_model_dir`."""
    return posixpath.join(os.path.dirname(serving_model_dir.rstrip("/")), WEIGHTS_DIR)


def save(model: keras.Model, config: TrainConfig, image_shape: Sequence[int],
         hparams: Mapping[str, Any], serving_model_dir: str) -> Dict[str, Any]:
    """Writes the weights of the training `model`, its exported classifier and their network
    spec beside `serving_model_dir`; returns the spec."""
    from components.models import trainer  # trainer imports this module

    target = _weights_dir(serving_model_dir)
    tf.io.gfile.makedirs(target)
    spec = {**network_spec(config, image_shape, hparams),
            "weights_sha256": weights_digest(model),
            "test_time_augmentation": config.test_time_augmentation,
            "tta_shift": config.tta_shift}
    exported = trainer.classifier(model)
    # A new functional model over the same layers: uncompiled, so its file holds no optimizer.
    classifier = keras.Model(exported.inputs, exported.outputs, name=exported.name)
    with tempfile.TemporaryDirectory() as tmp:  # h5py and Keras' zip write local files only
        for name, write in ((WEIGHTS_FILE, model.save_weights),
                            (CLASSIFIER_FILE, classifier.save)):
            local = os.path.join(tmp, name)
            write(local)
            tf.io.gfile.copy(local, posixpath.join(target, name), overwrite=True)
    with tf.io.gfile.GFile(posixpath.join(target, SPEC_FILE), "w") as f:
        json.dump(spec, f, indent=1)
    return spec


def read_spec(serving_model_dir: str) -> Optional[Dict[str, Any]]:
    path = posixpath.join(_weights_dir(serving_model_dir), SPEC_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def stored_weights_digest(serving_model_dir: str) -> Optional[str]:
    """The sha256 of the weights saved beside `serving_model_dir`: the one its spec records
    (over the weight arrays), else "file:" and a sha256 of the weights file's bytes; None when
    neither is there."""
    spec = read_spec(serving_model_dir)
    if spec and spec.get("weights_sha256"):
        return str(spec["weights_sha256"])
    path = posixpath.join(_weights_dir(serving_model_dir), WEIGHTS_FILE)
    if not tf.io.gfile.exists(path):
        return None
    digest = hashlib.sha256()
    with tf.io.gfile.GFile(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return "file:" + digest.hexdigest()


class NoClassifierError(ValueError):
    """A model artifact without the exported classifier that an ensemble needs."""


def load_classifier(serving_model_dir: str) -> Tuple[keras.Model, Dict[str, Any]]:
    """The classifier a Trainer exported as `serving_model_dir`, and its spec (network_spec,
    with the test-time views: SERVING_SPEC_KEYS). Raises NoClassifierError for a model saved
    without them (trained before the ensemble existed)."""
    target = _weights_dir(serving_model_dir)
    spec = read_spec(serving_model_dir)
    lacking = None
    if spec is None:
        lacking = SPEC_FILE
    elif any(k not in spec for k in SERVING_SPEC_KEYS):
        lacking = f"{SPEC_FILE} fields {[k for k in SERVING_SPEC_KEYS if k not in spec]}"
    elif not tf.io.gfile.exists(posixpath.join(target, CLASSIFIER_FILE)):
        lacking = CLASSIFIER_FILE
    if lacking:
        raise NoClassifierError(f"{target} lacks {lacking}: the model was trained before its "
                                "classifier was kept for ensembles; train it again (a run "
                                "without the cache, --no-cache, does)")
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, CLASSIFIER_FILE)
        tf.io.gfile.copy(posixpath.join(target, CLASSIFIER_FILE), local)
        # Not safe mode: the stock variant's ImageNet input has a Lambda layer, and the file is
        # this pipeline's own output.
        classifier = keras.saving.load_model(local, compile=False, safe_mode=False)
    return classifier, spec


SHAPE_HYPERPARAMETERS = ("head_units",)  # hyperparameters that fix weight shapes


def base_shape_hyperparameters(base_model: Optional[str]) -> Dict[str, Any]:
    """The base model's shape-fixing hyperparameters, for the Trainer to build the same head
    (a Tuner searching afresh may have chosen another); {} without a base model."""
    spec = read_spec(base_model) if base_model else None
    return {k: spec[k] for k in SHAPE_HYPERPARAMETERS if spec and k in spec}


def load(model: keras.Model, config: TrainConfig, image_shape: Sequence[int],
         hparams: Mapping[str, Any], base_model: Optional[str]) -> Dict[str, Any]:
    """Loads `base_model`'s weights into `model` when they fit. Returns what happened:
    {"warm": bool, "base_model": path or None, "reason": why not, or "" when warm}. A load
    that fails anyway leaves `model` as it was built."""
    if not base_model:
        return {"warm": False, "base_model": None, "reason": "no pushed model of this "
                "architecture yet"}
    spec = read_spec(base_model)
    if spec is None:
        return {"warm": False, "base_model": base_model,
                "reason": f"the base model has no {WEIGHTS_DIR}/{SPEC_FILE}"}
    wanted = network_spec(config, image_shape, hparams)
    differs = sorted(k for k in wanted if spec.get(k) != wanted[k])
    if differs:
        return {"warm": False, "base_model": base_model,
                "reason": "the base model is another network: " + ", ".join(
                    f"{k} {spec.get(k)!r} != {wanted[k]!r}" for k in differs)}
    initial = model.get_weights()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, WEIGHTS_FILE)
            tf.io.gfile.copy(posixpath.join(_weights_dir(base_model), WEIGHTS_FILE), local)
            model.load_weights(local)
    except (ValueError, OSError, tf.errors.OpError) as e:
        model.set_weights(initial)  # a failed load may have assigned some layers already
        return {"warm": False, "base_model": base_model,
                "reason": f"its weights did not load: {str(e).splitlines()[0][:300]}"}
    return {"warm": True, "base_model": base_model, "reason": ""}
