"""Running ImageFolderExampleGen's executor on a folder and reading what it wrote (test helpers)."""
import json
import os

import tensorflow as tf
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils, standard_artifacts

from components import contract
from components.image_example_gen import executor
from components.image_example_gen.component import IngestReport

CLASSES = ("happy", "sad")


def run_executor(root, out_dir, **params):
    examples = standard_artifacts.Examples()
    examples.uri = os.path.join(out_dir, "examples")
    report = IngestReport()
    report.uri = os.path.join(out_dir, "report")
    exec_properties = {
        executor.INPUT_BASE_KEY: root,
        executor.SPLIT_FOLDERS_KEY: json.dumps(params.pop("split_folders",
                                                          contract.DEFAULT_SPLIT_FOLDERS)),
        executor.CLASSES_KEY: json.dumps(params.pop("classes", list(CLASSES))),
        executor.EXCLUDE_CLASSES_KEY: json.dumps(params.pop("exclude_classes", [])),
        executor.SPLIT_RATIOS_KEY: (json.dumps(params["split_ratios"])
                                    if params.get("split_ratios") else None),
        executor.ON_BAD_IMAGE_KEY: params.pop("on_bad_image", contract.ON_BAD_IMAGE_FAIL),
        executor.ALLOW_MISSING_EVAL_CLASSES_KEY: int(params.pop("allow_missing", False)),
        executor.VALIDATION_FRACTION_KEY: params.pop("validation_fraction", None),
    }
    exec_properties.update(params.pop("exec_properties", {}))
    params.pop("split_ratios", None)
    assert not params, params
    context = base_beam_executor.BaseBeamExecutor.Context(
        beam_pipeline_args=["--direct_running_mode=in_memory"])
    executor.Executor(context).Do({}, {executor.EXAMPLES_KEY: [examples],
                                       executor.INGEST_REPORT_KEY: [report]}, exec_properties)
    return examples, report


def read_examples(examples, split):
    split_dir = artifact_utils.get_split_uri([examples], split)
    out = []
    for name in sorted(os.listdir(split_dir)):
        ds = tf.data.TFRecordDataset(os.path.join(split_dir, name), compression_type="GZIP")
        out.extend(tf.train.Example.FromString(r.numpy()) for r in ds)
    return out
