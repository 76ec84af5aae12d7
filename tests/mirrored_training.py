"""Trains and exports a model through the Trainer's MirroredStrategy path on two logical CPUs.

  python -m tests.mirrored_training WORK_DIR

Run in its own process (tests/mirrored_training_test.py): the CPU must be split into two logical
devices before TensorFlow initialises its devices. Builds a real tf.Transform graph on a few
generated faces (TFT's in-memory Beam API, with the project's preprocessing_fn), writes the
transformed examples, and calls `trainer.run_fn` with `distribute="mirrored"`.
"""
from __future__ import annotations

import json
import os
import sys

import components  # noqa: F401  (TF_USE_LEGACY_KERAS=0 before TensorFlow loads)

# isort: split
import tensorflow as tf

SIZE = 32
CLASSES = ["happy", "sad"]


def split_cpu(devices: int = 2) -> None:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(devices)])


def transform(work_dir: str, per_class: int = 16):
    """Transform graph + transformed train/eval TFRecords of generated faces."""
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io

    from components import contract
    from components import transform as transform_module
    from tests import image_folders

    raw = [{contract.IMAGE_KEY: [image_folders.encode(image_folders.face(name, seed=i))],
            contract.LABEL_KEY: [label]}
           for label, name in enumerate(CLASSES) for i in range(per_class)]
    spec = {contract.IMAGE_KEY: tf.io.FixedLenFeature([1], tf.string),
            contract.LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64)}
    metadata = dataset_metadata.DatasetMetadata.from_feature_spec(spec)
    graph_dir = os.path.join(work_dir, "transform_graph")
    with tft_beam.Context(temp_dir=os.path.join(work_dir, "tft_tmp"), force_tf_compat_v1=False):
        (transformed, transformed_metadata), transform_fn = (
            (raw, metadata) | tft_beam.AnalyzeAndTransformDataset(
                lambda inputs: transform_module.preprocessing_fn(
                    inputs, {transform_module.IMAGE_SIZE_CONFIG_KEY: SIZE})))
        _ = transform_fn | tft_beam.WriteTransformFn(graph_dir)
    metadata_io.write_metadata(
        metadata, os.path.join(graph_dir, tft.TFTransformOutput.RAW_METADATA_DIR))
    coder = tft.coders.ExampleProtoCoder(transformed_metadata.schema)
    files = {}
    for split in ("train", "eval"):
        path = os.path.join(work_dir, f"{split}.gz")
        with tf.io.TFRecordWriter(path, options="GZIP") as writer:
            for example in transformed:
                writer.write(coder.encode(example))
        files[split] = [path]
    return graph_dir, files


def main(work_dir: str) -> int:
    split_cpu(2)
    from tfx import v1 as tfx
    from tfx.components.trainer import fn_args_utils
    from tfx_bsl.public import tfxio

    from components.models import trainer, training_summary

    graph_dir, files = transform(work_dir)

    def dataset_factory(pattern, options, schema):
        return tfxio.TFExampleRecord(file_pattern=pattern, schema=schema).TensorFlowDataset(
            options)

    model_run = os.path.join(work_dir, "trainer", "model_run")
    serving = os.path.join(work_dir, "trainer", "model", "Format-Serving")
    os.makedirs(model_run)
    fn_args = fn_args_utils.FnArgs(
        train_files=files["train"], eval_files=files["eval"],
        transform_graph_path=graph_dir, transform_output=graph_dir,
        model_run_dir=model_run, serving_model_dir=serving, working_dir=work_dir,
        data_accessor=tfx.components.DataAccessor(
            tf_dataset_factory=dataset_factory, record_batch_factory=None,
            data_view_decode_fn=None),
        custom_config={"architecture": "vgg16", "label_names": CLASSES, "epochs": 2,
                       "batch_size": 4, "width": 0.125, "augment": True, "crop_pad": 2,
                       "augment_in_model": True,
                       "label_smoothing": 0.1, "distribute": "mirrored",
                       "test_time_augmentation": "flip"},
        hyperparameters=None)
    trainer.run_fn(fn_args)
    summary = training_summary.read_training_summary(model_run)
    served = tf.saved_model.load(serving).signatures["serving_default"]
    from tests import image_folders
    outputs = served(tf.constant([image_folders.encode(image_folders.face("sad", seed=99))]))
    print(json.dumps({"replicas": summary["replicas"], "batch_size": summary["batch_size"],
                      "epochs_run": summary["epochs_run"],
                      "logical_cpus": len(tf.config.list_logical_devices("CPU")),
                      "probabilities": outputs["probabilities"].numpy().tolist()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
