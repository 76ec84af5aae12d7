"""The Trainer's input pipeline over Transform's output: batches, the shuffled and cached
training split, the validation sample, class counts and weights, training-time augmentation.
No KerasTuner here (the Evaluator and the Ensemble import the model code)."""
from __future__ import annotations

import math
from typing import Dict, List, Optional

import keras
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from components import class_metrics, contract
from components.models import augmentation

IMAGE_XF = contract.IMAGE_XF_KEY
LABEL_XF = contract.LABEL_XF_KEY
# Memory for the training shuffle buffer (serialized transformed examples, ~4 bytes a value).
SHUFFLE_BUFFER_BYTES = 1 << 30
# Records per read when the training split is cached in memory (see input_fn).
CACHE_READ_BATCH = 1024


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
