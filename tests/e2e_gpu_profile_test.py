"""The `gpu` profile on a machine where TensorFlow sees no GPU: it stops before anything runs,
naming the install fix and the override; with `--allow-cpu` it trains (here on tiny data) and
the training summary, the report and the model card say what it trained on."""
import os
import subprocess
import sys

import pytest

from components import contract
from components.models import devices, training_summary
from pipeline import cli, configs, demo_data, local_outputs, run_summary

pytestmark = pytest.mark.e2e

# The profile's recipe, shrunk to seconds: one epoch of two small steps, 1/16 of the width, and
# Beam in process (its worker processes cost more than the tiny data).
TINY = ["--architectures", "vgg16", "--epochs", "1", "--max-steps-per-epoch", "2",
        "--training-setting", "width=0.0625", "--training-setting", "batch_size=8",
        "--min-accuracy", "0", "--beam-arg=--direct_running_mode=in_memory",
        "--beam-arg=--direct_num_workers=1"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    if devices.describe()["gpus"]:
        pytest.skip("TensorFlow sees a GPU here: the gpu profile does not stop")
    root = str(tmp_path_factory.mktemp("gpu_profile") / "data")
    demo_data.write_demo_dataset(root, {"train": 10, "eval": 3})
    return root


def _run(data, out, *extra):
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "run", "--data-root", data, "--output-dir", out,
         "--profile", "gpu", *extra], capture_output=True, text=True, timeout=900,
        cwd=configs.PROJECT_ROOT)


def test_the_gpu_profile_stops_before_the_run_without_a_gpu(data, tmp_path):
    out = str(tmp_path / "out")
    done = _run(data, out)
    assert done.returncode == cli.EXIT_BAD_INPUT, done.stdout + done.stderr
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("ERROR (NoGpuError): Training resnet50, vgg16 needs a GPU")
    assert "make bootstrap GPU=1" in error and devices.ALLOW_CPU_OPTION in error
    # Nothing ran: no component wrote ML Metadata.
    assert not os.path.exists(local_outputs.OutputLayout(out).metadata_path)


def test_allow_cpu_trains_the_gpu_profile_on_the_cpu_and_records_it(data, tmp_path):
    out = str(tmp_path / "out")
    done = _run(data, out, devices.ALLOW_CPU_OPTION, *TINY)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Trainer vgg16: training on CPU (" in done.stdout

    outputs = run_summary.latest_run(
        run_summary.sqlite_store(local_outputs.OutputLayout(out).metadata_path),
        configs.PIPELINE_NAME)
    summary = training_summary.read_training_summary(outputs["Trainer_vgg16"].uri("model_run"))
    assert summary["settings"]["require_gpu"] is False
    assert summary["settings"]["mixed_precision"] is True  # the rest is the gpu profile's
    assert summary["devices"]["gpus"] == []
    assert summary["devices"]["trained_on"].startswith("CPU (")
    serving = os.path.join(local_outputs.OutputLayout(out).serving_dir, contract.MODEL_NAME)
    assert len(os.listdir(serving)) == 1, done.stdout  # pushed

    report_dir = outputs["RunReport"].uri("report")
    with open(os.path.join(report_dir, "report.html")) as f:
        assert summary["devices"]["trained_on"] in f.read()
    with open(os.path.join(report_dir, "model_card.md")) as f:
        assert "trained on" in f.read()
