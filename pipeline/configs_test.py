"""From a profile and a user's options to create_pipeline's arguments, and their checks."""
import dataclasses
import os

import pytest

from components import contract
from components.models import training_config
from pipeline import configs


def args_for(**options):
    return configs.pipeline_arguments(configs.RunOptions(data_root="/data", **options))


def test_training_merges_defaults_profile_architecture_then_user():
    args = args_for(profile="cpu", training={"max_steps_per_epoch": 9})
    vgg16, resnet50 = args["training"]["vgg16"], args["training"]["resnet50"]
    defaults = training_config.default_settings()
    assert set(vgg16) == set(defaults)                       # every setting, explicitly
    assert vgg16["seed"] == defaults["seed"]                  # TrainConfig's default
    assert vgg16["width"] == resnet50["width"] == 0.25        # the profile's
    assert vgg16["warm_start_epochs"] == 2 and resnet50["warm_start_epochs"] == 1  # per arch
    assert vgg16["max_steps_per_epoch"] == resnet50["max_steps_per_epoch"] == 9  # the user's
    args = args_for(profile="cpu", training={"epochs": 9, "width": 1.0},
                    model_variants={"vgg16": "stock"})
    vgg16, resnet50 = args["training"]["vgg16"], args["training"]["resnet50"]
    assert vgg16["epochs"] == resnet50["epochs"] == 9         # the user's over the architecture's
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


def test_a_run_budget_is_split_after_the_reserve_by_the_architectures_shares(monkeypatch):
    cpu = configs.get_profile("cpu")
    assert cpu.time_budget_s == 7200
    trainers_s = 7200 - cpu.time_reserve_s
    args = args_for(profile="cpu")
    assert [args["training"][a]["time_budget_s"] for a in ("vgg16", "resnet50")] == [
        trainers_s / 2, trainers_s / 2]
    budget = configs.time_budget(configs.RunOptions(data_root="/d", profile="cpu"))
    assert budget.describe() == ("Time budget 2h00m: 15m00s for the data and evaluation, "
                                 "Trainer vgg16 52m30s, Trainer resnet50 52m30s")
    # Shares are weights: a profile's per architecture ...
    weighted = dataclasses.replace(cpu, architecture_training={
        **cpu.architecture_training,
        "resnet50": {**cpu.architecture_training["resnet50"], "time_share": 1.4}})
    monkeypatch.setitem(configs.PROFILES, "cpu", weighted)
    args = args_for(profile="cpu")
    assert [args["training"][a]["time_budget_s"] for a in ("vgg16", "resnet50")] == [
        round(trainers_s / 2.4, 1), round(trainers_s * 1.4 / 2.4, 1)]
    # ... the user's replace them; one architecture alone gets all.
    args = args_for(profile="cpu", time_budget_s=3600, training={"time_share": 2})
    assert args["training"]["vgg16"]["time_budget_s"] == (3600 - cpu.time_reserve_s) / 2
    args = args_for(profile="cpu", time_budget_s=3600, architectures=["resnet50"])
    assert args["training"]["resnet50"]["time_budget_s"] == 3600 - cpu.time_reserve_s


def test_no_budget_trains_by_epochs_and_a_trainer_budget_of_the_users_wins():
    assert args_for(profile="demo")["training"]["vgg16"]["time_budget_s"] == 0
    assert args_for(profile="cpu", time_budget_s=0)["training"]["vgg16"]["time_budget_s"] == 0
    args = args_for(profile="cpu", training={"time_budget_s": 60.0})
    assert args["training"]["vgg16"]["time_budget_s"] == 60.0
    assert configs.time_budget(configs.RunOptions(data_root="/d", profile="demo")) is None


def test_a_budget_too_small_for_the_reserve_is_refused():
    with pytest.raises(configs.PipelineArgumentError, match="too small.*at least 30m00s"):
        args_for(profile="cpu", time_budget_s=600)


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


def measured_gpu_settings(arch_result):
    """The TrainConfig settings that bench/gpu_recipe's probe trained with (its results.json)."""
    recipe, hparams = arch_result["recipe"], arch_result["hyperparameters"]
    assert recipe["lr_schedule"] == "cosine" and recipe["crop_fill"] == "reflect"
    assert not (recipe["mixup"] or recipe["cutmix"])
    assert arch_result["variant"] == "fer" and arch_result.get("width", 1.0) == 1.0
    return {
        "variant": "fer", "width": 1.0, "batch_size": recipe["batch"],
        "epochs": arch_result["epochs_planned"],
        "hyperparameters": {"optimizer": hparams["optimizer"],
                            "learning_rate": hparams["learning_rate"]},
        "dropout_and_head": (hparams["dropout"], hparams["head_units"]),
        "weight_decay": recipe["weight_decay"], "label_smoothing": recipe["label_smoothing"],
        "warmup_epochs": recipe["warmup_epochs"], "lr_floor": recipe["lr_floor"],
        "class_weighting": recipe["class_weights"],
        "augment": recipe["aug"] != "none", "zoom": 0.1 if recipe["aug"] == "zoom" else 0.0,
        # The probe runs its augmentation layers inside the training model, on the device.
        "augment_in_model": recipe["aug"] != "none",
        "crop_pad": recipe["crop_pad"], "erasing": recipe["erasing"],
        # The probe keeps the epoch with the best validation accuracy and never stops early.
        "best_epoch_metric": "val_accuracy",
        "early_stopping_patience": arch_result["epochs_planned"],
    }


@pytest.mark.parametrize("arch", contract.ARCHITECTURES)
def test_gpu_profile_trains_the_measured_recipe(arch):
    import json

    results = os.path.join(configs.PROJECT_ROOT, "bench", "gpu_recipe", "results", "run2",
                           "results.json")
    with open(results) as f:
        run = json.load(f)
    measured = measured_gpu_settings(run["archs"][arch])
    assert run["meta"]["args"]["precision"] == "bf16"
    settings = configs.get_profile("gpu").training_config(arch)
    config = training_config.TrainConfig(architecture=arch, label_names=["a"], **settings)
    hparams = training_config.hyperparameters(config)
    profile = {key: settings[key] for key in measured if key in settings}
    profile["hyperparameters"] = {k: hparams[k] for k in ("optimizer", "learning_rate")}
    profile["dropout_and_head"] = (hparams["dropout"], hparams["head_units"])
    assert profile == measured
    assert settings["mixed_precision"] is True
    # The test-time views with the best validation accuracy (chosen on validation, not test).
    validation = run["archs"][arch]["val"]
    views = {"none": validation["accuracy"], "flip": validation["tta_flip_accuracy"],
             **{f"crops{s}": validation[f"tta_tencrop{s}_accuracy"] for s in (2, 4)}}
    best = max(views, key=views.get)
    assert best == "crops2"
    assert (settings["test_time_augmentation"], settings["tta_shift"]) == ("crops", 2)
    assert configs.get_profile("gpu").tuning is False
