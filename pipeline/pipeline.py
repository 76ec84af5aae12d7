"""The FER pipeline graph. `create_pipeline` takes every path and option as an argument."""
from __future__ import annotations

import os
from typing import Mapping, Optional, Sequence

from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

from components import evaluation
from components import transform as transform_module
from components.image_example_gen.component import ImageFolderExampleGen
from components.model_selector.component import ModelSelector
from components.models import trainer as trainer_module
from components.pusher import executor as pusher_executor
from components.validation_gate import SchemaValidationGate
from pipeline import configs

SCHEMA_FILE = "schema.pbtxt"
PREPROCESSING_FN = f"{transform_module.__name__}.preprocessing_fn"
RUN_FN = f"{trainer_module.__name__}.run_fn"
TUNER_FN = f"{trainer_module.__name__}.tuner_fn"


def create_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    data_root: str,
    schema_dir: str = configs.SCHEMA_DIR,
    image_size: int = configs.DEFAULT_IMAGE_SIZE,
    channels: int = configs.DEFAULT_CHANNELS,
    split_folders: Mapping[str, str] = configs.DEFAULT_SPLIT_FOLDERS,
    classes: Optional[Sequence[str]] = configs.DEFAULT_CLASSES,
    exclude_classes: Sequence[str] = (),
    split_ratios: Optional[Mapping[str, float]] = None,
    validation_fraction: float = configs.DEFAULT_VALIDATION_FRACTION,
    on_bad_image: str = configs.ON_BAD_IMAGE_FAIL,
    allow_missing_eval_classes: bool = False,
    metadata_connection_config: Optional[metadata_store_pb2.ConnectionConfig] = None,
    beam_pipeline_args: Sequence[str] = (),
    enable_cache: bool = False,
    transform_statistics: bool = False,
    architectures: Sequence[str] = configs.ARCHITECTURES,
    enable_tuning: bool = True,
    training: Optional[Mapping[str, object]] = None,
    training_by_architecture: Optional[Mapping[str, Mapping[str, object]]] = None,
    model_variants: Optional[Mapping[str, str]] = None,
    weights: Optional[Mapping[str, str]] = None,
    min_accuracy: float = 0.5,
    selection_metric: str = evaluation.ACCURACY,
    serving_dir: Optional[str] = None,
    model_name: str = configs.MODEL_NAME,
) -> tfx.dsl.Pipeline:
    """Builds the pipeline graph (see README): data half, then per architecture Tuner ->
    Trainer -> Evaluator, then ModelSelector -> Pusher.

    `architectures` empty gives the data half only. `training` holds TrainConfig settings
    (epochs, batch_size, ...; see components/models/trainer.py) for every architecture;
    `training_by_architecture` overrides them per architecture. `classes` must be explicit
    when models are trained: the exported model needs the class names. Nothing is pushed
    without `serving_dir`.

    `transform_statistics` makes Transform compute pre-/post-transform statistics too; off by
    default: StatisticsGen already covers the raw features, and statistics over every pixel of
    the transformed images cost more than they tell (see BENCHMARKS.md).

    `validation_fraction` of the training images (by hash) form the `valid` split that the
    Tuner and the Trainer's early stopping read; the Evaluator alone reads `eval`. With 0 (and
    no `valid` split of the user's own), they validate on `eval`.

    Caching is off by default: ImageFolderExampleGen's cache key is its configuration, not the
    files, so a cached run would miss new or changed images.
    """
    example_gen = ImageFolderExampleGen(
        input_base=data_root,
        split_folders=split_folders,
        classes=classes,
        exclude_classes=exclude_classes,
        split_ratios=split_ratios,
        on_bad_image=on_bad_image,
        allow_missing_eval_classes=allow_missing_eval_classes,
        validation_fraction=validation_fraction,
    )
    schema_gen = tfx.components.ImportSchemaGen(
        schema_file=os.path.join(schema_dir, SCHEMA_FILE))
    statistics_gen = tfx.components.StatisticsGen(
        examples=example_gen.outputs["examples"], schema=schema_gen.outputs["schema"])
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
    validation_gate = SchemaValidationGate(anomalies=example_validator.outputs["anomalies"])
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        custom_config={
            transform_module.IMAGE_SIZE_CONFIG_KEY: image_size,
            transform_module.CHANNELS_CONFIG_KEY: channels,
        },
        disable_statistics=not transform_statistics,
    )
    # Transform reads examples directly; this edge makes it wait for a clean validation.
    transform.add_upstream_node(validation_gate)
    components = [example_gen, schema_gen, statistics_gen, example_validator, validation_gate,
                  transform]

    unknown = set(architectures) - set(configs.ARCHITECTURES)
    if unknown:
        raise ValueError(f"unknown architectures {sorted(unknown)}; "
                         f"choose from {configs.ARCHITECTURES}")
    if architectures:
        if classes is None:
            raise ValueError("training needs the class names: pass classes explicitly")
        label_names = sorted(set(classes) - set(exclude_classes))
        baseline = tfx.dsl.Resolver(
            strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
            model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
            model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
        ).with_id("LatestBlessedModel")
        components.append(baseline)
        eval_config = evaluation.eval_config(label_names, min_accuracy)
        has_valid_split = bool(validation_fraction) or configs.VALID_SPLIT in (
            set(split_ratios or {}) | set(split_folders.values()))
        train_args = tfx.proto.TrainArgs(splits=[configs.TRAIN_SPLIT], num_steps=0)
        eval_args = tfx.proto.EvalArgs(
            splits=[configs.VALID_SPLIT if has_valid_split else configs.EVAL_SPLIT], num_steps=0)
        candidates = {}
        for arch in architectures:
            custom_config = {**(training or {}),
                             **(training_by_architecture or {}).get(arch, {}),
                             "architecture": arch,
                             "label_names": label_names,
                             "variant": (model_variants or {}).get(arch, "fer"),
                             "weights": (weights or {}).get(arch)}
            tuner = None
            if enable_tuning:
                tuner = tfx.components.Tuner(
                    tuner_fn=TUNER_FN,
                    examples=transform.outputs["transformed_examples"],
                    transform_graph=transform.outputs["transform_graph"],
                    train_args=train_args,
                    eval_args=eval_args,
                    custom_config=custom_config,
                ).with_id(f"Tuner_{arch}")
                components.append(tuner)
            trainer = tfx.components.Trainer(
                run_fn=RUN_FN,
                examples=transform.outputs["transformed_examples"],
                transform_graph=transform.outputs["transform_graph"],
                hyperparameters=tuner.outputs["best_hyperparameters"] if tuner else None,
                train_args=train_args,
                eval_args=eval_args,
                custom_config=custom_config,
            ).with_id(f"Trainer_{arch}")
            evaluator = tfx.components.Evaluator(
                examples=example_gen.outputs["examples"],
                model=trainer.outputs["model"],
                baseline_model=baseline.outputs["model"],
                eval_config=eval_config,
                example_splits=[configs.EVAL_SPLIT],
            ).with_id(f"Evaluator_{arch}")
            components += [trainer, evaluator]
            candidates[arch] = {"model": trainer.outputs["model"],
                                "blessing": evaluator.outputs["blessing"],
                                "evaluation": evaluator.outputs["evaluation"]}
        selector = ModelSelector(candidates=candidates, metric=selection_metric,
                                 label_names=label_names)
        components.append(selector)
        if serving_dir:
            components.append(tfx.components.Pusher(
                model=selector.outputs["model"],
                model_blessing=selector.outputs["blessing"],
                push_destination=tfx.proto.PushDestination(
                    filesystem=tfx.proto.PushDestination.Filesystem(
                        base_directory=os.path.join(serving_dir, model_name))),
                custom_executor_spec=executor_spec.ExecutorClassSpec(pusher_executor.Executor),
            ))

    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=components,
        enable_cache=enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(beam_pipeline_args),
    )
