"""Training settings: one set of defaults, checked before a pipeline is built."""
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
