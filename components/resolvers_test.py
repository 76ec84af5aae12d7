"""Which model is serving: the latest push that happened, per architecture when asked."""
import pytest
from tfx.types import standard_artifacts

from components import contract, resolvers


def _model(id_, arch):
    model = standard_artifacts.Model()
    model.id = id_
    model.set_string_custom_property(resolvers.ARCHITECTURE_PROPERTY, arch)
    return model


def _push(id_, model_id, pushed):
    push = standard_artifacts.PushedModel()
    push.id = id_
    push.set_int_custom_property(resolvers.PUSHED_PROPERTY, int(pushed))
    push.set_int_custom_property(resolvers.PUSHED_MODEL_ID_PROPERTY, model_id)
    return push


def test_the_latest_push_that_happened_wins_not_the_latest_model():
    models = [_model(1, "vgg16"), _model(2, "resnet50"), _model(3, "vgg16")]
    # Model 3 was blessed by its Evaluator but its push did not happen (worse than serving).
    pushes = [_push(10, 1, True), _push(11, 2, True), _push(12, 3, False)]
    assert resolvers.latest_pushed_model(models, pushes).id == 2
    assert resolvers.latest_pushed_model(models, pushes, "vgg16").id == 1
    assert resolvers.latest_pushed_model(models, pushes, "resnet50").id == 2
    # A push of a model left out of `models` (e.g. trained on these examples) is passed over.
    assert resolvers.latest_pushed_model(models[:1], pushes).id == 1
    assert resolvers.latest_pushed_model(models, [_push(12, 3, False)]) is None
    assert resolvers.latest_pushed_model([], []) is None


def test_a_pushed_ensemble_serves_but_warm_starts_no_architecture():
    models = [_model(1, "vgg16"), _model(2, contract.ENSEMBLE)]
    pushes = [_push(10, 1, True), _push(11, 2, True)]
    assert resolvers.latest_pushed_model(models, pushes).id == 2          # the baseline
    assert resolvers.latest_pushed_model(models, pushes, "vgg16").id == 1  # vgg16's warm start
    assert resolvers.latest_pushed_model(models, pushes, "resnet50") is None  # cold


def _examples(id_, span, create_time=0):
    examples = standard_artifacts.Examples()
    examples.id = id_
    examples.span = span
    examples.mlmd_artifact.create_time_since_epoch = create_time or id_
    return examples


def test_span_window_is_this_runs_examples_and_the_latest_accepted_version_of_earlier_spans():
    current = _examples(20, span=4)
    earlier = [_examples(1, 1), _examples(2, 2), _examples(3, 2),   # span 2 re-ingested: id 3
               _examples(4, 3),                                       # span 3: stopped (drift)
               _examples(5, 5),                                       # a later span (--span 4)
               _examples(6, 4)]                                       # span 4's earlier version
    stopped = {4}

    def window(k):
        return [a.id for a in resolvers.span_window(current, earlier, k,
                                                    lambda a: a.id not in stopped)]

    assert window(1) == [20]
    assert window(2) == [20, 3]          # span 3 was never trained on: span 2 is the one before
    assert window(3) == [20, 3, 1]
    assert window(10) == [20, 3, 1]
    with pytest.raises(ValueError, match="num_spans must be at least 1"):
        window(0)
