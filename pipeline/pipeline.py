"""The FER pipeline graph. `create_pipeline` takes every path and option as an argument."""
from __future__ import annotations

import os
from typing import Any, List, Mapping, Optional, Sequence

from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

from components import contract, evaluation, resolvers
from components import transform as transform_module
from components.distribution_validator import DistributionValidator
from components.ensemble import ensemble as ensemble_lib
from components.ensemble.component import Ensemble
from components.image_example_gen import executor as example_gen_executor
from components.image_example_gen.component import ImageFolderExampleGen
from components.model_selector.component import ModelSelector
from components.models import trainer as trainer_module
from components.models import training_config
from components.pusher.component import Pusher
from components.run_report.component import RunReport
from components.validation_gate import DriftGate, SchemaValidationGate, read_drift_config
from pipeline import configs

SCHEMA_FILE = "schema.pbtxt"
PREPROCESSING_FN = f"{transform_module.__name__}.preprocessing_fn"
RUN_FN = f"{trainer_module.__name__}.run_fn"
TUNER_FN = f"{trainer_module.__name__}.tuner_fn"
DEFAULT_TUNER_TRIALS = training_config.default_settings()["tuner_trials"]
ENSEMBLE_ID = "Ensemble"
MODEL_SELECTOR_ID = "ModelSelector"
PUSHER_ID = "Pusher"


def create_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    data_root: str,
    schema_dir: str = configs.SCHEMA_DIR,
    image_size: int = contract.DEFAULT_IMAGE_SIZE,
    channels: int = contract.DEFAULT_CHANNELS,
    split_folders: Mapping[str, str] = contract.DEFAULT_SPLIT_FOLDERS,
    classes: Optional[Sequence[str]] = contract.DEFAULT_CLASSES,
    exclude_classes: Sequence[str] = (),
    split_ratios: Optional[Mapping[str, float]] = None,
    validation_fraction: float = configs.DEFAULT_VALIDATION_FRACTION,
    on_bad_image: str = contract.ON_BAD_IMAGE_FAIL,
    allow_missing_eval_classes: bool = False,
    data_csv: Optional[str] = None,
    csv_private_test: bool = False,
    metadata_connection_config: Optional[metadata_store_pb2.ConnectionConfig] = None,
    beam_pipeline_args: Sequence[str] = (),
    enable_cache: bool = True,
    transform_statistics: bool = False,
    training: Optional[Mapping[str, Mapping[str, Any]]] = None,
    enable_tuning: bool = True,
    min_accuracy: float = configs.DEFAULT_MIN_ACCURACY,
    selection_metric: str = configs.DEFAULT_SELECTION_METRIC,
    serving_dir: Optional[str] = None,
    model_name: str = contract.MODEL_NAME,
    span: Optional[int] = None,
    window_spans: int = configs.DEFAULT_WINDOW_SPANS,
    accept_drift: bool = False,
    warm_start: bool = True,
    change_tolerance: float = configs.DEFAULT_CHANGE_TOLERANCE,
    drift_config_dir: Optional[str] = None,
    kfp_v2_resolvers: bool = False,
    report_images: str = contract.REPORT_IMAGES_ALL,
) -> tfx.dsl.Pipeline:
    """Builds the pipeline graph (see README): data half, then per architecture Tuner ->
    Trainer -> Evaluator, with two or more architectures an Ensemble of the Trainers' models and
    its Evaluator, then ModelSelector -> Pusher.

    `training` maps each architecture to train to its settings (components/models/
    training_config.py TrainConfig, without architecture and label names); empty or None gives
    the data half only. `configs.pipeline_arguments` builds it from a profile. `classes` must
    be explicit when models are trained: the exported model needs the class names. Nothing is
    pushed without `serving_dir`. Every argument is checked before any component is built.

    `transform_statistics` makes Transform compute pre-/post-transform statistics too; off by
    default: StatisticsGen already covers the raw features (BENCHMARKS.md#data-half-choices).

    `validation_fraction` of the training images (by hash) form the `valid` split that the
    Tuner and the Trainer's early stopping read; the Evaluator alone reads `eval`. With 0 (and
    no `valid` split of the user's own), they validate on `eval`.

    `data_csv` reads FER2013's CSV form (a file relative to `data_root`, or to each span
    folder) instead of image folders, into the same examples (docs/data.md); its PrivateTest
    rows only with `csv_private_test`.

    Retraining (docs/retraining.md): with `span-<N>` folders under `data_root` the
    latest span is read (or `span`); Transform and the Trainers read it together with the
    `window_spans` - 1 spans before it that earlier runs trained on (the Evaluators and the data
    checks read this span alone). Caching is on: ImageFolderExampleGen's cache key includes
    the fingerprint of its files, so unchanged data reuses every finished component and one
    changed image re-runs from ExampleGen. The drift check compares this run's statistics with
    those of the latest data a run trained on, with the thresholds in drift_config.pbtxt (read
    now, from `drift_config_dir`, by default `schema_dir`), and stops before
    Transform past a threshold, unless `accept_drift`. With `warm_start`, each Trainer starts
    from the last pushed model of its architecture (not trained on these same examples; a pushed
    ensemble is of no architecture). The
    Evaluator's baseline is the model serving now (the latest push); a candidate is blessed
    when it is not worse on `selection_metric` by more than `change_tolerance`.

    `kfp_v2_resolvers`: TFX's Kubeflow V2 compiler only compiles its LatestArtifactStrategy and
    LatestBlessedModelStrategy, while the strategies above read ML Metadata lineage. With it, the
    drift baseline is the latest earlier statistics, the Evaluator's baseline the latest blessed
    candidate, there is no warm start, and `window_spans` must be 1 (docs/kubeflow.md).
    """
    training = dict(training or {})
    label_names = configs.check_arguments(
        classes=classes, exclude_classes=exclude_classes, image_size=image_size,
        channels=channels, validation_fraction=validation_fraction, on_bad_image=on_bad_image,
        training=training, min_accuracy=min_accuracy, selection_metric=selection_metric,
        change_tolerance=change_tolerance, window_spans=window_spans,
        kfp_v2_resolvers=kfp_v2_resolvers, data_csv=data_csv, split_ratios=split_ratios,
        report_images=report_images)

    example_gen = ImageFolderExampleGen(
        input_base=data_root,
        split_folders=split_folders,
        classes=classes,
        exclude_classes=exclude_classes,
        split_ratios=split_ratios,
        on_bad_image=on_bad_image,
        allow_missing_eval_classes=allow_missing_eval_classes,
        validation_fraction=validation_fraction,
        span=span,
        data_csv=data_csv,
        csv_private_test=csv_private_test,
    )
    schema_gen = tfx.components.ImportSchemaGen(
        schema_file=os.path.join(schema_dir, SCHEMA_FILE))
    statistics_gen = tfx.components.StatisticsGen(
        examples=example_gen.outputs["examples"], schema=schema_gen.outputs["schema"])
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
    validation_gate = SchemaValidationGate(anomalies=example_validator.outputs["anomalies"])
    drift_check = _drift_check(example_gen, statistics_gen,
                               read_drift_config(drift_config_dir or schema_dir), accept_drift,
                               kfp_v2_resolvers)
    window = _span_window(example_gen, statistics_gen, window_spans)
    transform_examples = (window.outputs[resolvers.EXAMPLES_KEY] if window
                          else example_gen.outputs["examples"])
    transform = tfx.components.Transform(
        examples=transform_examples,
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        custom_config={
            transform_module.IMAGE_SIZE_CONFIG_KEY: image_size,
            transform_module.CHANNELS_CONFIG_KEY: channels,
        },
        disable_statistics=not transform_statistics,
    )
    # Transform reads examples directly; these edges make it wait for clean validations.
    transform.add_upstream_node(validation_gate)
    transform.add_upstream_node(drift_check[-1])
    components = [example_gen, schema_gen, statistics_gen, example_validator, validation_gate,
                  *drift_check, *([window] if window else []), transform]
    report_models: Mapping[str, Any] = {}  # what the report shows beside the data
    if training:
        model_components, report_models = _model_half(
            example_gen, transform, training, label_names, split_folders, split_ratios,
            validation_fraction, enable_tuning, warm_start, min_accuracy, selection_metric,
            change_tolerance, serving_dir, model_name, kfp_v2_resolvers)
        components += model_components
    components.append(RunReport(
        examples=example_gen.outputs["examples"],
        ingest_report=example_gen.outputs[example_gen_executor.INGEST_REPORT_KEY],
        statistics=statistics_gen.outputs["statistics"],
        anomalies=example_validator.outputs["anomalies"],
        transform_graph=transform.outputs["transform_graph"] if training else None,
        label_names=label_names, report_images=report_images, **report_models))

    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=components,
        enable_cache=enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(beam_pipeline_args),
    )


def _model_half(example_gen, transform, training: Mapping[str, Mapping[str, Any]],
                label_names: List[str], split_folders, split_ratios, validation_fraction: float,
                enable_tuning: bool, warm_start: bool, min_accuracy: float,
                selection_metric: str, change_tolerance: float, serving_dir: Optional[str],
                model_name: str, kfp_v2_resolvers: bool):
    """(components, what the report shows of them): the serving model as baseline, each
    architecture's chain, with two or more the Ensemble and its Evaluator, then ModelSelector
    and, with `serving_dir`, the Pusher."""
    baseline = _serving_model(kfp_v2_resolvers)
    components: List[Any] = [baseline]
    eval_config = evaluation.eval_config(label_names, min_accuracy, selection_metric,
                                         change_tolerance)
    train_args = tfx.proto.TrainArgs(splits=[contract.TRAIN_SPLIT], num_steps=0)
    eval_args = tfx.proto.EvalArgs(
        splits=[contract.validation_split(validation_fraction, split_folders, split_ratios)],
        num_steps=0)

    def evaluator(candidate: str, model: tfx.dsl.Channel) -> tfx.components.Evaluator:
        # Every candidate on the same examples, split, config and baseline.
        return tfx.components.Evaluator(
            examples=example_gen.outputs["examples"],
            model=model,
            baseline_model=baseline.outputs["model"],
            eval_config=eval_config,
            example_splits=[contract.EVAL_SPLIT],
        ).with_id(f"Evaluator_{candidate}")

    candidates, report_candidates = {}, {}
    for arch, settings in training.items():
        chain, trainer = _architecture_chain(
            arch, settings, label_names, example_gen, transform, train_args, eval_args,
            enable_tuning, warm_start and not kfp_v2_resolvers)
        arch_evaluator = evaluator(arch, trainer.outputs["model"])
        components += [*chain, arch_evaluator]
        candidates[arch] = {"model": trainer.outputs["model"],
                            "blessing": arch_evaluator.outputs["blessing"],
                            "evaluation": arch_evaluator.outputs["evaluation"]}
        report_candidates[arch] = {"model_run": trainer.outputs["model_run"],
                                   "model": trainer.outputs["model"],
                                   "evaluation": arch_evaluator.outputs["evaluation"]}
    if len(training) >= ensemble_lib.MIN_MEMBERS:
        ensemble = Ensemble(
            models={arch: candidates[arch]["model"] for arch in training},
            transform_graph=transform.outputs["transform_graph"]).with_id(ENSEMBLE_ID)
        ensemble_evaluator = evaluator(contract.ENSEMBLE, ensemble.outputs["model"])
        components += [ensemble, ensemble_evaluator]
        candidates[contract.ENSEMBLE] = {
            "model": ensemble.outputs["model"],
            "blessing": ensemble_evaluator.outputs["blessing"],
            "evaluation": ensemble_evaluator.outputs["evaluation"]}
        report_candidates[contract.ENSEMBLE] = {
            "model": ensemble.outputs["model"],
            "evaluation": ensemble_evaluator.outputs["evaluation"]}
    selector = ModelSelector(candidates=candidates, metric=selection_metric,
                             label_names=label_names).with_id(MODEL_SELECTOR_ID)
    components.append(selector)
    pusher = None
    if serving_dir:
        pusher = Pusher(
            model=selector.outputs["model"],
            model_blessing=selector.outputs["blessing"],
            push_destination=tfx.proto.PushDestination(
                filesystem=tfx.proto.PushDestination.Filesystem(
                    base_directory=os.path.join(serving_dir, model_name))),
            examples=example_gen.outputs["examples"],
        ).with_id(PUSHER_ID)
        components.append(pusher)
    return components, {
        "candidates": report_candidates,
        "selection": selector.outputs["blessing"],
        "pushed_model": pusher.outputs["pushed_model"] if pusher else None,
    }


def _architecture_chain(arch: str, settings: Mapping[str, Any], label_names: List[str],
                        example_gen, transform, train_args, eval_args, enable_tuning: bool,
                        warm_start: bool):
    """([Tuner_<arch>, WarmStart_<arch>, Trainer_<arch>] as configured, the Trainer): one
    architecture from the transformed examples to its trained model."""
    custom_config = {**settings, "architecture": arch, "label_names": label_names,
                     training_config.OUTPUTS_VERSION_KEY: training_config.OUTPUTS_VERSION}
    chain: List[Any] = []
    tuner = None
    # A search of no trials is no search: the Trainer takes the default hyperparameters.
    trials = settings.get("tuner_trials", DEFAULT_TUNER_TRIALS)
    if enable_tuning and trials > 0:
        tuner = tfx.components.Tuner(
            tuner_fn=TUNER_FN,
            examples=transform.outputs["transformed_examples"],
            transform_graph=transform.outputs["transform_graph"],
            train_args=train_args,
            eval_args=eval_args,
            custom_config=custom_config,
        ).with_id(f"Tuner_{arch}")
        chain.append(tuner)
    base_model = None
    if warm_start:
        base_model = _latest_pushed_model(
            arch, examples=example_gen.outputs["examples"]).with_id(f"WarmStart_{arch}")
        chain.append(base_model)
    trainer = tfx.components.Trainer(
        run_fn=RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        hyperparameters=tuner.outputs["best_hyperparameters"] if tuner else None,
        base_model=base_model.outputs[resolvers.MODEL_KEY] if base_model else None,
        train_args=train_args,
        eval_args=eval_args,
        custom_config=custom_config,
    ).with_id(f"Trainer_{arch}")
    chain.append(trainer)
    return chain, trainer


def _drift_check(example_gen, statistics_gen, config, accept_drift: bool,
                 kfp_v2_resolvers: bool) -> List[Any]:
    """[baseline resolver, DistributionValidator, DriftGate]: this run's statistics against those
    of the latest data a run went on to train on; the gate is last."""
    all_statistics = tfx.dsl.Channel(
        type=tfx.types.standard_artifacts.ExampleStatistics,
        producer_component_id=statistics_gen.id, output_key="statistics")
    if kfp_v2_resolvers:
        baseline = tfx.dsl.Resolver(
            strategy_class=tfx.dsl.experimental.LatestArtifactStrategy,
            **{resolvers.STATISTICS_KEY: all_statistics}).with_id("LatestStatistics")
        example_gen.add_upstream_node(baseline)  # earlier runs' statistics only
    else:
        baseline = tfx.dsl.Resolver(
            strategy_class=resolvers.TrainedOnStatisticsStrategy,
            **{resolvers.STATISTICS_KEY: all_statistics,
               resolvers.EXAMPLES_KEY: example_gen.outputs["examples"]},
        ).with_id("TrainedOnStatistics")
        baseline.add_upstream_node(statistics_gen)  # this run's statistics exist by then
    validator = DistributionValidator(
        statistics=statistics_gen.outputs["statistics"],
        baseline_statistics=baseline.outputs[resolvers.STATISTICS_KEY], config=config)
    gate = DriftGate(anomalies=validator.outputs["anomalies"], accept_drift=int(accept_drift))
    return [baseline, validator, gate]


def _span_window(example_gen, statistics_gen, window_spans: int) -> Optional[tfx.dsl.Resolver]:
    """The examples Transform reads: None (this run's) for a window of one span, else a
    resolver of this run's examples and those of the spans before it (resolvers.
    SpanWindowStrategy, which finds this run's examples from this run's statistics)."""
    if window_spans == 1:
        return None
    return tfx.dsl.Resolver(
        strategy_class=resolvers.SpanWindowStrategy,
        config={"num_spans": window_spans},
        **{resolvers.EXAMPLES_KEY: tfx.dsl.Channel(
               type=tfx.types.standard_artifacts.Examples,
               producer_component_id=example_gen.id, output_key="examples"),
           resolvers.STATISTICS_KEY: statistics_gen.outputs["statistics"]},
    ).with_id("SpanWindow")


def _serving_model(kfp_v2_resolvers: bool) -> tfx.dsl.Resolver:
    """The Evaluators' baseline: the model serving now (on KFP v2: the latest blessed one)."""
    if kfp_v2_resolvers:
        return tfx.dsl.Resolver(
            strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
            model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
            model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
        ).with_id("LatestBlessedModel")
    return _latest_pushed_model().with_id("ServingModel")


def _latest_pushed_model(architecture: Optional[str] = None,
                         examples: Optional[tfx.dsl.Channel] = None) -> tfx.dsl.Resolver:
    """The model of the latest push (of `architecture`; not trained on `examples`), from every
    earlier run of the pipeline (resolvers.LatestPushedModelStrategy)."""
    channels = {
        resolvers.MODEL_KEY: tfx.dsl.Channel(
            type=tfx.types.standard_artifacts.Model, producer_component_id=MODEL_SELECTOR_ID,
            output_key="model"),
        resolvers.PUSHED_MODEL_KEY: tfx.dsl.Channel(
            type=tfx.types.standard_artifacts.PushedModel, producer_component_id=PUSHER_ID,
            output_key="pushed_model"),
    }
    if examples is not None:
        channels[resolvers.EXAMPLES_KEY] = examples
    return tfx.dsl.Resolver(strategy_class=resolvers.LatestPushedModelStrategy,
                            config={"architecture": architecture or ""}, **channels)
