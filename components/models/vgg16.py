"""VGG16 for 48 px faces: the stock Keras application, and a variant that learns better there.

- `stock`: `keras.applications.VGG16` (five 2x2 pools: 48 px -> 1 px), needed for ImageNet
  weights. Min input 32 px.
- `fer` (default): the same 13 convolutions in the same five blocks, with batch norm after each
  convolution and no pool after the last block (48 -> 3 px). It learns FER2013 faster than
  the stock build (BENCHMARKS.md#model-variants).
"""
from __future__ import annotations

from typing import Optional

import keras
from keras import layers

from components.models import common
from components.models.training_config import DEFAULT_HYPERPARAMETERS

_DEFAULTS = DEFAULT_HYPERPARAMETERS["vgg16"]
# (filters, convolutions) per block, as in VGG16.
BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


def fer_base(inputs: keras.KerasTensor, width: float = 1.0) -> keras.KerasTensor:
    x = inputs
    for b, (filters, convs) in enumerate(BLOCKS, start=1):
        for c in range(1, convs + 1):
            x = layers.Conv2D(common.scaled(filters, width), 3, padding="same", use_bias=False,
                              name=f"block{b}_conv{c}")(x)
            x = common.batch_norm(f"block{b}_bn{c}")(x)
            x = layers.Activation("relu", name=f"block{b}_relu{c}")(x)
        if b < len(BLOCKS):  # one pool fewer than VGG16: keep 3x3 at 48 px input
            x = layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
    return x


def build(input_shape, num_classes: int, variant: str = "fer", weights: Optional[str] = None,
          dropout: float = _DEFAULTS["dropout"], head_units: int = _DEFAULTS["head_units"],
          trainable_base_layers: int = -1, width: float = 1.0) -> keras.Model:
    """VGG16 classifier with a softmax head over `num_classes`.

    `weights`: None (random init) or a local `.h5` file of Keras' ImageNet VGG16 notop weights
    (stock variant only; nothing is downloaded). `trainable_base_layers`: with weights, how many
    of the base's last layers to train (-1: all). `width` scales every layer's filters
    (fer variant only).
    """
    return common.build_classifier("VGG16", input_shape, num_classes, variant, fer_base,
                                   keras.applications.VGG16, weights, dropout, head_units,
                                   trainable_base_layers, width)
