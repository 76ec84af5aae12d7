"""Which model is serving: the latest push that happened, per architecture when asked."""
from tfx.types import standard_artifacts

from components import resolvers


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
