"""Warm-up records of an exported model: written at export, replayed by TF Serving and fer-serve.

TF Serving reads `<version>/assets.extra/tf_serving_warmup_requests` (a TFRecord file of
`PredictionLog`s) when it loads a version and runs every request before the version takes
traffic, so the first real request does not pay for graph initialisation. The requests carry
real encoded images (synthetic ones: no data set image leaves the pipeline) in the batch sizes
clients use.
"""
from __future__ import annotations

import os
from typing import List, Sequence

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from components import contract

WARMUP_BATCH_SIZES = (1, 8, 32)


def warmup_images(count: int, size: int = contract.DEFAULT_IMAGE_SIZE) -> List[bytes]:
    """`count` encoded images: PNG and JPEG, gray and RGB, at the model size and larger, so every
    decode and resize branch of the serving graph runs once."""
    rng = np.random.default_rng(0)
    images = []
    for i in range(count):
        side = size if i % 2 == 0 else size * 2
        channels = 1 if i % 4 < 2 else 3
        pixels = rng.integers(0, 256, size=(side, side, channels), dtype=np.uint8)
        encode = tf.io.encode_png if i % 3 else tf.io.encode_jpeg
        images.append(encode(pixels).numpy())
    return images


def warmup_requests(model_name: str = contract.MODEL_NAME,
                    batch_sizes: Sequence[int] = WARMUP_BATCH_SIZES
                    ) -> List[predict_pb2.PredictRequest]:
    requests = []
    for batch_size in batch_sizes:
        request = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(name=model_name,
                                           signature_name=contract.SERVING_SIGNATURE))
        request.inputs[contract.SERVING_INPUT_KEY].CopyFrom(
            tf.make_tensor_proto(warmup_images(batch_size), dtype=tf.string))
        requests.append(request)
    return requests


def write_warmup_requests(saved_model_dir: str, model_name: str = contract.MODEL_NAME,
                          batch_sizes: Sequence[int] = WARMUP_BATCH_SIZES) -> str:
    """Writes the warm-up file into an exported SavedModel; returns its path."""
    path = os.path.join(saved_model_dir, contract.WARMUP_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for request in warmup_requests(model_name, batch_sizes):
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path


def read_warmup_requests(saved_model_dir: str) -> List[predict_pb2.PredictRequest]:
    """The PredictRequests of a version's warm-up file ([] when it has none).

    Raises ValueError for a record that is not a PredictionLog with a predict request: TF Serving
    refuses to load such a version, and so does fer-serve."""
    path = os.path.join(saved_model_dir, contract.WARMUP_FILE)
    if not tf.io.gfile.exists(path):
        return []
    requests = []
    for i, record in enumerate(tf.data.TFRecordDataset(path).as_numpy_iterator()):
        log = prediction_log_pb2.PredictionLog.FromString(record)
        if log.WhichOneof("log_type") != "predict_log":
            raise ValueError(f"{path}: record {i} is a {log.WhichOneof('log_type')}, "
                             "not a predict_log")
        requests.append(log.predict_log.request)
    return requests
