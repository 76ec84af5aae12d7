"""create_pipeline checks every argument before it builds a component."""
import json

import pytest

from components.models import training_config
from pipeline import configs
from pipeline import pipeline as pipeline_lib


@pytest.fixture
def no_components(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a component was built before the arguments were checked")

    monkeypatch.setattr(pipeline_lib, "ImageFolderExampleGen", refuse)


def create(**kwargs):
    return pipeline_lib.create_pipeline(pipeline_name="p", pipeline_root="/tmp/root",
                                        data_root="/data", **kwargs)


def test_every_bad_argument_is_named_at_once(no_components):
    with pytest.raises(configs.PipelineArgumentError) as err:
        create(training={"vgg19": {}, "vgg16": {"epoch": 3}}, channels=2, min_accuracy=2.0,
               validation_fraction=1.0, on_bad_image="ignore", selection_metric="auc",
               image_size=0)
    message = str(err.value)
    for expected in ("unknown architectures ['vgg19']", "training['vgg16']", "'epoch'",
                     "channels must be 1 or 3", "min_accuracy", "validation_fraction",
                     "on_bad_image", "selection_metric", "image_size"):
        assert expected in message, expected


def test_training_needs_class_names(no_components):
    with pytest.raises(configs.PipelineArgumentError, match="class names"):
        create(training={"vgg16": {}}, classes=None)
    with pytest.raises(configs.PipelineArgumentError, match="no classes left"):
        create(training={"vgg16": {}}, classes=["sad"], exclude_classes=["sad"])
    with pytest.raises(configs.PipelineArgumentError, match="which the pipeline sets"):
        create(training={"vgg16": {"label_names": ["a"]}})


def test_one_training_mapping_per_architecture_builds_its_branch():
    pipeline = create(training={"resnet50": {"epochs": 1}}, enable_tuning=False)
    ids = {c.id for c in pipeline.components}
    assert {"Trainer_resnet50", "Evaluator_resnet50", "ModelSelector", "RunReport"} <= ids
    assert not any(i.endswith("vgg16") for i in ids) and not any("Tuner" in i for i in ids)
    trainer = next(c for c in pipeline.components if c.id == "Trainer_resnet50")
    custom_config = trainer.exec_properties["custom_config"]
    assert '"epochs": 1' in custom_config and '"architecture": "resnet50"' in custom_config
    # The layout of what a Trainer writes is in its cache key: after a change of it (the
    # ensemble's classifier.keras), the cache does not hand back models without it.
    assert (f'"{training_config.OUTPUTS_VERSION_KEY}": {training_config.OUTPUTS_VERSION}'
            in custom_config)
    assert training_config.TrainConfig.from_custom_config(
        json.loads(custom_config)).architecture == "resnet50"
    tuned = create(training={"vgg16": {}, "resnet50": {"tuner_trials": 0}}, enable_tuning=True)
    ids = {c.id for c in tuned.components}
    assert "Tuner_vgg16" in ids and "Tuner_resnet50" not in ids  # no trials, no Tuner
    data_half = create()
    assert "Trainer_vgg16" not in {c.id for c in data_half.components}
    report = next(c for c in data_half.components if c.id == "RunReport")  # data only
    assert not any(key.endswith(("_model_run", "_evaluation", "_model")) for key in report.inputs)


def test_two_architectures_add_an_ensemble_evaluated_as_they_are_and_one_adds_none():
    graph = {c.id: c for c in create(training={"vgg16": {}, "resnet50": {}},
                                     enable_tuning=False, serving_dir="/srv").components}
    ensemble = graph["Ensemble"]
    assert {key: channel.producer_component_id for key, channel in ensemble.inputs.items()} == \
        {"vgg16_model": "Trainer_vgg16", "resnet50_model": "Trainer_resnet50",
         "transform_graph": "Transform"}
    evaluators = [graph[f"Evaluator_{name}"] for name in ("vgg16", "resnet50", "ensemble")]
    assert evaluators[2].inputs["model"].producer_component_id == "Ensemble"
    for evaluator in evaluators[:2]:  # the same examples, split, config and baseline
        assert evaluator.exec_properties == evaluators[2].exec_properties
        for key in ("examples", "baseline_model"):
            assert evaluator.inputs[key] is evaluators[2].inputs[key], key
    selector = graph["ModelSelector"].inputs
    assert {key: selector[key].producer_component_id for key in selector
            if key.startswith("ensemble")} == {"ensemble_model": "Ensemble",
                                               "ensemble_blessing": "Evaluator_ensemble",
                                               "ensemble_evaluation": "Evaluator_ensemble"}
    report = graph["RunReport"]
    # The report reads every candidate's model (its mistakes) and Transform's graph (Grad-CAM).
    assert {key: report.inputs[key].producer_component_id for key in report.inputs
            if key.endswith(("_model", "_evaluation")) and key != "pushed_model"
            or key == "transform_graph"} == {
        "vgg16_model": "Trainer_vgg16", "resnet50_model": "Trainer_resnet50",
        "ensemble_model": "Ensemble", "vgg16_evaluation": "Evaluator_vgg16",
        "resnet50_evaluation": "Evaluator_resnet50", "ensemble_evaluation": "Evaluator_ensemble",
        "transform_graph": "Transform"}
    assert report.exec_properties["report_images"] == "all"

    one = {c.id for c in create(training={"vgg16": {}}, enable_tuning=False).components}
    assert "Trainer_vgg16" in one
    assert not {"Ensemble", "Evaluator_ensemble"} & one


def test_retraining_wiring_warm_start_serving_baseline_and_the_drift_gate():
    def nodes(**kwargs):
        return {c.id: c for c in create(training={"vgg16": {}}, enable_tuning=False,
                                        serving_dir="/srv", **kwargs).components}

    graph = nodes()
    trainer, evaluator = graph["Trainer_vgg16"], graph["Evaluator_vgg16"]
    assert trainer.inputs["base_model"].producer_component_id == "WarmStart_vgg16"
    assert evaluator.inputs["baseline_model"].producer_component_id == "ServingModel"
    # Transform waits for both gates.
    upstream = {n.id for n in graph["Transform"].upstream_nodes}
    assert {"SchemaValidationGate", "DriftGate"} <= upstream
    assert "TrainedOnStatistics" in {n.id for n in graph["DistributionValidator"].upstream_nodes}
    assert graph["DriftGate"].exec_properties["accept_drift"] == 0
    assert nodes(accept_drift=True)["DriftGate"].exec_properties["accept_drift"] == 1
    cold = nodes(warm_start=False)
    assert "WarmStart_vgg16" not in cold and "base_model" not in cold["Trainer_vgg16"].inputs
    assert create(span=3).components[0].exec_properties["range_config"]  # a static range


def test_a_window_of_spans_feeds_transform_and_the_evaluators_read_this_span():
    def nodes(**kwargs):
        return {c.id: c for c in create(training={"vgg16": {}}, enable_tuning=False,
                                        **kwargs).components}

    one = nodes()
    assert "SpanWindow" not in one
    assert one["Transform"].inputs["examples"].producer_component_id == "ImageFolderExampleGen"
    graph = nodes(window_spans=3)
    window = graph["SpanWindow"]
    assert window.exec_properties["source_uri"] == {"num_spans": 3}  # the strategy config
    assert graph["Transform"].inputs["examples"].producer_component_id == "SpanWindow"
    evaluator_examples = graph["Evaluator_vgg16"].inputs["examples"]
    assert evaluator_examples.producer_component_id == "ImageFolderExampleGen"
    assert graph["StatisticsGen"].inputs["examples"].producer_component_id == \
        "ImageFolderExampleGen"


def test_window_spans_is_checked(no_components):
    with pytest.raises(configs.PipelineArgumentError, match="window_spans must be a positive"):
        create(window_spans=0)
    with pytest.raises(configs.PipelineArgumentError, match="Kubeflow V2 compiler"):
        create(window_spans=2, kfp_v2_resolvers=True)


def test_report_images_reaches_the_report_and_a_bad_choice_is_refused():
    graph = {c.id: c for c in create(training={"vgg16": {}}, enable_tuning=False,
                                     report_images="none").components}
    assert graph["RunReport"].exec_properties["report_images"] == "none"
    with pytest.raises(configs.PipelineArgumentError, match="report_images must be one of"):
        create(training={"vgg16": {}}, report_images="faces")
