"""ModelSelector's executor: the winner's copy and a blessing that names the winner's model."""
import os

from tfx.types import standard_artifacts

from components.model_selector import executor


def _artifact(cls, uri, **custom):
    a = cls()
    a.uri = str(uri)
    os.makedirs(a.uri, exist_ok=True)
    for k, v in custom.items():
        if isinstance(v, int):
            a.set_int_custom_property(k, v)
        else:
            a.set_string_custom_property(k, v)
    return a


def _run(tmp_path, monkeypatch, model_ids):
    metric = "sparse_categorical_accuracy"
    values = {"vgg16": 0.8, "resnet50": 0.6}
    monkeypatch.setattr(executor.evaluation_lib, "overall_metrics",
                        lambda uri, names: {metric: values[os.path.basename(uri)]})
    inputs = {}
    for arch, model_id in model_ids.items():
        keys = executor.input_keys(arch)
        model = _artifact(standard_artifacts.Model, tmp_path / "in" / f"model_{arch}")
        (tmp_path / "in" / f"model_{arch}" / "weights").write_text(arch)
        inputs[keys["model"]] = [model]
        inputs[keys["blessing"]] = [_artifact(
            standard_artifacts.ModelBlessing, tmp_path / "in" / f"blessing_{arch}", blessed=1,
            current_model_id=model_id, baseline_model_id=model_id if arch == "vgg16" else 7)]
        inputs[keys["evaluation"]] = [_artifact(standard_artifacts.ModelEvaluation,
                                                tmp_path / "in" / arch)]
    outputs = {executor.MODEL_KEY: [_artifact(standard_artifacts.Model, tmp_path / "out_model")],
               executor.BLESSING_KEY: [_artifact(standard_artifacts.ModelBlessing,
                                                 tmp_path / "out_blessing")]}
    executor.Executor().Do(inputs, outputs, {executor.METRIC_KEY: metric})
    return outputs


def test_the_blessing_names_the_winners_model_as_its_evaluator_did(tmp_path, monkeypatch):
    # On Kubeflow the ids are artifact names (strings); locally ML Metadata ids.
    for ids in ({"vgg16": "artifacts/11", "resnet50": "artifacts/12"},
                {"vgg16": 11, "resnet50": 12}):
        out = _run(tmp_path / type(ids["vgg16"]).__name__, monkeypatch, ids)
        blessing, = out[executor.BLESSING_KEY]
        assert blessing.get_int_custom_property(executor.BLESSED_PROPERTY) == 1
        assert blessing.get_string_custom_property("winner") == "vgg16"
        props = blessing.mlmd_artifact.custom_properties
        got = props["current_model_id"].string_value or props["current_model_id"].int_value
        assert got == ids["vgg16"]
        baseline = props["baseline_model_id"]
        assert (baseline.string_value or baseline.int_value) == ids["vgg16"]
        model, = out[executor.MODEL_KEY]
        assert (tmp_path / type(ids["vgg16"]).__name__ / "out_model" / "weights").read_text() \
            == "vgg16"
        assert model.get_string_custom_property("architecture") == "vgg16"
