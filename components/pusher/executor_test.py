"""Atomic publishing of model versions."""
import os

from components.pusher import executor


def make_model(path):
    os.makedirs(os.path.join(path, "variables"))
    for name in ("saved_model.pb", "variables/variables.index"):
        with open(os.path.join(path, name), "w") as f:
            f.write(name)
    return path


def test_version_appears_complete_with_no_staging_left(tmp_path):
    model = make_model(str(tmp_path / "model"))
    base = str(tmp_path / "serving" / "fer")
    version_dir = executor.publish_atomically(model, base)
    assert os.listdir(base) == [os.path.basename(version_dir)]  # no hidden staging dir left
    assert os.path.basename(version_dir).isdigit()
    assert sorted(os.listdir(version_dir)) == ["saved_model.pb", "variables"]


def test_versions_stay_unique_and_increasing(tmp_path):
    model = make_model(str(tmp_path / "model"))
    base = str(tmp_path / "serving")
    first = executor.publish_atomically(model, base)
    second = executor.publish_atomically(model, base)  # same second
    assert int(os.path.basename(second)) > int(os.path.basename(first))


def test_remote_paths_fall_back_to_tfx():
    assert not executor._is_local("gs://bucket/serving")
    assert executor._is_local("/srv/models")


def test_pushed_destination_reads_what_the_pusher_recorded():
    from ml_metadata.proto import metadata_store_pb2

    pushed = metadata_store_pb2.Artifact()
    pushed.custom_properties["pushed"].int_value = 1
    pushed.custom_properties["pushed_destination"].string_value = "/srv/fer/17"
    assert executor.pushed_destination(pushed) == "/srv/fer/17"
    not_pushed = metadata_store_pb2.Artifact()
    not_pushed.custom_properties["pushed"].int_value = 0
    assert executor.pushed_destination(not_pushed) is None
    assert executor.pushed_destination(metadata_store_pb2.Artifact()) is None
    assert executor.describe_push(pushed) == "/srv/fer/17"
    assert executor.describe_push(not_pushed) == "nothing (no blessed winner)"
    not_pushed.custom_properties[executor.ALREADY_SERVING_PROPERTY].string_value = "17"
    assert executor.describe_push(not_pushed) == \
        "nothing new (the winner is already serving as version 17)"


def test_pushed_destination_reads_the_struct_values_a_kfp_task_gets():
    """On Kubeflow the entry point gives a task its input artifacts' metadata as struct
    values (the run report read "nothing pushed" from a push)."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as kfp
    from tfx.types import standard_artifacts

    def as_kfp_input(**metadata):
        runtime = {"name": "artifacts/3", "uri": "/root/Pusher/pushed_model",
                   "type": {"instanceSchema": "title: tfx.PushedModel\ntype: object\n"},
                   "metadata": metadata}
        message = json_format.ParseDict({"artifacts": [runtime]},
                                        pipeline_spec_pb2.ArtifactList())
        artifact, = kfp.parse_raw_artifact_dict({"pushed_model": message})["pushed_model"]
        assert isinstance(artifact, standard_artifacts.PushedModel)
        return artifact.mlmd_artifact

    pushed = as_kfp_input(pushed=1.0, pushed_destination="/srv/fer/17",
                          pushed_version="17")
    assert pushed.custom_properties["pushed"].WhichOneof("value") == "struct_value"
    assert executor.pushed_destination(pushed) == "/srv/fer/17"
    assert executor.pushed_destination(as_kfp_input(pushed=0.0)) is None
    assert executor.describe_push(as_kfp_input(pushed=0.0, already_serving_version="17")) == \
        "nothing new (the winner is already serving as version 17)"


def test_the_model_already_serving_is_recognised_and_only_it(tmp_path):
    model = make_model(str(tmp_path / "model"))
    base = str(tmp_path / "serving")
    assert executor.serving_version_of(model, base) is None          # nothing serving yet
    version = os.path.basename(executor.publish_atomically(model, base))
    assert executor.serving_version_of(model, base) == version

    other = make_model(str(tmp_path / "other"))
    with open(os.path.join(other, "variables", "variables.index"), "a") as f:
        f.write("retrained")
    assert executor.serving_version_of(other, base) is None
    executor.publish_atomically(other, base)
    # Only the latest version counts: the first model is no longer what serves.
    assert executor.serving_version_of(model, base) is None
