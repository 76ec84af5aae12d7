"""Macro-F1 from a multi-class confusion matrix, and the evaluation config that uses it.

Expected values come from scikit-learn on explicit y_true / y_pred lists, not from the formula
under test.
"""
import collections

import numpy as np
import pytest
import tensorflow as tf
from sklearn import metrics as sk_metrics
from tensorflow_model_analysis.metrics import metric_types
from tensorflow_model_analysis.metrics import multi_class_confusion_matrix_metrics as mccm
from tensorflow_model_analysis.metrics import multi_class_confusion_matrix_plot as mccm_plot
from tensorflow_model_analysis.proto import config_pb2
from tensorflow_model_analysis.writers import metrics_plots_and_validations_writer as writer

from components import evaluation, fer_metrics

K = mccm.MatrixEntryKey
NO_PREDICTION = mccm.NO_PREDICTED_CLASS_ID


def matrix_of(y_true, y_pred):
    """{MatrixEntryKey(actual, predicted): count} as TFMA's confusion-matrix combiner builds it
    (a prediction below the threshold is NO_PREDICTED_CLASS_ID)."""
    counts = collections.Counter(zip(y_true, y_pred, strict=True))
    return {K(t, p): float(n) for (t, p), n in counts.items()}


def sklearn_macro_f1(y_true, y_pred, num_classes):
    # labels=range(num_classes): every class counts in the mean, also one absent from y_true
    # and never predicted (F1 0, as fer_metrics documents: "0 for an unseen class"); a
    # prediction outside the labels (NO_PREDICTION) is a miss for its true class only.
    return sk_metrics.f1_score(y_true, y_pred, average="macro", labels=list(range(num_classes)),
                               zero_division=0.0)


# (y_true, y_pred, num_classes)
CASES = {
    "perfect": ([0, 0, 1, 2, 2, 2], [0, 0, 1, 2, 2, 2], 3),
    # class 2 in y_true but never predicted; class 3 predicted but absent from y_true;
    # class 4 neither in y_true nor predicted.
    "unpredicted_and_absent_classes": ([0, 0, 0, 1, 1, 2, 2, 1, 0],
                                       [0, 0, 1, 1, 3, 0, 1, 1, 3], 5),
    "no_prediction_is_a_miss": ([0, 0, 1, 1, 2], [0, NO_PREDICTION, 1, 0, NO_PREDICTION], 3),
    "all_wrong": ([0, 1, 2], [1, 2, 0], 3),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_macro_f1_matches_sklearn(case):
    y_true, y_pred, num_classes = CASES[case]
    expected = sklearn_macro_f1(y_true, y_pred, num_classes)
    got = fer_metrics.macro_f1_from_matrix(matrix_of(y_true, y_pred), num_classes)
    assert got == pytest.approx(expected, abs=1e-12)


def test_sklearn_expectations_are_not_trivial():
    # Guards the cases above against all being 0 or 1 (which a broken formula could also hit).
    y_true, y_pred, n = CASES["unpredicted_and_absent_classes"]
    per_class = sk_metrics.f1_score(y_true, y_pred, average=None, labels=list(range(n)),
                                    zero_division=0.0)
    assert per_class[2] == 0.0 and per_class[3] == 0.0 and per_class[4] == 0.0
    assert 0 < per_class[0] < 1 and 0 < per_class[1] < 1
    assert sklearn_macro_f1(y_true, y_pred, n) == pytest.approx(per_class.sum() / 5)


def _probabilities(predicted, num_classes):
    """A softmax-like row whose argmax is `predicted`; all zeros for NO_PREDICTION (TFMA at
    threshold 0 then predicts no class)."""
    if predicted == NO_PREDICTION:
        return np.zeros(num_classes)
    row = np.full(num_classes, 0.5 / num_classes)
    row[predicted] += 0.5
    return row


def _run_tfma_combiner(computations, y_true, y_pred, num_classes):
    """Feeds the examples through the TFMA confusion-matrix combiner of `computations` (its
    first computation) and returns the metrics the derived computations read."""
    combiner = computations[0].combiner
    accumulator = combiner.create_accumulator()
    for t, p in zip(y_true, y_pred, strict=True):
        accumulator = combiner.add_input(accumulator, metric_types.StandardMetricInputs(
            labels=np.array([t]), predictions=_probabilities(p, num_classes),
            example_weights=np.array([1.0])))
    return combiner.extract_output(combiner.merge_accumulators([accumulator]))


@pytest.mark.parametrize("case", sorted(CASES))
def test_macro_f1_metric_through_tfma_matches_sklearn(case):
    y_true, y_pred, num_classes = CASES[case]
    computations = fer_metrics._macro_f1(num_classes=num_classes)
    metrics = _run_tfma_combiner(computations, y_true, y_pred, num_classes)
    (value,) = computations[-1].result(metrics).values()
    assert value == pytest.approx(sklearn_macro_f1(y_true, y_pred, num_classes), abs=1e-12)


def _write_tfma_plots(evaluation_uri, y_true, y_pred, num_classes):
    """The `plots` file a TFX Evaluator writes for the overall slice, made by TFMA's own
    MultiClassConfusionMatrixPlot computation and plots writer."""
    computations = mccm_plot._multi_class_confusion_matrix_plot()
    metrics = _run_tfma_combiner(computations, y_true, y_pred, num_classes)
    plots = writer.convert_slice_plots_to_proto(((), computations[-1].result(metrics)), None)
    tf.io.gfile.makedirs(evaluation_uri)
    with tf.io.TFRecordWriter(f"{evaluation_uri}/plots-00000-of-00001.tfrecord") as w:
        w.write(plots.SerializeToString())


@pytest.mark.parametrize("case", sorted(CASES))
def test_confusion_matrix_read_from_tfma_plots_matches_sklearn(case, tmp_path):
    y_true, y_pred, num_classes = CASES[case]
    _write_tfma_plots(str(tmp_path), y_true, y_pred, num_classes)
    got = evaluation.confusion_matrix(str(tmp_path), num_classes)
    # Rows: true class, columns: predicted class; a sample without a prediction is in no cell.
    expected = sk_metrics.confusion_matrix(y_true, y_pred, labels=list(range(num_classes)))
    assert np.array_equal(np.array(got), expected), (got, expected.tolist())


def test_eval_config_has_thresholds_per_class_metrics_and_slices():
    config = evaluation.eval_config(["a", "b", "c"], min_accuracy=0.4)
    accuracy = next(m for m in config.metrics_specs[0].metrics
                    if m.class_name == "SparseCategoricalAccuracy")
    (per_slice,) = accuracy.per_slice_thresholds
    assert list(per_slice.slicing_specs) == [config_pb2.SlicingSpec()]  # overall slice only
    assert per_slice.threshold.value_threshold.lower_bound.value == 0.4
    assert per_slice.threshold.change_threshold.direction == \
        config_pb2.MetricDirection.HIGHER_IS_BETTER
    assert list(config.metrics_specs[1].binarize.class_ids.values) == [0, 1, 2]
    assert [s.feature_keys for s in config.slicing_specs] == [[], ["label_name"]]


@pytest.mark.parametrize("metric", [evaluation.ACCURACY, evaluation.MACRO_F1])
def test_change_threshold_blesses_not_worse_by_more_than_the_tolerance(metric):
    from tensorflow_model_analysis.evaluators import metrics_validator
    from tensorflow_model_analysis.metrics import metric_types

    def validate(candidate, baseline, tolerance):
        config = evaluation.eval_config(["a", "b"], min_accuracy=0.0, selection_metric=metric,
                                        change_tolerance=tolerance)
        config.model_specs.add(name="baseline", is_baseline=True)  # as the Evaluator adds it

        def key(name, **kwargs):
            return metric_types.MetricKey(name=name, example_weighted=False, **kwargs)
        values = {key(evaluation.ACCURACY): 0.5, key(metric): candidate,
                  key(metric, model_name="baseline"): baseline,
                  key(metric, is_diff=True): candidate - baseline}
        return metrics_validator.validate_metrics(((), values), config).validation_ok

    assert validate(0.70, 0.60, tolerance=0.0)
    assert validate(0.60, 0.60, tolerance=0.0)          # a tie passes: "not worse"
    assert not validate(0.59, 0.60, tolerance=0.0)
    assert validate(0.59, 0.60, tolerance=0.02)
    assert not validate(0.57, 0.60, tolerance=0.02)
