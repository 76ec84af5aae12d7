"""Pieces shared by the model builders."""
from __future__ import annotations

import os
from typing import Callable, Optional

import keras
from keras import layers

from components.models.training_config import VARIANTS

# Faster-moving batch-norm statistics than Keras' 0.99: short runs have few steps per epoch.
BN_MOMENTUM = 0.9


def scaled(filters: int, width: float) -> int:
    """`filters` x `width`, at least 8: the narrow variants keep every layer."""
    return max(8, int(round(filters * width)))


def batch_norm(name: str, **kwargs) -> layers.BatchNormalization:
    return layers.BatchNormalization(momentum=BN_MOMENTUM, name=name, **kwargs)


def local_weights(weights: Optional[str]) -> Optional[str]:
    """Accepts None or an existing local weights file; never a name that triggers a download."""
    if weights is None:
        return None
    if not os.path.isfile(weights):
        raise ValueError(
            f"weights must be a local file (e.g. Keras' *_notop.h5 ImageNet weights, fetched by "
            f"you beforehand); got {weights!r}. Nothing is downloaded at run time.")
    return weights


def imagenet_input(x, mode: str = "caffe"):
    """[0, 1] gray or RGB -> the input ImageNet-trained Keras applications expect."""
    if x.shape[-1] == 1:
        x = layers.Concatenate(name="gray_to_rgb")([x, x, x])
    if mode == "caffe":  # RGB -> BGR, 0..255, minus the ImageNet channel means
        x = layers.Rescaling(255.0, name="to_255")(x)
        x = layers.Lambda(lambda t: t[..., ::-1], name="rgb_to_bgr")(x)
        x = layers.Normalization(mean=[103.939, 116.779, 123.68], variance=[1.0, 1.0, 1.0],
                                 name="imagenet_mean")(x)
    return x


def freeze_all_but_last(base: keras.Model, trainable_last: int) -> None:
    if trainable_last < 0:
        return
    for i, layer in enumerate(base.layers):
        layer.trainable = i >= len(base.layers) - trainable_last


def classifier_head(features, num_classes: int, dropout: float, head_units: int):
    x = layers.GlobalAveragePooling2D(name="pool")(features)
    if head_units:
        x = layers.Dropout(dropout, name="head_dropout1")(x)
        x = layers.Dense(head_units, activation="relu", name="head_dense")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    # float32 softmax even under mixed precision: probabilities must sum to 1 exactly enough.
    return layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)


def build_classifier(name: str, input_shape, num_classes: int, variant: str,
                     fer_base: Callable[..., keras.KerasTensor],
                     stock_application: Callable[..., keras.Model], weights: Optional[str],
                     dropout: float, head_units: int, trainable_base_layers: int,
                     width: float = 1.0) -> keras.Model:
    """`fer_base` (variant "fer", random init, filters x `width`) or the stock
    `keras.applications` builder (variant "stock", random init or local ImageNet weights),
    under a softmax head."""
    if variant not in VARIANTS:
        raise ValueError(f"{name} variant must be one of {VARIANTS}, got {variant!r}")
    inputs = keras.Input(shape=input_shape, name="image")
    if variant == "fer":
        if weights:
            raise ValueError(f"pretrained weights fit only the stock {name} (variant='stock')")
        features = fer_base(inputs, width=width)
    else:
        if width != 1.0:
            raise ValueError(f"width fits only the fer {name} (variant='fer'), got {width}")
        x = inputs
        if weights:
            x = imagenet_input(x, mode="caffe")
        base = stock_application(include_top=False, weights=local_weights(weights),
                                 input_shape=tuple(x.shape[1:]))
        freeze_all_but_last(base, trainable_base_layers if weights else -1)
        features = base(x)
    outputs = classifier_head(features, num_classes, dropout, head_units)
    return keras.Model(inputs, outputs, name=f"{name.lower()}_{variant}")
