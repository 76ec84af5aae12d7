"""A tiny stand-in for a pushed model, for serving tests that must not wait for a pipeline.

Same contract as the Trainer's export (components/models/export.py): `serving_default`
takes encoded image bytes through the Transform module's decoder and returns the export's
outputs (`model_export.prediction_outputs`),
and the version carries the same warm-up file. The weights are random: tests check the plumbing,
not accuracy (the pipeline's own pushed model is served in tests/e2e_pipeline_test.py).
"""
from __future__ import annotations

import os

import tensorflow as tf

from components import contract, transform, warmup
from components.models import export as model_export
from components.pusher import executor as pusher

SIZE = contract.DEFAULT_IMAGE_SIZE


class TinyModel(tf.Module):
    def __init__(self, seed: int):
        super().__init__()
        classes = len(contract.DEFAULT_CLASSES)
        self.weights = tf.Variable(
            0.05 * tf.random.stateless_normal([SIZE * SIZE, classes], [seed, 1]))
        self.class_names = tf.constant(list(contract.DEFAULT_CLASSES))

    def _predict(self, image_bytes):
        pixels = transform.decode_images(image_bytes, SIZE, 1)
        logits = tf.reshape(pixels, [-1, SIZE * SIZE]) @ self.weights
        return model_export.prediction_outputs(tf.nn.softmax(logits), self.class_names)

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.string, name=contract.SERVING_INPUT_KEY)])
    def serve_images(self, image_bytes):
        return self._predict(image_bytes)


def export(export_dir: str, seed: int = 0, with_warmup: bool = True) -> str:
    module = TinyModel(seed)
    tf.saved_model.save(module, export_dir, signatures={
        contract.SERVING_SIGNATURE: module.serve_images.get_concrete_function()})
    if with_warmup:
        warmup.write_warmup_requests(export_dir)
    return export_dir


def push(export_dir: str, model_base_path: str) -> int:
    """Publishes an exported model the way the Pusher does; returns its version."""
    return int(os.path.basename(pusher.publish_atomically(export_dir, model_base_path)))
