"""Predictions of a split at one batch shape, with flip and crop TTA views, scored."""

from __future__ import annotations

import numpy as np

from .constants import CLASSES
from .data import to_float
from .metrics import score


def predict_probs(model, x_f32, batch):
    """Probabilities, batched at one fixed shape (padding the tail: no recompile)."""
    n = len(x_f32)
    if n == 0:
        return np.zeros((0, len(CLASSES)), np.float32)
    pad = (-n) % batch
    if pad:
        x_f32 = np.concatenate([x_f32, np.zeros((pad,) + x_f32.shape[1:], x_f32.dtype)])
    return np.asarray(model.predict(x_f32, batch_size=batch, verbose=0), np.float32)[:n]


def evaluate_split(model, x_u8, y, batch, tta_shifts=(), fill_mode="reflect"):
    x = to_float(x_u8)
    both = predict_probs(model, np.concatenate([x, x[:, :, ::-1, :]]), batch)
    crop_views = {}
    if tta_shifts and len(x):
        import keras

        from components.models.augmentation import tta_views
        for s in tta_shifts:
            views = [np.asarray(keras.ops.convert_to_numpy(v), np.float32)
                     for v in tta_views(x, s, fill_mode)]
            # the center and its mirror were predicted above: reuse them
            probs = {0: both[: len(x)], 5: both[len(x):]}
            rest = [i for i in range(10) if i not in probs]
            out = predict_probs(model, np.concatenate([views[i] for i in rest]), batch)
            for j, i in enumerate(rest):
                probs[i] = out[j * len(x):(j + 1) * len(x)]
            crop_views[s] = [probs[i] for i in range(10)]
    return score(y, both[: len(x)], both[len(x):], crop_views)
