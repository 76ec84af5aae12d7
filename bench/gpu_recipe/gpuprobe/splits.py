"""The stratified validation split of Training."""

from __future__ import annotations

import numpy as np

from .constants import CLASSES


def stratified_split(y, frac, batch, seed=0):
    """(train_idx, val_idx): a stratified `frac` of y held out; its size a multiple of `batch`
    when that is at least one batch, so that validation compiles one batch shape only."""
    n = len(y)
    target = frac * n
    n_val = int(round(target / batch)) * batch if target >= batch else max(1, int(round(target)))
    counts = np.bincount(y, minlength=len(CLASSES)).astype(np.float64)
    quota = counts * n_val / n
    take = np.floor(quota).astype(int)
    for c in np.argsort(-(quota - take), kind="stable")[: n_val - take.sum()]:
        take[c] += 1
    rng = np.random.default_rng(seed)
    tr, va = [], []
    for c in range(len(CLASSES)):
        idx = rng.permutation(np.flatnonzero(y == c))
        va.append(idx[: take[c]])
        tr.append(idx[take[c]:])
    return np.sort(np.concatenate(tr)), np.sort(np.concatenate(va))
