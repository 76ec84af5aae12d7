"""The ModelSelector's choice: how it is made, written and read back.

A selection records the metric it compared on, the winner (None when no candidate is blessed)
and, per candidate, its model and evaluation URIs, whether its Evaluator blessed it, the metric's
value and the metrics behind it (accuracy, macro-F1, per-class precision/recall/F1 by class
name). It is written as `selection.json` in the selector's blessing artifact and as that
artifact's `selection` property (ML Metadata); `read` reads it back from the artifact's URI.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Dict, Optional

import tensorflow as tf

SELECTION_FILE = "selection.json"
SELECTION_PROPERTY = "selection"


@dataclasses.dataclass
class Selection:
    metric: str
    winner: Optional[str]
    # architecture -> {model_uri, evaluation_uri, blessed, metric_value, metrics}
    candidates: Dict[str, Dict[str, Any]]

    @property
    def winner_metrics(self) -> Dict[str, Any]:
        return self.candidates[self.winner].get("metrics", {}) if self.winner else {}

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Selection":
        data = json.loads(text)
        return cls(metric=data["metric"], winner=data["winner"], candidates=data["candidates"])


def select(candidates: Dict[str, Dict[str, Any]]) -> Optional[str]:
    """Name of the blessed candidate with the highest `metric_value` (ties: first by name), or
    None when no candidate is blessed."""
    blessed = [(c["metric_value"], name) for name, c in sorted(candidates.items())
               if c["blessed"] and c["metric_value"] is not None]
    if not blessed:
        return None
    best = max(v for v, _ in blessed)
    return next(name for v, name in blessed if v == best)


def write(selection: Selection, blessing_uri: str) -> None:
    tf.io.gfile.makedirs(blessing_uri)
    with tf.io.gfile.GFile(os.path.join(blessing_uri, SELECTION_FILE), "w") as f:
        f.write(selection.to_json())


def read(blessing_uri: str) -> Selection:
    """The selection in a ModelSelector blessing artifact (TFX or ML Metadata: its URI)."""
    with tf.io.gfile.GFile(os.path.join(blessing_uri, SELECTION_FILE)) as f:
        return Selection.from_json(f.read())
