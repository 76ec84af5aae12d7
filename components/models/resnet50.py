"""ResNet50 for 48 px faces: the stock Keras application, and a variant with a gentler stem.

- `stock`: `keras.applications.ResNet50`: its stem (7x7 stride-2 conv + stride-2 max pool)
  shrinks 48 px to 12 px before the first block and 2 px at the end; trained from scratch it
  stayed near chance on FER2013 (issue 3). Needed for ImageNet weights. Min input 32 px.
- `fer` (default): the same 16 bottleneck blocks in 4 stages ([3, 4, 6, 3], 256..2048 channels),
  with a 3x3 stride-2 stem and no max pool, so the stages see 24, 12, 6 and 3 px.
"""
from __future__ import annotations

from typing import Optional

import keras
from keras import layers

from components.models import common

VARIANTS = ("fer", "stock")
# Faster-moving BN statistics than Keras' 0.99: short demo runs have few steps per epoch.
BN_MOMENTUM = 0.9
STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))  # (filters, blocks, first stride)


def _bottleneck(x, filters: int, stride: int, name: str):
    shortcut = x
    if stride != 1 or x.shape[-1] != 4 * filters:
        shortcut = layers.Conv2D(4 * filters, 1, strides=stride, use_bias=False,
                                 name=f"{name}_0_conv")(x)
        shortcut = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_0_bn")(shortcut)
    x = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_1_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_1_bn")(x)
    x = layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_2_bn")(x)
    x = layers.Activation("relu", name=f"{name}_2_relu")(x)
    x = layers.Conv2D(4 * filters, 1, use_bias=False, name=f"{name}_3_conv")(x)
    # Zero-init the last BN of each residual branch: each block starts as identity.
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, gamma_initializer="zeros", name=f"{name}_3_bn")(x)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def fer_base(inputs: keras.KerasTensor, stem_stride: int = 2) -> keras.KerasTensor:
    x = layers.Conv2D(64, 3, strides=stem_stride, padding="same", use_bias=False,
                      name="conv1_conv")(inputs)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    for s, (filters, blocks, stride) in enumerate(STAGES, start=2):
        for b in range(1, blocks + 1):
            x = _bottleneck(x, filters, stride if b == 1 else 1, name=f"conv{s}_block{b}")
    return x


def build(input_shape, num_classes: int, variant: str = "fer", weights: Optional[str] = None,
          dropout: float = 0.3, head_units: int = 0, trainable_base_layers: int = -1
          ) -> keras.Model:
    """ResNet50 classifier with a softmax head over `num_classes` (see vgg16.build)."""
    if variant not in VARIANTS:
        raise ValueError(f"ResNet50 variant must be one of {VARIANTS}, got {variant!r}")
    inputs = keras.Input(shape=input_shape, name="image")
    if variant == "fer":
        if weights:
            raise ValueError("pretrained weights fit only the stock ResNet50 (variant='stock')")
        features = fer_base(inputs)
    else:
        x = inputs
        if weights:
            x = common.imagenet_input(x, mode="caffe")
        base = keras.applications.ResNet50(include_top=False,
                                           weights=common.local_weights(weights),
                                           input_shape=tuple(x.shape[1:]))
        common.freeze_all_but_last(base, trainable_base_layers if weights else -1)
        features = base(x)
    outputs = common.classifier_head(features, num_classes, dropout, head_units)
    return keras.Model(inputs, outputs, name=f"resnet50_{variant}")
