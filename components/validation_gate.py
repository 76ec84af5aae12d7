"""Gates before Transform: SchemaValidationGate and DriftGate.

TFX's ExampleValidator and DistributionValidator record anomalies (and a `blessed` property) but
let the pipeline go on. These components fail instead, with a message naming each anomalous
feature and the problem (for drift: the distance and its threshold), so that Transform and
training never run on data that breaks the curated schema or no longer looks like the data the
serving model was trained on (unless the drift is accepted for the run).
"""

import os
from typing import Dict, List

import tensorflow as tf
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts

ANOMALIES_FILE = "SchemaDiff.pb"  # what ExampleValidator writes per split, and
SPLIT_PAIR_PREFIX = "SplitPair-"   # DistributionValidator per pair of splits (this, baseline)
DRIFT_CONFIG_FILE = "drift_config.pbtxt"  # in the schema folder


class DataValidationError(RuntimeError):
    """The examples do not match the schema."""


class DataDriftError(DataValidationError):
    """The examples drifted from the data the serving model was trained on."""


def read_drift_config(schema_dir: str):
    """The DistributionValidatorConfig in `schema_dir`/drift_config.pbtxt."""
    from tfx.proto import distribution_validator_pb2

    with tf.io.gfile.GFile(os.path.join(schema_dir, DRIFT_CONFIG_FILE)) as f:
        return text_format.Parse(f.read(), distribution_validator_pb2.DistributionValidatorConfig())


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


def read_drift(anomalies_artifact) -> Dict[str, anomalies_pb2.Anomalies]:
    """Split pair (e.g. `train_train`) -> Anomalies proto, as DistributionValidator wrote them."""
    out = {}
    for pair in artifact_utils.decode_split_names(anomalies_artifact.split_names):
        path = os.path.join(anomalies_artifact.uri, SPLIT_PAIR_PREFIX + pair, ANOMALIES_FILE)
        with tf.io.gfile.GFile(path, "rb") as f:
            out[pair] = anomalies_pb2.Anomalies.FromString(f.read())
    return out


def describe_drift(by_pair: Dict[str, anomalies_pb2.Anomalies]) -> List[str]:
    """One line per feature past its threshold: `pair: feature: measure distance > threshold`;
    then any other anomaly the comparison raised (e.g. statistics missing for a feature)."""
    lines = []
    for pair, anomalies in sorted(by_pair.items()):
        measured = set()
        for info in anomalies.drift_skew_info:
            feature = ".".join(info.path.step)
            for m in info.drift_measurements:
                if m.value > m.threshold:
                    measured.add(feature)
                    kind = anomalies_pb2.DriftSkewInfo.Measurement.Type.Name(m.type)
                    lines.append(f"{pair}: feature '{feature}': {kind} {m.value:.4f} > "
                                 f"threshold {m.threshold:g}")
        for feature, info in sorted(anomalies.anomaly_info.items()):
            if feature not in measured:
                reasons = "; ".join(r.description or r.short_description for r in info.reason)
                lines.append(f"{pair}: feature '{feature}': {reasons}")
    return lines


@component
def DriftGate(anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
              accept_drift: Parameter[int] = 0):
    """Raises DataDriftError naming each drifted feature, its distance and threshold, unless
    `accept_drift`; passes when nothing drifted."""
    problems = describe_drift(read_drift(anomalies))
    if problems and not accept_drift:
        raise DataDriftError(
            "the new data drifted from the data last trained on (thresholds: "
            f"{DRIFT_CONFIG_FILE} in the schema folder; --accept-drift trains on it anyway):\n  "
            + "\n  ".join(problems) + f"\nDrift anomalies: {anomalies.uri}")
    if problems:
        print("DriftGate: drift accepted for this run:\n  " + "\n  ".join(problems))
    else:
        print(f"DriftGate: no drift in {anomalies.uri}")
