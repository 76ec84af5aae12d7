"""What a model gets wrong on the eval split, and which examples the report shows: its most
confident mistakes per true class (the gallery), and its most confident right and wrong answers
per class (the Grad-CAM heatmaps). Plain numpy over labels and probabilities; the executor
reads them (sources.eval_predictions)."""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Sequence

import numpy as np

MISTAKES_PER_CLASS = 6     # the gallery's columns
HEATMAPS_PER_KIND = 3      # per class: this many right and this many wrong answers


@dataclasses.dataclass(frozen=True)
class Example:
    """One eval example as the report shows it."""

    index: int              # in the eval split's reading order
    true_class: str
    predicted_class: str
    probability: float      # of the predicted class

    @property
    def correct(self) -> bool:
        return self.true_class == self.predicted_class


def _example(index: int, labels: np.ndarray, probabilities: np.ndarray,
             label_names: Sequence[str]) -> Example:
    predicted = int(probabilities[index].argmax())
    return Example(index=int(index), true_class=label_names[int(labels[index])],
                   predicted_class=label_names[predicted],
                   probability=float(probabilities[index, predicted]))


def _most_confident(mask: np.ndarray, confidence: np.ndarray, count: int) -> np.ndarray:
    """Indices where `mask` holds, by `confidence` descending (ties: reading order)."""
    indices = np.flatnonzero(mask)
    return indices[np.argsort(-confidence[indices], kind="stable")][:count]


def confident_mistakes(labels: np.ndarray, probabilities: np.ndarray,
                       label_names: Sequence[str], per_class: int = MISTAKES_PER_CLASS
                       ) -> Dict[str, List[Example]]:
    """True class -> up to `per_class` of its wrongly classified examples, most confident
    first (every class is a key, with [] when it has no mistakes)."""
    labels = np.asarray(labels)
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    return {name: [_example(i, labels, probabilities, label_names) for i in _most_confident(
                (labels == c) & (predicted != c), confidence, per_class)]
            for c, name in enumerate(label_names)}


def heatmap_examples(labels: np.ndarray, probabilities: np.ndarray,
                     label_names: Sequence[str], per_kind: int = HEATMAPS_PER_KIND
                     ) -> Dict[str, List[Example]]:
    """True class -> its `per_kind` most confident right answers, then its `per_kind` most
    confident wrong ones."""
    labels = np.asarray(labels)
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    out = {}
    for c, name in enumerate(label_names):
        right = _most_confident((labels == c) & (predicted == c), confidence, per_kind)
        wrong = _most_confident((labels == c) & (predicted != c), confidence, per_kind)
        out[name] = [_example(i, labels, probabilities, label_names) for i in [*right, *wrong]]
    return out


def most_confused(labels: np.ndarray, probabilities: np.ndarray, label_names: Sequence[str],
                  true_class: str) -> List[tuple]:
    """[(predicted class, count)] of `true_class`'s mistakes, most frequent first."""
    c = list(label_names).index(true_class)
    labels = np.asarray(labels)
    predicted = probabilities.argmax(axis=1)[(labels == c)]
    counts = np.bincount(predicted, minlength=len(label_names))
    return [(label_names[p], int(counts[p])) for p in np.argsort(-counts, kind="stable")
            if p != c and counts[p]]
