"""VGG16 for 48 px faces: the stock Keras application, and a variant that learns better there.

- `stock`: `keras.applications.VGG16` (five 2x2 pools: 48 px -> 1 px), needed for ImageNet
  weights. Min input 32 px.
- `fer` (default): the same 13 convolutions in the same five blocks, with batch norm after each
  convolution and no pool after the last block (48 -> 3 px). Measured on FER2013 (issue 3 notes):
  57.4% after 4 epochs vs 48.6% for the stock build.
"""
from __future__ import annotations

from typing import Optional

import keras
from keras import layers

from components.models import common

VARIANTS = ("fer", "stock")
# Faster-moving BN statistics than Keras' 0.99: short demo runs have few steps per epoch.
BN_MOMENTUM = 0.9
# (filters, convolutions) per block, as in VGG16.
BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


def fer_base(inputs: keras.KerasTensor) -> keras.KerasTensor:
    x = inputs
    for b, (filters, convs) in enumerate(BLOCKS, start=1):
        for c in range(1, convs + 1):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                              name=f"block{b}_conv{c}")(x)
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"block{b}_bn{c}")(x)
            x = layers.Activation("relu", name=f"block{b}_relu{c}")(x)
        if b < len(BLOCKS):  # one pool fewer than VGG16: keep 3x3 at 48 px input
            x = layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
    return x


def build(input_shape, num_classes: int, variant: str = "fer", weights: Optional[str] = None,
          dropout: float = 0.5, head_units: int = 256, trainable_base_layers: int = -1
          ) -> keras.Model:
    """VGG16 classifier with a softmax head over `num_classes`.

    `weights`: None (random init) or a local `.h5` file of Keras' ImageNet VGG16 notop weights
    (stock variant only; nothing is downloaded). `trainable_base_layers`: with weights, how many
    of the base's last layers to train (-1: all).
    """
    if variant not in VARIANTS:
        raise ValueError(f"VGG16 variant must be one of {VARIANTS}, got {variant!r}")
    inputs = keras.Input(shape=input_shape, name="image")
    if variant == "fer":
        if weights:
            raise ValueError("pretrained weights fit only the stock VGG16 (variant='stock')")
        features = fer_base(inputs)
    else:
        x = inputs
        if weights:
            x = common.imagenet_input(x, mode="caffe")
        base = keras.applications.VGG16(include_top=False, weights=common.local_weights(weights),
                                        input_shape=tuple(x.shape[1:]))
        common.freeze_all_but_last(base, trainable_base_layers if weights else -1)
        features = base(x)
    outputs = common.classifier_head(features, num_classes, dropout, head_units)
    return keras.Model(inputs, outputs, name=f"vgg16_{variant}")
