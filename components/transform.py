"""Transform module: `preprocessing_fn` shared by training and serving.

Decodes the encoded image bytes (JPEG/PNG/BMP/GIF, any size, gray or color), converts to the
configured channels, resizes to the model input size and scales pixels to [0, 1]. The same graph
is embedded in the exported model, so serving accepts exactly what ExampleGen accepts.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import tensorflow as tf

from components import contract

IMAGE_SIZE_CONFIG_KEY = "image_size"
CHANNELS_CONFIG_KEY = "channels"


def decode_image(encoded: tf.Tensor, image_size: int, channels: int) -> tf.Tensor:
    """One encoded image (scalar string) -> float32 [image_size, image_size, channels] in [0, 1]."""
    image = tf.io.decode_image(encoded, channels=0, expand_animations=False)
    image = tf.cast(image, tf.float32)

    def from_gray():  # 1 channel, or gray + alpha
        gray = image[..., :1]
        return gray if channels == 1 else tf.tile(gray, [1, 1, 3])

    def from_color():  # RGB or RGBA
        rgb = image[..., :3]
        return tf.image.rgb_to_grayscale(rgb) if channels == 1 else rgb

    image = tf.cond(tf.shape(image)[-1] >= 3, from_color, from_gray)
    image.set_shape([None, None, channels])
    # antialias: FER faces are 48 px but user images may be far larger; plain bilinear aliases.
    image = tf.image.resize(image, [image_size, image_size], method="bilinear", antialias=True)
    return tf.clip_by_value(image / 255.0, 0.0, 1.0)


def decode_images(encoded: tf.Tensor, image_size: int, channels: int) -> tf.Tensor:
    """A batch of encoded images [B] -> float32 [B, image_size, image_size, channels]."""
    return tf.map_fn(
        lambda e: decode_image(e, image_size, channels),
        encoded,
        fn_output_signature=tf.TensorSpec([image_size, image_size, channels], tf.float32),
    )


def preprocessing_fn(inputs: Dict[str, tf.Tensor],
                     custom_config: Optional[Dict[str, Any]] = None) -> Dict[str, tf.Tensor]:
    """tf.Transform preprocessing: raw features -> model features (`image_xf`, `label_xf`)."""
    custom_config = custom_config or {}
    image_size = int(custom_config.get(IMAGE_SIZE_CONFIG_KEY, contract.DEFAULT_IMAGE_SIZE))
    channels = int(custom_config.get(CHANNELS_CONFIG_KEY, contract.DEFAULT_CHANNELS))
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")

    encoded = tf.reshape(inputs[contract.IMAGE_KEY], [-1])
    outputs = {
        contract.IMAGE_XF_KEY: decode_images(encoded, image_size, channels),
    }
    if contract.LABEL_KEY in inputs:  # absent at serving time
        outputs[contract.LABEL_XF_KEY] = tf.reshape(
            inputs[contract.LABEL_KEY], [-1])
    return outputs
