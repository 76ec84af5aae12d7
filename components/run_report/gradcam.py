"""Grad-CAM (Selvaraju et al., 2017): where a trained network looked to score a class.

The heat of class c on an image is ReLU(sum_k w_k A_k), where A_k are a convolutional feature
map's channels and w_k the spatial mean of d score_c / d A_k (score_c: c's logit less the mean
logit); it is scaled to [0, 1] per image and resized (bilinear) to the network's input size, so
it overlays the input.

Which feature map: Grad-CAM's usual choice, the last convolutional block, is a 3 x 3 grid in
VGG16-fer and ResNet50-fer at 48 px, each cell seeing the whole face; on images whose class one
region decides, its heat sat at the centre whatever the region (gradcam_test: the region's cell
was the hottest of nine in none of 90 images). The last feature map whose grid is at least a
quarter of the input's side (12 x 12 at 48 px: VGG16-fer's third block, ResNet50-fer's conv3
stage) put it in the region, the hottest on average and the hottest cell in about half the
images (chance: 1 in 9). Found from the layers' shapes, not their names.
"""
from __future__ import annotations

from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

# The feature map's grid, as a fraction of the input's side: see above.
MIN_GRID_FRACTION = 0.25
# The overlay's colour scale: heat 0 leaves the face as it is, heat 1 is this red.
OVERLAY_ALPHA = 0.55


def _grid(layer: keras.layers.Layer):
    shape = getattr(getattr(layer, "output", None), "shape", None)
    if shape is None or len(shape) != 4 or not shape[1] or not shape[2]:
        return None
    return int(shape[1]), int(shape[2])


def feature_layer(model: keras.Model, min_fraction: float = MIN_GRID_FRACTION
                  ) -> keras.layers.Layer:
    """The last layer of `model` with a 4-D output whose grid is at least `min_fraction` of the
    input's side; failing that (a stock keras.applications base, nested as one layer), the last
    with a grid of 2 x 2 or more."""
    height, width = (int(d) for d in model.inputs[0].shape[1:3])
    fine, coarse = None, None
    for layer in model.layers[1:]:
        grid = _grid(layer)
        if grid is None:
            continue
        if grid[0] >= 2 and grid[1] >= 2:
            coarse = layer
        if grid[0] >= min_fraction * height and grid[1] >= min_fraction * width:
            fine = layer
    if fine is None and coarse is None:
        raise ValueError(f"{model.name} has no convolutional feature map of 2 x 2 or more")
    return fine or coarse


def heatmaps(model: keras.Model, images: np.ndarray, class_ids: Sequence[int],
             layer: Optional[keras.layers.Layer] = None) -> np.ndarray:
    """float32 [N, H, W] in [0, 1]: the Grad-CAM of class `class_ids[i]` on `images[i]`
    ([N, H, W, C] as the network takes them), at the images' size."""
    layer = layer or feature_layer(model)
    head = model.layers[-1]      # the softmax Dense: its logits are the class scores
    probe = keras.Model(model.inputs, [layer.output, head.input])
    images = tf.convert_to_tensor(images, tf.float32)
    with tf.GradientTape() as tape:
        features, head_input = probe(images, training=False)
        # The score before the softmax, as Grad-CAM defines it (a confident prediction's
        # probability has next to no gradient), less the mean of the scores: the softmax
        # ignores what raises every class alike, and so does the heat.
        logits = tf.matmul(tf.cast(head_input, tf.float32), head.kernel) + head.bias
        logits -= tf.reduce_mean(logits, axis=1, keepdims=True)
        score = tf.gather(logits, tf.constant(list(class_ids), tf.int32), axis=1, batch_dims=1)
    grads = tape.gradient(score, features)
    weights = tf.reduce_mean(tf.cast(grads, tf.float32), axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * tf.cast(features, tf.float32), axis=-1))
    peak = tf.reduce_max(cam, axis=(1, 2), keepdims=True)
    cam = tf.math.divide_no_nan(cam, peak)  # an all-zero map stays zero
    size = images.shape[1:3]
    return tf.image.resize(cam[..., None], size, method="bilinear")[..., 0].numpy()


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """uint8 RGB [H, W, 3]: `image` ([H, W, C] in [0, 1], C 1 or 3) under `heat` ([H, W] in
    [0, 1]) in red, opaque in proportion to the heat."""
    rgb = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3]
    red = np.zeros_like(rgb)
    red[..., 0] = 1.0
    mix = (alpha * heat)[..., None]
    return np.clip(np.round(255 * ((1 - mix) * rgb + mix * red)), 0, 255).astype(np.uint8)
