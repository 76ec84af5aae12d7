"""End to end: scheduled retraining on tiny generated spans, through `fer-pipeline retrain`.

One output folder, one sequence, as cron would drive it:
  span 1         trains, pushes
  span 1 again   every component up to the Trainer reused from the cache, nothing new pushed
  span 2         same distribution, a window of two spans (Transform and the Trainer read
                 spans 2 and 1): killed during training, restarted: finished components
                 reused, the Trainer resumes its epochs, warm-started from the pushed model; it
                 is pushed only if not worse than the serving model
  span 2, worse  an untrained cold candidate: nothing pushed, exit 0
  span 3         label distribution shifted: stops at the drift check, before Transform
"""
import csv
import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from components import contract, resolvers
from components.image_example_gen import executor as example_gen_executor
from components.image_example_gen import ingest_report
from components.models import training_summary, warm_start
from pipeline import cli, configs, demo_data, local_outputs, run_summary

# About 10 minutes on 2 cores: `make test-retraining` (CI runs it after `make test`).
pytestmark = [pytest.mark.e2e, pytest.mark.retraining]

ARCH = "vgg16"
EPOCHS, WARM_EPOCHS = 12, 5
IMAGES = {"train": 20, "eval": 6}
SETTINGS = {"batch_size": 16, "epochs": EPOCHS, "warm_start_epochs": WARM_EPOCHS,
            "augment": False,
            # No early stopping: validation sits at chance for the first epochs while batch-norm
            # statistics catch up, then climbs.
            "early_stopping_patience": 100}
# The Trainer's pieces that a cached re-run must reuse.
UP_TO_TRAINER = ("ImageFolderExampleGen", "ImportSchemaGen", "StatisticsGen",
                 "ExampleValidator", "SchemaValidationGate", "DistributionValidator",
                 "DriftGate", "Transform", f"Trainer_{ARCH}")


def _command(data, out, *extra):
    settings = [arg for name, value in SETTINGS.items()
                for arg in ("--training-setting", f"{name}={json.dumps(value)}")]
    return [sys.executable, "-m", "pipeline.cli", "retrain", "--data-root", data,
            "--output-dir", out, "--profile", "demo", "--architectures", ARCH, "--no-tuning",
            "--min-accuracy", "0.35", *settings, *extra]


def _retrain(data, out, *extra):
    done = subprocess.run(_command(data, out, *extra), capture_output=True, text=True,
                          timeout=1200, cwd=configs.PROJECT_ROOT)
    return done, _latest(out)


def _latest(out):
    return run_summary.latest_run(
        run_summary.sqlite_store(local_outputs.OutputLayout(out).metadata_path),
        configs.PIPELINE_NAME)


def _serving_versions(out):
    root = os.path.join(local_outputs.OutputLayout(out).serving_dir, contract.MODEL_NAME)
    return sorted(os.listdir(root)) if os.path.isdir(root) else []


def _summary(outputs):
    return training_summary.read_training_summary(outputs[f"Trainer_{ARCH}"].uri("model_run"))


def _write_span(data, span, seed):
    demo_data.write_demo_dataset(os.path.join(data, f"span-{span}"), IMAGES, seed=seed)


@pytest.fixture(scope="module")
def sequence(tmp_path_factory):
    """Runs the whole sequence once; the tests below read what each step left."""
    root = tmp_path_factory.mktemp("retrain")
    data, out = str(root / "data"), str(root / "out")
    steps = {}
    _write_span(data, 1, seed=configs.DEMO_SEED)
    steps["span1"] = _retrain(data, out)
    steps["span1_versions"] = _serving_versions(out)
    steps["again"] = _retrain(data, out)
    steps["again_versions"] = _serving_versions(out)

    # Span 2: kill the run once its Trainer has finished two epochs, then run it again.
    _write_span(data, 2, seed=7)
    backup_logs = os.path.join(local_outputs.OutputLayout(out).pipeline_root,
                               f"Trainer_{ARCH}", "training_backup", "*",
                               training_summary.TRAINING_LOG)
    window = ("--window-spans", "2")
    proc = subprocess.Popen(_command(data, out, *window), cwd=configs.PROJECT_ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 900
    while time.time() < deadline and proc.poll() is None:
        logs = glob.glob(backup_logs)
        if logs and len(open(logs[0]).read().splitlines()) >= 3:  # header + 2 epochs
            break
        time.sleep(0.2)
    steps["killed_while_running"] = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    logs = glob.glob(backup_logs)
    steps["epochs_before_kill"] = (len(open(logs[0]).read().splitlines()) - 1) if logs else 0
    steps["killed_versions"] = _serving_versions(out)
    steps["killed_run"] = _latest(out)
    steps["span2"] = _retrain(data, out, *window)

    # A deliberately worse candidate on the same data: untrained, from scratch, and no value
    # threshold: only the comparison with the serving model can refuse it.
    steps["worse"] = _retrain(data, out, "--cold-start", "--epochs", "0", "--min-accuracy", "0")
    steps["worse_versions"] = _serving_versions(out)

    # Span 3: three classes nearly gone from training.
    _write_span(data, 3, seed=8)
    for name in ("angry", "fear", "sad"):
        for path in sorted(glob.glob(os.path.join(data, "span-3", "Training", name, "*")))[2:]:
            os.remove(path)
    steps["drift"] = _retrain(data, out)
    steps["out"] = out
    return steps


def test_first_span_trains_and_pushes(sequence):
    done, outputs = sequence["span1"]
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    (line,) = done.stdout.splitlines()                  # one line for cron
    assert line.startswith(f"span 1 | winner {ARCH} ") and "no model serving yet" in line
    assert f"pushed version {sequence['span1_versions'][0]}" in line
    assert _summary(outputs)["start"]["warm"] is False


def test_unchanged_data_reuses_every_component_and_pushes_nothing_new(sequence):
    done, outputs = sequence["again"]
    assert done.returncode == 0, done.stdout + done.stderr
    for node in UP_TO_TRAINER:
        assert outputs[node].state == run_summary.CACHED, node
    # The Evaluator compares with the serving model (now the cached candidate itself): a tie,
    # blessed, but the Pusher does not publish the serving model a second time.
    assert sequence["again_versions"] == sequence["span1_versions"]
    assert f"not pushed: already serving as version {sequence['span1_versions'][0]}" in \
        done.stdout
    # How much faster the re-run is: measured in BENCHMARKS.md#retraining, not asserted here.


def test_killed_run_resumes_warm_started_and_pushes_only_if_not_worse(sequence):
    assert sequence["killed_while_running"], "training ended before it could be killed"
    # Nothing half-published while the run was killed.
    assert sequence["killed_versions"] == sequence["span1_versions"]
    serving_root = os.path.join(local_outputs.OutputLayout(sequence["out"]).serving_dir,
                                contract.MODEL_NAME)
    assert not [d for d in os.listdir(serving_root) if not d.isdigit()]

    done, outputs = sequence["span2"]
    assert done.returncode == 0, done.stdout + done.stderr
    killed = sequence["killed_run"]
    for node in ("ImageFolderExampleGen", "StatisticsGen", "Transform"):
        assert killed[node].state == "COMPLETE", node
        assert outputs[node].state == run_summary.CACHED, node   # reused by the restart
    # Resumed: the log holds each epoch once, 0..WARM_EPOCHS-1, across the kill.
    with open(os.path.join(outputs[f"Trainer_{ARCH}"].uri("model_run"),
                           training_summary.TRAINING_LOG)) as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f)]
    assert epochs == list(range(WARM_EPOCHS)), epochs
    summary = _summary(outputs)
    assert sequence["epochs_before_kill"] >= 2
    # What remained after the kill, and no more.
    assert summary["epochs_run"] == WARM_EPOCHS - sequence["epochs_before_kill"]
    # The window: Transform read span 1's examples beside span 2's, the Trainer both.
    assert len(outputs["Transform"].artifacts["transformed_examples"]) == 2
    assert done.stdout.startswith("span 2 (trained on spans 1, 2) | "), done.stdout
    ingested = [ingest_report.read_summary(run["ImageFolderExampleGen"].uri(
        example_gen_executor.INGEST_REPORT_KEY))["examples_per_split"][contract.TRAIN_SPLIT]
        for run in (sequence["span1"][1], outputs)]
    assert sum(summary["train_examples_per_class"].values()) == sum(ingested)

    # Warm start: the initial weights are those of the model serving since span 1.
    pushed = sequence["span1"][1]["Pusher"].artifacts["pushed_model"][0]
    model_id = pushed.custom_properties[resolvers.PUSHED_MODEL_ID_PROPERTY].int_value
    serving_model = sequence["span1"][1]["ModelSelector"].artifacts["model"][0]
    assert serving_model.id == model_id
    serving_spec = warm_start.read_spec(os.path.join(serving_model.uri, "Format-Serving"))
    assert summary["start"]["warm"] is True
    assert summary["start"]["initial_weights_sha256"] == serving_spec["weights_sha256"]

    # The Evaluator's baseline is the serving model; pushed exactly when blessed.
    evaluator = outputs[f"Evaluator_{ARCH}"]
    assert evaluator.property("blessing", "baseline_model_id") == model_id
    blessed = evaluator.property("blessing", "blessed")
    pushed_now = outputs["Pusher"].property("pushed_model", "pushed")
    assert pushed_now == blessed
    assert ("pushed version" in done.stdout) == bool(blessed), done.stdout


def test_worse_candidate_pushes_nothing(sequence):
    done, outputs = sequence["worse"]
    assert done.returncode == 0, done.stdout + done.stderr   # rightly not pushed: success
    assert _summary(outputs)["start"]["warm"] is False
    assert outputs[f"Evaluator_{ARCH}"].property("blessing", "blessed") == 0
    assert outputs["Pusher"].property("pushed_model", "pushed") == 0
    assert sequence["worse_versions"] == _serving_versions(sequence["out"]) and \
        "not pushed: no candidate passed" in done.stdout


def test_shifted_labels_stop_at_the_drift_check_before_transform(sequence):
    done, outputs = sequence["drift"]
    assert done.returncode == cli.EXIT_BAD_INPUT
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("ERROR (DataDriftError): the new data drifted")
    assert "train_train: feature 'label_name': L_INFTY" in line and "> threshold 0.1" in line
    assert outputs["DriftGate"].state == run_summary.FAILED
    assert "Transform" not in outputs.nodes                 # never started
    anomalies = outputs["DistributionValidator"].uri("anomalies")
    assert anomalies in line
