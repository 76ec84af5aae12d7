"""The ModelSelector's choice: how it is made, written and read back.

A selection records the metric it compared on, the winner (None when no candidate is blessed)
and, per candidate, its model and evaluation URIs, whether its Evaluator blessed it, the metric's
value and the metrics behind it (accuracy, macro-F1, per-class precision/recall/F1 by class
name), and an ensemble's members. It is written as `selection.json` in the selector's blessing
artifact and as that artifact's `selection` property (ML Metadata); `read` reads it back from
the artifact's URI.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Dict, List, Optional

import tensorflow as tf

SELECTION_FILE = "selection.json"
SELECTION_PROPERTY = "selection"
MEMBERS = "members"  # an ensemble candidate's member architectures, in the order it serves them


@dataclasses.dataclass
class Selection:
    metric: str
    winner: Optional[str]
    # candidate -> {model_uri, evaluation_uri, blessed, metric_value, metrics[, members]}
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

    def members(self) -> Dict[str, List[str]]:
        """Each ensemble candidate's member architectures."""
        return {name: c[MEMBERS] for name, c in self.candidates.items() if c.get(MEMBERS)}

    def label(self, name: str) -> str:
        """A candidate's name, with an ensemble's members: "ensemble (vgg16 + resnet50)"."""
        members = self.members().get(name)
        return f"{name} ({' + '.join(members)})" if members else name


def _networks(candidate: Dict[str, Any]) -> int:
    return len(candidate.get(MEMBERS) or [None])


def select(candidates: Dict[str, Dict[str, Any]]) -> Optional[str]:
    """Name of the blessed candidate with the highest `metric_value`, or None when no
    candidate is blessed. Ties go to the candidate of fewest networks (an ensemble serves at
    the cost of all its members), then to the first by name."""
    blessed = [(c["metric_value"], _networks(c), name) for name, c in candidates.items()
               if c["blessed"] and c["metric_value"] is not None]
    if not blessed:
        return None
    best = max(v for v, _, _ in blessed)
    return min((networks, name) for v, networks, name in blessed if v == best)[1]


def write(selection: Selection, blessing_uri: str) -> None:
    tf.io.gfile.makedirs(blessing_uri)
    with tf.io.gfile.GFile(os.path.join(blessing_uri, SELECTION_FILE), "w") as f:
        f.write(selection.to_json())


def read(blessing_uri: str) -> Selection:
    """The selection in a ModelSelector blessing artifact (TFX or ML Metadata: its URI)."""
    with tf.io.gfile.GFile(os.path.join(blessing_uri, SELECTION_FILE)) as f:
        return Selection.from_json(f.read())
