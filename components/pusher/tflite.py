"""The TFLite copy of a pushed model, for devices and for `fer-client predict --tflite`.

TFLite's builtin ops decode no PNG or JPEG and take no string tensors, so what is converted is
the exported module's float-image function (contract.IMAGES_FUNCTION) for one image: Transform's
image [1, H, W, C] in [0, 1] -> class probabilities [1, C], test-time views and the ensemble's
mean included, the SavedModel's math after its Transform layer. Whoever runs it decodes and
resizes with components/transform.py's `decode_images` first, as serving/tflite_predict.py does.

Weights are stored as float16 (computation stays float32). Given the eval split, the
dynamic-range int8 model (int8 weights, half float16's size) is measured beside it, as
`fer-client predict --tflite` runs both, and written too when its accuracy is within
INT8_MAX_ACCURACY_DROP of float16's. The class names, in probability order, are a JSON list in
the flatbuffer's metadata table under contract.TFLITE_CLASS_NAMES_METADATA: the file alone says
what its outputs mean.
"""
from __future__ import annotations

import json
import os
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as tflite_schema
from tensorflow.lite.python.convert_phase import ConverterError
from tensorflow.lite.tools import flatbuffer_utils

from components import contract
from components.image_example_gen import tf_examples
from serving import tflite_predict

FLOAT16 = "float16"
# Dynamic-range quantization (int8 weights, float activations): a quarter of float32's size, half
# of float16's, but its rounding can cost accuracy; written only when it kept its eval accuracy.
DYNAMIC_INT8 = "dynamic_int8"
QUANTIZATIONS = (FLOAT16, DYNAMIC_INT8)
FILES = {FLOAT16: contract.TFLITE_FILE, DYNAMIC_INT8: contract.TFLITE_INT8_FILE}
# The int8 model is published when its eval accuracy is at most this far (one point) below the
# float16 model's, measured on the same images.
INT8_MAX_ACCURACY_DROP = 0.01
EVAL_BATCH = 64


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


def eval_accuracy(model_path: str, images: Sequence[bytes], labels: Sequence[int]) -> float:
    """The accuracy of the TFLite model at `model_path` on encoded `images`, run as
    `fer-client predict --tflite` runs it; `labels` index the model's class names."""
    classifier = tflite_predict.TFLiteClassifier(model_path)
    probabilities = [p.probabilities for p in classifier.predict(images, EVAL_BATCH)]
    return float(np.mean(np.argmax(probabilities, axis=1) == np.asarray(labels)))


def write_version(saved_model_dir: str, version_dir: str,
                  eval_examples_uri: Optional[str] = None) -> Dict:
    """Writes the float16 TFLite model of `saved_model_dir` to `version_dir`/contract.TFLITE_FILE
    (creating the folder). With `eval_examples_uri` (an Examples artifact), also measures
    float16 and dynamic-range int8 on its eval split, writes int8 beside float16
    (contract.TFLITE_INT8_FILE) when it is at most INT8_MAX_ACCURACY_DROP below, and both
    accuracies to contract.TFLITE_EVAL_FILE. Returns {quantization: path written}, plus "eval":
    that file's content when there was an eval split to measure on."""
    os.makedirs(version_dir, exist_ok=True)
    written = {FLOAT16: _write(convert(saved_model_dir, FLOAT16), version_dir, FLOAT16)}
    if eval_examples_uri is None:
        return written
    with open(written[FLOAT16], "rb") as f:
        classes = tflite_predict.class_names(f.read())
    split = tf_examples.labelled_images(eval_examples_uri, contract.EVAL_SPLIT, classes)
    if not split.images:
        return written
    int8_path = _write(convert(saved_model_dir, DYNAMIC_INT8), version_dir, DYNAMIC_INT8)
    accuracy = {FLOAT16: eval_accuracy(written[FLOAT16], split.images, split.labels),
                DYNAMIC_INT8: eval_accuracy(int8_path, split.images, split.labels)}
    if accuracy[DYNAMIC_INT8] >= accuracy[FLOAT16] - INT8_MAX_ACCURACY_DROP:
        written[DYNAMIC_INT8] = int8_path
    else:
        os.remove(int8_path)
    written["eval"] = {"eval_images": len(split.images), "accuracy": accuracy,
                       "max_int8_accuracy_drop": INT8_MAX_ACCURACY_DROP,
                       "written": [q for q in QUANTIZATIONS if q in written]}
    with open(os.path.join(version_dir, contract.TFLITE_EVAL_FILE), "w") as f:
        json.dump(written["eval"], f, indent=2)
    return written


def _write(model: bytes, version_dir: str, quantization: str) -> str:
    path = os.path.join(version_dir, FILES[quantization])
    with open(path, "wb") as f:
        f.write(model)
    return path


def read_eval(version_dir: str) -> Optional[Dict]:
    """What write_version recorded in `version_dir`/contract.TFLITE_EVAL_FILE, None when it
    measured nothing (no eval split given)."""
    path = os.path.join(version_dir, contract.TFLITE_EVAL_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def describe(version_dir: str, recorded: Optional[Dict]) -> str:
    """One line on a version's TFLite files for the report and the model card: where, and
    how each form scored on the eval split."""
    if recorded is None:
        return f"float16 in {version_dir} (not measured on an eval split)"
    accuracy = recorded["accuracy"]
    int8 = (f"int8 {accuracy[DYNAMIC_INT8]:.4f}, written beside it"
            if DYNAMIC_INT8 in recorded["written"] else
            f"int8 {accuracy[DYNAMIC_INT8]:.4f}, more than "
            f"{100 * recorded['max_int8_accuracy_drop']:g} point below, not written")
    return (f"{version_dir}: accuracy on {recorded['eval_images']} eval images float16 "
            f"{accuracy[FLOAT16]:.4f}; {int8}")
