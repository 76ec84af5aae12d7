"""From a profile and a user's options to create_pipeline's arguments, and their checks."""
import os

import pytest

from components import contract
from components.models import training_config
from pipeline import configs


def args_for(**options):
    return configs.pipeline_arguments(configs.RunOptions(data_root="/data", **options))


def test_training_merges_defaults_profile_architecture_then_user():
    args = args_for(profile="cpu", training={"epochs": 9}, model_variants={"vgg16": "stock"})
    vgg16, resnet50 = args["training"]["vgg16"], args["training"]["resnet50"]
    defaults = training_config.default_settings()
    assert set(vgg16) == set(defaults)                       # every setting, explicitly
    assert vgg16["seed"] == defaults["seed"]                  # TrainConfig's default
    assert vgg16["batch_size"] == 64                          # the profile's
    assert vgg16["max_steps_per_epoch"] == 150 and resnet50["max_steps_per_epoch"] == 120
    assert vgg16["epochs"] == resnet50["epochs"] == 9         # the user's, for every architecture
    assert vgg16["variant"] == "stock" and resnet50["variant"] == "fer"


def test_profile_values_unless_the_user_sets_them():
    cpu = configs.get_profile("cpu")
    args = args_for(profile="cpu")
    assert args["enable_tuning"] is cpu.tuning is False
    assert args["min_accuracy"] == cpu.min_accuracy
    assert args["image_size"] == cpu.image_size
    args = args_for(profile="cpu", enable_tuning=True, min_accuracy=0.0, image_size=64)
    assert args["enable_tuning"] is True and args["min_accuracy"] == 0.0
    assert args["image_size"] == 64


def test_architectures_select_what_is_trained():
    assert list(args_for(architectures=["resnet50"])["training"]) == ["resnet50"]
    assert args_for(architectures=[])["training"] == {}
    with pytest.raises(configs.PipelineArgumentError, match="not trained"):
        args_for(architectures=["resnet50"], weights={"vgg16": "/w.h5"})
    with pytest.raises(configs.PipelineArgumentError, match="unknown architectures"):
        args_for(architectures=["vgg19"])


def test_all_classes_are_listed_from_the_data_root(tmp_path):
    for split in ("Training", "PublicTest"):
        for cls in ("sad", "happy", "disgust"):
            os.makedirs(tmp_path / split / cls)
    args = configs.pipeline_arguments(configs.RunOptions(data_root=str(tmp_path), classes=None))
    assert args["classes"] == ["disgust", "happy", "sad"]
    # The data half alone needs no names: ExampleGen lists the folders itself.
    args = configs.pipeline_arguments(configs.RunOptions(data_root=str(tmp_path), classes=None,
                                                         architectures=[]))
    assert args["classes"] is None


def test_all_classes_on_an_unreadable_root_says_to_name_them():
    from components.image_example_gen.layout import LayoutError
    with pytest.raises(LayoutError, match="Name the classes instead"):
        args_for(classes=None)


def test_unknown_profile():
    with pytest.raises(configs.PipelineArgumentError, match="unknown profile"):
        args_for(profile="tpu")


def test_every_profile_holds_known_settings_only():
    for profile in configs.PROFILES.values():
        for arch in contract.ARCHITECTURES:
            training_config.check_settings(profile.training_config(arch))
        assert set(profile.architecture_training) <= set(contract.ARCHITECTURES)
