"""The training-curve metrics agree with scikit-learn, for class-id and one-hot labels."""
import numpy as np
import pytest
from sklearn import metrics as sk

from components.models import training_metrics

NUM_CLASSES = 4


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, NUM_CLASSES - 1, size=200)  # the last class never occurs
    logits = rng.normal(size=(200, NUM_CLASSES)) + 1.5 * np.eye(NUM_CLASSES)[labels]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return labels, probabilities.astype("float32")


@pytest.mark.parametrize("one_hot", [False, True])
def test_macro_scores_match_sklearn(batch, one_hot):
    labels, probabilities = batch
    y_true = np.eye(NUM_CLASSES)[labels] if one_hot else labels.reshape(-1, 1)
    predicted = probabilities.argmax(axis=1)
    expected = {
        "precision": sk.precision_score(labels, predicted, average="macro", zero_division=0,
                                        labels=range(NUM_CLASSES)),
        "recall": sk.recall_score(labels, predicted, average="macro", zero_division=0,
                                  labels=range(NUM_CLASSES)),
        "macro_f1": sk.f1_score(labels, predicted, average="macro", zero_division=0,
                                labels=range(NUM_CLASSES)),
        "auc": sk.roc_auc_score(np.eye(NUM_CLASSES)[labels], probabilities, average="micro"),
    }
    for metric in training_metrics.curve_metrics(NUM_CLASSES):
        # Two updates: the state accumulates over batches.
        metric.update_state(y_true[:120], probabilities[:120])
        metric.update_state(y_true[120:], probabilities[120:])
        tolerance = 0.01 if metric.name == "auc" else 1e-6  # AUC: 200 thresholds
        assert float(metric.result()) == pytest.approx(expected[metric.name], abs=tolerance)
        metric.reset_state()
        assert float(metric.result()) == 0.0 or metric.name == "auc"


def test_names_are_the_curves_the_report_draws():
    names = {m.name for m in training_metrics.curve_metrics(NUM_CLASSES)}
    assert names | {"loss", "accuracy"} == set(training_metrics.TRAINING_CURVE_METRICS)
