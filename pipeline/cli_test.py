"""CLI parsing and the demo-data command (the `run` command is covered end to end in tests/)."""
import json
import os
import subprocess
import sys

import pytest

from components import contract
from components.models import training_config
from pipeline import cli, cli_options, configs, local_outputs


def test_help_lists_the_commands(capfd):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    out = capfd.readouterr().out
    assert "run" in out and "demo-data" in out


def test_run_help_explains_every_option(capfd):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", "--help"])
    assert exit_.value.code == 0
    out = capfd.readouterr().out
    for option in ("--data-root", "--profile", "--classes", "--split-ratios", "--on-bad-image",
                   "--schema-dir", "--output-dir"):
        assert option in out


def test_run_defaults():
    args = cli.build_parser().parse_args(["run"])
    assert args.data_root is None and args.profile == configs.DEFAULT_PROFILE
    assert args.classes == list(contract.DEFAULT_CLASSES)
    assert args.on_bad_image == contract.ON_BAD_IMAGE_FAIL
    assert args.split_folders == contract.DEFAULT_SPLIT_FOLDERS


def test_run_option_parsing():
    args = cli.build_parser().parse_args([
        "run", "--classes", "all", "--exclude-classes", "sad, fear",
        "--split-ratios", "train=0.8,eval=0.2", "--split-folders", "fit=train,hold=eval"])
    assert args.classes is None
    assert args.exclude_classes == ["sad", "fear"]
    assert args.split_ratios == {"train": 0.8, "eval": 0.2}
    assert args.split_folders == {"fit": "train", "hold": "eval"}


def test_time_budget_option(capfd):
    args = cli.build_parser().parse_args(["run", "--time-budget", "1h30m"])
    assert cli_options.run_options(args)["time_budget_s"] == 5400
    assert cli.build_parser().parse_args(["run"]).time_budget_s is None   # the profile's
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["run", "--time-budget", "2 hours"])
    assert "not a duration: '2hours'" in capfd.readouterr().err


def test_bad_mapping_is_a_usage_error(capfd):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", "--split-ratios", "train"])
    assert exit_.value.code == 2
    assert "NAME=VALUE" in capfd.readouterr().err


def test_layout_error_is_reported_without_traceback(tmp_path, capfd):
    rc = cli.main(["run", "--data-root", str(tmp_path / "missing"), "--output-dir",
                   str(tmp_path / "out")])
    assert rc == 2
    assert "ERROR (LayoutError): data root" in capfd.readouterr().err


def test_demo_data_command(tmp_path, capfd):
    assert cli.main(["demo-data", str(tmp_path), "--train-per-class", "2",
                     "--eval-per-class", "1"]) == 0
    assert "'train': 12" in capfd.readouterr().out
    assert len(list((tmp_path / "Training").rglob("*.jpg"))) == 12


def test_tuning_flags_default_to_the_profile(capfd):
    parse = cli.build_parser().parse_args
    assert parse(["run"]).tuning is None
    assert parse(["run", "--tuning"]).tuning is True
    assert parse(["run", "--no-tuning"]).tuning is False
    with pytest.raises(SystemExit) as exit_:
        parse(["run", "--tuning", "--no-tuning"])
    assert exit_.value.code == 2  # argparse usage error: the two are mutually exclusive
    assert "not allowed with argument" in capfd.readouterr().err


def test_profile_training_config_applies_architecture_overrides():
    cpu = configs.get_profile("cpu")
    assert not cpu.tuning and configs.get_profile("demo").tuning
    by_arch = cpu.training_by_architecture()
    assert set(by_arch) == set(contract.ARCHITECTURES)
    assert by_arch["vgg16"]["warm_start_epochs"] != by_arch["resnet50"]["warm_start_epochs"]
    # Shared settings stay.
    assert by_arch["resnet50"]["batch_size"] == cpu.training_config()["batch_size"]
    assert "warm_start_epochs" not in cpu.training  # only per architecture
    assert (cpu.training_config()["warm_start_epochs"]
            == training_config.default_settings()["warm_start_epochs"])


def test_training_overrides_only_what_is_given():
    parse = cli.build_parser().parse_args
    assert cli_options.training_overrides(parse(["run"])) == {}
    given = parse(["run", "--epochs", "20", "--max-steps-per-epoch", "0"])
    assert cli_options.training_overrides(given) == {"epochs": 20, "max_steps_per_epoch": 0}
    given = parse(["run", "--training-setting", "width=0.5", "--training-setting",
                   'hyperparameters={"learning_rate": 0.01}', "--training-setting",
                   "test_time_augmentation=flip", "--epochs", "3"])
    assert cli_options.training_overrides(given) == {
        "width": 0.5, "hyperparameters": {"learning_rate": 0.01},
        "test_time_augmentation": "flip", "epochs": 3}


def test_a_bad_training_setting_is_named_before_the_run(tmp_path, capfd):
    rc = cli.main(["run", "--output-dir", str(tmp_path / "out"), "--data-root", str(tmp_path),
                   "--training-setting", "widht=0.5"])
    assert rc == 2
    assert "unknown training settings ['widht']" in capfd.readouterr().err


def test_bad_pipeline_arguments_are_reported_without_traceback(tmp_path, capfd):
    rc = cli.main(["run", "--output-dir", str(tmp_path / "out"), "--data-root", str(tmp_path),
                   "--min-accuracy", "1.5"])
    assert rc == 2
    assert "ERROR (PipelineArgumentError)" in capfd.readouterr().err


def test_a_second_retrain_exits_at_once_naming_the_lock(tmp_path):
    import socket

    out = str(tmp_path / "out")
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = local_outputs.OutputLayout(out).lock_path
        os.makedirs(os.path.dirname(lock))
        with open(lock, "w") as f:
            json.dump({"pid": holder.pid, "host": socket.gethostname(), "started": "then"}, f)
        done = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "retrain", "--data-root",
             str(tmp_path / "no-data"), "--output-dir", out], capture_output=True, text=True,
            timeout=120, cwd=configs.PROJECT_ROOT)
        assert done.returncode == cli.EXIT_LOCKED
        assert done.stderr.strip() == (f"ERROR (locked): another run holds the lock {lock} "
                                       f"(pid {holder.pid} on {socket.gethostname()}, "
                                       "since then)")
    finally:
        holder.kill()
        holder.wait()
