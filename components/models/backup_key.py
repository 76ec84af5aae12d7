"""The key of the Trainer's BackupAndRestore directory (trainer._backup_dir).

A killed Trainer resumes at its last epoch when it is re-run on the same inputs. Its inputs
come as run-specific artifact URIs: a pipeline re-run without the TFX cache re-executes
Transform, which writes the same records under new URIs (and in shards whose split and order
may differ). So the key is built from content: the records, the base model's weights, the
hyperparameters and the custom config.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable, Mapping, Optional

import tensorflow as tf

from components.models import warm_start


def records_digest(file_patterns: Iterable[str]) -> Mapping[str, Any]:
    """Order-independent digest of the records in gzip TFRecord files (Transform's output):
    {"records": count, "sha256": sha256 of the sorted per-record sha256s}. Sharding and
    record order do not matter; every record, duplicates included, does."""
    files = [f for p in file_patterns for f in tf.io.gfile.glob(p)]
    digests = []
    if files:
        dataset = tf.data.TFRecordDataset(files, compression_type="GZIP",
                                          num_parallel_reads=tf.data.AUTOTUNE)
        for batch in dataset.batch(4096).prefetch(1):
            digests.extend(hashlib.sha256(record).digest() for record in batch.numpy())
    digests.sort()
    return {"records": len(digests), "sha256": hashlib.sha256(b"".join(digests)).hexdigest()}


def base_model_identity(base_model: Optional[str]) -> Optional[str]:
    """What the warm start starts from: its weights' sha256, not the artifact's URI."""
    if not base_model:
        return None
    return warm_start.stored_weights_digest(base_model) or f"uri:{base_model}"


def backup_key(train_files: Iterable[str], eval_files: Iterable[str],
               base_model: Optional[str], hyperparameters: Optional[Mapping[str, Any]],
               custom_config: Optional[Mapping[str, Any]]) -> str:
    """16 hex digits, the same whenever the Trainer would train the same model.

    The Transform graph is left out: what it does to the training data is already in the
    transformed records, keyed here by content; its URI changes with every re-execution, and
    its SavedModel's bytes are not known to stay the same across one.
    """
    key = json.dumps({"train": records_digest(train_files), "eval": records_digest(eval_files),
                      "base": base_model_identity(base_model), "hparams": hyperparameters,
                      "config": custom_config}, sort_keys=True, default=str)
    return hashlib.sha256(key.encode()).hexdigest()[:16]
