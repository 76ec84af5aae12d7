"""Classifying image files on this machine with the Pusher's TFLite model
(`fer-client predict --tflite PATH`), no server involved.

The TFLite model takes Transform's images (float32 [B, H, W, C] in [0, 1]); this module makes
them from the encoded files with components/transform.py's `decode_images`, the code the
SavedModel's Transform layer runs, so both see the same pixels. The model's input shape gives
H, W and C; its metadata (contract.TFLITE_CLASS_NAMES_METADATA) the class names. Images are
checked as fer-serve checks them (serving/images.py) and fail the same way, naming each bad
image. Answers are serving.client.ImagePrediction, as from a server.

The interpreter is LiteRT's (`ai_edge_litert`) when installed, else TensorFlow's
`tf.lite.Interpreter` (deprecated in TF 2.21 in LiteRT's favour, but there; neither stack's
lock installs LiteRT).
"""
from __future__ import annotations

import json
import os
import warnings
from typing import List, Optional, Sequence

import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as tflite_schema

from components import contract, transform
from serving import client as client_lib
from serving import errors
from serving import images as images_lib


def model_file(path: str) -> str:
    """The .tflite file `path` names: the file itself, a version directory holding
    contract.TFLITE_FILE, or the base directory of versions (`<serving_dir>/fer-tflite`: its
    newest). Raises FileNotFoundError naming what was looked for."""
    if os.path.isfile(path):
        return path
    if not os.path.isdir(path):
        raise FileNotFoundError(f"no TFLite model at {path}")
    in_version = os.path.join(path, contract.TFLITE_FILE)
    if os.path.isfile(in_version):
        return in_version
    # Only decimal names are versions: the Pusher's staging folders start with a dot.
    versions = sorted((name for name in os.listdir(path) if name.isascii() and name.isdigit()),
                      key=int)
    if not versions:
        raise FileNotFoundError(f"{path} holds neither {contract.TFLITE_FILE} nor version "
                                f"directories")
    newest = os.path.join(path, versions[-1], contract.TFLITE_FILE)
    if not os.path.isfile(newest):
        raise FileNotFoundError(f"the newest version {versions[-1]} under {path} has no "
                                f"{contract.TFLITE_FILE}")
    return newest


def version_of(model_path: str) -> Optional[int]:
    """The version a .tflite file belongs to: its folder's name when that is a version number."""
    folder = os.path.basename(os.path.dirname(os.path.abspath(model_path)))
    return int(folder) if folder.isascii() and folder.isdigit() else None


def class_names(model: bytes) -> List[str]:
    """The class names, in probability order, from a TFLite flatbuffer's metadata entry
    contract.TFLITE_CLASS_NAMES_METADATA. Raises ValueError when it has none."""
    root = tflite_schema.Model.GetRootAs(model, 0)
    for i in range(root.MetadataLength()):
        entry = root.Metadata(i)
        if (entry.Name() or b"").decode() == contract.TFLITE_CLASS_NAMES_METADATA:
            data = root.Buffers(entry.Buffer()).DataAsNumpy()
            return list(json.loads(np.asarray(data, np.uint8).tobytes().decode()))
    raise ValueError(f"the TFLite model has no {contract.TFLITE_CLASS_NAMES_METADATA!r} "
                     f"metadata: not a model the Pusher wrote")


def _interpreter(model: bytes, num_threads: Optional[int]):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():  # TF 2.21's deprecation notice, once per process
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        return Interpreter(model_content=model, num_threads=num_threads)


class TFLiteClassifier:
    """The TFLite model at `path` (model_file's forms), answering `predict` as the servers'
    clients do; `num_threads` None: the interpreter's default. Raises FileNotFoundError, or
    ValueError for a file without class names or that TFLite cannot load."""

    def __init__(self, path: str, num_threads: Optional[int] = None):
        self.path = model_file(path)
        with open(self.path, "rb") as f:
            model = f.read()
        self.classes = class_names(model)
        self.version = version_of(self.path)
        self._interpreter = _interpreter(model, num_threads)
        image_input = self._interpreter.get_input_details()[0]
        self._input_index = image_input["index"]
        self._output_index = self._interpreter.get_output_details()[0]["index"]
        _, height, width, self.channels = (int(d) for d in image_input["shape"])
        if height != width:
            raise ValueError(f"the model takes {height}x{width} images; Transform makes square "
                             f"ones")
        self.image_size = height
        self._interpreter.allocate_tensors()  # here, where fer-client keeps TFLite's INFO line
        self._decode = tf.function(
            lambda encoded: transform.decode_images(encoded, self.image_size, self.channels),
            input_signature=[tf.TensorSpec([None], tf.string)])
        # Traced here, where fer-client keeps TensorFlow's device start-up lines off the console.
        self._decode(tf.reshape(tf.io.encode_png(
            tf.zeros([self.image_size, self.image_size, self.channels], tf.uint8)), [1]))

    def preprocess(self, images: Sequence[bytes]) -> np.ndarray:
        """Transform's images [N, size, size, channels] from encoded `images`. Raises
        ClientError INVALID_ARGUMENT naming each image fer-serve would refuse."""
        try:
            images_lib.check_batch(images)
            try:
                return self._decode(tf.constant(list(images), tf.string)).numpy()
            except (tf.errors.InvalidArgumentError, ValueError) as e:
                raise images_lib.undecodable_error(images, e) from e
        except errors.ServingError as e:
            raise client_lib.ClientError(e.code.name, e.message) from e

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """The model's class probabilities [N, classes] for Transform's images `pixels`, one
        interpreter call per image (the model takes one: components/pusher/tflite.py)."""
        rows = []
        for image in pixels.astype(np.float32):
            self._interpreter.set_tensor(self._input_index, image[None])
            self._interpreter.invoke()
            rows.append(np.array(self._interpreter.get_tensor(self._output_index)[0]))
        return np.array(rows).reshape(len(rows), len(self.classes))

    def predict(self, images: Sequence[bytes], batch_size: int = 32
                ) -> List[client_lib.ImagePrediction]:
        """Classifies `images` (encoded JPEG, PNG, BMP or GIF bytes) in batches of at most
        `batch_size`; one ImagePrediction per image, in order, with this file's version. Raises
        ClientError INVALID_ARGUMENT naming each bad image of a batch (the whole list fails, as
        with a server), ValueError for a `batch_size` below 1."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be 1 or more, got {batch_size}")
        results = []
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            for row in self.probabilities(self.preprocess(batch)):
                results.append(client_lib.ImagePrediction(
                    list(self.classes), [float(p) for p in row], self.version))
        return results

    def close(self) -> None:
        """Nothing to release; here so that fer-client treats it as it treats a server's
        client."""
