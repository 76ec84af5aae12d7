"""mixup and cutmix of a batch, on the host (numpy)."""

from __future__ import annotations

import math

import numpy as np


def mix_batch(x, y_soft, w, rng, mixup_alpha=0.0, cutmix_alpha=0.0, prob=1.0):
    """mixup or cutmix of a batch with a permutation of itself (numpy; per batch one lambda).
    x (B, H, W, C) float, y_soft (B, K) float, w (B,) sample weights (mixed like the labels).
    When both alphas are set, each batch picks one of the two at random. Returns (x, y, w, kind)."""
    if (mixup_alpha <= 0 and cutmix_alpha <= 0) or rng.random() >= prob:
        return x, y_soft, w, None
    kinds = [k for k, a in (("mixup", mixup_alpha), ("cutmix", cutmix_alpha)) if a > 0]
    kind = kinds[rng.integers(len(kinds))]
    perm = rng.permutation(len(x))
    if kind == "mixup":
        lam = float(rng.beta(mixup_alpha, mixup_alpha))
        x = lam * x + (1 - lam) * x[perm]
    else:
        lam = float(rng.beta(cutmix_alpha, cutmix_alpha))
        h, w_px = x.shape[1], x.shape[2]
        ch, cw = int(round(h * math.sqrt(1 - lam))), int(round(w_px * math.sqrt(1 - lam)))
        cy, cx = rng.integers(h), rng.integers(w_px)
        y0, y1 = max(cy - ch // 2, 0), min(cy + ch - ch // 2, h)
        x0, x1 = max(cx - cw // 2, 0), min(cx + cw - cw // 2, w_px)
        x = x.copy()
        x[:, y0:y1, x0:x1, :] = x[perm, y0:y1, x0:x1, :]
        lam = 1 - (y1 - y0) * (x1 - x0) / float(h * w_px)  # the area actually kept
    y_soft = lam * y_soft + (1 - lam) * y_soft[perm]
    w = lam * w + (1 - lam) * w[perm]
    return x.astype(np.float32), y_soft.astype(np.float32), w.astype(np.float32), kind
