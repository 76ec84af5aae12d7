"""The data half on real FER2013 files: a slice by default, the whole set with `-m slow`."""

import pytest
import tensorflow as tf

from components import contract
from components.image_example_gen import executor, image_checks, ingest_report
from components.transform import decode_images
from tests import fer2013
from tests.ingest import read_examples, run_executor
from tests.transformed import IMAGE_XF, read_transformed

pytestmark = pytest.mark.skipif(
    not fer2013.available(), reason=f"FER2013 archives not found in {fer2013.FER2013_DIR} "
                                    f"(missing or unreadable: {fer2013.missing_archives()})")


def test_fer2013_slice_ingests_cleanly_and_decodes(tmp_path):
    data = str(tmp_path / "fer")
    fer2013.extract(data, per_class=15)
    examples, report = run_executor(data, str(tmp_path / "out"), classes=list(
        contract.DEFAULT_CLASSES))

    summary = ingest_report.read_summary(report.uri)
    assert summary["examples_per_split"] == {"train": 90, "eval": 90}
    assert summary["skipped"] == {image_checks.REASON_CLASS_NOT_INCLUDED: 30}  # disgust, opt-in
    assert summary["label_map"] == {c: i for i, c in enumerate(contract.DEFAULT_CLASSES)}
    train = read_examples(examples, "train")
    for e in train:
        f = e.features.feature
        assert f[contract.SOURCE_PATH_KEY].bytes_list.value[0].startswith(b"Training/")
        assert (f[contract.IMAGE_HEIGHT_KEY].int64_list.value[0],
                f[contract.IMAGE_WIDTH_KEY].int64_list.value[0],
                f[contract.IMAGE_CHANNELS_KEY].int64_list.value[0]) == (48, 48, 1)
    images = decode_images(tf.constant([e.features.feature[contract.IMAGE_KEY].bytes_list.value[0]
                                        for e in train]), 48, 1).numpy()
    assert images.shape == (90, 48, 48, 1) and 0 <= images.min() and images.max() <= 1


@pytest.mark.slow
def test_full_fer2013_data_half(tmp_path):
    """Issue 2's acceptance run: counts, validation and transformed shapes on all of FER2013."""
    from pipeline import local_runner

    data = str(tmp_path / "fer")
    fer2013.extract(data)
    outputs = local_runner.run(data_root=data, output_dir=str(tmp_path / "out"), profile="cpu",
                               architectures=())
    summary = ingest_report.read_summary(outputs["ImageFolderExampleGen"].uri(
        executor.INGEST_REPORT_KEY))
    per_split = summary["examples_per_split"]
    assert per_split["train"] + per_split["valid"] == 28273 and per_split["eval"] == 3533
    assert 0.09 < per_split["valid"] / 28273 < 0.11
    assert summary["skipped"] == {image_checks.REASON_CLASS_NOT_INCLUDED: 436 + 56}
    assert all(n.state == "COMPLETE" for n in outputs.nodes.values())
    for batch in read_transformed(outputs["Transform"], "eval")[:1]:
        images = batch[IMAGE_XF].numpy()
        assert images.shape[1:] == (48, 48, 1)
        assert 0.0 <= images.min() and images.max() <= 1.0
