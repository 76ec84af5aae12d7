"""Beam runner profiles: the arguments each one gives, and the refusal of a runner without the
arguments it needs, before anything runs, on both command lines."""
import json

import pytest

from pipeline import beam_runners, cli, configs, kubeflow_runner, local_runner
from pipeline import pipeline as pipeline_lib

DIRECT_ARGS = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
SETUP = "/src/setup.py"
IMAGE = "registry/fer-pipeline:1"
DATAFLOW = ["--project=p", "--region=europe-west4", "--temp_location=gs://b/tmp"]


def args(runner, user=(), image=None, setup_file=SETUP):
    return beam_runners.beam_pipeline_args(runner, DIRECT_ARGS, list(user), sdk_image=image,
                                           setup_file=setup_file)


def refusal(runner, user=(), image=None):
    with pytest.raises(beam_runners.BeamRunnerError) as e:
        args(runner, user, image)
    return str(e.value)


def test_direct_is_the_default_and_keeps_the_profile_settings_and_setup_file():
    assert configs.RunOptions(data_root="/d").beam_runner == beam_runners.DIRECT
    assert args("direct", ["--direct_num_workers=4"]) == [
        *DIRECT_ARGS, f"--setup_file={SETUP}", "--direct_num_workers=4"]  # the user's last
    # As before runner profiles: no --runner (Beam's default), the profile's settings first.
    cpu = configs.pipeline_arguments(configs.RunOptions(data_root="/d", profile="cpu"))
    assert cpu["beam_pipeline_args"] == list(configs.get_profile("cpu").beam_pipeline_args())
    gpu = configs.pipeline_arguments(configs.RunOptions(data_root="/d", profile="gpu"))
    assert gpu["beam_pipeline_args"] == ["--direct_running_mode=multi_processing",
                                         "--direct_num_workers=0"]


def test_portable_names_the_job_service_and_where_workers_run():
    got = args("portable", ["--job_endpoint=localhost:8099", "--environment_type=LOOPBACK"])
    assert got == ["--runner=PortableRunner", f"--setup_file={SETUP}",
                   "--job_endpoint=localhost:8099", "--environment_type=LOOPBACK"]
    assert not any(a.startswith("--direct_") for a in got)
    msg = refusal("portable")
    assert "missing --job_endpoint" in msg and "--beam-arg=--job_endpoint=" in msg
    assert "missing --environment_type" in msg and "--beam-arg=--environment_type=" in msg
    msg = refusal("portable", ["--job_endpoint=h:1", "--environment_type=EXTERNAL"])
    assert "--environment_type=EXTERNAL needs --environment_config" in msg
    msg = refusal("portable", ["--job_endpoint=h:1", "--environment_type=DOCKER"])
    assert "missing --sdk_container_image" in msg
    assert "choose one of" in refusal("portable", ["--job_endpoint=h:1",
                                                   "--environment_type=THREADS"])


def test_flink_and_spark_run_the_image_in_docker_unless_told_otherwise():
    for runner, beam_runner, master in (("flink", "FlinkRunner", "--flink_master=h:8081"),
                                        ("spark", "SparkRunner", "--spark_master_url=spark://h")):
        got = args(runner, [master], image=IMAGE)
        assert got == [f"--runner={beam_runner}", "--environment_type=DOCKER",
                       "--sdk_location=container", f"--environment_config={IMAGE}",
                       f"--sdk_container_image={IMAGE}", master]  # no setup_file: in the image
        # A Beam job server for the cluster does instead of the master.
        assert args(runner, ["--job_endpoint=h:8099"], image=IMAGE)[-1] == "--job_endpoint=h:8099"
        # The user's image wins over the compiler's.
        got = args(runner, [master, "--sdk_container_image=mine:2"], image=IMAGE)
        assert "--environment_config=mine:2" in got and f"--sdk_container_image={IMAGE}" not in got
        # SDK worker pools beside the cluster's workers (EXTERNAL) need no image here.
        args(runner, [master, "--environment_type=EXTERNAL", "--environment_config=localhost:5"])
        msg = refusal(runner)
        assert msg.startswith(f"--beam-runner {runner}: ")
        assert "missing --" in msg and "--beam-arg=--job_endpoint=HOST:8099" in msg
        assert "missing --sdk_container_image" in msg
        assert "--beam-arg=--sdk_container_image=" in msg


def test_dataflow_needs_project_region_temp_location_and_the_image():
    got = args("dataflow", DATAFLOW, image=IMAGE)
    assert got == ["--runner=DataflowRunner", "--sdk_location=container",
                   f"--sdk_container_image={IMAGE}", *DATAFLOW]
    msg = refusal("dataflow")
    for option in ("project", "region", "temp_location", "sdk_container_image"):
        assert f"missing --{option} " in msg and f"--beam-arg=--{option}=" in msg, option
    msg = refusal("dataflow", ["--project=p", "--region", "r"])  # "--name value" reads too
    assert "--project" not in msg and "--region" not in msg and "--temp_location" in msg


def test_a_runner_in_beam_args_that_contradicts_the_profile_is_refused():
    msg = refusal("direct", ["--runner=DataflowRunner"])
    assert "--beam-runner" in msg and "leave --runner out" in msg
    assert args("direct", ["--runner=DirectRunner"])[-1] == "--runner=DirectRunner"
    with pytest.raises(beam_runners.BeamRunnerError, match="unknown Beam runner"):
        args("samza")


def test_parse_beam_args():
    assert beam_runners.parse_beam_args(
        ["--a=1", "--b", "2", "--flag", "--a=3", "stray", "--c-d=x=y"]) == {
        "a": "3", "b": "2", "flag": None, "c_d": "x=y"}


@pytest.fixture
def no_pipeline(monkeypatch):
    def fail(**kwargs):
        raise AssertionError("create_pipeline ran")

    monkeypatch.setattr(pipeline_lib, "create_pipeline", fail)


def test_both_command_lines_refuse_before_anything_runs(no_pipeline, tmp_path, capfd):
    out = tmp_path / "out"
    rc = cli.main(["run", "--data-root", str(tmp_path / "none"), "--output-dir", str(out),
                   "--beam-runner", "dataflow", "--beam-arg=--project=p"])
    err = capfd.readouterr().err
    assert rc == cli.EXIT_BAD_INPUT and "Traceback" not in err
    assert "ERROR (PipelineArgumentError): --beam-runner dataflow: missing --region" in err
    assert "--project " not in err and "--beam-arg=--temp_location=" in err
    rc = kubeflow_runner.main(["--image", IMAGE, "--data-root", "gs://b/d", "--pipeline-root",
                               "gs://b/r", "--output-file", str(tmp_path / "spec.json"),
                               "--beam-runner", "flink"])
    err = capfd.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert "missing --flink_master or --job_endpoint" in err
    assert "sdk_container_image" not in err  # the compiler's --image is the SDK image
    assert not (tmp_path / "spec.json").exists()


def test_the_kubeflow_image_is_the_sdk_image_and_local_runs_ship_setup_py(monkeypatch, tmp_path):
    captured = {}

    def fake(**kwargs):
        captured.update(kwargs)
        raise RuntimeError("stop")

    monkeypatch.setattr(pipeline_lib, "create_pipeline", fake)
    with pytest.raises(RuntimeError):
        kubeflow_runner.compile_pipeline(IMAGE, "gs://b/d", "gs://b/r", str(tmp_path / "s.json"),
                                         beam_runner="dataflow", beam_args=DATAFLOW)
    assert f"--sdk_container_image={IMAGE}" in captured["beam_pipeline_args"]
    with pytest.raises(RuntimeError):
        local_runner.run("/d", output_dir=str(tmp_path), beam_runner="portable",
                         beam_args=["--job_endpoint=localhost:1", "--environment_type=LOOPBACK"])
    assert f"--setup_file={local_runner.SETUP_FILE}" in captured["beam_pipeline_args"]
    assert captured["beam_pipeline_args"][0] == "--runner=PortableRunner"


def test_the_compiled_kubeflow_spec_carries_the_runner_arguments_to_the_beam_tasks(tmp_path):
    out = str(tmp_path / "fer.json")
    assert kubeflow_runner.main(["--image", IMAGE, "--data-root", "gs://b/fer", "--pipeline-root",
                                 "gs://b/root", "--output-file", out, "--architectures", "none",
                                 "--beam-runner", "dataflow",
                                 *(f"--beam-arg={a}" for a in DATAFLOW)]) == 0
    with open(out) as f:
        executors = json.load(f)["pipelineSpec"]["deploymentSpec"]["executors"]
    for task in ("ImageFolderExampleGen", "StatisticsGen", "Transform"):
        container_args = " ".join(executors[f"{task}_executor"]["container"]["args"])
        for arg in ("--runner=DataflowRunner", f"--sdk_container_image={IMAGE}",
                    "--sdk_location=container", *DATAFLOW):
            assert arg in container_args, (task, arg)
        assert "--setup_file" not in container_args and "--direct_" not in container_args
