"""Macro-F1 from a multi-class confusion matrix, and the evaluation config that uses it."""
import pytest
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import multi_class_confusion_matrix_metrics as mccm

from components import evaluation, fer_metrics

K = mccm.MatrixEntryKey


def test_perfect_predictions():
    matrix = {K(0, 0): 3.0, K(1, 1): 2.0, K(2, 2): 5.0}
    assert fer_metrics.macro_f1_from_matrix(matrix, 3) == pytest.approx(1.0)


def test_hand_computed_example():
    # class 0: tp 2, fn 1 (-> 1), fp 0; class 1: tp 1, fp 1, fn 0; class 2 never seen.
    matrix = {K(0, 0): 2.0, K(0, 1): 1.0, K(1, 1): 1.0}
    f1_0 = 2 * 2 / (2 * 2 + 0 + 1)
    f1_1 = 2 * 1 / (2 * 1 + 1 + 0)
    assert fer_metrics.macro_f1_from_matrix(matrix, 3) == pytest.approx((f1_0 + f1_1 + 0) / 3)


def test_no_prediction_counts_as_a_miss():
    matrix = {K(0, mccm.NO_PREDICTED_CLASS_ID): 1.0, K(1, 1): 1.0}
    assert fer_metrics.macro_f1_from_matrix(matrix, 2) == pytest.approx(0.5)


def test_eval_config_has_thresholds_per_class_metrics_and_slices():
    config = evaluation.eval_config(["a", "b", "c"], min_accuracy=0.4)
    accuracy = next(m for m in config.metrics_specs[0].metrics
                    if m.class_name == "SparseCategoricalAccuracy")
    (per_slice,) = accuracy.per_slice_thresholds
    assert list(per_slice.slicing_specs) == [tfma.SlicingSpec()]  # overall slice only
    assert per_slice.threshold.value_threshold.lower_bound.value == 0.4
    assert per_slice.threshold.change_threshold.direction == \
        tfma.MetricDirection.HIGHER_IS_BETTER
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
