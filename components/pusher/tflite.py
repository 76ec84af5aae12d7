"""The TFLite copy of a pushed model, for devices and for `fer-client predict --tflite`.

TFLite's builtin ops decode no PNG or JPEG and take no string tensors, so what is converted is
the exported module's float-image function (contract.IMAGES_FUNCTION) for one image: Transform's
image [1, H, W, C] in [0, 1] -> class probabilities [1, C], test-time views and the ensemble's
mean included, the SavedModel's math after its Transform layer. Whoever runs it decodes and
resizes with components/transform.py's `decode_images` first, as serving/tflite_predict.py does.

Weights are stored as float16 (computation stays float32). The class names, in probability
order, are a JSON list in the flatbuffer's metadata table under
contract.TFLITE_CLASS_NAMES_METADATA: the file alone says what its outputs mean.
"""
from __future__ import annotations

import json
import os
from typing import List, Sequence

import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as tflite_schema
from tensorflow.lite.python.convert_phase import ConverterError
from tensorflow.lite.tools import flatbuffer_utils

from components import contract

FLOAT16 = "float16"
# Dynamic-range quantization (int8 weights, float activations): measured by bench/tflite_bench.py,
# not written by the Pusher, which has no eval examples to check its accuracy against.
DYNAMIC_INT8 = "dynamic_int8"
QUANTIZATIONS = (FLOAT16, DYNAMIC_INT8)


class NotConvertibleError(ValueError):
    """Why a SavedModel has no TFLite twin: exported before the float-image function existed,
    or TFLite cannot express it (bfloat16 arithmetic, the gpu profile's mixed precision)."""


def _class_names(loaded) -> List[str]:
    """The served class names, in probability order: what the serving signature answers for a
    blank image (the module's class-name constant is not a saved attribute)."""
    shape = [int(d) for d in getattr(loaded, contract.IMAGES_FUNCTION)
             .get_concrete_function().inputs[0].shape[1:]]
    blank = tf.io.encode_png(tf.zeros(shape, tf.uint8))
    served = loaded.signatures[contract.SERVING_SIGNATURE](
        **{contract.SERVING_INPUT_KEY: tf.reshape(blank, [1])})
    return [c.decode() for c in served[contract.CLASSES_KEY].numpy()[0]]


def convert(saved_model_dir: str, quantization: str = FLOAT16) -> bytes:
    """The TFLite flatbuffer of the exported model in `saved_model_dir` (float16 or dynamic
    int8 weights), with its class names in the metadata. Raises NotConvertibleError for a
    model exported without contract.IMAGES_FUNCTION or one TFLite's converter refuses."""
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    loaded = tf.saved_model.load(saved_model_dir)
    function = getattr(loaded, contract.IMAGES_FUNCTION, None)
    if function is None:
        raise NotConvertibleError(
            f"{saved_model_dir} has no {contract.IMAGES_FUNCTION} function (exported by an "
            f"older version of components/models/export.py): no TFLite model")
    # One image per call, every shape static: with the saved function's dynamic batch the
    # interpreter keeps dynamic-sized tensors, and its XNNPACK delegate then stays off.
    image_shape = function.get_concrete_function().inputs[0].shape[1:]
    one_image = tf.function(function, input_signature=[
        tf.TensorSpec([1, *image_shape], tf.float32, name="images")])
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [one_image.get_concrete_function()], loaded)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]  # no representative data: weights only
    if quantization == FLOAT16:
        converter.target_spec.supported_types = [tf.float16]
    try:
        model = converter.convert()
    except ConverterError as e:
        raise NotConvertibleError(f"TFLite cannot convert {saved_model_dir}: "
                                  f"{str(e).strip().splitlines()[-1]}") from e
    return with_class_names(model, _class_names(loaded))


def with_class_names(model: bytes, class_names: Sequence[str]) -> bytes:
    """`model` (a TFLite flatbuffer) with `class_names` as a JSON list in its metadata table
    under contract.TFLITE_CLASS_NAMES_METADATA (replacing an entry of that name)."""
    model_t = flatbuffer_utils.convert_bytearray_to_object(bytearray(model))
    buffer = tflite_schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(list(class_names)).encode(), np.uint8)
    model_t.buffers.append(buffer)
    entry = tflite_schema.MetadataT()
    entry.name = contract.TFLITE_CLASS_NAMES_METADATA
    entry.buffer = len(model_t.buffers) - 1
    kept = [m for m in (model_t.metadata or [])
            if _text(m.name) != contract.TFLITE_CLASS_NAMES_METADATA]
    model_t.metadata = kept + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model_t))


def _text(name) -> str:
    return name.decode() if isinstance(name, bytes) else str(name)


def write_version(saved_model_dir: str, version_dir: str) -> str:
    """Writes the float16 TFLite model of `saved_model_dir` to `version_dir`/contract.TFLITE_FILE
    (creating the folder); returns the file's path."""
    os.makedirs(version_dir, exist_ok=True)
    path = os.path.join(version_dir, contract.TFLITE_FILE)
    with open(path, "wb") as f:
        f.write(convert(saved_model_dir, FLOAT16))
    return path
