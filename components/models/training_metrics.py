"""Training metrics beyond accuracy, logged per epoch for the run report's training curves:
macro-averaged precision, recall and F1 of the argmax prediction, and one-vs-rest AUC.

Keras' own Precision/Recall count a class as predicted when its probability passes 0.5 (rare
with six classes) and its F1Score and AUC want one-hot labels; these take class ids or one-hot
rows alike. Backend-neutral Keras 3 (keras.ops only), like the model builders.
"""
from __future__ import annotations

from typing import List

import keras
from keras import ops

from components import contract

TRAINING_CURVE_METRICS = ("loss", "accuracy", "auc", "precision", "recall",
                          contract.MACRO_F1_METRIC)


def class_ids(y_true, num_classes: int):
    """int32 [batch] class ids from ids ([batch] or [batch, 1]) or one-hot rows."""
    y_true = ops.convert_to_tensor(y_true)
    if len(y_true.shape) >= 2 and y_true.shape[-1] == num_classes and num_classes > 1:
        return ops.cast(ops.argmax(y_true, axis=-1), "int32")
    return ops.cast(ops.reshape(y_true, (-1,)), "int32")


class _ArgmaxConfusionMetric(keras.metrics.Metric):
    """Accumulates the confusion matrix of argmax predictions (rows: true class)."""

    def __init__(self, num_classes: int, name: str, **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes
        self.matrix = self.add_variable(shape=(num_classes, num_classes), initializer="zeros",
                                        dtype="float32", name="confusion_matrix")

    def update_state(self, y_true, y_pred, sample_weight=None):
        n = self.num_classes
        true = class_ids(y_true, n)
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        cells = ops.one_hot(true * n + predicted, n * n, dtype="float32")
        self.matrix.assign_add(ops.reshape(ops.sum(cells, axis=0), (n, n)))

    def reset_state(self):
        self.matrix.assign(ops.zeros((self.num_classes, self.num_classes), dtype="float32"))

    def _per_class(self, denominator):
        tp = ops.diagonal(self.matrix)
        return ops.where(denominator > 0, tp / ops.maximum(denominator, 1.0), 0.0)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


class MacroPrecision(_ArgmaxConfusionMetric):
    """Mean over classes of TP / predicted (0 for a class never predicted)."""

    def __init__(self, num_classes: int, name: str = "precision", **kwargs):
        super().__init__(num_classes, name, **kwargs)

    def result(self):
        return ops.mean(self._per_class(ops.sum(self.matrix, axis=0)))


class MacroRecall(_ArgmaxConfusionMetric):
    """Mean over classes of TP / actual (0 for a class absent from the labels)."""

    def __init__(self, num_classes: int, name: str = "recall", **kwargs):
        super().__init__(num_classes, name, **kwargs)

    def result(self):
        return ops.mean(self._per_class(ops.sum(self.matrix, axis=1)))


class MacroF1(_ArgmaxConfusionMetric):
    """Mean over classes of 2TP / (predicted + actual), as components/fer_metrics.py in TFMA."""

    def __init__(self, num_classes: int, name: str = contract.MACRO_F1_METRIC, **kwargs):
        super().__init__(num_classes, name, **kwargs)

    def result(self):
        denominator = ops.sum(self.matrix, axis=0) + ops.sum(self.matrix, axis=1)
        return ops.mean(2.0 * self._per_class(denominator))


class OneVsRestAUC(keras.metrics.AUC):
    """ROC AUC of every (example, class) pair pooled: Keras' AUC on one-hot labels."""

    def __init__(self, num_classes: int, name: str = "auc", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = ops.one_hot(class_ids(y_true, self.num_classes), self.num_classes)
        return super().update_state(labels, ops.cast(y_pred, "float32"))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


def curve_metrics(num_classes: int) -> List[keras.metrics.Metric]:
    """The metrics compiled next to accuracy (names in TRAINING_CURVE_METRICS)."""
    return [OneVsRestAUC(num_classes), MacroPrecision(num_classes), MacroRecall(num_classes),
            MacroF1(num_classes)]
