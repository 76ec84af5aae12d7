"""ModelSelector's executor: the winner's copy and a blessing that names the winner's model;
the ensemble as a candidate."""
import json
import os

from tfx.types import standard_artifacts

from components import contract
from components.ensemble import executor as ensemble_executor
from components.model_selector import executor, selection


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


METRIC = "sparse_categorical_accuracy"
ACCURACY = {"vgg16": 0.8, "resnet50": 0.6}
MEMBERS = json.dumps(["vgg16", "resnet50"])


def _run(tmp_path, monkeypatch, model_ids, accuracy=ACCURACY, model_properties=None):
    monkeypatch.setattr(executor.evaluation_lib, "overall_metrics",
                        lambda uri, names: {METRIC: accuracy[os.path.basename(uri)]})
    inputs = {}
    for name, model_id in model_ids.items():
        keys = executor.input_keys(name)
        model = _artifact(standard_artifacts.Model, tmp_path / "in" / f"model_{name}",
                          **(model_properties or {}).get(name, {}))
        (tmp_path / "in" / f"model_{name}" / "weights").write_text(name)
        inputs[keys["model"]] = [model]
        inputs[keys["blessing"]] = [_artifact(
            standard_artifacts.ModelBlessing, tmp_path / "in" / f"blessing_{name}", blessed=1,
            current_model_id=model_id, baseline_model_id=model_id if name == "vgg16" else 7)]
        inputs[keys["evaluation"]] = [_artifact(standard_artifacts.ModelEvaluation,
                                                tmp_path / "in" / name)]
    outputs = {executor.MODEL_KEY: [_artifact(standard_artifacts.Model, tmp_path / "out_model")],
               executor.BLESSING_KEY: [_artifact(standard_artifacts.ModelBlessing,
                                                 tmp_path / "out_blessing")]}
    executor.Executor().Do(inputs, outputs, {executor.METRIC_KEY: METRIC})
    return outputs


def test_the_ensemble_is_a_candidate_that_wins_when_better_and_is_named_with_its_members(
        tmp_path, monkeypatch):
    ids = {"vgg16": 11, "resnet50": 12, contract.ENSEMBLE: 13}
    members = {contract.ENSEMBLE: {ensemble_executor.MEMBERS_PROPERTY: MEMBERS}}
    out = _run(tmp_path / "better", monkeypatch, ids, {**ACCURACY, contract.ENSEMBLE: 0.85},
               members)
    blessing, = out[executor.BLESSING_KEY]
    model, = out[executor.MODEL_KEY]
    assert blessing.get_string_custom_property("winner") == contract.ENSEMBLE
    assert model.get_string_custom_property("architecture") == contract.ENSEMBLE
    assert (tmp_path / "better" / "out_model" / "weights").read_text() == contract.ENSEMBLE
    assert blessing.mlmd_artifact.custom_properties["current_model_id"].int_value == 13
    chosen = selection.read(blessing.uri)
    assert set(chosen.candidates) == set(contract.CANDIDATES)
    assert chosen.candidates[contract.ENSEMBLE][selection.MEMBERS] == ["vgg16", "resnet50"]
    assert selection.MEMBERS not in chosen.candidates["vgg16"]
    assert chosen.label(contract.ENSEMBLE) == "ensemble (vgg16 + resnet50)"
    # Equal to its best member: the single network wins.
    out = _run(tmp_path / "tie", monkeypatch, ids, {**ACCURACY, contract.ENSEMBLE: 0.8},
               members)
    assert out[executor.BLESSING_KEY][0].get_string_custom_property("winner") == "vgg16"


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
