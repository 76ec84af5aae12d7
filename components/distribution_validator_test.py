"""The DistributionValidator executor runs with its config as a proto (local orchestrators) and
as the JSON text the KFP v2 entry point passes, with the same result."""
import os

import pandas as pd
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tfx.proto import distribution_validator_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.utils import proto_utils

from components import distribution_validator, validation_gate

CONFIG = text_format.Parse("""
default_slice_config {
  feature {
    path { step: "label_name" }
    distribution_comparator { infinity_norm { threshold: 0.1 } }
  }
}""", distribution_validator_pb2.DistributionValidatorConfig())


def _statistics(uri, labels):
    artifact = standard_artifacts.ExampleStatistics()
    artifact.uri = str(uri)
    artifact.split_names = artifact_utils.encode_split_names(["train"])
    stats = tfdv.generate_statistics_from_dataframe(pd.DataFrame({"label_name": labels}))
    os.makedirs(os.path.join(artifact.uri, "Split-train"))
    with open(os.path.join(artifact.uri, "Split-train", "FeatureStats.pb"), "wb") as f:
        f.write(stats.SerializeToString())
    return artifact


def _validate(tmp_path, name, config):
    anomalies = standard_artifacts.ExampleAnomalies()
    anomalies.uri = str(tmp_path / name)
    os.makedirs(anomalies.uri)
    inputs = {
        standard_component_specs.STATISTICS_KEY: [
            _statistics(tmp_path / f"{name}_now", ["happy"] * 9 + ["sad"])],
        standard_component_specs.BASELINE_STATISTICS_KEY: [
            _statistics(tmp_path / f"{name}_before", ["happy", "sad"] * 5)],
    }
    distribution_validator.Executor().Do(
        inputs, {standard_component_specs.ANOMALIES_KEY: [anomalies]},
        {distribution_validator.CONFIG_KEY: config})
    return validation_gate.read_drift(anomalies)


def test_the_config_as_json_text_gives_what_the_proto_gives(tmp_path):
    as_proto = _validate(tmp_path, "proto", CONFIG)
    as_json = _validate(tmp_path, "json", proto_utils.proto_to_json(CONFIG))
    assert set(as_proto) == {"train_train"}
    # 0.9 vs 0.5 of one class: past the label threshold, in both.
    assert validation_gate.describe_drift(as_proto) == [
        "train_train: feature 'label_name': L_INFTY 0.4000 > threshold 0.1"]
    assert as_json == as_proto
