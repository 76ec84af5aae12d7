"""ResNet50 for 48 px faces: the stock Keras application, and a variant with a gentler stem.

- `stock`: `keras.applications.ResNet50`: its stem (7x7 stride-2 conv + stride-2 max pool)
  shrinks 48 px to 12 px before the first block and 2 px at the end, and trained from scratch
  it learns little on FER2013 (BENCHMARKS.md#model-variants). Needed for ImageNet weights.
  Min input 32 px.
- `fer` (default): the same 16 bottleneck blocks in 4 stages ([3, 4, 6, 3], 256..2048 channels),
  with a 3x3 stride-2 stem and no max pool, so the stages see 24, 12, 6 and 3 px.
"""
from __future__ import annotations

from typing import Optional

import keras
from keras import layers

from components.models import common
from components.models.training_config import DEFAULT_HYPERPARAMETERS

_DEFAULTS = DEFAULT_HYPERPARAMETERS["resnet50"]
STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))  # (filters, blocks, first stride)


def _bottleneck(x, filters: int, stride: int, name: str):
    shortcut = x
    if stride != 1 or x.shape[-1] != 4 * filters:
        shortcut = layers.Conv2D(4 * filters, 1, strides=stride, use_bias=False,
                                 name=f"{name}_0_conv")(x)
        shortcut = common.batch_norm(f"{name}_0_bn")(shortcut)
    x = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_1_conv")(x)
    x = common.batch_norm(f"{name}_1_bn")(x)
    x = layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(x)
    x = common.batch_norm(f"{name}_2_bn")(x)
    x = layers.Activation("relu", name=f"{name}_2_relu")(x)
    x = layers.Conv2D(4 * filters, 1, use_bias=False, name=f"{name}_3_conv")(x)
    # Zero-init the last BN of each residual branch: each block starts as identity.
    x = common.batch_norm(f"{name}_3_bn", gamma_initializer="zeros")(x)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def fer_base(inputs: keras.KerasTensor, width: float = 1.0,
             stem_stride: int = 2) -> keras.KerasTensor:
    x = layers.Conv2D(common.scaled(64, width), 3, strides=stem_stride, padding="same",
                      use_bias=False, name="conv1_conv")(inputs)
    x = common.batch_norm("conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    for s, (filters, blocks, stride) in enumerate(STAGES, start=2):
        for b in range(1, blocks + 1):
            x = _bottleneck(x, common.scaled(filters, width), stride if b == 1 else 1,
                            name=f"conv{s}_block{b}")
    return x


def build(input_shape, num_classes: int, variant: str = "fer", weights: Optional[str] = None,
          dropout: float = _DEFAULTS["dropout"], head_units: int = _DEFAULTS["head_units"],
          trainable_base_layers: int = -1, width: float = 1.0) -> keras.Model:
    """ResNet50 classifier with a softmax head over `num_classes` (see vgg16.build)."""
    return common.build_classifier("ResNet50", input_shape, num_classes, variant, fer_base,
                                   keras.applications.ResNet50, weights, dropout, head_units,
                                   trainable_base_layers, width)
