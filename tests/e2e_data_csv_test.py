"""FER2013's CSV form through the whole data half: the same images given as image folders and
as CSV rows give the same Transform output, split for split; and `--data-csv` reaches
ImageFolderExampleGen from both runners."""
import json
import os

import numpy as np
import pytest

from components import contract
from components.image_example_gen import csv_source, ingest_report
from components.image_example_gen import executor as example_gen_executor
from pipeline import cli, configs, kubeflow_runner, local_outputs, run_summary
from pipeline import pipeline as pipeline_lib
from tests import fer_csv, image_folders
from tests.transformed import IMAGE_XF, read_transformed

LABEL_XF = contract.transformed_name(contract.LABEL_KEY)
CSV = "fer2013.csv"


def _same_images_as_folders_and_csv(root):
    """Demo faces of the six default classes (and disgust, left out either way), in FER2013's
    row order (mixed), written once as `<Usage>/<class>/<row>.png` files and once as the rows
    of `<root>/csv/fer2013.csv`, plus a PrivateTest row (the CSV form's own, left out)."""
    faces = [(usage, cls, seed) for usage, n in (("Training", 10), ("PublicTest", 3))
             for cls in (*contract.DEFAULT_CLASSES, "disgust") for seed in range(n)]
    order = np.random.default_rng(0).permutation(len(faces))
    lines = []
    folders = os.path.join(root, "folders")
    for row, i in enumerate(order, start=2):
        usage, cls, seed = faces[i]
        pixels = image_folders.face(cls, seed=1000 * row + seed)
        image_folders.write(os.path.join(folders, usage, cls, f"{row}.png"),
                            image_folders.encode(pixels, "PNG"))
        lines.append(fer_csv.row_line(csv_source.FER2013_EMOTIONS.index(cls), pixels, usage))
    lines.append(fer_csv.row_line(3, image_folders.face("happy", 1), "PrivateTest"))
    return folders, fer_csv.write_csv(os.path.join(root, "csv", CSV), lines)


def _run(args, out_dir):
    assert cli.main(["run", *args, "--output-dir", out_dir, "--architectures", "none",
                     "--image-size", "48"]) == 0
    return run_summary.latest_run(
        run_summary.sqlite_store(local_outputs.OutputLayout(out_dir).metadata_path),
        configs.PIPELINE_NAME)


def _transformed(outputs, split):
    """Transform's output of `split` as sorted (label, image) pairs: the order of examples
    is Beam's."""
    pairs = []
    for batch in read_transformed(outputs["Transform"], split):
        for label, image in zip(batch[LABEL_XF].numpy(), batch[IMAGE_XF].numpy(), strict=True):
            pairs.append((int(label), image.tobytes()))
    return sorted(pairs)


@pytest.mark.e2e
def test_folders_and_csv_rows_of_the_same_images_give_the_same_transform_output(tmp_path,
                                                                               capfd):
    folders, csv_path = _same_images_as_folders_and_csv(str(tmp_path / "data"))
    from_folders = _run(["--data-root", folders], str(tmp_path / "out_folders"))
    # The CSV by its path: its folder is the data root.
    from_csv = _run(["--data-csv", csv_path], str(tmp_path / "out_csv"))
    assert f"rows read from {csv_path}" in capfd.readouterr().out

    reports = [ingest_report.read_summary(o["ImageFolderExampleGen"].uri(
        example_gen_executor.INGEST_REPORT_KEY)) for o in (from_folders, from_csv)]
    assert reports[0]["examples"] == reports[1]["examples"]
    assert reports[0]["splits"] == reports[1]["splits"] == ["train", "valid", "eval"]
    assert reports[0]["examples_per_split"]["valid"] > 0
    assert reports[0]["skipped"] == {"class_not_included": 13}
    assert reports[1]["skipped"] == {"class_not_included": 13,
                                     csv_source.REASON_SPLIT_NOT_INCLUDED: 1}
    for split in ("train", "valid", "eval"):
        from_files = _transformed(from_folders, split)
        assert from_files == _transformed(from_csv, split), split
        assert len(from_files) == reports[0]["examples_per_split"][split]


def test_data_csv_reaches_example_gen_from_the_options(tmp_path):
    arguments = configs.pipeline_arguments(configs.RunOptions(
        data_root="/data", data_csv=CSV, csv_private_test=True, architectures=()))
    pipeline = pipeline_lib.create_pipeline(pipeline_name="p", pipeline_root=str(tmp_path),
                                            **arguments)
    example_gen = next(c for c in pipeline.components if c.id == "ImageFolderExampleGen")
    assert example_gen.exec_properties[csv_source.DATA_CSV_KEY] == CSV
    assert example_gen.exec_properties[csv_source.INCLUDE_TEST_KEY] == 1
    with pytest.raises(configs.PipelineArgumentError, match="split_ratios does not apply"):
        pipeline_lib.create_pipeline(pipeline_name="p", pipeline_root=str(tmp_path), **{
            **arguments, "split_ratios": {"train": 1, "eval": 1}})
    # Classes 'all' with models to train: the CSV's emotion ids name them.
    assert configs.pipeline_arguments(configs.RunOptions(
        data_root="/data", data_csv=CSV, classes=None))["classes"] == list(
        contract.FER2013_CLASSES)

    out = str(tmp_path / "fer.json")
    kubeflow_runner.main(["--image", "registry.example/fer:1", "--data-root", "gs://b/fer",
                          "--pipeline-root", "gs://b/root", "--output-file", out,
                          "--architectures", "none", "--data-csv", CSV])
    with open(out) as f:
        spec = json.load(f)
    parameters = spec["pipelineSpec"]["root"]["dag"]["tasks"]["ImageFolderExampleGen"][
        "inputs"]["parameters"]
    assert CSV in json.dumps(parameters[csv_source.DATA_CSV_KEY])
