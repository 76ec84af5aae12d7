"""Scores of predicted probabilities: accuracy, macro-F1, per-class F1, confusion matrix,
flip and crop TTA."""

from __future__ import annotations

import numpy as np

from components import class_metrics  # plain Python: no TensorFlow here

from .constants import CLASSES


def confusion(y, pred, k):
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y, pred), 1)
    return cm


def f1_from_cm(cm):
    """Per-class F1 of a confusion matrix (rows actual), the project's arithmetic."""
    return np.array([class_metrics.f1(cm[c, c], cm[c].sum(), cm[:, c].sum())
                     for c in range(len(cm))], dtype=np.float64)


def score(y, probs, probs_flip=None, crop_views=None):
    k = len(CLASSES)
    nonfinite = float((~np.isfinite(probs)).any(-1).mean()) if len(probs) else 0.0
    pred = probs.argmax(-1)
    cm = confusion(y, pred, k)
    try:
        from sklearn.metrics import f1_score
        per_class = f1_score(y, pred, labels=list(range(k)), average=None, zero_division=0)
        f1_source = "sklearn"
    except Exception:
        per_class = f1_from_cm(cm)
        f1_source = "numpy"
    out = {"n": int(len(y)), "accuracy": float((pred == y).mean()) if len(y) else None,
           "macro_f1": float(np.mean(per_class)),
           "per_class_f1": {c: float(v) for c, v in zip(CLASSES, per_class, strict=True)},
           "confusion_matrix": cm.tolist(), "f1_source": f1_source,
           "nonfinite_fraction": nonfinite}
    if probs_flip is not None:
        pred_t = ((probs + probs_flip) / 2).argmax(-1)
        out["tta_flip_accuracy"] = float((pred_t == y).mean()) if len(y) else None
        out["tta_flip_macro_f1"] = float(np.mean(f1_from_cm(confusion(y, pred_t, k))))
    for s, views in (crop_views or {}).items():
        # views: 10 probability arrays [center, 4 corners, their mirrors] (tta_views).
        for name, sel in ((f"tta_crop{s}", views[:5]), (f"tta_tencrop{s}", views)):
            pred_t = np.mean(sel, axis=0).argmax(-1)
            cm_t = confusion(y, pred_t, k)
            out[f"{name}_accuracy"] = float((pred_t == y).mean()) if len(y) else None
            out[f"{name}_macro_f1"] = float(np.mean(f1_from_cm(cm_t)))
            if name.startswith("tta_tencrop"):
                out[f"{name}_per_class_f1"] = {
                    c: float(v) for c, v in zip(CLASSES, f1_from_cm(cm_t), strict=True)}
    return out
