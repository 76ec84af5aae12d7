"""The ingest report's accounting: files listed must equal examples + skips in the outputs.

No Beam here: the files Beam writes (counts, skip list, number of files listed) are written by
hand, so that an output can lose a record the listing saw.
"""
import json
import os

import pytest

from components import contract
from components.image_example_gen import ingest_report
from components.image_example_gen import layout as layout_lib


@pytest.fixture
def layout(tmp_path):
    """Training/{happy,sad}, PublicTest/{happy,sad} and one stray file at the root."""
    root = tmp_path / "data"
    for split in ("Training", "PublicTest"):
        for cls in ("happy", "sad"):
            (root / split / cls).mkdir(parents=True)
    (root / "notes.txt").write_text("not an image folder")
    return layout_lib.resolve_layout(str(root), classes=["happy", "sad"])


def _beam_outputs(report_uri, listed, examples, skipped):
    """Writes what the executor's Beam pipeline writes: `listed` (files listed in class folders),
    `examples` {(split, class): n} and `skipped` [(path, split, class, reason)]."""
    os.makedirs(report_uri, exist_ok=True)
    counts, skipped_file, listed_file = (os.path.join(report_uri, n)
                                         for n in ("_counts", "_skipped", "_listed"))
    with open(counts, "w") as f:
        for (split, cls), n in examples.items():
            f.write(json.dumps([[ingest_report.EXAMPLE, split, cls], n]) + "\n")
        for _, split, _, reason in skipped:
            f.write(json.dumps([[ingest_report.SKIPPED, split, reason], 1]) + "\n")
    with open(skipped_file, "w") as f:
        for record in skipped:
            _, info = ingest_report.skipped_record(*record)
            f.write(json.dumps(info, sort_keys=True) + "\n")
    with open(listed_file, "w") as f:
        f.write(f"{listed}\n")
    return counts, skipped_file, listed_file


def _finish_and_check(layout, report_uri, listed, examples, skipped):
    summary = ingest_report.finish(layout, report_uri,
                                   *_beam_outputs(report_uri, listed, examples, skipped),
                                   on_bad_image=contract.ON_BAD_IMAGE_SKIP)
    ingest_report.check(summary, layout, report_uri, contract.ON_BAD_IMAGE_SKIP,
                        allow_missing_eval_classes=False)
    return summary


EXAMPLES = {("train", "happy"): 2, ("train", "sad"): 2, ("eval", "happy"): 1,
            ("eval", "sad"): 1}
SKIPS = [("Training/sad/x.txt", "train", "sad", "not_image_file")]


def test_files_listed_add_up_to_examples_and_skips(layout, tmp_path):
    # 7 files in class folders + notes.txt at the root.
    summary = _finish_and_check(layout, str(tmp_path / "report"), 7, EXAMPLES, SKIPS)
    assert summary["files_seen"] == 8
    assert summary["examples_total"] == 6 and summary["skipped_total"] == 2
    assert summary["skipped"] == {"not_image_file": 1, layout_lib.REASON_NOT_IN_CLASS_FOLDER: 1}


def test_an_example_lost_from_the_counts_fails_the_check(layout, tmp_path):
    lost = {**EXAMPLES, ("train", "sad"): 1}  # 7 files listed, 6 accounted for
    with pytest.raises(ingest_report.IngestAccountingError,
                       match=r"8 files listed under .* != 7 accounted for \(5 examples \+ 2 "
                             r"skipped"):
        _finish_and_check(layout, str(tmp_path / "report"), 7, lost, SKIPS)


def test_a_skip_lost_from_the_skip_list_fails_the_check(layout, tmp_path):
    with pytest.raises(ingest_report.IngestAccountingError,
                       match=r"8 files listed under .* != 7 accounted for \(6 examples \+ 1 "
                             r"skipped"):
        _finish_and_check(layout, str(tmp_path / "report"), 7, EXAMPLES, [])


def test_a_skip_list_that_lost_a_line_after_finish_fails_the_check(layout, tmp_path):
    report_uri = str(tmp_path / "report")
    summary = ingest_report.finish(layout, report_uri,
                                   *_beam_outputs(report_uri, 7, EXAMPLES, SKIPS),
                                   on_bad_image=contract.ON_BAD_IMAGE_SKIP)
    path = ingest_report.skipped_path(report_uri)
    with open(path) as f:
        lines = f.readlines()
    with open(path, "w") as f:
        f.writelines(lines[1:])
    with pytest.raises(ingest_report.IngestAccountingError, match="8 files listed"):
        ingest_report.check(summary, layout, report_uri, contract.ON_BAD_IMAGE_SKIP, False)
