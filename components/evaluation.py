"""TFMA evaluation config for the Evaluator of each candidate model."""
from __future__ import annotations

from typing import Sequence

import tensorflow_model_analysis as tfma

from components import fer_metrics
from components.models import trainer
from pipeline import configs

ACCURACY = "sparse_categorical_accuracy"  # TFMA's name for SparseCategoricalAccuracy
MACRO_F1 = fer_metrics.MACRO_F1_NAME
TOP_1 = '"top_k": 1'


def eval_config(label_names: Sequence[str], min_accuracy: float) -> tfma.EvalConfig:
    """Accuracy (with value and change thresholds), macro-F1, per-class precision/recall/F1
    (one-vs-rest per class id), the multi-class confusion matrix; overall and per true class.

    The change threshold requires a candidate to be strictly better than the baseline (the
    latest blessed model); it is ignored when there is none yet.
    """
    class_ids = list(range(len(label_names)))
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(
            signature_name=trainer.EXAMPLES_SIGNATURE,
            label_key=configs.LABEL_KEY,
            prediction_key=trainer.PROBABILITIES_KEY,
            preprocessing_function_names=[],
        )],
        slicing_specs=[tfma.SlicingSpec(),
                       tfma.SlicingSpec(feature_keys=[configs.LABEL_NAME_KEY])],
        metrics_specs=[
            tfma.MetricsSpec(metrics=[
                tfma.MetricConfig(class_name="ExampleCount"),
                tfma.MetricConfig(
                    class_name="SparseCategoricalAccuracy",
                    # Thresholds on the overall slice only: a plain `threshold` would also
                    # apply to every per-class slice, failing a model on its weakest class.
                    per_slice_thresholds=[tfma.PerSliceMetricThreshold(
                        slicing_specs=[tfma.SlicingSpec()],
                        threshold=tfma.MetricThreshold(
                            value_threshold=tfma.GenericValueThreshold(
                                lower_bound={"value": min_accuracy}),
                            change_threshold=tfma.GenericChangeThreshold(
                                direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                                absolute={"value": 0.0})))]),  # strictly better than baseline
                tfma.MetricConfig(class_name="MultiClassConfusionMatrixPlot"),
                tfma.MetricConfig(class_name=fer_metrics.MacroF1.__name__,
                                  module=fer_metrics.__name__,
                                  config=f'"num_classes": {len(class_ids)}'),
            ]),
            tfma.MetricsSpec(
                binarize=tfma.BinarizationOptions(class_ids={"values": class_ids}),
                # top_k=1: class i counts as predicted when it is the argmax (one-vs-rest on the
                # decision), not when its probability passes 0.5, which with 6+ classes rarely
                # happens.
                metrics=[tfma.MetricConfig(class_name=name, config=TOP_1)
                         for name in ("Precision", "Recall", "F1Score")]),
        ],
    )
