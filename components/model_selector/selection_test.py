"""ModelSelector's choice: best blessed candidate on the metric, none when none is blessed."""
import pytest

from components.model_selector import component, executor


def cand(value, blessed=True):
    return {"metric_value": value, "blessed": blessed}


def test_best_blessed_candidate_wins():
    assert executor.select({"vgg16": cand(0.6), "resnet50": cand(0.55)}) == "vgg16"
    assert executor.select({"vgg16": cand(0.5), "resnet50": cand(0.55)}) == "resnet50"


def test_unblessed_candidates_never_win_even_when_better():
    assert executor.select({"vgg16": cand(0.9, blessed=False), "resnet50": cand(0.4)}) == \
        "resnet50"


def test_no_blessed_candidate_means_no_winner():
    assert executor.select({"vgg16": cand(0.9, False), "resnet50": cand(0.8, False)}) is None


def test_missing_metric_cannot_win():
    assert executor.select({"vgg16": cand(None), "resnet50": cand(0.3)}) == "resnet50"


def test_ties_are_broken_by_name_deterministically():
    assert executor.select({"vgg16": cand(0.5), "resnet50": cand(0.5)}) == "resnet50"


def test_component_needs_known_architectures():
    with pytest.raises(ValueError, match="subset"):
        component.ModelSelector(candidates={"vgg19": {}}, metric="accuracy")
    with pytest.raises(ValueError, match="subset"):
        component.ModelSelector(candidates={}, metric="accuracy")
