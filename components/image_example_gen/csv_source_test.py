"""FER2013's CSV form: the header, the scan into chunks, bounded reading, rows -> examples or
skips, and ImageFolderExampleGen on a CSV (bad rows, accounting, spans, fingerprint)."""
import os
import tracemalloc

import numpy as np
import pytest
import tensorflow as tf
from tfx.orchestration import data_types

from components import contract
from components.image_example_gen import (
    component,
    csv_source,
    driver,
    image_checks,
    ingest_report,
    spans,
    tf_examples,
)
from tests import fer_csv
from tests.ingest import CLASSES, read_examples, run_executor

CSV = "fer2013.csv"


def pixels(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (48, 48), dtype=np.uint8)


def feature(example, key):
    f = example.features.feature[key]
    return (f.bytes_list.value or f.int64_list.value)[0]


def records(source):
    return [r for chunk in source.chunks for r in csv_source.chunk_records(chunk, source)]


def test_fer2013_emotion_ids_name_the_classes():
    # fer2013.csv's documented ids; the label ids stay those of the sorted class names.
    assert dict(enumerate(csv_source.FER2013_EMOTIONS)) == {
        0: "angry", 1: "disgust", 2: "fear", 3: "happy", 4: "sad", 5: "surprise", 6: "neutral"}
    assert contract.FER2013_CLASSES == tuple(sorted(csv_source.FER2013_EMOTIONS))


def test_the_header_must_name_emotion_pixels_and_usage(tmp_path):
    root = str(tmp_path)
    fer_csv.write_csv(os.path.join(root, CSV), [], header="emotion,pixel,Usage")
    with pytest.raises(csv_source.CsvSourceError,
                       match=r"missing \['pixels'\].*found \['emotion', 'pixel', 'Usage'\]"):
        csv_source.resolve_source(root, CSV)
    with pytest.raises(csv_source.CsvSourceError, match="not found"):
        csv_source.resolve_source(root, "other.csv")
    with pytest.raises(csv_source.CsvSourceError, match="relative to the data root"):
        csv_source.resolve_source(root, os.path.join(root, CSV))
    with pytest.raises(csv_source.CsvSourceError, match="split_ratios does not apply"):
        csv_source.resolve_source(root, CSV, split_ratios={"train": 1, "eval": 1})

    # Columns are found by name: a byte-order mark, spaces, another order, an extra column.
    line = f'x,Training,{fer_csv.pixel_text(pixels(0))},3'
    fer_csv.write_csv(os.path.join(root, CSV), [line], header="\ufeffid, Usage ,pixels,emotion")
    source = csv_source.resolve_source(root, CSV, classes=None)
    assert (source.emotion_column, source.pixels_column, source.usage_column) == (3, 2, 1)
    [(kind, split, class_name, _)] = records(source)
    assert (kind, split, class_name) == (ingest_report.EXAMPLE, "train", "happy")


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("final_newline", [True, False])
def test_chunks_cover_every_line_once_with_its_row_number(tmp_path, newline, final_newline):
    rng = np.random.default_rng(0)
    lines = [f"{i}," + "7" * int(n) for i, n in enumerate(rng.integers(0, 300, 200))]
    path = str(tmp_path / CSV)
    with open(path, "wb") as f:
        f.write((newline.join([fer_csv.HEADER, *lines]) + (newline if final_newline else ""))
                .encode())
    data_start, _ = csv_source.read_header(path)
    for chunk_bytes in (1, 50, 999, 10**6):
        rows, chunks = csv_source.scan(path, data_start, chunk_bytes)
        assert rows == len(lines)
        got = []
        with open(path, "rb") as f:
            for chunk in chunks:
                got += [(row, line.rstrip(b"\r")) for row, (line, _) in enumerate(
                    csv_source.read_lines(f, chunk.start, chunk.end), start=chunk.first_row)]
        # Row numbers are line numbers: the header is row 1.
        assert got == [(i + 2, line.encode()) for i, line in enumerate(lines)], chunk_bytes
    fer_csv.write_csv(path, [])
    assert csv_source.scan(path, csv_source.read_header(path)[0]) == (0, ())


def test_a_huge_line_is_skipped_without_being_held(tmp_path):
    good = fer_csv.row_line(3, pixels(0), "Training")
    path = str(tmp_path / CSV)
    huge = "3," + "1 " * 10_000_000 + ",Training"        # 20 MB on one line
    with open(path, "w") as f:
        f.write("\n".join([fer_csv.HEADER, good, huge, good]))   # no final newline
    source = csv_source.resolve_source(str(tmp_path), CSV, chunk_bytes=10**9)
    tracemalloc.start()
    try:
        out = records(source)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20, peak
    assert [r[0] for r in out] == [ingest_report.EXAMPLE, ingest_report.SKIPPED,
                                   ingest_report.EXAMPLE]
    assert out[1][1] == {"path": f"{CSV}:3", "split": None, "class": None,
                         "reason": csv_source.REASON_LINE_TOO_LONG,
                         "detail": f"{len(huge)} bytes; a row has at most "
                                   f"{csv_source.MAX_LINE_BYTES}"}


def test_a_row_gives_the_example_its_image_file_would(tmp_path):
    face = pixels(1)
    fer_csv.write_csv(str(tmp_path / CSV), [fer_csv.row_line(4, face, "PublicTest")])
    source = csv_source.resolve_source(str(tmp_path), CSV)
    [(kind, split, class_name, serialized)] = records(source)
    assert (kind, split, class_name) == (ingest_report.EXAMPLE, "eval", "sad")
    example = tf.train.Example.FromString(serialized)
    assert set(example.features.feature) == {
        contract.IMAGE_KEY, contract.LABEL_KEY, contract.LABEL_NAME_KEY, contract.SOURCE_PATH_KEY,
        contract.IMAGE_HEIGHT_KEY, contract.IMAGE_WIDTH_KEY, contract.IMAGE_CHANNELS_KEY,
        contract.IMAGE_FORMAT_KEY}
    # Default classes: angry, fear, happy, neutral, sad, surprise -> sad is 4.
    assert feature(example, contract.LABEL_KEY) == 4
    assert feature(example, contract.LABEL_NAME_KEY) == b"sad"
    assert feature(example, contract.SOURCE_PATH_KEY) == f"{CSV}:2".encode()
    assert [feature(example, k) for k in (contract.IMAGE_FORMAT_KEY, contract.IMAGE_HEIGHT_KEY,
                                          contract.IMAGE_WIDTH_KEY, contract.IMAGE_CHANNELS_KEY)
            ] == [b"PNG", 48, 48, 1]
    image = feature(example, contract.IMAGE_KEY)
    # Lossless, and what the folder path's check accepts.
    np.testing.assert_array_equal(tf.io.decode_image(image).numpy()[..., 0], face)
    assert image_checks.inspect_image(image) == ("PNG", 48, 48, 1)


def test_training_rows_are_split_as_their_image_files_would_be(tmp_path):
    lines = [fer_csv.row_line(3, pixels(i), "Training") for i in range(200)]
    fer_csv.write_csv(str(tmp_path / CSV), lines)
    source = csv_source.resolve_source(str(tmp_path), CSV, validation_fraction=0.25)
    splits = [r[1] for r in records(source)]
    assert splits == [tf_examples.split_of(f"happy/{row}.png", "train", None, 0.25)
                      for row in range(2, 202)]
    assert 25 < splits.count("valid") < 75


GOOD = fer_csv.pixel_text(pixels(2))


def _bad_rows():
    """(line, expected reason) of every kind of row that is no example."""
    bad = GOOD.split()
    return [
        ("3,1 2 3,Training", csv_source.REASON_WRONG_PIXEL_COUNT),
        (f"3,{' '.join(bad[:-1] + ['12a'])},Training", csv_source.REASON_NON_NUMERIC),
        (f"3,{' '.join(bad[:-1] + ['-1'])},Training", csv_source.REASON_NON_NUMERIC),
        (f"3,{' '.join(bad[:-1] + ['256'])},Training", csv_source.REASON_PIXEL_OUT_OF_RANGE),
        (f"3,{' '.join(['9' * 5000] + bad[1:])},Training", csv_source.REASON_PIXEL_OUT_OF_RANGE),
        # 2**64 + 5: wrapped, it would read as 5.
        (f"3,{' '.join(bad[:-1] + [str(2**64 + 5)])},Training",
         csv_source.REASON_PIXEL_OUT_OF_RANGE),
        (f"7,{GOOD},Training", csv_source.REASON_UNKNOWN_EMOTION),
        (f"happy,{GOOD},Training", csv_source.REASON_UNKNOWN_EMOTION),
        (f"3,{GOOD},Validation", csv_source.REASON_UNKNOWN_USAGE),
        (f"3,{GOOD},Training,extra", csv_source.REASON_WRONG_COLUMN_COUNT),
        (f'3,"{GOOD},Training', csv_source.REASON_MALFORMED_ROW),
        (f"3,{GOOD},Tr\udcffaining", csv_source.REASON_NOT_UTF8),
    ]


def _write_rows(path, lines):
    """Raw lines (a lone surrogate escape writes its byte: an invalid UTF-8 line)."""
    with open(path, "wb") as f:
        f.write(b"\n".join(line.encode("utf-8", "surrogateescape")
                           for line in [fer_csv.HEADER, *lines]) + b"\n")


def test_every_row_is_an_example_or_a_skip_with_its_row_and_reason(tmp_path):
    good = [f"{e},{GOOD},{usage}" for usage in ("Training", "PublicTest") for e in (3, 4) * 2]
    expected = {}
    lines = list(good)
    for line, reason in _bad_rows():
        lines.append(line)
        expected[f"{CSV}:{len(lines) + 1}"] = reason
    for line, reason in [("", csv_source.REASON_BLANK_LINE),
                         (f"3,{GOOD},PrivateTest", csv_source.REASON_SPLIT_NOT_INCLUDED),
                         (f"0,{GOOD},Training", image_checks.REASON_CLASS_NOT_INCLUDED)]:
        lines.append(line)
        expected[f"{CSV}:{len(lines) + 1}"] = reason
    root = str(tmp_path / "data")
    os.makedirs(root)
    _write_rows(os.path.join(root, CSV), lines)
    csv_props = {csv_source.DATA_CSV_KEY: CSV}

    examples, report = run_executor(root, str(tmp_path / "out"), on_bad_image="skip",
                                    exec_properties=csv_props)
    skipped = {s["path"]: s for s in ingest_report.read_skipped(report.uri)}
    assert {p: s["reason"] for p, s in skipped.items()} == expected
    assert skipped[f"{CSV}:{len(good) + 2}"]["detail"] == "3 values; a 48x48 face has 2304"
    assert skipped[f"{CSV}:{len(good) + 3}"]["detail"] == "value 2304: '12a'"
    assert skipped[f"{CSV}:{len(good) + 5}"]["detail"] == "value 2304: '256' (0-255)"
    assert skipped[f"{CSV}:{len(good) + 6}"]["detail"] == f"value 1: {'9' * 20!r} (0-255)"
    summary = ingest_report.read_summary(report.uri)
    assert summary["files_seen"] == len(lines) == summary["examples_total"] + len(skipped)
    assert summary["examples"] == {"train": {"happy": 2, "sad": 2}, "eval": {"happy": 2, "sad": 2}}
    assert summary["bad_images"] == len(_bad_rows()) and summary["data_csv"] == CSV
    assert f"{len(lines)} rows read from {root}/{CSV}: 8 examples" in \
        ingest_report.format_summary(summary)
    assert len(read_examples(examples, "eval")) == 4

    # The default policy stops on bad rows, naming them; PrivateTest only when asked for.
    with pytest.raises(ingest_report.BadInputError) as err:
        run_executor(root, str(tmp_path / "out2"), exec_properties=csv_props)
    assert f"{len(_bad_rows())} row(s) of {root}/{CSV} cannot be used as images" in \
        str(err.value)
    assert f"{CSV}:{len(good) + 2}: wrong_pixel_count 3 values" in str(err.value)
    _write_rows(os.path.join(root, CSV), good + [f"3,{GOOD},PrivateTest", f"4,{GOOD},PrivateTest"])
    examples, report = run_executor(root, str(tmp_path / "out3"), exec_properties={
        **csv_props, csv_source.INCLUDE_TEST_KEY: 1})
    assert ingest_report.read_summary(report.uri)["examples_per_split"] == {
        "train": 4, "eval": 4, "test": 2}


def test_a_row_lost_between_scan_and_output_fails_the_run(tmp_path, monkeypatch):
    root = str(tmp_path)
    fer_csv.write_csv(os.path.join(root, CSV), [f"{e},{GOOD},{u}" for u in ("Training",
                      "PublicTest") for e in (3, 3, 4, 4)])
    read_lines = csv_source.read_lines

    def lose_the_first(f, start, end, *args):
        lines = read_lines(f, start, end, *args)
        next(lines)
        yield from lines

    monkeypatch.setattr(csv_source, "read_lines", lose_the_first)
    with pytest.raises(ingest_report.IngestAccountingError,
                       match=rf"8 rows in {CSV} under .* != 7 accounted for"):
        run_executor(root, str(tmp_path / "out"),
                     exec_properties={csv_source.DATA_CSV_KEY: CSV})


def _resolve(input_base, **kwargs):
    gen = component.ImageFolderExampleGen(input_base=input_base, data_csv=CSV,
                                          classes=CLASSES, **kwargs)
    info = data_types.PipelineInfo("p", "/tmp")
    return driver.ImageFolderDriver(metadata_handle=None).resolve_exec_properties(
        dict(gen.exec_properties), info, data_types.ComponentInfo("c", "c", info))


def test_spans_of_csv_files_and_the_fingerprint_of_the_one_read(tmp_path):
    root = str(tmp_path)
    for span, per_class in ((1, 1), (2, 3)):
        fer_csv.write_csv(os.path.join(root, f"span-{span}", CSV), [
            f"{e},{GOOD},{u}" for u in ("Training", "PublicTest") for e in (3, 4) * per_class])
    notes = os.path.join(root, "span-2", "notes.txt")
    fer_csv.write_csv(notes, [])

    latest = _resolve(root)
    assert latest[driver.SPAN_PROPERTY] == 2
    fingerprint = latest[driver.FINGERPRINT_PROPERTY]
    assert fingerprint == spans.file_fingerprint(os.path.join(root, "span-2"), CSV)
    examples, report = run_executor(root, str(tmp_path / "out"), exec_properties=latest)
    assert ingest_report.read_summary(report.uri)["files_seen"] == 12
    assert examples.span == 2 and len(read_examples(examples, "train")) == 6

    first = _resolve(root, span=1)
    _, report = run_executor(root, str(tmp_path / "out1"), exec_properties=first)
    assert ingest_report.read_summary(report.uri)["files_seen"] == 4

    # Only the CSV makes the cache key: a file beside it does not, a rewrite does.
    fer_csv.write_csv(notes, ["changed"])
    assert _resolve(root)[driver.FINGERPRINT_PROPERTY] == fingerprint
    os.utime(os.path.join(root, "span-2", CSV), ns=(1, 1))
    assert _resolve(root)[driver.FINGERPRINT_PROPERTY] != fingerprint


def test_component_refuses_a_csv_it_cannot_place():
    with pytest.raises(ValueError, match="relative to the data root"):
        component.ImageFolderExampleGen(input_base="/data", data_csv="/data/fer2013.csv")
    with pytest.raises(ValueError, match="split_ratios does not apply"):
        component.ImageFolderExampleGen(input_base="/data", data_csv=CSV,
                                        split_ratios={"train": 1, "eval": 1})
    props = component.ImageFolderExampleGen(input_base="/data").exec_properties
    assert props[csv_source.DATA_CSV_KEY] is None
