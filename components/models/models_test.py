"""Model builders and the trainer module's pure parts (training itself: tests/e2e_pipeline_test)."""
import keras
import keras_tuner
import pytest

from components.models import resnet50, trainer, vgg16
from pipeline import configs


@pytest.mark.parametrize("builder, variant, feature_px", [
    (vgg16, "fer", 3), (vgg16, "stock", 1), (resnet50, "fer", 3), (resnet50, "stock", 2)])
def test_builders_give_a_softmax_over_the_classes(builder, variant, feature_px):
    model = builder.build((48, 48, 1), 6, variant=variant)
    assert model.output_shape == (None, 6)
    assert model.layers[-1].activation is keras.activations.softmax
    pool = model.get_layer("pool")
    assert pool.input.shape[1:3] == (feature_px, feature_px)  # spatial size before the head


def test_vgg16_fer_keeps_the_13_convolutions():
    model = vgg16.build((48, 48, 1), 6)
    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    assert len(convs) == 13 and len(model.layers) > 13


def test_resnet50_fer_keeps_the_16_bottleneck_blocks():
    model = resnet50.build((48, 48, 1), 6)
    assert len([l for l in model.layers if l.name.endswith("_add")]) == 16
    assert len([l for l in model.layers if isinstance(l, keras.layers.Conv2D)]) == 53


def test_weights_must_be_a_local_file():
    with pytest.raises(ValueError, match="local file"):
        vgg16.build((48, 48, 3), 6, variant="stock", weights="imagenet")
    with pytest.raises(ValueError, match="stock"):
        resnet50.build((48, 48, 3), 6, variant="fer", weights="/some/file.h5")


def test_train_config_rejects_unknown_settings():
    with pytest.raises(ValueError, match="unknown training settings"):
        trainer.TrainConfig.from_custom_config({"architecture": "vgg16", "label_names": ["a"],
                                                "epoch": 3})
    with pytest.raises(ValueError, match="architecture"):
        trainer.TrainConfig.from_custom_config({"architecture": "vgg19", "label_names": ["a"]})


def test_class_weights_balance_the_classes():
    weights = trainer.class_weights([300, 100, 0])
    assert weights[0] * 300 == pytest.approx(weights[1] * 100)
    assert weights[2] == 0.0
    assert (300 * weights[0] + 100 * weights[1]) / 400 == pytest.approx(1.0)


def test_search_space_per_architecture():
    config = trainer.TrainConfig(architecture="resnet50", label_names=list("abc"))
    hp = keras_tuner.HyperParameters()
    params = trainer.search_space(hp, config)
    assert set(params) == {"learning_rate", "optimizer", "dropout", "head_units"}
    assert params == configs.DEFAULT_HYPERPARAMETERS["resnet50"]  # defaults come first
    with_weights = trainer.TrainConfig(architecture="vgg16", label_names=list("abc"),
                                       weights="/w.h5")
    assert "trainable_base_layers" in trainer.search_space(keras_tuner.HyperParameters(),
                                                           with_weights)


def test_compiled_model_uses_sparse_categorical_crossentropy():
    config = trainer.TrainConfig(architecture="vgg16", label_names=list("abcdef"))
    model = trainer.build_model(config, trainer.default_hyperparameters("vgg16"), (48, 48, 1))
    assert isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy)
    assert model.optimizer.learning_rate.numpy() == pytest.approx(1e-3)


def test_keras_3_everywhere():
    import tensorflow as tf
    assert keras.__version__.startswith("3.")
    assert tf.keras.layers.Dense is keras.layers.Dense  # tf.keras is Keras 3, not tf_keras
