"""Training-time augmentation and test-time views, in backend-neutral Keras 3.

Only `keras.ops` and `keras.random`: the TensorFlow Trainer runs these layers in its input
pipeline, and the GPU recipe harness (bench/gpu_recipe) runs the same layers inside the model on
JAX. Every augmentation layer is the identity at inference.
"""
from __future__ import annotations

import math
from typing import List

import keras
from keras import ops

# Keras' geometric layers work on [0, 1] images here; RandomContrast clips to this range.
VALUE_RANGE = (0.0, 1.0)


@keras.saving.register_keras_serializable(package="fer")
class RandomPadCrop(keras.layers.Layer):
    """Pad each side by `pad` px (reflect or zeros), then crop back to the input size at a
    random integer offset per image: an integer shift in [-pad, pad] on each axis."""

    def __init__(self, pad=4, fill_mode="reflect", seed=None, **kwargs):
        super().__init__(**kwargs)
        if fill_mode not in ("reflect", "constant"):
            raise ValueError(f"fill_mode must be reflect or constant, got {fill_mode!r}")
        self.pad, self.fill_mode, self.seed = int(pad), fill_mode, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if not training or self.pad <= 0:
            return x
        p = self.pad
        b = ops.shape(x)[0]
        h, w, c = x.shape[1], x.shape[2], x.shape[3]
        xp = ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode=self.fill_mode)
        off = keras.random.randint((b, 2), 0, 2 * p + 1, seed=self.seed_generator,
                                   dtype="int32")
        rows = off[:, :1] + ops.arange(h, dtype="int32")[None, :]            # (B, H)
        cols = off[:, 1:] + ops.arange(w, dtype="int32")[None, :]            # (B, W)
        rows = ops.broadcast_to(rows[:, :, None, None], (b, h, w + 2 * p, c))
        x = ops.take_along_axis(xp, rows, axis=1)                            # (B, H, W+2p, C)
        cols = ops.broadcast_to(cols[:, None, :, None], (b, h, w, c))
        return ops.take_along_axis(x, cols, axis=2)                          # (B, H, W, C)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return dict(super().get_config(), pad=self.pad, fill_mode=self.fill_mode,
                    seed=self.seed)


@keras.saving.register_keras_serializable(package="fer")
class RandomErase(keras.layers.Layer):
    """Random erasing (Zhong et al. 2017, torchvision's defaults): with probability `rate` per
    image, one rectangle of area `scale` (fraction of the image) and aspect ratio `ratio`
    (log-uniform) is replaced by uniform noise in [0, 1] (or `fill` when given)."""

    def __init__(self, rate=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), fill=None, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.rate, self.scale, self.ratio = float(rate), tuple(scale), tuple(ratio)
        self.fill, self.seed = fill, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if not training or self.rate <= 0:
            return x
        b = ops.shape(x)[0]
        h, w = x.shape[1], x.shape[2]
        g = self.seed_generator
        u = keras.random.uniform((b, 5), seed=g, dtype="float32")
        area = (self.scale[0] + (self.scale[1] - self.scale[0]) * u[:, 0]) * (h * w)
        log_r = (math.log(self.ratio[0])
                 + (math.log(self.ratio[1]) - math.log(self.ratio[0])) * u[:, 1])
        aspect = ops.exp(log_r)
        eh = ops.minimum(ops.sqrt(area * aspect), float(h))  # erased height, px (float)
        ew = ops.minimum(ops.sqrt(area / aspect), float(w))
        y0 = u[:, 2] * (h - eh)
        x0 = u[:, 3] * (w - ew)
        apply = u[:, 4] < self.rate
        yy = ops.arange(h, dtype="float32")[None, :, None]
        xx = ops.arange(w, dtype="float32")[None, None, :]
        inside = ((yy >= y0[:, None, None]) & (yy < (y0 + eh)[:, None, None])
                  & (xx >= x0[:, None, None]) & (xx < (x0 + ew)[:, None, None]))
        mask = ops.logical_and(inside, apply[:, None, None])[..., None]     # (B, H, W, 1)
        if self.fill is None:
            fill = keras.random.uniform(ops.shape(x), seed=g, dtype=x.dtype)
        else:
            fill = ops.full_like(x, self.fill)
        return ops.where(mask, fill, x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return dict(super().get_config(), rate=self.rate, scale=self.scale, ratio=self.ratio,
                    fill=self.fill, seed=self.seed)


def augmentation_layers(seed: int, zoom: float = 0.0, crop_pad: int = 0,
                        erasing: float = 0.0) -> List[keras.layers.Layer]:
    """Flip, shift, small rotation and contrast; then, when asked, zoom, pad-and-crop and random
    erasing, in that order. float32 whatever the global precision policy."""
    layers = [
        keras.layers.RandomFlip("horizontal", seed=seed, dtype="float32"),
        keras.layers.RandomTranslation(0.08, 0.08, fill_mode="reflect", seed=seed,
                                       dtype="float32"),
        keras.layers.RandomRotation(0.04, fill_mode="reflect", seed=seed, dtype="float32"),
        *_random_contrast(0.2, seed),
    ]
    if zoom:
        layers.append(keras.layers.RandomZoom(zoom, fill_mode="reflect", seed=seed,
                                              dtype="float32"))
    if crop_pad:
        layers.append(RandomPadCrop(crop_pad, fill_mode="reflect", seed=seed + 1,
                                    dtype="float32", name="random_pad_crop"))
    if erasing:
        layers.append(RandomErase(erasing, seed=seed + 2, dtype="float32", name="random_erase"))
    return layers


def _random_contrast(factor: float, seed: int) -> List[keras.layers.Layer]:
    """RandomContrast clipped to VALUE_RANGE: Keras >= 3.8 takes `value_range`; older Keras
    (this project's TensorFlow side) clips to [0, 255], so a clip layer follows it there."""
    try:
        return [keras.layers.RandomContrast(factor, value_range=VALUE_RANGE, seed=seed,
                                            dtype="float32")]
    except ValueError:  # "Unrecognized keyword arguments"
        return [keras.layers.RandomContrast(factor, seed=seed, dtype="float32"),
                ClipValues(*VALUE_RANGE, dtype="float32", name="clip_contrast")]


@keras.saving.register_keras_serializable(package="fer")
class ClipValues(keras.layers.Layer):
    """Clips to [low, high]."""

    def __init__(self, low=0.0, high=1.0, **kwargs):
        super().__init__(**kwargs)
        self.low, self.high = float(low), float(high)

    def call(self, x):
        return ops.clip(x, self.low, self.high)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return dict(super().get_config(), low=self.low, high=self.high)


# --- Test-time views --------------------------------------------------------------------------

def shift_view(x, dy: int, dx: int, fill_mode: str = "reflect"):
    """x (N, H, W, C) shifted by (dy, dx) integer px, the uncovered border filled by reflection
    (or zeros): the crop at offset (p - dy, p - dx) of the image padded by p = max|d|."""
    p = max(abs(dy), abs(dx))
    if p == 0:
        return x
    h, w = x.shape[1], x.shape[2]
    xp = ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode=fill_mode)
    return xp[:, p - dy:p - dy + h, p - dx:p - dx + w, :]


def tta_views(x, shift: int, fill_mode: str = "reflect") -> list:
    """Ten views: the image and the four corner crops (shifts of +-shift px on both axes), each
    also mirrored; order [center, 4 corners, their 5 mirrors]. shift=0: [x, mirror(x)]."""
    shifts = [(0, 0)] + ([(-shift, -shift), (-shift, shift), (shift, -shift), (shift, shift)]
                         if shift else [])
    views = [shift_view(x, dy, dx, fill_mode) for dy, dx in shifts]
    return views + [ops.flip(v, axis=2) for v in views]
