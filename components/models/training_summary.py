"""What each Trainer writes beside its model about the training, and its reader: the
training summary (JSON) and the per-epoch log (CSV)."""
from __future__ import annotations

import json
import os
from typing import Any, Dict

import tensorflow as tf

TRAINING_LOG = "training_log.csv"              # per-epoch metrics, in the Trainer's model_run
TRAINING_SUMMARY_FILE = "training_summary.json"  # what was trained and how, in model_run


def write_training_summary(model_run_dir: str, summary: Dict[str, Any]) -> None:
    with tf.io.gfile.GFile(os.path.join(model_run_dir, TRAINING_SUMMARY_FILE), "w") as f:
        json.dump(summary, f, indent=2)


def read_training_summary(model_run_dir: str) -> Dict[str, Any]:
    """What a Trainer trained: architecture, variant, hyperparameters, epochs run, steps per
    epoch, batch size, training examples per class, validation files and the Keras history."""
    with tf.io.gfile.GFile(os.path.join(model_run_dir, TRAINING_SUMMARY_FILE)) as f:
        return json.load(f)
