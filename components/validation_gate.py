"""SchemaValidationGate: stops the run when ExampleValidator found anomalies.

TFX's ExampleValidator records anomalies (and a per-split `blessed` property) but lets the
pipeline go on. This component fails instead, with a message naming each anomalous feature and
the problem, so that Transform and training never run on data that breaks the curated schema.
"""

import os
from typing import Dict, List

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts

ANOMALIES_FILE = "SchemaDiff.pb"  # what ExampleValidator writes per split


class DataValidationError(RuntimeError):
    """The examples do not match the schema."""


def read_anomalies(anomalies_artifact) -> Dict[str, anomalies_pb2.Anomalies]:
    """Split name -> Anomalies proto, for every split ExampleValidator checked."""
    out = {}
    for split in artifact_utils.decode_split_names(anomalies_artifact.split_names):
        path = os.path.join(artifact_utils.get_split_uri([anomalies_artifact], split),
                            ANOMALIES_FILE)
        with tf.io.gfile.GFile(path, "rb") as f:
            out[split] = anomalies_pb2.Anomalies.FromString(f.read())
    return out


def describe_anomalies(by_split: Dict[str, anomalies_pb2.Anomalies]) -> List[str]:
    """One line per anomaly: `split: feature: short description: description`."""
    lines = []
    for split, anomalies in sorted(by_split.items()):
        for feature, info in sorted(anomalies.anomaly_info.items()):
            lines.append(f"{split}: feature '{feature}': {info.short_description}: "
                         f"{info.description}")
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            lines.append(f"{split}: dataset: {info.short_description}: {info.description}")
    return lines


@component
def SchemaValidationGate(anomalies: InputArtifact[standard_artifacts.ExampleAnomalies]):
    """Raises DataValidationError listing every anomaly; passes when there are none."""
    problems = describe_anomalies(read_anomalies(anomalies))
    if problems:
        raise DataValidationError(
            "data validation failed against the curated schema (schema/schema.pbtxt or "
            "--schema-dir):\n  " + "\n  ".join(problems) + f"\nAnomalies: {anomalies.uri}")
    print(f"SchemaValidationGate: no anomalies in {anomalies.uri}")
