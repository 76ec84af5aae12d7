"""Tiny trained exports for the TFLite tests (test helper): a Transform graph of the pipeline's
own preprocessing_fn, two small convolutional networks trained for a few seconds on generated
faces, and their exports through components/models/export.py (one network with ten test-time
crops; both as an ensemble), with held-out faces and labels to measure them on.

The networks are not the project's VGG16/ResNet50 (too slow to train in a test); what the
TFLite conversion depends on is the export around them (Transform layer, test-time views, the
ensemble's mean), which is the project's own."""
from __future__ import annotations

import dataclasses
import os
import tempfile
from typing import List

import numpy as np
import tensorflow as tf

from components import contract, transform
from components.image_example_gen import tf_examples
from tests import image_folders, transform_graphs

IMAGE_SIZE = transform_graphs.IMAGE_SIZE
LABELS = transform_graphs.LABELS
TRAIN_PER_CLASS = 40
HELD_OUT_PER_CLASS = 12   # 36 held-out images


@dataclasses.dataclass
class TrainedExports:
    single: str                 # SavedModel dir: one network, ten test-time crops
    ensemble: str               # SavedModel dir: the mean of two networks
    images: List[bytes]         # held-out encoded faces
    labels: np.ndarray          # their label ids (index into LABELS)


def _faces(per_class: int, first_seed: int):
    images, labels = [], []
    for i in range(per_class):
        for label, name in enumerate(LABELS):
            images.append(image_folders.encode(image_folders.face(name, first_seed + i)))
            labels.append(label)
    return images, np.array(labels)


def _train_network(images, labels, seed: int):
    import keras

    keras.utils.set_random_seed(seed)
    network = keras.Sequential([
        keras.Input([IMAGE_SIZE, IMAGE_SIZE, 1]),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(len(LABELS), activation="softmax"),
    ])
    network.compile(optimizer=keras.optimizers.Adam(0.01),
                    loss="sparse_categorical_crossentropy")
    network.fit(images, labels, epochs=10, batch_size=30, verbose=0)
    return network


def trained_exports(root: str) -> TrainedExports:
    """Trains the two networks and writes both exports under `root`."""
    import tensorflow_transform as tft

    from components.models import export

    tf_transform_output = tft.TFTransformOutput(
        transform_graphs.write(os.path.join(root, "transform_graph")))
    train_bytes, train_labels = _faces(TRAIN_PER_CLASS, first_seed=0)
    pixels = transform.decode_images(np.array(train_bytes, dtype=object), IMAGE_SIZE, 1).numpy()
    networks = [_train_network(pixels, train_labels, seed) for seed in (1, 2)]
    single = os.path.join(root, "single")
    export.export_model(networks[0], tf_transform_output, LABELS, single, "crops", 2)
    ensemble = os.path.join(root, "ensemble")
    export.export_members([export.Member(networks[0], "crops", 2),
                           export.Member(networks[1], "flip")],
                          tf_transform_output, LABELS, ensemble)
    held_out, held_out_labels = _faces(HELD_OUT_PER_CLASS, first_seed=10_000)
    return TrainedExports(single, ensemble, held_out, held_out_labels)


_SHARED: dict = {}


def shared_trained_exports() -> TrainedExports:
    """`trained_exports` built once per test process (about 30 s on 2 cores) for every test
    module that needs them, in a temporary folder removed at exit."""
    if "exports" not in _SHARED:
        import atexit
        import shutil

        root = tempfile.mkdtemp(prefix="tflite_exports_")
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        _SHARED["exports"] = trained_exports(root)
    return _SHARED["exports"]


def eval_examples_artifact(root, images, labels, names=LABELS) -> str:
    """An Examples artifact at `root` (a pathlib.Path) holding an eval split, as ExampleGen
    writes it, of encoded `images` with label ids `labels` into `names`."""
    split_dir = root / f"Split-{contract.EVAL_SPLIT}"
    split_dir.mkdir(parents=True)
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    with tf.io.TFRecordWriter(str(split_dir / "data_tfrecord-00000-of-00001.gz"),
                              options) as writer:
        for i, (data, label) in enumerate(zip(images, labels, strict=True)):
            writer.write(tf_examples.make_example(
                data, int(label), names[label], f"eval/{i}.jpg", "JPEG", 48, 48, 1)
                .SerializeToString())
    return str(root)
