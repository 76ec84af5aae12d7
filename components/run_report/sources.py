"""Reads what the run report shows from the run's artifacts (by URI): sample images from
ExampleGen's examples, TFDV statistics and anomalies, each Trainer's training record, each
Evaluator's confusion matrix and metrics, each candidate's predictions on the eval split (its
served SavedModel, as TF Serving would run it) and each trained network's Grad-CAM heat. Returns
the plain data of `report`."""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Sequence

import numpy as np
import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2

from components import contract
from components import evaluation as evaluation_lib
from components.image_example_gen import tf_examples
from components.models import training_summary, warm_start
from components.run_report import gradcam, mistakes, plots, report

STATISTICS_FILE = "FeatureStats.pb"   # what StatisticsGen writes per split
ANOMALIES_FILE = "SchemaDiff.pb"      # what ExampleValidator writes per split


def _split_dir(uri: str, split: str) -> str:
    return os.path.join(uri, f"Split-{split}")


def sample_images(examples_uri: str, split: str, label_names: Sequence[str],
                  per_class: int = plots.SAMPLES_PER_CLASS) -> Dict[str, List[bytes]]:
    """The first `per_class` encoded images of each class in `split` (gzipped tf.Examples),
    reading no further than needed."""
    files = tf_examples.split_files(examples_uri, split)
    samples: Dict[str, List[bytes]] = {name: [] for name in label_names}
    wanted = per_class * len(label_names)
    found = 0
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        features = tf.train.Example.FromString(record.numpy()).features.feature
        name = features[contract.LABEL_NAME_KEY].bytes_list.value[0].decode()
        if name in samples and len(samples[name]) < per_class:
            samples[name].append(features[contract.IMAGE_KEY].bytes_list.value[0])
            found += 1
            if found == wanted:
                break
    return samples


def _per_split(uri: str, splits: Sequence[str], file_name: str,
               parse: Callable[[bytes], Any]) -> Dict[str, Any]:
    out = {}
    for split in splits:
        with tf.io.gfile.GFile(os.path.join(_split_dir(uri, split), file_name), "rb") as f:
            out[split] = parse(f.read())
    return out


def statistics(statistics_uri: str, splits: Sequence[str]) -> Dict[str, List[Dict]]:
    return _per_split(statistics_uri, splits, STATISTICS_FILE, lambda data: report.statistics_rows(
        statistics_pb2.DatasetFeatureStatisticsList.FromString(data).datasets[0]))


def anomalies(anomalies_uri: str, splits: Sequence[str]) -> Dict[str, List[str]]:
    return _per_split(anomalies_uri, splits, ANOMALIES_FILE, lambda data: report.anomaly_lines(
        anomalies_pb2.Anomalies.FromString(data)))


def training(model_run_uri: str) -> report.Training:
    summary = training_summary.read_training_summary(model_run_uri)
    log_path = os.path.join(model_run_uri, training_summary.TRAINING_LOG)
    history = summary.get("history", {})
    if tf.io.gfile.exists(log_path):  # spans restarts, unlike the summary's history
        with tf.io.gfile.GFile(log_path) as f:
            history = report.read_training_log(f.read())
    return report.Training(summary=summary, history=history)


def evaluation(evaluation_uri: str, label_names: Sequence[str], blessed: bool
               ) -> report.Evaluation:
    return report.Evaluation(
        matrix=evaluation_lib.confusion_matrix(evaluation_uri, len(label_names)),
        metrics=evaluation_lib.overall_metrics(evaluation_uri, label_names), blessed=blessed)


PREDICTION_BATCH = 64


def served_probabilities(serving_model_dir: str, records: Sequence[bytes]) -> np.ndarray:
    """float32 [N, C]: the SavedModel's served probabilities for serialized tf.Examples, through
    its examples signature (test-time views and ensemble averaging included)."""
    signature = tf.saved_model.load(serving_model_dir).signatures[contract.EXAMPLES_SIGNATURE]
    out = [signature(tf.constant(list(records[i:i + PREDICTION_BATCH])))[
               contract.PROBABILITIES_KEY].numpy()
           for i in range(0, len(records), PREDICTION_BATCH)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)


def attention(serving_model_dir: str, transform_graph_uri: str, images: Sequence[bytes],
              shown: Dict[str, List[mistakes.Example]], label_names: Sequence[str]
              ) -> Dict[str, List[report.Heatmap]]:
    """Class -> the Grad-CAM overlays of `shown`'s examples (their predicted class's heat), from
    the network a Trainer exported as `serving_model_dir`, on the images as Transform makes
    them."""
    import tensorflow_transform as tft  # only here: the report's other readers need none

    classifier, _ = warm_start.load_classifier(serving_model_dir)
    layer = gradcam.feature_layer(classifier)
    transform = tft.TFTransformOutput(transform_graph_uri).transform_features_layer()
    out: Dict[str, List[report.Heatmap]] = {}
    for name, examples in shown.items():
        if not examples:
            out[name] = []
            continue
        encoded = tf.constant([images[e.index] for e in examples])
        inputs = transform({contract.IMAGE_KEY: tf.reshape(encoded, [-1, 1])})[
            contract.IMAGE_XF_KEY].numpy()
        heat = gradcam.heatmaps(classifier, inputs,
                                [list(label_names).index(e.predicted_class) for e in examples],
                                layer=layer)
        out[name] = [report.Heatmap(example=e, overlay=gradcam.overlay(image, h))
                     for e, image, h in zip(examples, inputs, heat, strict=True)]
    return out
