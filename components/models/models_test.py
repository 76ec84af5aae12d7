"""Model builders and the trainer module's pure parts (training itself: tests/e2e_pipeline_test)."""
import keras
import keras_tuner
import pytest

from components.models import resnet50, trainer, trainer_base, training_config, vgg16


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
    convs = [x for x in model.layers if isinstance(x, keras.layers.Conv2D)]
    assert len(convs) == 13 and len(model.layers) > 13


def test_resnet50_fer_keeps_the_16_bottleneck_blocks():
    model = resnet50.build((48, 48, 1), 6)
    assert len([x for x in model.layers if x.name.endswith("_add")]) == 16
    assert len([x for x in model.layers if isinstance(x, keras.layers.Conv2D)]) == 53


def test_weights_must_be_a_local_file():
    with pytest.raises(ValueError, match="local file"):
        vgg16.build((48, 48, 3), 6, variant="stock", weights="imagenet")
    with pytest.raises(ValueError, match="stock"):
        resnet50.build((48, 48, 3), 6, variant="fer", weights="/some/file.h5")


def test_train_config_rejects_unknown_settings():
    with pytest.raises(ValueError, match="unknown training settings"):
        training_config.TrainConfig.from_custom_config(
            {"architecture": "vgg16", "label_names": ["a"], "epoch": 3})
    with pytest.raises(ValueError, match="architecture"):
        training_config.TrainConfig.from_custom_config(
            {"architecture": "vgg19", "label_names": ["a"]})


def test_class_weights_balance_the_classes():
    weights = trainer_base.class_weights([300, 100, 0])
    assert weights[0] * 300 == pytest.approx(weights[1] * 100)
    assert weights[2] == 0.0
    assert (300 * weights[0] + 100 * weights[1]) / 400 == pytest.approx(1.0)


def test_search_space_per_architecture():
    config = training_config.TrainConfig(architecture="resnet50", label_names=list("abc"))
    hp = keras_tuner.HyperParameters()
    params = trainer.search_space(hp, config)
    assert set(params) == {"learning_rate", "optimizer", "dropout", "head_units"}
    assert params == training_config.DEFAULT_HYPERPARAMETERS["resnet50"]  # defaults come first
    with_weights = training_config.TrainConfig(architecture="vgg16", label_names=list("abc"),
                                       weights="/w.h5")
    assert "trainable_base_layers" in trainer.search_space(keras_tuner.HyperParameters(),
                                                           with_weights)


def test_compiled_model_uses_sparse_categorical_crossentropy():
    config = training_config.TrainConfig(architecture="vgg16", label_names=list("abcdef"))
    model = trainer.build_model(config, trainer.default_hyperparameters("vgg16"), (48, 48, 1))
    assert isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy)
    assert model.optimizer.learning_rate.numpy() == pytest.approx(1e-3)


def test_keras_3_everywhere():
    import tensorflow as tf
    assert keras.__version__.startswith("3.")
    assert tf.keras.layers.Dense is keras.layers.Dense  # tf.keras is Keras 3, not tf_keras


def test_shuffle_buffer_covers_the_split_within_its_memory_cap():
    assert trainer_base.shuffle_buffer_size(28_273, (48, 48, 1)) == 28_273   # FER2013 train
    capped = trainer_base.shuffle_buffer_size(10**6, (224, 224, 3))
    assert 0 < capped < 10**6
    assert capped * 4 * 224 * 224 * 3 <= trainer_base.SHUFFLE_BUFFER_BYTES


class _ExamplesOnly:
    """The two parts of a DataAccessor / TFTransformOutput that input_fn uses."""

    def __init__(self, feature_spec):
        from tensorflow_transform.tf_metadata import dataset_metadata
        from tfx_bsl.public import tfxio
        self._spec = feature_spec
        self.transformed_metadata = dataset_metadata.DatasetMetadata.from_feature_spec(
            feature_spec)
        self.tf_dataset_factory = lambda pattern, options, schema: tfxio.TFExampleRecord(
            file_pattern=pattern, schema=schema).TensorFlowDataset(options)

    def transformed_feature_spec(self):
        return self._spec


def _write_sorted_examples(path, per_class):
    """Transformed examples written class after class, as ExampleGen's local runs write them;
    each image's pixels hold its label and its index, so examples can be told apart."""
    import tensorflow as tf
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for label in range(6):
            for i in range(per_class):
                writer.write(tf.train.Example(features=tf.train.Features(feature={
                    trainer_base.IMAGE_XF: tf.train.Feature(float_list=tf.train.FloatList(
                        value=[float(label), float(i), 0.0, 0.0])),
                    trainer_base.LABEL_XF: tf.train.Feature(int64_list=tf.train.Int64List(
                        value=[label])),
                })).SerializeToString())
    spec = {trainer_base.IMAGE_XF: tf.io.FixedLenFeature([2, 2, 1], tf.float32),
            trainer_base.LABEL_XF: tf.io.FixedLenFeature([], tf.int64)}
    return _ExamplesOnly(spec)


def test_training_batches_mix_classes_when_examples_arrive_sorted_by_class(tmp_path):
    # 30,000 class-sorted examples: a fixed 10,000-example shuffle buffer would give first
    # batches of classes 0 and 1 only.
    path = str(tmp_path / "sorted.gz")
    fake = _write_sorted_examples(path, 5_000)
    dataset = trainer_base.input_fn([path], fake, fake, batch_size=128, training=True,
                               num_examples=30_000)
    _, labels = next(iter(dataset))
    assert set(labels.numpy().tolist()) == set(range(6))


def test_capped_validation_is_one_fixed_subset_across_the_classes(tmp_path):
    import numpy as np
    path = str(tmp_path / "sorted.gz")
    fake = _write_sorted_examples(path, 100)

    dataset = trainer_base.input_fn([path], fake, fake, batch_size=16, training=False,
                               num_examples=600, max_examples=60)

    def one_pass():  # (label, index) of each example, in order
        return [tuple(x) for images, _ in dataset
                for x in images.numpy().reshape(-1, 4)[:, :2].astype(int).tolist()]

    first, second = one_pass(), one_pass()
    assert len(first) == 60 and len(set(first)) == 60
    assert first == second                       # the same examples on every epoch
    assert {label for label, _ in first} == set(range(6))  # not the first 60 of one class
    uncapped = trainer_base.input_fn([path], fake, fake, batch_size=16, training=False)
    assert sum(int(np.size(labels)) for _, labels in uncapped) == 600
