"""Model builders and the trainer module's pure parts (training itself: tests/e2e_pipeline_test)."""
import keras
import keras_tuner
import pytest

from components.models import export, input_pipeline, resnet50, trainer, training_config, vgg16


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
    weights = input_pipeline.class_weights([300, 100, 0])
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


def test_the_search_tries_the_default_hyperparameters_first(tmp_path):
    config = training_config.TrainConfig(architecture="resnet50", label_names=list("abc"),
                                         hyperparameters={"learning_rate": 3e-3})
    hp = keras_tuner.HyperParameters()
    trainer.search_space(hp, config)
    oracle = trainer.DefaultsFirstOracle(objective=keras_tuner.Objective("val_loss", "min"),
                                         max_trials=3, seed=42)
    oracle._set_project_dir(str(tmp_path), "search")  # what the Tuner does
    oracle.update_space(hp)
    first = oracle.create_trial("tuner0")
    assert first.hyperparameters.values == trainer.default_hyperparameters(config)
    oracle.update_trial(first.trial_id, {"val_loss": 1.0})
    first.status = "COMPLETED"
    oracle.end_trial(first)
    second = oracle.create_trial("tuner0")
    assert second.hyperparameters.values != first.hyperparameters.values  # then at random


def test_compiled_model_uses_sparse_categorical_crossentropy():
    config = training_config.TrainConfig(architecture="vgg16", label_names=list("abcdef"))
    model = trainer.build_model(config, trainer.default_hyperparameters(config), (48, 48, 1))
    assert isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy)
    assert model.optimizer.learning_rate.numpy() == pytest.approx(1e-3)
    assert trainer.one_hot_classes(config) == 0


def test_recipe_settings_reach_the_optimizer_and_the_loss():
    config = training_config.TrainConfig(
        architecture="resnet50", label_names=list("abcdef"), label_smoothing=0.1,
        weight_decay=1e-3, hyperparameters={"optimizer": "sgd", "learning_rate": 0.05})
    hparams = trainer.default_hyperparameters(config)
    assert hparams["dropout"] == training_config.DEFAULT_HYPERPARAMETERS["resnet50"]["dropout"]
    model = trainer.build_model(config, hparams, (48, 48, 1), replicas=2)
    assert isinstance(model.loss, keras.losses.CategoricalCrossentropy)
    assert model.loss.get_config()["label_smoothing"] == pytest.approx(0.1)
    assert trainer.one_hot_classes(config) == 6
    optimizer = model.optimizer
    assert isinstance(optimizer, keras.optimizers.SGD) and optimizer.nesterov
    assert optimizer.weight_decay == pytest.approx(1e-3)
    assert optimizer.learning_rate.numpy() == pytest.approx(0.1)  # 0.05 x 2 replicas
    # The search range holds an SGD default far above Adam's usual rates.
    params = trainer.search_space(keras_tuner.HyperParameters(), config)
    assert params["learning_rate"] == pytest.approx(0.05)


def test_augmentation_in_the_model_trains_in_front_of_the_exported_classifier():
    import numpy as np
    config = training_config.TrainConfig(architecture="vgg16", label_names=list("ab"),
                                         width=0.125, augment_in_model=True, crop_pad=2,
                                         erasing=0.5)
    model = trainer.build_model(config, trainer.default_hyperparameters(config), (32, 32, 1))
    inner = trainer.classifier(model)
    assert model is not inner and inner.name == "vgg16_fer"
    assert [x.name for x in model.layers[1].layers][-2:] == ["random_pad_crop", "random_erase"]
    assert not any("random" in x.name for x in inner.layers)
    x = np.random.default_rng(0).random((4, 32, 32, 1)).astype("float32")
    model.fit(x, np.array([0, 1, 0, 1]), epochs=1, verbose=0)
    np.testing.assert_allclose(model(x, training=False), inner(x, training=False), rtol=1e-5)
    plain = training_config.TrainConfig(architecture="vgg16", label_names=list("ab"))
    plain_model = trainer.build_model(plain, trainer.default_hyperparameters(plain), (32, 32, 1))
    assert trainer.classifier(plain_model) is plain_model


@pytest.mark.parametrize("builder", [vgg16, resnet50])
def test_width_scales_every_layer_and_keeps_the_depth(builder):
    full = builder.build((32, 32, 1), 6)
    narrow = builder.build((32, 32, 1), 6, width=0.25)
    convs = [[x.filters for x in m.layers if isinstance(x, keras.layers.Conv2D)]
             for m in (full, narrow)]
    assert len(convs[0]) == len(convs[1])
    assert all(n == max(8, round(f / 4)) for f, n in zip(*convs, strict=True))
    assert narrow.count_params() < full.count_params() / 8
    with pytest.raises(ValueError, match="width fits only the fer"):
        builder.build((32, 32, 1), 6, variant="stock", width=0.5)


def _asymmetric_model(size=8):
    """A fixed model whose output changes when the image is mirrored or shifted."""
    import numpy as np
    inputs = keras.Input((size, size, 1))
    x = keras.layers.Flatten()(inputs)
    dense = keras.layers.Dense(3, activation="softmax")
    model = keras.Model(inputs, dense(x))
    kernel = np.random.default_rng(0).normal(size=(size * size, 3)).astype("float32")
    dense.set_weights([kernel, np.zeros(3, "float32")])
    return model


def test_test_time_views_average_the_model_over_mirrors_and_shifted_crops():
    import numpy as np
    import tensorflow as tf
    model = _asymmetric_model()
    images = tf.constant(np.random.default_rng(1).random((4, 8, 8, 1)), tf.float32)
    plain = model(images).numpy()
    none = export.predict_probabilities(model, images, "none").numpy()
    np.testing.assert_allclose(none, plain, rtol=1e-6)
    flip = export.predict_probabilities(model, images, "flip").numpy()
    mirrored = model(images[:, :, ::-1, :]).numpy()
    np.testing.assert_allclose(flip, (plain + mirrored) / 2, rtol=1e-5)
    crops = export.predict_probabilities(model, images, "crops", tta_shift=2).numpy()
    padded = np.pad(images.numpy(), [(0, 0), (2, 2), (2, 2), (0, 0)], mode="reflect")
    views = [padded[:, 2 - dy:10 - dy, 2 - dx:10 - dx, :]
             for dy, dx in [(0, 0), (-2, -2), (-2, 2), (2, -2), (2, 2)]]
    views += [v[:, :, ::-1, :] for v in views]
    expected = np.mean([model(v).numpy() for v in views], axis=0)
    np.testing.assert_allclose(crops, expected, rtol=1e-5)
    assert not np.allclose(crops, flip)
    with pytest.raises(ValueError, match="unknown test-time augmentation"):
        export.predict_probabilities(model, images, "crops10")


def test_keras_3_everywhere():
    import tensorflow as tf
    assert keras.__version__.startswith("3.")
    assert tf.keras.layers.Dense is keras.layers.Dense  # tf.keras is Keras 3, not tf_keras


def test_shuffle_buffer_covers_the_split_within_its_memory_cap():
    assert input_pipeline.shuffle_buffer_size(28_273, (48, 48, 1)) == 28_273   # FER2013 train
    capped = input_pipeline.shuffle_buffer_size(10**6, (224, 224, 3))
    assert 0 < capped < 10**6
    assert capped * 4 * 224 * 224 * 3 <= input_pipeline.SHUFFLE_BUFFER_BYTES


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
                    input_pipeline.IMAGE_XF: tf.train.Feature(float_list=tf.train.FloatList(
                        value=[float(label), float(i), 0.0, 0.0])),
                    input_pipeline.LABEL_XF: tf.train.Feature(int64_list=tf.train.Int64List(
                        value=[label])),
                })).SerializeToString())
    spec = {input_pipeline.IMAGE_XF: tf.io.FixedLenFeature([2, 2, 1], tf.float32),
            input_pipeline.LABEL_XF: tf.io.FixedLenFeature([], tf.int64)}
    return _ExamplesOnly(spec)


def test_training_batches_mix_classes_when_examples_arrive_sorted_by_class(tmp_path):
    # 30,000 class-sorted examples: a fixed 10,000-example shuffle buffer would give first
    # batches of classes 0 and 1 only.
    path = str(tmp_path / "sorted.gz")
    fake = _write_sorted_examples(path, 5_000)
    dataset = input_pipeline.input_fn([path], fake, fake, batch_size=128, training=True,
                               num_examples=30_000)
    _, labels = next(iter(dataset))
    assert set(labels.numpy().tolist()) == set(range(6))


def test_a_split_that_fits_in_memory_is_cached_and_reshuffled_each_epoch(tmp_path):
    path = str(tmp_path / "sorted.gz")
    fake = _write_sorted_examples(path, 50)
    dataset = input_pipeline.input_fn([path], fake, fake, batch_size=100, training=True,
                                    num_examples=300)
    batches = iter(dataset)

    def epoch():  # (label, index) of each example, in the order read
        return [tuple(x) for _ in range(3)
                for x in next(batches)[0].numpy().reshape(-1, 4)[:, :2].astype(int).tolist()]

    first, second = epoch(), epoch()
    assert sorted(first) == sorted(second) == [(c, i) for c in range(6) for i in range(50)]
    assert first != second
    assert len({label for label, _ in first[:100]}) == 6   # shuffled across the classes


def test_capped_validation_is_one_fixed_subset_across_the_classes(tmp_path):
    import numpy as np
    path = str(tmp_path / "sorted.gz")
    fake = _write_sorted_examples(path, 100)

    dataset = input_pipeline.input_fn([path], fake, fake, batch_size=16, training=False,
                               num_examples=600, max_examples=60)

    def one_pass():  # (label, index) of each example, in order
        return [tuple(x) for images, _ in dataset
                for x in images.numpy().reshape(-1, 4)[:, :2].astype(int).tolist()]

    first, second = one_pass(), one_pass()
    assert len(first) == 60 and len(set(first)) == 60
    assert first == second                       # the same examples on every epoch
    assert {label for label, _ in first} == set(range(6))  # not the first 60 of one class
    uncapped = input_pipeline.input_fn([path], fake, fake, batch_size=16, training=False)
    assert sum(int(np.size(labels)) for _, labels in uncapped) == 600


def test_backup_dir_is_beside_the_trainer_outputs_and_keyed_by_content(tmp_path):
    import types

    import tensorflow as tf

    def fn_args(execution):
        split = tmp_path / "Transform" / "transformed_examples" / str(execution)
        split.mkdir(parents=True)
        with tf.io.TFRecordWriter(str(split / "data.gz"), options="GZIP") as writer:
            writer.write(b"record")
        return types.SimpleNamespace(
            train_files=[str(split / "*")], eval_files=[str(split / "*")], base_model=None,
            transform_graph_path=str(tmp_path / "Transform" / "transform_graph" / str(execution)),
            hyperparameters=None, custom_config={"epochs": 2},
            model_run_dir=str(tmp_path / "Trainer" / "model_run" / str(execution)))

    first, rerun = trainer._backup_dir(fn_args(3)), trainer._backup_dir(fn_args(9))
    assert first == rerun
    assert first.startswith(str(tmp_path / "Trainer" / trainer.BACKUP_DIR_NAME) + "/")


def test_a_warm_start_schedule_decays_from_its_first_epoch():
    """A warm-started Trainer trains `warm_start_epochs` from a share of the rate without
    warm-up: with the cpu profile's 2 warm-up epochs and 2 warm-start epochs, a schedule that
    kept the warm-up would never leave it."""
    config = training_config.TrainConfig(architecture="vgg16", label_names=["a", "b"],
                                         epochs=50, warmup_epochs=2, warm_start_epochs=2,
                                         warm_start_lr_scale=0.5, lr_floor=0.0)
    warm, hparams = trainer.warm_start_settings(config, {"learning_rate": 0.01})
    assert warm.epochs == 2 and hparams["learning_rate"] == 0.005
    rates = [training_config.lr_at_epoch(e, warm.epochs, hparams["learning_rate"],
                                         warm.warmup_epochs, warm.lr_floor) for e in range(2)]
    assert rates[0] == 0.005 and rates[1] < rates[0]
