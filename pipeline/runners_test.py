"""The local and the Kubeflow runner turn the same profile and options into the same
create_pipeline arguments, and their command lines share options and defaults."""
import pytest

from pipeline import cli, cli_options, configs, kubeflow_runner, local_runner
from pipeline import pipeline as pipeline_lib

# What each runner sets itself. The Kubeflow compiler reads the drift thresholds from this
# checkout (the schema folder it names is inside the image) and can compile only TFX's own
# resolver strategies.
RUNNER_ARGUMENTS = {"pipeline_name", "pipeline_root", "metadata_connection_config",
                    "drift_config_dir", "kfp_v2_resolvers"}


class _Captured(Exception):
    def __init__(self, kwargs):
        super().__init__("create_pipeline called")
        self.kwargs = kwargs


@pytest.fixture
def captured(monkeypatch):
    def fake_create_pipeline(**kwargs):
        raise _Captured(kwargs)

    monkeypatch.setattr(pipeline_lib, "create_pipeline", fake_create_pipeline)

    def call(fn, *args, **kwargs):
        with pytest.raises(_Captured) as got:
            fn(*args, **kwargs)
        return got.value.kwargs

    return call


OPTIONS = dict(profile="cpu", classes=["happy", "sad"], exclude_classes=["sad"],
               validation_fraction=0.2, on_bad_image="skip", allow_missing_eval_classes=True,
               enable_tuning=True, training={"epochs": 2}, model_variants={"vgg16": "stock"},
               min_accuracy=0.25, serving_dir="/srv/serving", schema_dir="/schema",
               beam_args=["--direct_num_workers=2"])


def _common(kwargs):
    out = {k: v for k, v in kwargs.items() if k not in RUNNER_ARGUMENTS}
    # The local runner ships this project to Beam workers; the container image already has it.
    out["beam_pipeline_args"] = [a for a in out["beam_pipeline_args"]
                                 if not a.startswith("--setup_file=")]
    return out


def test_same_profile_and_options_give_the_same_arguments(captured, tmp_path):
    local = captured(local_runner.run, data_root="/data", output_dir=str(tmp_path), **OPTIONS)
    kubeflow = captured(kubeflow_runner.compile_pipeline, "image:1", "/data", "gs://b/root",
                        str(tmp_path / "spec.json"), **OPTIONS)
    assert _common(local) == _common(kubeflow)
    assert kubeflow["kfp_v2_resolvers"] and "kfp_v2_resolvers" not in local
    expected = configs.pipeline_arguments(configs.RunOptions(data_root="/data", **OPTIONS))
    assert _common(kubeflow) == expected
    assert kubeflow["min_accuracy"] == 0.25  # passing min_accuracy works on both
    assert kubeflow["beam_pipeline_args"][-1] == "--direct_num_workers=2"  # the user's last
    assert local["beam_pipeline_args"][-1] == "--direct_num_workers=2"


def test_both_runners_default_to_the_same_profile(captured, tmp_path):
    local = captured(local_runner.run, data_root="/data", output_dir=str(tmp_path))
    kubeflow = captured(kubeflow_runner.compile_pipeline, "image:1", "/data", "gs://b/root",
                        str(tmp_path / "spec.json"))
    for key in ("training", "enable_tuning", "min_accuracy", "image_size", "classes",
                "validation_fraction"):
        assert local[key] == kubeflow[key], key


def test_both_command_lines_parse_the_same_options_with_the_same_defaults():
    argv = ["--profile", "cpu", "--classes", "happy,sad", "--validation-fraction", "0.2",
            "--epochs", "3", "--no-tuning", "--min-accuracy", "0.4", "--model-variant",
            "resnet50=stock", "--on-bad-image", "skip", "--beam-arg=--direct_num_workers=2"]
    kubeflow_required = ["--image", "i:1", "--data-root", "/d", "--pipeline-root", "/r"]
    for extra in ([], argv):
        local = cli_options.run_options(cli.build_parser().parse_args(["run", *extra]))
        kubeflow = cli_options.run_options(
            kubeflow_runner.build_parser().parse_args([*kubeflow_required, *extra]))
        # Paths differ by design: the schema inside the image, and where the cluster pushes.
        for runner_specific in ("schema_dir",):
            assert kubeflow.pop(runner_specific) == kubeflow_runner.IMAGE_SCHEMA_DIR
            assert local.pop(runner_specific) == configs.SCHEMA_DIR
        assert local == kubeflow
    assert set(local) <= {f.name for f in configs.RunOptions.__dataclass_fields__.values()}
