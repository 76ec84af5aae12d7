"""Atomic publishing of model versions."""
import os
import time

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


def test_a_tflite_twin_appears_with_the_same_version_beside_the_model_directory(
        tmp_path, monkeypatch):
    now = 1_800_000_000
    monkeypatch.setattr(time, "time", lambda: now + 0.5)
    model = make_model(str(tmp_path / "model"))
    tflite_dir = tmp_path / "tflite"
    tflite_dir.mkdir()
    (tflite_dir / "model_float16.tflite").write_bytes(b"flatbuffer")
    base = str(tmp_path / "serving" / "fer")
    tflite_base = str(tmp_path / "serving" / "fer-tflite")
    os.makedirs(os.path.join(tflite_base, str(now)))  # this second's version is taken there
    version_dir = executor.publish_atomically(model, base, str(tflite_dir))

    # A version number taken in either folder is not used in the other.
    assert version_dir == os.path.join(base, str(now + 1))
    assert os.listdir(base) == [str(now + 1)]  # TF Serving's folder: the SavedModel only
    assert sorted(os.listdir(tmp_path / "serving")) == ["fer", "fer-tflite"]
    assert sorted(os.listdir(tflite_base)) == [str(now), str(now + 1)]  # no staging left
    assert os.listdir(os.path.join(tflite_base, str(now + 1))) == ["model_float16.tflite"]


def _artifact(cls, uri, **int_properties):
    artifact = cls()
    artifact.uri = uri
    for name, value in int_properties.items():
        artifact.set_int_custom_property(name, value)
    return artifact


def _push(saved_model_dir, tmp_path, examples_uri=None):
    """Runs the Pusher executor on a blessed model artifact holding `saved_model_dir` (and
    the Examples artifact at `examples_uri`, when given); returns (its pushed_model artifact,
    the serving directory)."""
    import shutil

    from tfx.proto import pusher_pb2
    from tfx.types import standard_artifacts
    from tfx.types import standard_component_specs as specs
    from tfx.utils import path_utils, proto_utils

    from components import contract

    model_uri = str(tmp_path / "Ensemble" / "model")
    shutil.copytree(saved_model_dir, path_utils.serving_model_path(model_uri))
    serving_dir = tmp_path / "serving"
    destination = pusher_pb2.PushDestination(filesystem=pusher_pb2.PushDestination.Filesystem(
        base_directory=str(serving_dir / contract.MODEL_NAME)))
    pushed = _artifact(standard_artifacts.PushedModel, str(tmp_path / "Pusher" / "pushed"))
    inputs = {specs.MODEL_KEY: [_artifact(standard_artifacts.Model, model_uri)],
              specs.MODEL_BLESSING_KEY: [_artifact(standard_artifacts.ModelBlessing,
                                                   str(tmp_path / "blessing"), blessed=1)]}
    if examples_uri:
        inputs[executor.EXAMPLES_KEY] = [_artifact(standard_artifacts.Examples, examples_uri)]
    executor.Executor().Do(
        inputs,
        {specs.PUSHED_MODEL_KEY: [pushed]},
        {specs.PUSH_DESTINATION_KEY: proto_utils.proto_to_json(destination)})
    return pushed, serving_dir


def test_the_pusher_publishes_the_winner_and_its_tflite_twin_with_the_class_names(tmp_path):
    from components import contract
    from serving import tflite_predict
    from tests import tflite_models

    pushed, serving_dir = _push(tflite_models.shared_trained_exports().ensemble, tmp_path)
    version = pushed.get_string_custom_property("pushed_version")
    assert os.listdir(serving_dir / contract.MODEL_NAME) == [version]
    tflite_version_dir = serving_dir / (contract.MODEL_NAME + contract.TFLITE_DIR_SUFFIX) / version
    assert pushed.get_string_custom_property(executor.TFLITE_DESTINATION_PROPERTY) == \
        str(tflite_version_dir)
    assert os.listdir(tflite_version_dir) == [contract.TFLITE_FILE]
    classifier = tflite_predict.TFLiteClassifier(str(tflite_version_dir))
    assert classifier.classes == tflite_models.LABELS
    assert classifier.version == int(version)


def test_with_the_examples_the_tflite_version_says_how_each_form_scored(tmp_path):
    import json

    from components import contract
    from components.pusher import tflite
    from tests import tflite_models

    exports = tflite_models.shared_trained_exports()
    examples = tflite_models.eval_examples_artifact(tmp_path / "examples", exports.images,
                                                    exports.labels)
    pushed, serving_dir = _push(exports.ensemble, tmp_path, examples)
    tflite_version_dir = pushed.get_string_custom_property(executor.TFLITE_DESTINATION_PROPERTY)
    assert os.path.basename(tflite_version_dir) == pushed.get_string_custom_property(
        "pushed_version")
    with open(os.path.join(tflite_version_dir, contract.TFLITE_EVAL_FILE)) as f:
        recorded = json.load(f)
    assert recorded["eval_images"] == len(exports.images)
    assert set(recorded["accuracy"]) == set(tflite.QUANTIZATIONS)
    assert sorted(os.listdir(tflite_version_dir)) == sorted(
        [contract.TFLITE_EVAL_FILE] + [tflite.FILES[q] for q in recorded["written"]])


def test_a_model_without_a_tflite_twin_is_pushed_all_the_same(tmp_path):
    from components import contract
    from tests import tiny_models

    old_export = tiny_models.export(str(tmp_path / "old"))  # no float-image function
    pushed, serving_dir = _push(old_export, tmp_path)
    assert pushed.get_int_custom_property("pushed") == 1
    assert os.listdir(serving_dir) == [contract.MODEL_NAME]
    assert executor.TFLITE_DESTINATION_PROPERTY not in pushed.mlmd_artifact.custom_properties
