"""The per-class arithmetic every stage shares."""
import pytest

from components import class_metrics


def test_f1_is_twice_the_hits_over_actual_plus_predicted():
    assert class_metrics.f1(8, 10, 9) == pytest.approx(16 / 19)
    assert class_metrics.f1(0, 0, 0) == 0.0       # neither present nor predicted
    assert class_metrics.f1(0, 5, 0) == 0.0


def test_per_class_scores_one_against_the_rest():
    scores = class_metrics.per_class_scores([[8, 2], [1, 9]], ["a", "b"])
    assert scores["a"] == pytest.approx({"precision": 8 / 9, "recall": 0.8,
                                         "specificity": 0.9, "f1": 16 / 19, "support": 10})
    assert scores["b"]["f1"] == pytest.approx(18 / 21)


def test_class_weights_balanced_sqrt_and_none():
    counts = [300, 100, 0]
    balanced = class_metrics.class_weights(counts)
    assert balanced == pytest.approx([400 / 600, 400 / 200, 0.0])
    assert sum(w * c for w, c in zip(balanced, counts, strict=True)) == pytest.approx(400)
    sqrt = class_metrics.class_weights(counts, "sqrt")
    assert sum(w * c for w, c in zip(sqrt, counts, strict=True)) == pytest.approx(400)
    assert sqrt[1] / sqrt[0] == pytest.approx(3 ** 0.5) and sqrt[2] == 0.0
    assert class_metrics.class_weights(counts, "none") == [1.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="class weighting"):
        class_metrics.class_weights(counts, "inverse")
