"""ModelSelector: best blessed candidate on the metric, none when none is blessed; the
selection written and read back."""
import pytest

from components.model_selector import component, selection


def cand(value, blessed=True):
    return {"metric_value": value, "blessed": blessed}


def test_best_blessed_candidate_wins():
    assert selection.select({"vgg16": cand(0.6), "resnet50": cand(0.55)}) == "vgg16"
    assert selection.select({"vgg16": cand(0.5), "resnet50": cand(0.55)}) == "resnet50"


def test_unblessed_candidates_never_win_even_when_better():
    assert selection.select({"vgg16": cand(0.9, blessed=False), "resnet50": cand(0.4)}) == \
        "resnet50"


def test_no_blessed_candidate_means_no_winner():
    assert selection.select({"vgg16": cand(0.9, False), "resnet50": cand(0.8, False)}) is None


def test_missing_metric_cannot_win():
    assert selection.select({"vgg16": cand(None), "resnet50": cand(0.3)}) == "resnet50"


def test_ties_are_broken_by_name_deterministically():
    assert selection.select({"vgg16": cand(0.5), "resnet50": cand(0.5)}) == "resnet50"


def test_component_needs_known_architectures():
    with pytest.raises(ValueError, match="subset"):
        component.ModelSelector(candidates={"vgg19": {}}, metric="accuracy")
    with pytest.raises(ValueError, match="subset"):
        component.ModelSelector(candidates={}, metric="accuracy")


def test_written_selection_reads_back(tmp_path):
    candidates = {"vgg16": {**cand(0.6), "metrics": {"per_class": {"happy": {"f1": 0.7}}}},
                  "resnet50": {**cand(0.5), "metrics": {}}}
    written = selection.Selection(metric="m", winner=selection.select(candidates),
                                  candidates=candidates)
    selection.write(written, str(tmp_path / "blessing"))
    read = selection.read(str(tmp_path / "blessing"))
    assert read == written and read.winner == "vgg16"
    assert read.winner_metrics == {"per_class": {"happy": {"f1": 0.7}}}
    assert selection.Selection("m", None, candidates).winner_metrics == {}
