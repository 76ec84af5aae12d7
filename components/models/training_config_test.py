"""Training settings: one set of defaults, checked before a pipeline is built."""
import math

import pytest

from components.models import training_config


def test_defaults_come_from_the_dataclass_alone():
    defaults = training_config.default_settings()
    assert set(defaults) == set(training_config.SETTINGS)
    assert "architecture" not in defaults and "label_names" not in defaults
    config = training_config.TrainConfig(architecture="vgg16", label_names=["a", "b"])
    assert all(getattr(config, k) == v for k, v in defaults.items())


@pytest.mark.parametrize("settings, message", [
    ({"epoch": 3}, "unknown training settings"),
    ({"epochs": -1}, "epochs=-1 must be >= 0"),
    ({"batch_size": 0}, "batch_size=0 must be >= 1"),
    ({"batch_size": 32.0}, "batch_size=32.0 must be >= 1"),
    ({"variant": "tiny"}, "variant='tiny'"),
    ({"weights": "/w.h5"}, "only the stock variant"),
    ({"label_smoothing": 0.7}, r"label_smoothing=0.7 must be a number in \[0.0, 0.5\]"),
    ({"test_time_augmentation": "ten"}, "test_time_augmentation='ten' must be one of"),
    ({"best_epoch_metric": "accuracy"}, "best_epoch_metric='accuracy'"),
    ({"width": 0.5, "variant": "stock"}, "width fits only the fer variant"),
    ({"hyperparameters": {"optimiser": "sgd"}}, "unknown hyperparameter 'optimiser'"),
    ({"hyperparameters": {"optimizer": "rmsprop"}}, "optimizer='rmsprop'"),
])
def test_bad_settings_are_named(settings, message):
    with pytest.raises(ValueError, match=message):
        training_config.check_settings(settings)


def test_good_settings_pass():
    training_config.check_settings({**training_config.default_settings(), "epochs": 0,
                                    "variant": "stock", "weights": "/w.h5"})


def test_custom_config_needs_architecture_and_classes():
    with pytest.raises(ValueError, match="lack"):
        training_config.TrainConfig.from_custom_config({"epochs": 1})
    with pytest.raises(ValueError, match="at least one class"):
        training_config.TrainConfig.from_custom_config({"architecture": "vgg16",
                                                        "label_names": []})


def test_hyperparameter_overrides_keep_the_architecture_defaults():
    config = training_config.TrainConfig(architecture="vgg16", label_names=["a"],
                                         hyperparameters={"learning_rate": 0.01})
    assert training_config.hyperparameters(config) == {
        **training_config.DEFAULT_HYPERPARAMETERS["vgg16"], "learning_rate": 0.01}


def test_learning_rate_warms_up_then_follows_a_cosine_to_the_floor():
    lr = [training_config.lr_at_epoch(e, 10, 0.1, warmup_epochs=2, floor=0.0) for e in range(10)]
    assert lr[:2] == pytest.approx([0.05, 0.1])
    assert lr[2] == pytest.approx(0.1)                       # the cosine starts at the peak
    assert all(a > b for a, b in zip(lr[2:-1], lr[3:], strict=True))  # then only falls
    assert lr[-1] == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 7 / 8)))
    assert training_config.lr_at_epoch(12, 10, 0.1, 2, 0.0) == pytest.approx(0.0)
    # No warm-up, floor 0.05: the schedule the Trainer always had.
    assert training_config.lr_at_epoch(0, 4, 1e-3) == pytest.approx(1e-3)
    assert training_config.lr_at_epoch(4, 4, 1e-3) == pytest.approx(5e-5)


@pytest.mark.parametrize("text, seconds", [("2h", 7200), ("90m", 5400), ("1h30m", 5400),
                                           ("45s", 45), ("1.5h", 5400), ("3600", 3600),
                                           ("0", 0), (" 2H ", 7200)])
def test_durations(text, seconds):
    assert training_config.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "2x", "1h30", "-5", "2h-3m", "31d"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        training_config.parse_duration(text)


def test_format_duration():
    assert [training_config.format_duration(s) for s in (4.6, 185, 3720)] == [
        "5s", "3m05s", "1h02m"]
