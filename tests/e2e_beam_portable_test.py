"""End to end: the whole pipeline with its Beam components (ImageFolderExampleGen, StatisticsGen,
Transform, both Evaluators) on Beam's PortableRunner, against Beam's local job service on
loopback: the pipeline is serialized and submitted through the Job API and run by an SDK harness
over the Fn API, as Flink's and Spark's runners do (docs/beam.md).

`make test-beam` (marker `beam`; a few minutes on 2 cores).
"""
import json
import os
import re
import subprocess
import sys

import pytest

from components import contract
from components.image_example_gen import executor as example_gen_executor
from components.image_example_gen import ingest_report
from pipeline import beam_runners, configs, demo_data, local_outputs, run_summary
from tests import beam_job_service
from tests.transformed import read_transformed

pytestmark = [pytest.mark.e2e, pytest.mark.beam]

# ImageFolderExampleGen, StatisticsGen, Transform and one Evaluator per candidate.
BEAM_COMPONENTS = ("ImageFolderExampleGen", "StatisticsGen", "Transform",
                   *(f"Evaluator_{name}" for name in contract.CANDIDATES))
# Training is not what this test is about: short, untuned.
TRAINING = {"epochs": 2, "batch_size": 16}
RUN_TIMEOUT_S = 1500


@pytest.fixture(scope="module")
def portable_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("beam_portable")
    data = str(root / "data")
    demo_data.write_demo_dataset(data, {"train": 20, "eval": 6})
    out = str(root / "out")
    service_dir = str(root / "job_service")
    settings = [arg for name, value in TRAINING.items()
                for arg in ("--training-setting", f"{name}={json.dumps(value)}")]
    with beam_job_service.local_job_service(service_dir) as endpoint:
        done = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "run", "--data-root", data,
             "--output-dir", out, "--profile", "demo", "--min-accuracy", "0", "--no-tuning",
             *settings, "--beam-runner", beam_runners.PORTABLE,
             f"--beam-arg=--{beam_runners.JOB_ENDPOINT}={endpoint}",
             f"--beam-arg=--{beam_runners.ENVIRONMENT_TYPE}={beam_runners.LOOPBACK}"],
            capture_output=True, text=True, timeout=RUN_TIMEOUT_S, cwd=configs.PROJECT_ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    outputs = run_summary.latest_run(
        run_summary.sqlite_store(local_outputs.OutputLayout(out).metadata_path),
        configs.PIPELINE_NAME)
    return {"outputs": outputs, "jobs": beam_job_service.completed_jobs(service_dir),
            "console": done.stdout, "console_err": done.stderr}


def test_every_beam_component_ran_as_a_job_on_the_job_service(portable_run):
    outputs = portable_run["outputs"]
    assert all(node.state == "COMPLETE" for node in outputs.nodes.values()), {
        k: n.state for k, n in outputs.nodes.items()}
    for node in BEAM_COMPONENTS:
        assert node in outputs.nodes, node
    # One Beam pipeline per Beam component, each submitted to the service and DONE there.
    assert portable_run["jobs"] == len(BEAM_COMPONENTS)
    # The portable runner's own log lines (job states, the Fn API servers, LOOPBACK's worker)
    # go to the log file, as the DirectRunner's do.
    assert portable_run["console_err"] == ""
    noise = re.compile(r"warn|^[IWEF]\d{4} |^(INFO|WARNING|ERROR):|absl|portable_runner|"
                       r"sdk_worker|job_endpoint", re.I | re.M)
    assert not noise.search(portable_run["console"]), noise.search(portable_run["console"])


def test_the_portable_run_produced_what_a_direct_run_does(portable_run):
    outputs = portable_run["outputs"]
    counts = ingest_report.read_summary(outputs["ImageFolderExampleGen"].uri(
        example_gen_executor.INGEST_REPORT_KEY))["examples_per_split"]
    assert counts[contract.EVAL_SPLIT] == 6 * len(contract.DEFAULT_CLASSES)
    batches = read_transformed(outputs["Transform"], contract.TRAIN_SPLIT)
    assert sum(b[contract.transformed_name(contract.LABEL_KEY)].shape[0] for b in batches) == \
        counts[contract.TRAIN_SPLIT]
    # The Evaluators (TFMA) wrote their metrics; the selection read them and pushed a winner.
    for candidate in contract.CANDIDATES:
        evaluation = outputs[f"Evaluator_{candidate}"].uri("evaluation")
        assert any(name.startswith("metrics") for name in os.listdir(evaluation)), candidate
    assert "winner:" in portable_run["console"]
    assert outputs["Pusher"].state == "COMPLETE"
