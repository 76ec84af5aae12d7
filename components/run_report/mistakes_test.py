"""Which eval examples the report shows: most confident mistakes, right and wrong answers."""
import numpy as np

from components.run_report import mistakes

NAMES = ["angry", "happy", "sad"]
LABELS = np.array([0, 0, 0, 1, 2, 2])
PROBABILITIES = np.array([
    [0.2, 0.7, 0.1],     # angry taken for happy, 0.7
    [0.1, 0.1, 0.8],     # angry taken for sad, 0.8
    [0.6, 0.3, 0.1],     # angry right, 0.6
    [0.1, 0.85, 0.05],   # happy right
    [0.5, 0.2, 0.3],     # sad taken for angry, 0.5
    [0.1, 0.1, 0.8],     # sad right
])


def test_confident_mistakes_come_most_confident_first_for_every_class():
    worst = mistakes.confident_mistakes(LABELS, PROBABILITIES, NAMES)
    assert list(worst) == NAMES
    assert [(e.index, e.predicted_class, e.probability) for e in worst["angry"]] == [
        (1, "sad", 0.8), (0, "happy", 0.7)]
    assert worst["happy"] == []
    assert [e.index for e in worst["sad"]] == [4]
    assert not any(e.correct for shown in worst.values() for e in shown)
    assert [e.index for e in mistakes.confident_mistakes(
        LABELS, PROBABILITIES, NAMES, per_class=1)["angry"]] == [1]


def test_heatmap_examples_are_right_answers_then_wrong_ones():
    shown = mistakes.heatmap_examples(LABELS, PROBABILITIES, NAMES, per_kind=1)
    assert [(e.index, e.correct) for e in shown["angry"]] == [(2, True), (1, False)]
    assert [(e.index, e.correct) for e in shown["happy"]] == [(3, True)]
    assert [(e.index, e.correct) for e in shown["sad"]] == [(5, True), (4, False)]


def test_most_confused_counts_a_classs_mistakes():
    assert mistakes.most_confused(LABELS, PROBABILITIES, NAMES, "angry") == [
        ("happy", 1), ("sad", 1)]
    assert mistakes.most_confused(LABELS, PROBABILITIES, NAMES, "happy") == []
