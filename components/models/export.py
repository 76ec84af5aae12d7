"""The exported serving model: Transform graph + Keras model(s) + class names, with the
signatures named in components/contract.py and the warm-up records TF Serving replays. One
network (a Trainer) or several averaged (the Ensemble), each with its own test-time views.

Beside the signatures the module keeps contract.IMAGES_FUNCTION, the same probabilities from
the Transform layer's output (float images), which the Pusher converts to TFLite
(components/pusher/tflite.py). It is no signature, so TF Serving never lists it."""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Sequence

import keras
import tensorflow as tf
import tensorflow_transform as tft

from components import contract, warmup
from components.models import augmentation


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
        image_shape = tf_transform_output.transformed_feature_spec()[contract.IMAGE_XF_KEY].shape
        # A tf.function per instance: its input signature is this Transform graph's image shape.
        setattr(self, contract.IMAGES_FUNCTION, tf.function(
            self._probabilities,
            input_signature=[tf.TensorSpec([None, *image_shape], tf.float32, name="images")]))

    def _probabilities(self, images):
        """Mean class probabilities [B, C] of the networks over Transform's images."""
        # The mean of one tensor is that tensor, bit for bit.
        return tf.reduce_mean(tf.stack([
            predict_probabilities(network, images, tta, tta_shift)
            for network, (tta, tta_shift) in zip(self.networks, self._views, strict=True)]),
            axis=0)

    def _predict(self, image_bytes):
        transformed = self.tft_layer({contract.IMAGE_KEY: tf.reshape(image_bytes, [-1, 1])})
        probabilities = self._probabilities(transformed[contract.IMAGE_XF_KEY])
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
