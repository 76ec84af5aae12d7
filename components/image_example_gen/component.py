"""ImageFolderExampleGen: a TFX component that turns class folders of images into Examples."""
from __future__ import annotations

import json
from typing import Mapping, Optional, Sequence

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components import contract
from components.image_example_gen import csv_source, driver, executor


class IngestReport(types.Artifact):
    """What ImageFolderExampleGen read: `summary.json` (counts) and `skipped.jsonl` (every skip)."""

    # KFP v2 takes "ns.Name" only, and its container entry point imports the class by it.
    TYPE_NAME = "components.ImageIngestReport"


class ImageFolderExampleGenSpec(ComponentSpec):
    PARAMETERS = {
        executor.INPUT_BASE_KEY: ExecutionParameter(type=str),
        executor.SPLIT_FOLDERS_KEY: ExecutionParameter(type=str),           # JSON object
        executor.CLASSES_KEY: ExecutionParameter(type=str, optional=True),   # JSON list; unset: all
        executor.EXCLUDE_CLASSES_KEY: ExecutionParameter(type=str, optional=True),  # JSON list
        executor.SPLIT_RATIOS_KEY: ExecutionParameter(type=str, optional=True),     # JSON object
        executor.ON_BAD_IMAGE_KEY: ExecutionParameter(type=str),
        executor.ALLOW_MISSING_EVAL_CLASSES_KEY: ExecutionParameter(type=int),
        executor.VALIDATION_FRACTION_KEY: ExecutionParameter(type=float, optional=True),
        # TFX's span resolution (driver.py): the span pattern, and the span asked for.
        driver.INPUT_CONFIG_KEY: ExecutionParameter(type=str),
        driver.RANGE_CONFIG_KEY: ExecutionParameter(type=str, optional=True),  # RangeConfig JSON
        # FER2013's CSV form instead of folders (csv_source.py): its path in the data root.
        executor.DATA_CSV_KEY: ExecutionParameter(type=str, optional=True),
        executor.CSV_PRIVATE_TEST_KEY: ExecutionParameter(type=int, optional=True),
    }
    INPUTS = {}
    OUTPUTS = {
        executor.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        executor.INGEST_REPORT_KEY: ChannelParameter(type=IngestReport),
    }


class ImageFolderExampleGen(base_beam_component.BaseBeamComponent):
    """Reads `<input_base>/<split folder>/<class>/<image>` into gzipped TFRecords of tf.Examples
    (or, with `data_csv`, the rows of FER2013's CSV form into the same examples).

    With `span-<N>` folders under `input_base` (spans.py), it reads the latest span, or `span`.
    The Examples artifact records span and input fingerprint (the cache key follows the files).

    Each example holds the encoded image bytes as read, the int label (index in the sorted
    included class names), the class name, the path relative to `input_base`, and the image's
    height, width, channels and format. Outputs `examples` (splits train[/valid]/eval[/test]) and
    `ingest_report` (counts per split and class; every skipped file with its reason).
    """

    SPEC_CLASS = ImageFolderExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
    DRIVER_CLASS = driver.ImageFolderDriver

    def __init__(
        self,
        input_base: str,
        split_folders: Mapping[str, str] = contract.DEFAULT_SPLIT_FOLDERS,
        classes: Optional[Sequence[str]] = contract.DEFAULT_CLASSES,
        exclude_classes: Sequence[str] = (),
        split_ratios: Optional[Mapping[str, float]] = None,
        on_bad_image: str = contract.ON_BAD_IMAGE_FAIL,
        allow_missing_eval_classes: bool = False,
        validation_fraction: float = 0.0,
        span: Optional[int] = None,
        data_csv: Optional[str] = None,
        csv_private_test: bool = False,
    ):
        """
        Args:
          input_base: the data root.
          split_folders: split folder name -> output split ("train", "eval", "test").
          classes: class folders to ingest; None ingests every class folder found.
          exclude_classes: class folders to leave out (their files are listed as skipped).
          split_ratios: e.g. {"train": 0.8, "eval": 0.2}: hash-split a single folder.
          on_bad_image: "fail" stops on files with an image extension that cannot be decoded;
            "skip" leaves them out, counted and listed in the ingest report.
          allow_missing_eval_classes: accept an included class with no images in eval/test.
          validation_fraction: move this share of the training images (by hash of class/file
            name, so the same images every run) to a `valid` split, for the Tuner and the
            Trainer's early stopping; 0 keeps training whole.
          span: with span folders, read `span-<span>` instead of the latest one.
          data_csv: read this CSV (FER2013's `emotion,pixels,Usage`; a path relative to
            `input_base`, or to each span folder) instead of image folders. Its Usage values
            map to splits as `split_folders` maps folder names.
          csv_private_test: with `data_csv`, ingest the rows of the test split (FER2013's
            PrivateTest); by default they are listed as skipped.
        """
        if on_bad_image not in contract.ON_BAD_IMAGE_CHOICES:
            raise ValueError(f"on_bad_image must be one of {contract.ON_BAD_IMAGE_CHOICES}")
        problem = data_csv and csv_source.data_csv_problem(data_csv, split_ratios)
        if problem:
            raise ValueError(problem)
        spec = ImageFolderExampleGenSpec(
            input_base=input_base,
            split_folders=json.dumps(dict(split_folders), sort_keys=True),
            classes=None if classes is None else json.dumps(list(classes)),
            exclude_classes=json.dumps(list(exclude_classes)) if exclude_classes else None,
            split_ratios=json.dumps(dict(split_ratios), sort_keys=True) if split_ratios else None,
            on_bad_image=on_bad_image,
            allow_missing_eval_classes=int(allow_missing_eval_classes),
            validation_fraction=float(validation_fraction),
            input_config=driver.input_config(),
            range_config=None if span is None else driver.static_range(span),
            data_csv=data_csv or None,
            csv_private_test=int(csv_private_test) if data_csv else None,
            examples=types.Channel(type=standard_artifacts.Examples),
            ingest_report=types.Channel(type=IngestReport),
        )
        super().__init__(spec=spec)
