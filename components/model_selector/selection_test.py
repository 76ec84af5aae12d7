"""ModelSelector: best blessed candidate on the metric, none when none is blessed, the ensemble
only when strictly better; the selection written and read back."""
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


def ensemble(value, blessed=True):
    return {**cand(value, blessed), selection.MEMBERS: ["vgg16", "resnet50"]}


def test_the_ensemble_wins_only_when_strictly_better():
    assert selection.select({"vgg16": cand(0.6), "resnet50": cand(0.55),
                             "ensemble": ensemble(0.61)}) == "ensemble"
    # A tie goes to the single network: the same score at a fraction of the serving cost,
    # although "ensemble" comes first by name.
    assert selection.select({"vgg16": cand(0.6), "resnet50": cand(0.55),
                             "ensemble": ensemble(0.6)}) == "vgg16"
    assert selection.select({"vgg16": cand(0.6, False), "resnet50": cand(0.55, False),
                             "ensemble": ensemble(0.9, False)}) is None
    assert selection.select({"vgg16": cand(0.6, False), "resnet50": cand(0.5),
                             "ensemble": ensemble(0.55)}) == "ensemble"


def test_an_ensemble_is_labelled_with_its_members():
    chosen = selection.Selection("m", "ensemble", {"vgg16": cand(0.5),
                                                   "ensemble": ensemble(0.6)})
    assert chosen.members() == {"ensemble": ["vgg16", "resnet50"]}
    assert chosen.label("ensemble") == "ensemble (vgg16 + resnet50)"
    assert chosen.label("vgg16") == "vgg16"


def test_component_needs_known_candidates():
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
