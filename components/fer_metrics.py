"""A TFMA metric TFMA 0.47 lacks: macro-F1 over argmax predictions.

TFMA's own macro average (`AggregationOptions(macro_average=True)`) cannot combine with the
`top_k: 1` per-class metrics (it looks the children up without their top_k sub key and fails),
and without top_k a class counts as predicted only when its probability passes 0.5. This metric
derives per-class F1 from TFMA's multi-class confusion matrix at threshold 0 (the argmax) and
averages them with equal weight per class.
"""
from typing import Dict, Optional

from tensorflow_model_analysis.metrics import metric_types, metric_util
from tensorflow_model_analysis.metrics import multi_class_confusion_matrix_metrics as mccm
from tensorflow_model_analysis.proto import config_pb2

from components import class_metrics, contract

MACRO_F1_NAME = contract.MACRO_F1_METRIC


def macro_f1_from_matrix(matrix: Dict, num_classes: int) -> float:
    """Mean over classes 0..num_classes-1 of F1 (class_metrics.f1) from TFMA's sparse matrix;
    0 for a class neither present nor predicted."""
    scores = []
    for c in range(num_classes):
        tp = matrix.get(mccm.MatrixEntryKey(c, c), 0.0)
        actual = sum(v for k, v in matrix.items() if k.actual_class_id == c)
        predicted = sum(v for k, v in matrix.items() if k.predicted_class_id == c)
        scores.append(class_metrics.f1(tp, actual, predicted))
    return sum(scores) / num_classes


class MacroF1(metric_types.Metric):
    """Macro-averaged F1 of argmax predictions over `num_classes` classes."""

    def __init__(self, num_classes: int, name: str = MACRO_F1_NAME):
        super().__init__(metric_util.merge_per_key_computations(_macro_f1),
                         num_classes=num_classes, name=name)


def _macro_f1(num_classes: int, name: str = MACRO_F1_NAME,
              eval_config: Optional[config_pb2.EvalConfig] = None, model_name: str = "",
              output_name: str = "", example_weighted: bool = False
              ) -> metric_types.MetricComputations:
    key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                 example_weighted=example_weighted)
    computations = mccm.multi_class_confusion_matrices(
        thresholds=[0.0], eval_config=eval_config, model_name=model_name,
        output_name=output_name, example_weighted=example_weighted)
    matrices_key = computations[-1].keys[-1]

    def result(metrics):
        return {key: macro_f1_from_matrix(metrics[matrices_key][0.0], num_classes)}

    computations.append(metric_types.DerivedMetricComputation(keys=[key], result=result))
    return computations


metric_types.register_metric(MacroF1)
