"""The TFLite twin of an exported model against the SavedModel itself, on 36 held-out faces:
the same probabilities within PROBABILITY_TOLERANCE, the same accuracy within half a point, for
one network with ten test-time crops and for an ensemble of two; its class names in its
metadata; the int8 model written beside it only when it keeps its eval accuracy; what cannot be
converted is refused by name."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from components import contract
from components.pusher import tflite
from serving import tflite_predict
from tests import tflite_models, tiny_models, transform_graphs

# float16 weights, float32 arithmetic: each weight is off by at most 2^-11 of itself. Measured
# on these networks: at most 2.3e-4 (one network, ten crops) and 1.7e-4 (the ensemble) for any
# image and class; the bound leaves a factor of about 9 for other stacks and CPUs. Deeper
# networks drift further (tests/e2e_pipeline_test.py; the FER2013 model: BENCHMARKS.md#tflite).
PROBABILITY_TOLERANCE = 0.002
ACCURACY_TOLERANCE = 0.005  # half a point


@pytest.fixture(scope="module")
def exports():
    return tflite_models.shared_trained_exports()


def _saved_model_probabilities(saved_model_dir, images):
    model = tf.saved_model.load(saved_model_dir)
    served = model.signatures[contract.SERVING_SIGNATURE](
        **{contract.SERVING_INPUT_KEY: tf.constant(images)})
    return served[contract.PROBABILITIES_KEY].numpy()


@pytest.mark.parametrize("which", ["single", "ensemble"])
def test_tflite_float16_matches_the_saved_model(exports, which, tmp_path):
    saved_model_dir = getattr(exports, which)
    path = tflite.write_version(saved_model_dir, str(tmp_path / "1"))[tflite.FLOAT16]
    classifier = tflite_predict.TFLiteClassifier(path)
    expected = _saved_model_probabilities(saved_model_dir, exports.images)
    got = classifier.probabilities(classifier.preprocess(exports.images))

    assert got.shape == expected.shape == (len(exports.images), len(tflite_models.LABELS))
    np.testing.assert_allclose(got, expected, atol=PROBABILITY_TOLERANCE, rtol=0)
    saved_model_accuracy = np.mean(expected.argmax(axis=1) == exports.labels)
    tflite_accuracy = np.mean(got.argmax(axis=1) == exports.labels)
    assert saved_model_accuracy > 0.6  # a trained model: the comparison means something
    assert abs(tflite_accuracy - saved_model_accuracy) <= ACCURACY_TOLERANCE
    assert classifier.classes == tflite_models.LABELS


def test_dynamic_int8_is_smaller_and_still_classifies(exports):
    float16 = tflite.convert(exports.single, tflite.FLOAT16)
    int8 = tflite.convert(exports.single, tflite.DYNAMIC_INT8)
    assert len(int8) < len(float16)
    assert tflite_predict.class_names(int8) == tflite_models.LABELS


def test_class_names_are_replaced_not_repeated(exports):
    model = tflite.convert(exports.single)
    relabelled = tflite.with_class_names(model, ["a", "b", "c"])
    assert tflite_predict.class_names(relabelled) == ["a", "b", "c"]
    assert tflite_predict.class_names(model) == tflite_models.LABELS


def test_a_model_exported_without_the_image_function_is_refused_by_name(tmp_path):
    old_export = tiny_models.export(str(tmp_path / "old"), with_warmup=False)
    with pytest.raises(tflite.NotConvertibleError, match="classify_images"):
        tflite.convert(old_export)


def test_bfloat16_arithmetic_is_refused_as_not_convertible(tmp_path):
    """The gpu profile trains and exports with mixed_bfloat16; TFLite has no bfloat16."""
    import keras
    import tensorflow_transform as tft

    from components.models import export

    graph = transform_graphs.write(str(tmp_path / "transform_graph"))
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        network = keras.Sequential([
            keras.Input([tflite_models.IMAGE_SIZE, tflite_models.IMAGE_SIZE, 1]),
            keras.layers.Conv2D(4, 3), keras.layers.Flatten(),
            keras.layers.Dense(len(tflite_models.LABELS), activation="softmax",
                               dtype="float32")])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    export.export_model(network, tft.TFTransformOutput(graph), tflite_models.LABELS,
                        str(tmp_path / "bf16"))
    with pytest.raises(tflite.NotConvertibleError, match="bf16"):
        tflite.convert(str(tmp_path / "bf16"))


def test_an_unknown_quantization_is_refused(exports):
    with pytest.raises(ValueError, match="quantization"):
        tflite.convert(exports.single, "int4")


def test_with_eval_examples_both_are_measured_and_int8_kept_within_a_point(exports, tmp_path):
    examples = tflite_models.eval_examples_artifact(tmp_path / "examples", exports.images,
                                                    exports.labels)
    written = tflite.write_version(exports.single, str(tmp_path / "1"), examples)

    with open(tmp_path / "1" / contract.TFLITE_EVAL_FILE) as f:
        recorded = json.load(f)
    assert recorded == written["eval"]
    assert recorded["eval_images"] == len(exports.images)
    classifier = tflite_predict.TFLiteClassifier(written[tflite.FLOAT16])
    float16 = classifier.probabilities(classifier.preprocess(exports.images)).argmax(axis=1)
    assert recorded["accuracy"][tflite.FLOAT16] == pytest.approx(
        np.mean(float16 == exports.labels))
    int8_kept = (recorded["accuracy"][tflite.DYNAMIC_INT8]
                 >= recorded["accuracy"][tflite.FLOAT16] - tflite.INT8_MAX_ACCURACY_DROP)
    assert os.path.exists(tmp_path / "1" / contract.TFLITE_INT8_FILE) == int8_kept
    assert recorded["written"] == [tflite.FLOAT16] + [tflite.DYNAMIC_INT8] * int8_kept


@pytest.mark.parametrize("int8_drop, kept", [(0.01, True), (0.0101, False)])
def test_int8_is_written_only_within_a_point_of_float16(exports, tmp_path, monkeypatch,
                                                        int8_drop, kept):
    def accuracy(model_path, images, labels):
        return 0.8 - (int8_drop if model_path.endswith(contract.TFLITE_INT8_FILE) else 0)

    monkeypatch.setattr(tflite, "eval_accuracy", accuracy)
    examples = tflite_models.eval_examples_artifact(tmp_path / "examples", exports.images,
                                                    exports.labels)
    written = tflite.write_version(exports.single, str(tmp_path / "1"), examples)
    assert os.path.exists(tmp_path / "1" / contract.TFLITE_INT8_FILE) == kept
    assert (tflite.DYNAMIC_INT8 in written) == kept
    if kept:
        assert tflite_predict.class_names(
            (tmp_path / "1" / contract.TFLITE_INT8_FILE).read_bytes()) == tflite_models.LABELS


def test_eval_examples_of_other_classes_are_left_out(exports, tmp_path):
    """Only the model's classes are measured (a run trained without `disgust` keeps its
    examples in the eval split: ExampleGen lists them, Transform filters them)."""
    names = [*tflite_models.LABELS, "disgust"]
    images = exports.images[:6]
    labels = np.array([3, 0, 3, 1, 2, 3])
    examples = tflite_models.eval_examples_artifact(tmp_path / "examples", images, labels, names)
    written = tflite.write_version(exports.single, str(tmp_path / "1"), examples)
    assert written["eval"]["eval_images"] == 3


def test_an_empty_eval_split_writes_float16_alone(exports, tmp_path):
    examples = tflite_models.eval_examples_artifact(tmp_path / "examples", [], [])
    written = tflite.write_version(exports.single, str(tmp_path / "1"), examples)
    assert set(written) == {tflite.FLOAT16}
    assert sorted(os.listdir(tmp_path / "1")) == [contract.TFLITE_FILE]
