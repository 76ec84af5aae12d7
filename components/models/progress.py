"""One line per training epoch on the progress logger: what a person running the pipeline sees.

Keras' own per-epoch lines go to the run's log file with everything else; this callback writes
the few numbers worth following (loss and accuracy, training and validation), the training rate
and the time left, e.g.

  Trainer vgg16: epoch 3/8  loss 1.2345  accuracy 0.5012  val_loss 1.3021  val_accuracy 0.4870
  (88.1 images/s, ETA 14m05s)
"""
from __future__ import annotations

import logging
import time
from typing import Callable, List, Optional

import keras

from components import contract
from components.models import training_config

FOLLOWED_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")

log = logging.getLogger(contract.PROGRESS_LOGGER)


class EpochProgress(keras.callbacks.Callback):
    """Logs each finished epoch: the followed metrics, training images/s (validation excluded)
    and an ETA from the mean epoch time so far, the first epoch left out once there are
    others (early stopping may end sooner). `epochs` may change after the first epoch (a time
    budget's plan, time_budget.BudgetCallback)."""

    def __init__(self, label: str, epochs: int, images_per_epoch: int,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self._label, self.epochs, self._images = label, epochs, images_per_epoch
        self._clock = clock
        self._epoch_start = 0.0
        self._training_end: Optional[float] = None
        self._durations: List[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start, self._training_end = self._clock(), None

    def on_test_begin(self, logs=None):
        # Validation runs inside the epoch; the training rate stops here.
        if self._training_end is None:
            self._training_end = self._clock()

    def on_epoch_end(self, epoch, logs=None):
        now = self._clock()
        self._durations.append(now - self._epoch_start)
        training_seconds = (self._training_end or now) - self._epoch_start
        logs = logs or {}
        metrics = "  ".join(f"{name} {float(logs[name]):.4f}" for name in FOLLOWED_METRICS
                            if name in logs)
        remaining = max(0, self.epochs - (epoch + 1))
        # The first epoch also traces and compiles: leave it out once there are others.
        typical = self._durations[1:] or self._durations
        eta = remaining * sum(typical) / len(typical)
        rate = self._images / training_seconds if training_seconds > 0 else float("nan")
        log.info("%s: epoch %d/%d  %s  (%.1f images/s, ETA %s)", self._label, epoch + 1,
                 self.epochs, metrics, rate, training_config.format_duration(eta))
