"""Warm start: the saved weights load into the same network, and only into it."""
import dataclasses
import os

from components.models import trainer, warm_start
from components.models.training_config import TrainConfig

SHAPE = (16, 16, 1)


def _config(**overrides):
    return TrainConfig(architecture="vgg16", label_names=["happy", "sad"], width=0.0625,
                       **overrides)


def _hparams(config, **overrides):
    return {**trainer.default_hyperparameters(config), **overrides}


def _model(config, seed, **hparams):
    import keras
    keras.utils.set_random_seed(seed)
    return trainer.build_model(config, _hparams(config, **hparams), SHAPE)


def test_weights_saved_beside_the_serving_model_load_into_the_same_network(tmp_path):
    config = _config()
    trained = _model(config, seed=1)
    serving = os.path.join(str(tmp_path), "model", "Format-Serving")
    spec = warm_start.save(trained, config, SHAPE, _hparams(config), serving)
    assert sorted(os.listdir(tmp_path / "model" / warm_start.WEIGHTS_DIR)) == \
        sorted([warm_start.WEIGHTS_FILE, warm_start.SPEC_FILE, warm_start.CLASSIFIER_FILE])
    assert spec["weights_sha256"] == warm_start.weights_digest(trained)

    fresh = _model(config, seed=2)
    assert warm_start.weights_digest(fresh) != spec["weights_sha256"]
    start = warm_start.load(fresh, config, SHAPE, _hparams(config), serving)
    assert start == {"warm": True, "base_model": serving, "reason": ""}
    assert warm_start.weights_digest(fresh) == spec["weights_sha256"]
    assert warm_start.base_shape_hyperparameters(serving) == {"head_units": 256}
    assert warm_start.base_shape_hyperparameters(None) == {}


def test_the_exported_classifier_is_kept_with_its_test_time_views(tmp_path):
    import numpy as np

    config = _config(augment_in_model=True, test_time_augmentation="crops", tta_shift=3)
    trained = _model(config, seed=1)
    serving = os.path.join(str(tmp_path), "model", "Format-Serving")
    warm_start.save(trained, config, SHAPE, _hparams(config), serving)
    classifier, spec = warm_start.load_classifier(serving)
    # The network the export serves, not the training model that augments in front of it.
    exported = trainer.classifier(trained)
    assert trained.name == trainer.TRAINING_MODEL_NAME and classifier.name == exported.name
    assert not getattr(classifier, "optimizer", None)
    images = np.random.default_rng(0).random((4, *SHAPE), dtype=np.float32)
    np.testing.assert_array_equal(classifier(images), exported(images, training=False))
    assert (spec["test_time_augmentation"], spec["tta_shift"]) == ("crops", 3)


def test_another_network_or_no_base_starts_cold_and_says_why(tmp_path):
    config = _config()
    serving = os.path.join(str(tmp_path), "model", "Format-Serving")
    warm_start.save(_model(config, seed=1), config, SHAPE, _hparams(config), serving)

    wider = dataclasses.replace(config, width=0.125)
    fresh = _model(wider, seed=2)
    before = warm_start.weights_digest(fresh)
    start = warm_start.load(fresh, wider, SHAPE, _hparams(wider), serving)
    assert not start["warm"] and "width 0.0625 != 0.125" in start["reason"]
    assert warm_start.weights_digest(fresh) == before       # untouched

    other_classes = dataclasses.replace(config, label_names=["happy", "sad", "fear"])
    start = warm_start.load(_model(other_classes, 3), other_classes, SHAPE,
                           _hparams(other_classes), serving)
    assert not start["warm"] and "label_names" in start["reason"]

    # The Tuner chose another head width: another network.
    other_head = _hparams(config, head_units=128)
    start = warm_start.load(_model(config, 4, head_units=128), config, SHAPE, other_head, serving)
    assert not start["warm"] and "head_units 256 != 128" in start["reason"]

    assert warm_start.load(fresh, config, SHAPE, _hparams(config), None)["reason"].startswith(
        "no pushed model")
    missing = warm_start.load(fresh, config, SHAPE, _hparams(config),
                              str(tmp_path / "old" / "Format-Serving"))
    assert not missing["warm"] and warm_start.SPEC_FILE in missing["reason"]


def test_a_load_that_fails_anyway_leaves_the_model_as_built(tmp_path):
    config = _config()
    serving = os.path.join(str(tmp_path), "model", "Format-Serving")
    warm_start.save(_model(config, seed=1), config, SHAPE, _hparams(config), serving)
    # Weights of another network under a spec that claims this one.
    other = _model(config, seed=1, head_units=128)
    other.save_weights(os.path.join(str(tmp_path), "model", warm_start.WEIGHTS_DIR,
                                    warm_start.WEIGHTS_FILE))
    fresh = _model(config, seed=2)
    before = warm_start.weights_digest(fresh)
    start = warm_start.load(fresh, config, SHAPE, _hparams(config), serving)
    assert not start["warm"] and start["reason"].startswith("its weights did not load")
    assert warm_start.weights_digest(fresh) == before
