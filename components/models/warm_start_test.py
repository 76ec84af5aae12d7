"""Warm start: the saved weights load into the same network, and only into it."""
import dataclasses
import os

from components.models import trainer, warm_start
from components.models.training_config import TrainConfig

SHAPE = (16, 16, 1)


def _config(**overrides):
    return TrainConfig(architecture="vgg16", label_names=["happy", "sad"], width=0.0625,
                       **overrides)


def _model(config, seed):
    import keras
    keras.utils.set_random_seed(seed)
    return trainer.build_model(config, trainer.default_hyperparameters(config), SHAPE)


def test_weights_saved_beside_the_serving_model_load_into_the_same_network(tmp_path):
    config = _config()
    trained = _model(config, seed=1)
    serving = os.path.join(str(tmp_path), "model", "Format-Serving")
    spec = warm_start.save(trained, config, SHAPE, serving)
    assert sorted(os.listdir(tmp_path / "model" / warm_start.WEIGHTS_DIR)) == \
        sorted([warm_start.WEIGHTS_FILE, warm_start.SPEC_FILE])
    assert spec["weights_sha256"] == warm_start.weights_digest(trained)

    fresh = _model(config, seed=2)
    assert warm_start.weights_digest(fresh) != spec["weights_sha256"]
    start = warm_start.load(fresh, config, SHAPE, serving)
    assert start == {"warm": True, "base_model": serving, "reason": ""}
    assert warm_start.weights_digest(fresh) == spec["weights_sha256"]


def test_another_network_or_no_base_starts_cold_and_says_why(tmp_path):
    config = _config()
    serving = os.path.join(str(tmp_path), "model", "Format-Serving")
    warm_start.save(_model(config, seed=1), config, SHAPE, serving)

    wider = dataclasses.replace(config, width=0.125)
    fresh = _model(wider, seed=2)
    before = warm_start.weights_digest(fresh)
    start = warm_start.load(fresh, wider, SHAPE, serving)
    assert not start["warm"] and "width 0.0625 != 0.125" in start["reason"]
    assert warm_start.weights_digest(fresh) == before       # untouched

    other_classes = dataclasses.replace(config, label_names=["happy", "sad", "fear"])
    start = warm_start.load(_model(other_classes, 3), other_classes, SHAPE, serving)
    assert not start["warm"] and "label_names" in start["reason"]

    assert warm_start.load(fresh, config, SHAPE, None)["reason"].startswith("no pushed model")
    missing = warm_start.load(fresh, config, SHAPE, str(tmp_path / "old" / "Format-Serving"))
    assert not missing["warm"] and warm_start.SPEC_FILE in missing["reason"]
