"""End to end: the Kubeflow spec of the demo pipeline, compiled as users compile it, replayed task
by task through TFX's KFP v2 entry point (tests/kfp_replay.py), twice: span 1, then span 2 as a
recurring run reads it.

With KFP_REPLAY_IMAGE set (`make test-kfp-replay-image`), everything of the stack runs in that
image with podman: the compiler, every task, and fer-serve on the pushed model; this process only
orchestrates. Without it, the tasks run with this venv's Python and the image's environment
(`make test-kfp-replay`). About 25 minutes on 2 cores.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from components import contract
from components.run_report import report
from pipeline import configs, demo_data, kubeflow_runner
from serving import client as client_lib
from tests import kfp_replay, report_folder
from tests.serve_process import ServeProcess

pytestmark = [pytest.mark.e2e, pytest.mark.kfp_replay]

IMAGE = os.environ.get("KFP_REPLAY_IMAGE") or None
COMPILE_TIMEOUT_S = 600
# DistributionValidator writes nothing without baseline statistics (TFX "rubber stamps").
NO_BASELINE_YET = {("DistributionValidator", "anomalies")}
NOTHING_SELECTED = {("ModelSelector", "model"), ("Pusher", "pushed_model")}


def _compile(spec, data, pipeline_root, serving):
    """As docs/kubeflow.md compiles it: in the image, its schema is the image's; here, this
    checkout's."""
    args = ["--image", IMAGE or "localhost/fer-pipeline:replay", "--profile", "demo",
            "--data-root", data, "--pipeline-root", pipeline_root, "--serving-dir", serving,
            "--output-file", spec]
    if IMAGE:
        subprocess.run(kfp_replay.container_command(
            IMAGE, [os.path.dirname(spec)], ["python", "-m", "pipeline.kubeflow_runner", *args]),
            check=True, timeout=COMPILE_TIMEOUT_S, stdout=subprocess.DEVNULL,
            env=kfp_replay.container_runtime_env())
    else:
        assert kubeflow_runner.main([*args, "--schema-dir", configs.SCHEMA_DIR]) == 0


@pytest.fixture(scope="module")
def replays(tmp_path_factory):
    root = tmp_path_factory.mktemp("kfp")
    data, serving = str(root / "data"), str(root / "serving")
    os.makedirs(serving)
    # `make run`'s demo data: with fewer images the demo candidates stay at chance on `valid` and
    # nothing is blessed or pushed.
    demo_data.write_demo_dataset(os.path.join(data, "span-1"))
    spec = str(root / "fer-pipeline.json")
    _compile(spec, data, str(root / "pipeline_root"), serving)
    runs = {}
    for span, seed in ((1, configs.DEMO_SEED), (2, 7)):
        if span > 1:
            demo_data.write_demo_dataset(os.path.join(data, f"span-{span}"), seed=seed)
        replay = kfp_replay.Replay(spec, str(root / "state"), image=IMAGE,
                                   mounts=[data, serving])
        runs[span] = replay.run(f"span{span}")
    return {"runs": runs, "spec": spec, "serving": serving, "data": data, "root": root}


def _check_every_task_ran(result, spec_file, allowed_unwritten=frozenset()):
    with open(spec_file) as f:
        tasks = json.load(f)["pipelineSpec"]["root"]["dag"]["tasks"]
    assert set(result.tasks) == set(tasks)
    failed = [(t.name, t.log) for t in result.failed()]
    assert result.succeeded, f"failed: {failed}; not run: " + str(
        [t.name for t in result.tasks.values() if t.status == "not run"])
    unwritten = {(t.name, key) for t in result.tasks.values() for key in t.unwritten_outputs()}
    assert unwritten <= allowed_unwritten


def test_the_first_replay_runs_every_task_and_pushes_a_model_fer_serve_answers_from(replays):
    result = replays["runs"][1]
    _check_every_task_ran(result, replays["spec"], NO_BASELINE_YET)
    assert result.output("ImageFolderExampleGen", "examples").metadata["span"] == 1
    # Nothing ran before: no drift baseline, no baseline model.
    assert result.tasks["LatestStatistics"].outputs["statistics"] == []
    assert result.tasks["LatestBlessedModel-model-resolver"].outputs["model"] == []

    pushed = result.output("Pusher", "pushed_model")
    assert pushed.metadata["pushed"] == 1
    version = str(int(pushed.metadata["pushed_version"]))
    base = os.path.join(replays["serving"], contract.MODEL_NAME)
    assert version in os.listdir(base)  # (the second replay may have pushed another since)
    python = kfp_replay.container_command(IMAGE, [base], ["python"], network="host") \
        if IMAGE else (sys.executable,)
    server = ServeProcess(base, "--pin", version, python=python,
                          env=kfp_replay.container_runtime_env())
    try:
        images = [demo_data.encode_jpeg(demo_data.draw_face(label, rng))
                  for label, rng in (("happy", np.random.default_rng(1)),
                                     ("surprise", np.random.default_rng(2)))]
        with client_lib.GrpcClient(f"127.0.0.1:{server.grpc_port}") as client:
            predictions = client.predict(images)
        assert [p.version for p in predictions] == [int(version)] * 2
        assert {p.predicted_class for p in predictions} <= set(contract.DEFAULT_CLASSES)
    finally:
        assert server.stop() == 0

    report_dir = result.output("RunReport", "report").uri
    pngs = report_folder.check_report_folder(os.path.join(report_dir, report.REPORT_FILE))
    assert any(p.startswith("confusion_matrix_") for p in pngs)
    with open(os.path.join(report_dir, report.REPORT_FILE)) as f:
        page = f.read()
    assert version in page


def test_the_readme_recurring_run_takes_the_replayed_spec(replays, tmp_path):
    """docs/kubeflow.md#a-recurring-run: the job's pipelineSpec as YAML, read as the KFP client
    does."""
    import yaml
    from kfp.client import client as kfp_client

    with open(replays["spec"]) as f:
        job = json.load(f)
    package = str(tmp_path / "fer-pipeline.yaml")
    with open(package, "w") as f:
        yaml.safe_dump(job["pipelineSpec"], f)
    doc = kfp_client._extract_pipeline_yaml(package)
    assert set(doc.pipeline_spec.root.dag.tasks) == set(replays["runs"][1].tasks)


def test_the_second_replay_reads_the_new_span_against_the_first_ones_baselines(replays):
    first, second = replays["runs"][1], replays["runs"][2]
    # Whether the selection blessed a candidate against the first run's model: without one,
    # ModelSelector copies no model and the Pusher pushes (writes) nothing.
    selected = second.output("ModelSelector", "blessing").metadata["blessed"] == 1
    _check_every_task_ran(second, replays["spec"], frozenset() if selected else NOTHING_SELECTED)
    assert second.output("ImageFolderExampleGen", "examples").metadata["span"] == 2
    # The drift baseline: the latest statistics of an earlier run
    # (docs/kubeflow.md#what-differs-on-kubeflow).
    assert second.tasks["DistributionValidator"].inputs["baseline_statistics"][0].name == \
        first.output("StatisticsGen", "statistics").name
    # The Evaluators' baseline: the model the latest blessing of the first run names.
    blessing = second.output("LatestBlessedModel-model-blessing-resolver", "model_blessing")
    assert blessing.run_id == "span1" and blessing.metadata["blessed"] == 1
    baseline = second.output("LatestBlessedModel-model-resolver", "model")
    assert baseline is not None and baseline.name == blessing.metadata["current_model_id"]
    for candidate in contract.CANDIDATES:
        assert second.tasks[f"Evaluator_{candidate}"].inputs["baseline_model"] == [baseline]
    # A model is pushed again exactly when the selection blessed one against that baseline.
    assert second.output("Pusher", "pushed_model").metadata["pushed"] == int(selected)
    versions = os.listdir(os.path.join(replays["serving"], contract.MODEL_NAME))
    assert len(versions) == (2 if selected else 1)
