"""The FER pipeline graph. `create_pipeline` takes every path and option as an argument."""
from __future__ import annotations

import os
from typing import Mapping, Optional, Sequence

from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

from components.image_example_gen.component import ImageFolderExampleGen
from components.validation_gate import SchemaValidationGate
from components import transform as transform_module
from pipeline import configs

SCHEMA_FILE = "schema.pbtxt"
PREPROCESSING_FN = f"{transform_module.__name__}.preprocessing_fn"


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
    on_bad_image: str = configs.ON_BAD_IMAGE_FAIL,
    allow_missing_eval_classes: bool = False,
    metadata_connection_config: Optional[metadata_store_pb2.ConnectionConfig] = None,
    beam_pipeline_args: Sequence[str] = (),
    enable_cache: bool = False,
    transform_statistics: bool = False,
) -> tfx.dsl.Pipeline:
    """Builds the pipeline: image folders -> examples -> statistics/validation -> Transform.

    `transform_statistics` makes Transform compute pre-/post-transform statistics too; off by
    default: StatisticsGen already covers the raw features, and statistics over every pixel of
    the transformed images cost more than they tell (see BENCHMARKS.md).

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

    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=[example_gen, schema_gen, statistics_gen, example_validator,
                    validation_gate, transform],
        enable_cache=enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(beam_pipeline_args),
    )
