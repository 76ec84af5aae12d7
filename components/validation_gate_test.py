"""SchemaValidationGate: reads ExampleValidator's output and names every anomaly."""
import os
import re

import pytest
import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import artifact_utils, standard_artifacts

from components import validation_gate


def anomalies_artifact(tmp_path, per_split):
    artifact = standard_artifacts.ExampleAnomalies()
    artifact.uri = str(tmp_path)
    artifact.split_names = artifact_utils.encode_split_names(sorted(per_split))
    for split, proto in per_split.items():
        split_dir = artifact_utils.get_split_uri([artifact], split)
        os.makedirs(split_dir)
        with open(os.path.join(split_dir, validation_gate.ANOMALIES_FILE), "wb") as f:
            f.write(proto.SerializeToString())
    return artifact


def test_clean_splits_have_no_problems(tmp_path):
    artifact = anomalies_artifact(tmp_path, {"train": anomalies_pb2.Anomalies(),
                                             "eval": anomalies_pb2.Anomalies()})
    assert validation_gate.describe_anomalies(validation_gate.read_anomalies(artifact)) == []


def test_each_anomaly_is_named_with_split_and_feature(tmp_path):
    bad = anomalies_pb2.Anomalies()
    info = bad.anomaly_info["image_height"]
    info.short_description = "Out-of-range values"
    info.description = "Unexpectedly large value: 64."
    bad.dataset_anomaly_info.short_description = "Low num examples"
    bad.dataset_anomaly_info.description = "Too few examples."
    artifact = anomalies_artifact(tmp_path, {"train": bad, "eval": anomalies_pb2.Anomalies()})
    assert validation_gate.describe_anomalies(validation_gate.read_anomalies(artifact)) == [
        "train: feature 'image_height': Out-of-range values: Unexpectedly large value: 64.",
        "train: dataset: Low num examples: Too few examples.",
    ]


def test_missing_anomalies_file_is_an_error_not_a_pass(tmp_path):
    artifact = standard_artifacts.ExampleAnomalies()
    artifact.uri = str(tmp_path)
    artifact.split_names = artifact_utils.encode_split_names(["train"])
    with pytest.raises(tf.errors.NotFoundError, match=re.escape(validation_gate.ANOMALIES_FILE)):
        validation_gate.read_anomalies(artifact)
