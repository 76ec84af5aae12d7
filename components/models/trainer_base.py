"""Trainer module, input and export side: what training reads and what the pushed model is.

The input pipeline over Transform's output (batches, shuffling, validation sample, class
counts), training-time augmentation, the exported serving model (Transform graph + Keras
model(s) + class names, with the signatures named in components/contract.py), and the training
summary file each Trainer writes. No KerasTuner here: evaluation and serving code may import
this module.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, Dict, List, Optional, Sequence

import keras
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from components import class_metrics, contract, warmup
from components.models import augmentation

IMAGE_XF = contract.IMAGE_XF_KEY
LABEL_XF = contract.LABEL_XF_KEY
# Memory for the training shuffle buffer (serialized transformed examples, ~4 bytes a value).
SHUFFLE_BUFFER_BYTES = 1 << 30
# Records per read when the training split is cached in memory (see input_fn).
CACHE_READ_BATCH = 1024
TRAINING_LOG = "training_log.csv"              # per-epoch metrics, in the Trainer's model_run
TRAINING_SUMMARY_FILE = "training_summary.json"  # what was trained and how, in model_run


# --- Input pipeline ---------------------------------------------------------------------------

def augmenter(seed: int, zoom: float = 0.0, crop_pad: int = 0,
              erasing: float = 0.0) -> keras.Sequential:
    """Training-time augmentation (never in Transform or the exported model); see
    augmentation.augmentation_layers."""
    return keras.Sequential(augmentation.augmentation_layers(seed, zoom, crop_pad, erasing),
                            name="augment")


def shuffle_buffer_size(num_examples: int, image_shape) -> int:
    """The whole split when it fits in SHUFFLE_BUFFER_BYTES (FER2013 at 48 px: ~260 MB).

    The examples arrive grouped by class (ExampleGen lists one class folder after another and
    the local Beam runner keeps that order), so a buffer much smaller than the split would feed
    batches drawn from one or two classes at a time. Larger datasets should be written in
    many shards; the buffer is capped by memory.
    """
    per_example = 4 * math.prod(int(d) for d in image_shape) + 256
    return max(1, min(int(num_examples), SHUFFLE_BUFFER_BYTES // per_example))


def _image_and_label(features, label):
    return features[IMAGE_XF], tf.reshape(label, [-1])


def input_fn(file_pattern: List[str], data_accessor: tfx.components.DataAccessor,
             tf_transform_output: tft.TFTransformOutput, batch_size: int, training: bool,
             augment: Optional[keras.layers.Layer] = None, seed: int = 42,
             num_examples: int = 0, max_examples: int = 0,
             one_hot_classes: int = 0) -> tf.data.Dataset:
    """(image [B, H, W, C] float32, label [B] int64) batches from transformed examples.

    Training batches are shuffled across the whole split (`num_examples`; see
    `shuffle_buffer_size`; a split that fits that buffer is also cached in memory after its
    first read), pass through `augment` (a layer, e.g. `augmenter(...)`) and repeat
    forever; evaluation reads the split once, in order, or, with `max_examples`, the same random
    subset of that many examples on every pass. With `one_hot_classes`, labels are one-hot
    float32 [B, one_hot_classes] (for label smoothing).
    """
    buffer = shuffle_buffer_size(num_examples or 10_000, image_shape(tf_transform_output))
    schema = tf_transform_output.transformed_metadata.schema
    if training and num_examples and buffer >= num_examples:
        # The split fits in memory: read and parse it once, then every epoch is a fresh
        # permutation of the cached examples (BENCHMARKS.md#input-pipeline: reading and
        # parsing the gzipped records did not scale with cores).
        dataset = data_accessor.tf_dataset_factory(
            file_pattern,
            tfxio.TensorFlowDatasetOptions(batch_size=CACHE_READ_BATCH, label_key=LABEL_XF,
                                           shuffle=False, num_epochs=1),
            schema)
        dataset = (dataset.map(_image_and_label, num_parallel_calls=tf.data.AUTOTUNE)
                   .unbatch().cache()
                   .shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
                   .repeat().batch(batch_size))
    else:
        dataset = data_accessor.tf_dataset_factory(
            file_pattern,
            tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=LABEL_XF,
                                           shuffle=training,
                                           shuffle_seed=seed if training else None,
                                           shuffle_buffer_size=buffer,
                                           num_epochs=None if training else 1),
            schema)
        dataset = dataset.map(_image_and_label, num_parallel_calls=tf.data.AUTOTUNE)
    if training and augment is not None:
        dataset = dataset.map(lambda x, y: (augment(x, training=True), y),
                              num_parallel_calls=tf.data.AUTOTUNE)
    if not training and max_examples:
        # Sampled across the whole split (it arrives sorted by class), fixed across epochs so
        # that epochs compare on the same examples, and cached: each epoch reads it from memory.
        dataset = (dataset.unbatch()
                   .shuffle(buffer, seed=seed, reshuffle_each_iteration=False)
                   .take(max_examples).batch(batch_size).cache())
    if one_hot_classes:
        dataset = dataset.map(lambda x, y: (x, tf.one_hot(y, one_hot_classes)),
                              num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def count_labels(file_pattern: List[str], num_classes: int) -> List[int]:
    """Examples per class in transformed TFRecords (reads only the label)."""
    files = [f for p in file_pattern for f in tf.io.gfile.glob(p)]
    spec = {LABEL_XF: tf.io.FixedLenFeature([], tf.int64)}
    counts = tf.zeros([num_classes], tf.int64)
    for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(4096):
        labels = tf.io.parse_example(batch, spec)[LABEL_XF]
        counts += tf.math.bincount(labels, minlength=num_classes, maxlength=num_classes,
                                   dtype=tf.int64)
    return [int(c) for c in counts.numpy()]


def class_weights(counts: List[int], weighting: str = "balanced") -> Dict[int, float]:
    """Keras's `class_weight` (label id -> weight) from class counts: class_metrics.class_weights
    ('balanced': inverse frequency, mean 1 over examples; 'none': 1; absent classes 0)."""
    return dict(enumerate(class_metrics.class_weights(counts, weighting)))


def image_shape(tf_transform_output: tft.TFTransformOutput):
    return tuple(tf_transform_output.transformed_feature_spec()[IMAGE_XF].shape)


# --- Export -----------------------------------------------------------------------------------

def prediction_outputs(probabilities: tf.Tensor, class_names: tf.Tensor) -> Dict[str, tf.Tensor]:
    """The served outputs (contract.OUTPUT_KEYS) from class probabilities [B, C]."""
    class_id = tf.argmax(probabilities, axis=-1)
    batch = tf.shape(probabilities)[0]
    return {
        contract.PROBABILITIES_KEY: probabilities,
        contract.CLASSES_KEY: tf.tile(class_names[None, :], [batch, 1]),
        contract.CLASS_ID_KEY: class_id,
        contract.PREDICTED_CLASS_KEY: tf.gather(class_names, class_id),
    }


def test_time_views(images: tf.Tensor, mode: str, shift: int) -> List[tf.Tensor]:
    """The views whose mean probability the exported model serves (training_config.TTA_MODES)."""
    if mode == "none":
        return [images]
    if mode == "flip":
        return augmentation.tta_views(images, 0)
    if mode == "crops":
        return augmentation.tta_views(images, shift)
    raise ValueError(f"unknown test-time augmentation {mode!r}")


def predict_probabilities(model: keras.Model, images: tf.Tensor, tta: str = "none",
                          tta_shift: int = 2) -> tf.Tensor:
    """float32 class probabilities [B, C]: the mean over the test-time views, in one model
    call over all of them."""
    views = test_time_views(images, tta, tta_shift)
    batch = tf.shape(images)[0]
    probabilities = tf.cast(model(tf.concat(views, axis=0), training=False), tf.float32)
    return tf.reduce_mean(tf.reshape(probabilities, [len(views), batch, -1]), axis=0)


@dataclasses.dataclass(frozen=True)
class Member:
    """One network the exported model serves, with its own test-time views."""

    network: keras.Model
    tta: str = "none"        # training_config.TTA_MODES
    tta_shift: int = 2


class ExportModule(tf.Module):
    """The served model: Transform graph + Keras networks (each with its test-time views) +
    class names. It serves the mean of the networks' probabilities: one network's own with one
    member (a Trainer's export), an ensemble's with more (components/ensemble)."""

    def __init__(self, members: Sequence[Member], tf_transform_output: tft.TFTransformOutput,
                 label_names: List[str]):
        super().__init__()
        if not members:
            raise ValueError("an exported model needs at least one network")
        for member in members:  # an unknown mode fails here, not at the first request
            test_time_views(tf.zeros([1, 8, 8, 1]), member.tta, member.tta_shift)
        self.networks = [member.network for member in members]
        self._views = [(member.tta, member.tta_shift) for member in members]
        # One Transform layer: every network reads the same decoded images.
        self.tft_layer = tf_transform_output.transform_features_layer()
        self.class_names = tf.constant(label_names)
        self._image_spec = tf_transform_output.raw_feature_spec()[contract.IMAGE_KEY]

    def _predict(self, image_bytes):
        transformed = self.tft_layer({contract.IMAGE_KEY: tf.reshape(image_bytes, [-1, 1])})
        images = transformed[IMAGE_XF]
        # The mean of one tensor is that tensor, bit for bit.
        probabilities = tf.reduce_mean(tf.stack([
            predict_probabilities(network, images, tta, tta_shift)
            for network, (tta, tta_shift) in zip(self.networks, self._views, strict=True)]),
            axis=0)
        return prediction_outputs(probabilities, self.class_names)

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.string, name=contract.SERVING_INPUT_KEY)])
    def serve_images(self, image_bytes):
        return self._predict(image_bytes)

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.string, name=contract.EXAMPLES_INPUT_KEY)])
    def serve_examples(self, examples):
        parsed = tf.io.parse_example(examples, {contract.IMAGE_KEY: self._image_spec})
        return self._predict(tf.reshape(parsed[contract.IMAGE_KEY], [-1]))


def export_members(members: Sequence[Member], tf_transform_output: tft.TFTransformOutput,
                   label_names: List[str], export_dir: str) -> None:
    """The SavedModel TF Serving loads (signatures: contract.SERVING_SIGNATURE and
    contract.EXAMPLES_SIGNATURE), with its warm-up records."""
    module = ExportModule(members, tf_transform_output, label_names)
    tf.saved_model.save(module, export_dir, signatures={
        contract.SERVING_SIGNATURE: module.serve_images.get_concrete_function(),
        contract.EXAMPLES_SIGNATURE: module.serve_examples.get_concrete_function(),
    })
    warmup.write_warmup_requests(export_dir)


def export_model(model: keras.Model, tf_transform_output: tft.TFTransformOutput,
                 label_names: List[str], export_dir: str, tta: str = "none",
                 tta_shift: int = 2) -> None:
    """A Trainer's export: one network."""
    export_members([Member(model, tta, tta_shift)], tf_transform_output, label_names,
                   export_dir)


# --- Training summary -------------------------------------------------------------------------

def write_training_summary(model_run_dir: str, summary: Dict[str, Any]) -> None:
    with tf.io.gfile.GFile(os.path.join(model_run_dir, TRAINING_SUMMARY_FILE), "w") as f:
        json.dump(summary, f, indent=2)


def read_training_summary(model_run_dir: str) -> Dict[str, Any]:
    """What a Trainer trained: architecture, variant, hyperparameters, epochs run, steps per
    epoch, batch size, training examples per class, validation files and the Keras history."""
    with tf.io.gfile.GFile(os.path.join(model_run_dir, TRAINING_SUMMARY_FILE)) as f:
        return json.load(f)
