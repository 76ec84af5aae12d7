"""TFMA evaluation config for the Evaluator of each candidate model."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import tensorflow_model_analysis as tfma

# The config messages from their proto module: TFMA 0.52 (TFX 1.21) no longer exports them at
# top level; both stacks have this module.
from tensorflow_model_analysis.proto import config_pb2

from components import contract, fer_metrics

ACCURACY = contract.ACCURACY_METRIC
MACRO_F1 = contract.MACRO_F1_METRIC
TOP_1 = '"top_k": 1'


def _overall(value_threshold: Optional[config_pb2.GenericValueThreshold] = None,
             change_threshold: Optional[config_pb2.GenericChangeThreshold] = None
             ) -> List[config_pb2.PerSliceMetricThreshold]:
    # Thresholds on the overall slice only: a plain `threshold` would also apply to every
    # per-class slice, failing a model on its weakest class.
    return [config_pb2.PerSliceMetricThreshold(
        slicing_specs=[config_pb2.SlicingSpec()],
        threshold=config_pb2.MetricThreshold(value_threshold=value_threshold,
                                             change_threshold=change_threshold))]


def eval_config(label_names: Sequence[str], min_accuracy: float,
                selection_metric: str = ACCURACY, change_tolerance: float = 0.0
                ) -> config_pb2.EvalConfig:
    """Accuracy (with the value threshold), macro-F1, per-class precision/recall/F1
    (one-vs-rest per class id), the multi-class confusion matrix; overall and per true class.

    The change threshold is on `selection_metric`: a candidate is blessed only when it is not
    worse than the baseline (the model serving now) by more than `change_tolerance`; TFMA passes
    a difference >= -change_tolerance, so a tie passes. Without a baseline it is ignored.
    """
    class_ids = list(range(len(label_names)))
    change = config_pb2.GenericChangeThreshold(
        direction=config_pb2.MetricDirection.HIGHER_IS_BETTER,
        absolute={"value": -float(change_tolerance)})
    value = config_pb2.GenericValueThreshold(lower_bound={"value": min_accuracy})
    return config_pb2.EvalConfig(
        model_specs=[config_pb2.ModelSpec(
            signature_name=contract.EXAMPLES_SIGNATURE,
            label_key=contract.LABEL_KEY,
            prediction_key=contract.PROBABILITIES_KEY,
            preprocessing_function_names=[],
        )],
        slicing_specs=[config_pb2.SlicingSpec(),
                       config_pb2.SlicingSpec(feature_keys=[contract.LABEL_NAME_KEY])],
        metrics_specs=[
            config_pb2.MetricsSpec(metrics=[
                config_pb2.MetricConfig(class_name="ExampleCount"),
                config_pb2.MetricConfig(
                    class_name="SparseCategoricalAccuracy",
                    per_slice_thresholds=_overall(
                        value, change if selection_metric == ACCURACY else None)),
                config_pb2.MetricConfig(class_name="MultiClassConfusionMatrixPlot"),
                config_pb2.MetricConfig(
                    class_name=fer_metrics.MacroF1.__name__, module=fer_metrics.__name__,
                    config=f'"num_classes": {len(class_ids)}',
                    per_slice_thresholds=_overall(change_threshold=change)
                    if selection_metric == MACRO_F1 else []),
            ]),
            config_pb2.MetricsSpec(
                binarize=config_pb2.BinarizationOptions(class_ids={"values": class_ids}),
                # top_k=1: class i counts as predicted when it is the argmax (one-vs-rest on the
                # decision), not when its probability passes 0.5, which with 6+ classes rarely
                # happens.
                metrics=[config_pb2.MetricConfig(class_name=name, config=TOP_1)
                         for name in ("Precision", "Recall", "F1Score")]),
        ],
    )


PER_CLASS_METRICS = {"precision": "precision", "recall": "recall", "f1_score": "f1"}


def overall_metrics(evaluation_uri: str, label_names: Optional[Sequence[str]] = None,
                    baseline: bool = False) -> Dict[str, object]:
    """The candidate's overall-slice metrics from a TFX Evaluator output.

    Returns every plain metric by TFMA name (e.g. `sparse_categorical_accuracy`, `macro_f1`,
    `example_count`) and `per_class`: {class name (or id): {precision, recall, f1}}.
    Baseline values and diffs against the baseline are left out; with `baseline`, it is the
    baseline's values instead (empty when the evaluation had no baseline).
    """
    models = ("baseline",) if baseline else ("", "candidate")
    out: Dict[str, object] = {}
    per_class: Dict[object, Dict[str, float]] = {}
    for slice_metrics in tfma.load_metrics(evaluation_uri):
        if slice_metrics.slice_key.single_slice_keys:
            continue
        for kv in slice_metrics.metric_keys_and_values:
            key = kv.key
            if key.is_diff or key.model_name not in models or \
                    not kv.value.HasField("double_value"):
                continue
            value = float(kv.value.double_value.value)
            if key.HasField("sub_key"):
                if key.name in PER_CLASS_METRICS and key.sub_key.HasField("class_id"):
                    class_id = key.sub_key.class_id.value
                    name = label_names[class_id] if label_names else class_id
                    per_class.setdefault(name, {})[PER_CLASS_METRICS[key.name]] = value
            elif not key.HasField("aggregation_type"):
                out[key.name] = value
    out["per_class"] = per_class
    return out


CONFUSION_MATRIX_PLOT = "multi_class_confusion_matrix_plot"


def confusion_matrix(evaluation_uri: str, num_classes: int) -> List[List[float]]:
    """The candidate's confusion matrix on the overall slice (rows: true class, columns: the
    argmax prediction), from the MultiClassConfusionMatrixPlot of `eval_config`.

    An example TFMA gives no prediction (NO_PREDICTED_CLASS_ID, -1: its top probability is not
    above the threshold 0, e.g. an all-zero output) is in no cell, as in
    sklearn.metrics.confusion_matrix(..., labels=range(num_classes)).
    """
    matrix = [[0.0] * num_classes for _ in range(num_classes)]
    for plots in tfma.load_plots(evaluation_uri):
        if plots.slice_key.single_slice_keys:
            continue
        for kv in plots.plot_keys_and_values:
            if kv.key.name != CONFUSION_MATRIX_PLOT or \
                    kv.key.model_name not in ("", "candidate"):
                continue
            at_thresholds = kv.value.multi_class_confusion_matrix_at_thresholds.matrices
            for entry in at_thresholds[0].entries:  # the one threshold: 0, the argmax
                if entry.predicted_class_id < 0:
                    continue
                matrix[entry.actual_class_id][entry.predicted_class_id] = \
                    float(entry.num_weighted_examples)
            return matrix
    raise ValueError(f"no {CONFUSION_MATRIX_PLOT} for the overall slice in {evaluation_uri}")

