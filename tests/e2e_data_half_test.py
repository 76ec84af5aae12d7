"""End to end: the data half of the pipeline with LocalDagRunner on tiny generated folders."""
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_metadata.proto.v0 import statistics_pb2

from components import contract
from components.image_example_gen import executor as example_gen_executor
from components.image_example_gen import image_checks, ingest_report
from components.run_report import executor as report_executor
from components.run_report import report as run_report
from components.validation_gate import DataValidationError
from pipeline import cli, configs, demo_data, local_outputs, local_runner, run_summary
from tests import image_folders, report_folder
from tests.transformed import IMAGE_XF, read_transformed

pytestmark = pytest.mark.e2e

LABEL_XF = contract.transformed_name(contract.LABEL_KEY)
NODES = ("ImageFolderExampleGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator",
         "SchemaValidationGate", "TrainedOnStatistics", "DistributionValidator", "DriftGate",
         "Transform", "RunReport")


def test_cli_run_produces_validated_transformed_examples(tmp_path, capfd):
    data = str(tmp_path / "data")
    demo_data.write_demo_dataset(data, {"train": 8, "eval": 3})
    image_folders.write(os.path.join(data, "Training", "happy", "notes.txt"), b"not an image")
    out_dir = str(tmp_path / "out")

    rc = cli.main(["run", "--data-root", data, "--output-dir", out_dir,
                   "--architectures", "none", "--image-size", "48"])

    assert rc == 0
    printed = capfd.readouterr().out
    assert "67 files seen" in printed and "66 examples, 1 skipped" in printed
    assert "eval: 18 (angry=3," in printed

    outputs = run_summary.latest_run(
        run_summary.sqlite_store(local_outputs.OutputLayout(out_dir).metadata_path),
        configs.PIPELINE_NAME)
    assert sorted(outputs.nodes) == sorted(NODES)
    assert all(n.state == "COMPLETE" for n in outputs.nodes.values())

    # The report of a run without models: the data, its statistics and validation.
    report_path = os.path.join(outputs["RunReport"].uri(report_executor.REPORT_KEY),
                               run_report.REPORT_FILE)
    assert f"Report:     {report_path}" in printed
    assert sorted(report_folder.check_report_folder(report_path)) == [
        run_report.LABEL_DISTRIBUTION_PNG, run_report.SAMPLE_GRID_PNG]
    with open(report_path) as f:
        page = f.read()
    assert page.count("no anomalies") == 3 and "No models in this run" in page

    # Ingest report: every file accounted for.
    report = ingest_report.read_summary(
        outputs["ImageFolderExampleGen"].uri(example_gen_executor.INGEST_REPORT_KEY))
    per_split = report["examples_per_split"]
    # The default validation_fraction (0.1) moves some training images to 'valid'.
    assert set(per_split) == {"train", "valid", "eval"} and per_split["eval"] == 18
    assert per_split["train"] + per_split["valid"] == 48 and 0 < per_split["valid"] < 15
    assert f"valid: {per_split['valid']} (" in printed
    assert report["skipped"] == {image_checks.REASON_NOT_IMAGE_FILE: 1}

    # Statistics for every split.
    stats_uri = outputs["StatisticsGen"].uri("statistics")
    for split, n in per_split.items():
        path = os.path.join(stats_uri, f"Split-{split}", "FeatureStats.pb")
        with open(path, "rb") as f:
            stats = statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read())
        assert stats.datasets[0].num_examples == n

    # Transformed examples: 48x48x1 floats in [0, 1], labels 0..5.
    batches = read_transformed(outputs["Transform"], "train")
    images = np.concatenate([b[IMAGE_XF].numpy() for b in batches])
    labels = np.concatenate([b[LABEL_XF].numpy() for b in batches])
    assert images.shape == (per_split["train"], 48, 48, 1)
    assert images.min() >= 0.0 and images.max() <= 1.0 and images.std() > 0.1
    assert sorted(set(labels.tolist())) == [0, 1, 2, 3, 4, 5]

    # The transform graph serves raw image bytes without a label.
    tft_output = tft.TFTransformOutput(outputs["Transform"].uri("transform_graph"))
    layer = tft_output.transform_features_layer()
    with open(os.path.join(data, "PublicTest", "sad", "demo_0000.jpg"), "rb") as f:
        served = layer({contract.IMAGE_KEY: tf.constant([[f.read()]])})
    assert served[IMAGE_XF].shape == (1, 48, 48, 1)


def test_schema_anomalies_stop_the_run_before_transform(tmp_path):
    data = str(tmp_path / "data")
    demo_data.write_demo_dataset(data, {"train": 4, "eval": 2})
    # A valid image, but 64x64 RGB: the curated FER schema expects 48x48 grayscale.
    rgb = np.stack([image_folders.face("sad", 1, size=64)] * 3, axis=-1)
    image_folders.write(os.path.join(data, "Training", "sad", "large_rgb.jpg"),
                        image_folders.encode(rgb))
    out_dir = str(tmp_path / "out")

    with pytest.raises(DataValidationError) as err:
        local_runner.run(data_root=data, output_dir=out_dir, architectures=())

    msg = str(err.value)
    assert "train: feature 'image_height'" in msg
    assert "train: feature 'image_channels'" in msg
    assert "eval:" not in msg
    outputs = run_summary.latest_run(
        run_summary.sqlite_store(local_outputs.OutputLayout(out_dir).metadata_path),
        configs.PIPELINE_NAME)
    assert "Transform" not in outputs.nodes
