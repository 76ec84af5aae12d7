"""Per-class arithmetic every stage shares: F1 and one-vs-rest scores from a confusion matrix,
and class weights from class counts. Plain Python (no TensorFlow, no numpy), so that TFMA's
macro-F1 metric, the Trainer, the run report and the GPU probe (which runs on JAX) compute them
the same way."""
from __future__ import annotations

import math
from typing import Dict, List, Sequence

WEIGHTINGS = ("balanced", "sqrt", "none")


def f1(true_positives: float, actual: float, predicted: float) -> float:
    """F1 of one class: 2TP / (2TP + FP + FN), i.e. 2TP / (actual + predicted); 0 for a class
    neither present nor predicted."""
    denominator = actual + predicted
    return 2 * true_positives / denominator if denominator else 0.0


def per_class_scores(matrix: Sequence[Sequence[float]], label_names: Sequence[str]
                     ) -> Dict[str, Dict[str, float]]:
    """{class: precision, recall (sensitivity), specificity, f1, support} from a confusion
    matrix (rows: actual class, columns: predicted), one class against the rest; 0 where a
    denominator is 0."""
    total = sum(map(sum, matrix))
    scores = {}
    for c, name in enumerate(label_names):
        tp = matrix[c][c]
        actual = sum(matrix[c])
        predicted = sum(row[c] for row in matrix)
        negatives = total - actual
        true_negatives = negatives - (predicted - tp)
        scores[name] = {
            "precision": tp / predicted if predicted else 0.0,
            "recall": tp / actual if actual else 0.0,
            "specificity": true_negatives / negatives if negatives else 0.0,
            "f1": f1(tp, actual, predicted),
            "support": int(actual),
        }
    return scores


def class_weights(counts: Sequence[int], weighting: str = "balanced") -> List[float]:
    """Weight of each class by its count of training examples; an absent class weighs 0.
    'balanced': inverse frequency, mean 1 over examples; 'sqrt': the square root of that,
    renormalised to mean 1 over examples; 'none': 1 for every class present."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"class weighting {weighting!r}: choose from {WEIGHTINGS}")
    total, present = sum(counts), sum(1 for c in counts if c)
    if weighting == "none":
        return [1.0 if c else 0.0 for c in counts]
    weights = [total / (present * c) if c else 0.0 for c in counts]
    if weighting == "sqrt":
        weights = [math.sqrt(w) for w in weights]
        mean = sum(w * c for w, c in zip(weights, counts, strict=True)) / total
        weights = [w / mean for w in weights]
    return weights
