"""ImageFolderExampleGen executor on tiny generated folders, every bad input included."""
import errno
import gzip
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from tfx.types import artifact_utils

from components import contract
from components.image_example_gen import executor, image_checks, ingest_report
from components.image_example_gen.component import ImageFolderExampleGen
from components.image_example_gen.layout import LayoutError
from tests import image_folders, special_entries
from tests.ingest import CLASSES, read_examples, run_executor


def feature(example, key):
    f = example.features.feature[key]
    values = f.bytes_list.value or f.int64_list.value
    assert len(values) == 1
    return values[0]


@pytest.fixture
def good_root(tmp_path):
    return image_folders.make_folders(str(tmp_path / "data"), CLASSES, per_class=3)


def test_good_folders_become_examples_with_every_feature(good_root, tmp_path):
    examples, report = run_executor(good_root, str(tmp_path / "out"))

    assert artifact_utils.decode_split_names(examples.split_names) == ["train", "eval"]
    train = read_examples(examples, "train")
    assert len(train) == 6 and len(read_examples(examples, "eval")) == 6
    by_path = {feature(e, contract.SOURCE_PATH_KEY).decode(): e for e in train}
    ex = by_path["Training/sad/img_1.jpg"]
    with open(os.path.join(good_root, "Training/sad/img_1.jpg"), "rb") as f:
        assert feature(ex, contract.IMAGE_KEY) == f.read()  # bytes exactly as read
    assert feature(ex, contract.LABEL_KEY) == 1               # sorted: happy=0, sad=1
    assert feature(ex, contract.LABEL_NAME_KEY) == b"sad"
    assert feature(ex, contract.IMAGE_HEIGHT_KEY) == 48
    assert feature(ex, contract.IMAGE_WIDTH_KEY) == 48
    assert feature(ex, contract.IMAGE_CHANNELS_KEY) == 1
    assert feature(ex, contract.IMAGE_FORMAT_KEY) == b"JPEG"

    summary = ingest_report.read_summary(report.uri)
    assert summary["label_map"] == {"happy": 0, "sad": 1}
    assert summary["examples"] == {"train": {"happy": 3, "sad": 3}, "eval": {"happy": 3, "sad": 3}}
    assert summary["files_seen"] == 12 and summary["skipped_total"] == 0
    with open(os.path.join(examples.uri, executor.LABEL_MAP_FILE)) as f:
        assert json.load(f) == {"happy": 0, "sad": 1}
    assert examples.get_json_value_custom_property(executor.LABEL_NAMES_PROPERTY) == ["happy",
                                                                                        "sad"]


def _add_bad_inputs(root):
    """Every kind of bad input, in the training split. Returns path -> expected skip reason."""
    train = os.path.join(root, "Training")
    valid_jpeg = image_folders.encode(image_folders.face("happy", 7))
    w = image_folders.write
    w(os.path.join(train, "happy", "truncated.jpg"), valid_jpeg[: len(valid_jpeg) // 2])
    w(os.path.join(train, "happy", "corrupt.jpg"),
      valid_jpeg[:20] + np.random.default_rng(0).bytes(400))
    w(os.path.join(train, "happy", "empty.jpg"), b"")
    w(os.path.join(train, "happy", "text.jpg"), b"this is not an image\n")
    w(os.path.join(train, "sad", "scan.png"), b"II*\x00" + b"\x00" * 64)  # TIFF named .png
    w(os.path.join(train, "sad", "notes.txt"), b"labelling notes\n")
    w(os.path.join(train, "sad", ".DS_Store"), b"\x00\x00\x00\x01Bud1")
    os.makedirs(os.path.join(train, "sad", "nested.jpg"))  # a directory with an image name
    w(os.path.join(train, "README.txt"), b"split-level file\n")
    w(os.path.join(train, "contempt", "c_0.jpg"), valid_jpeg)  # class not included
    return {
        "Training/happy/truncated.jpg": image_checks.REASON_CORRUPT,
        "Training/happy/corrupt.jpg": image_checks.REASON_CORRUPT,
        "Training/happy/empty.jpg": image_checks.REASON_EMPTY,
        "Training/happy/text.jpg": image_checks.REASON_NOT_AN_IMAGE,
        "Training/sad/scan.png": image_checks.REASON_UNSUPPORTED_FORMAT,
        "Training/sad/notes.txt": image_checks.REASON_NOT_IMAGE_FILE,
        "Training/sad/.DS_Store": "hidden_entry",
        "Training/sad/nested.jpg": image_checks.REASON_DIRECTORY,
        "Training/README.txt": "not_in_class_folder",
        "Training/contempt/c_0.jpg": image_checks.REASON_CLASS_NOT_INCLUDED,
    }


def _add_accepted_variants(root):
    """Valid images that are not 48x48 grayscale JPEG: kept, with their true properties."""
    train = os.path.join(root, "Training")
    rgb = np.stack([image_folders.face("sad", 3)] * 3, axis=-1)
    w = image_folders.write
    w(os.path.join(train, "sad", "rgb.jpg"), image_folders.encode(rgb))
    w(os.path.join(train, "sad", "big.JPG"), image_folders.encode(image_folders.face("sad", 4, 64)))
    w(os.path.join(train, "happy", "face.png"), image_folders.encode(image_folders.face(), "PNG"))
    w(os.path.join(train, "happy", "face.bmp"), image_folders.encode(image_folders.face(), "BMP"))
    w(os.path.join(train, "happy", "png_named.jpg"),
      image_folders.encode(image_folders.face(), "PNG"))
    return {
        "Training/sad/rgb.jpg": (b"JPEG", 48, 48, 3),
        "Training/sad/big.JPG": (b"JPEG", 64, 64, 1),
        "Training/happy/face.png": (b"PNG", 48, 48, 1),
        "Training/happy/face.bmp": (b"BMP", 48, 48, 1),
        "Training/happy/png_named.jpg": (b"PNG", 48, 48, 1),  # format from content, not name
    }


def test_bad_inputs_are_skipped_counted_and_listed(good_root, tmp_path):
    expected_skips = _add_bad_inputs(good_root)
    accepted = _add_accepted_variants(good_root)

    examples, report = run_executor(good_root, str(tmp_path / "out"), on_bad_image="skip")

    skipped = {s["path"]: s for s in ingest_report.read_skipped(report.uri)}
    assert {p: s["reason"] for p, s in skipped.items()} == expected_skips
    assert skipped["Training/happy/truncated.jpg"]["detail"].startswith("JPEG: ")
    train = {feature(e, contract.SOURCE_PATH_KEY).decode(): e for e in read_examples(examples,
                                                                                     "train")}
    for path, (fmt, h, w, c) in accepted.items():
        e = train[path]
        got = tuple(feature(e, k) for k in (contract.IMAGE_FORMAT_KEY, contract.IMAGE_HEIGHT_KEY,
                                            contract.IMAGE_WIDTH_KEY, contract.IMAGE_CHANNELS_KEY))
        assert got == (fmt, h, w, c), path
    summary = ingest_report.read_summary(report.uri)
    # records in = records out + skipped, per the report and per the files on disk.
    assert summary["files_seen"] == summary["examples_total"] + summary["skipped_total"]
    assert summary["examples_total"] == 12 + len(accepted)
    assert summary["skipped_total"] == len(expected_skips)
    assert summary["bad_images"] == 5
    assert summary["skipped"][image_checks.REASON_CORRUPT] == 2
    assert report.get_int_custom_property("bad_images") == 5


def test_bad_images_fail_by_default_with_a_clear_listing(good_root, tmp_path):
    _add_bad_inputs(good_root)
    with pytest.raises(ingest_report.BadInputError) as err:
        run_executor(good_root, str(tmp_path / "out"))
    msg = str(err.value)
    assert "5 file(s)" in msg
    assert "Training/happy/truncated.jpg: corrupt_image" in msg
    assert "Training/happy/empty.jpg: empty_file" in msg
    assert "--on-bad-image skip" in msg
    # The full list is still written where the message says.
    assert os.path.exists(os.path.join(str(tmp_path / "out"), "report", ingest_report.SKIPPED_FILE))


@pytest.fixture
def entries_without_a_readable_file(good_root, tmp_path, monkeypatch):
    """In the training split: entries the executor cannot read an image from, among them a file
    deleted between listing and reading, a link whose target is deleted then and a file whose
    read is denied (as root, chmod cannot deny it). Returns (path -> expected reason, FIFOs)."""
    train = os.path.join(good_root, "Training")
    jpeg = image_folders.encode(image_folders.face("happy", 7))
    special_entries.dangling_link(os.path.join(train, "happy", "dangling.jpg"))
    fifo = special_entries.fifo(os.path.join(train, "happy", "pipe.jpg"))
    special_entries.unix_socket(os.path.join(train, "sad", "socket.png"))
    special_entries.directory(os.path.join(train, "sad", "folder.png"))
    image_folders.write(os.path.join(train, "happy", "vanishing.jpg"), jpeg)
    target = image_folders.write(str(tmp_path / "elsewhere" / "target.jpg"), jpeg)
    os.symlink(target, os.path.join(train, "happy", "link_to_removed.jpg"))
    image_folders.write(os.path.join(train, "sad", "denied.jpg"), jpeg)

    read_local = executor._read_local

    def read(path):
        name = os.path.basename(path)
        if name == "vanishing.jpg":
            os.remove(path)
        elif name == "link_to_removed.jpg":
            os.remove(target)
        elif name == "denied.jpg":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return read_local(path)

    monkeypatch.setattr(executor, "_read_local", read)
    return {
        "Training/happy/dangling.jpg": image_checks.REASON_DANGLING_LINK,
        "Training/happy/pipe.jpg": image_checks.REASON_NOT_A_REGULAR_FILE,
        "Training/sad/socket.png": image_checks.REASON_NOT_A_REGULAR_FILE,
        "Training/sad/folder.png": image_checks.REASON_DIRECTORY,
        "Training/happy/vanishing.jpg": image_checks.REASON_VANISHED,
        "Training/happy/link_to_removed.jpg": image_checks.REASON_DANGLING_LINK,
        "Training/sad/denied.jpg": image_checks.REASON_UNREADABLE,
    }, [fifo]


def test_entries_without_a_readable_file_are_skipped_with_their_reason(
        good_root, entries_without_a_readable_file, tmp_path):
    expected, fifos = entries_without_a_readable_file
    with special_entries.fifo_guard(fifos):
        examples, report = run_executor(good_root, str(tmp_path / "out"), on_bad_image="skip")

    skipped = {s["path"]: s for s in ingest_report.read_skipped(report.uri)}
    assert {p: s["reason"] for p, s in skipped.items()} == expected
    assert skipped["Training/happy/pipe.jpg"]["detail"] == "FIFO"
    assert skipped["Training/sad/socket.png"]["detail"] == "socket"
    assert "'dangling.jpg.removed'" in skipped["Training/happy/dangling.jpg"]["detail"]
    assert "Permission denied" in skipped["Training/sad/denied.jpg"]["detail"]
    assert len(read_examples(examples, "train")) == 6
    summary = ingest_report.read_summary(report.uri)
    assert summary["examples_total"] == 12
    assert summary["files_seen"] == 12 + len(expected) == (summary["examples_total"]
                                                           + summary["skipped_total"])
    assert summary["bad_images"] == 4


def test_entries_that_cannot_be_read_fail_by_default_all_named(
        good_root, entries_without_a_readable_file, tmp_path):
    expected, fifos = entries_without_a_readable_file
    bad = {p: r for p, r in expected.items() if r in image_checks.BAD_IMAGE_REASONS}
    with special_entries.fifo_guard(fifos), pytest.raises(ingest_report.BadInputError) as err:
        run_executor(good_root, str(tmp_path / "out"))
    msg = str(err.value)
    assert f"{len(bad)} file(s)" in msg
    for path, reason in bad.items():
        assert f"{path}: {reason}" in msg
    # FIFOs, sockets and directories hold no image: listed in the report, not bad images.
    for path in set(expected) - set(bad):
        assert path not in msg


def test_fifos_sockets_and_directories_never_fail_the_run(good_root, tmp_path):
    happy = os.path.join(good_root, "Training", "happy")
    fifo = special_entries.fifo(os.path.join(happy, "pipe.jpg"))
    special_entries.unix_socket(os.path.join(happy, "socket.png"))
    special_entries.directory(os.path.join(happy, "folder.png"))
    with special_entries.fifo_guard([fifo]):
        _, report = run_executor(good_root, str(tmp_path / "out"))  # on_bad_image=fail
    assert {s["path"]: s["reason"] for s in ingest_report.read_skipped(report.uri)} == {
        "Training/happy/pipe.jpg": image_checks.REASON_NOT_A_REGULAR_FILE,
        "Training/happy/socket.png": image_checks.REASON_NOT_A_REGULAR_FILE,
        "Training/happy/folder.png": image_checks.REASON_DIRECTORY,
    }
    assert ingest_report.read_summary(report.uri)["bad_images"] == 0


def test_a_remote_file_gone_before_it_is_read_is_skipped(good_root, tmp_path, monkeypatch):
    """Paths on other file systems (here TensorFlow's in-memory ram://) are read with
    tf.io.gfile, its errors caught per entry."""
    remote_base = f"ram://{tmp_path.name}"
    remote = f"{remote_base}/data"
    for folder, _, names in os.walk(good_root):
        remote_folder = remote + folder[len(good_root):]
        tf.io.gfile.makedirs(remote_folder)
        for name in names:
            tf.io.gfile.copy(os.path.join(folder, name), f"{remote_folder}/{name}")
    read_remote = executor._read_remote

    def read(path):
        if path.endswith("Training/happy/img_0.jpg"):
            tf.io.gfile.remove(path)
        return read_remote(path)

    monkeypatch.setattr(executor, "_read_remote", read)
    try:
        examples, report = run_executor(remote, str(tmp_path / "out"), on_bad_image="skip")
    finally:
        tf.io.gfile.rmtree(remote_base)
    assert ingest_report.read_skipped(report.uri) == [{
        "path": "Training/happy/img_0.jpg", "split": "train", "class": "happy",
        "reason": image_checks.REASON_VANISHED, "detail": image_checks.VANISHED_DETAIL}]
    assert len(read_examples(examples, "train")) == 5


def test_every_accepted_image_decodes_with_tensorflow(good_root, tmp_path):
    _add_bad_inputs(good_root)
    _add_accepted_variants(good_root)
    examples, _ = run_executor(good_root, str(tmp_path / "out"), on_bad_image="skip")
    for e in read_examples(examples, "train"):
        image = tf.io.decode_image(feature(e, contract.IMAGE_KEY), expand_animations=False)
        assert image.shape[0] == feature(e, contract.IMAGE_HEIGHT_KEY)


def test_empty_class_folder_is_an_error(good_root, tmp_path):
    for name in os.listdir(os.path.join(good_root, "PublicTest", "sad")):
        os.remove(os.path.join(good_root, "PublicTest", "sad", name))
    with pytest.raises(ingest_report.BadInputError, match=r"\['sad'\] have no usable images in "
                                                     r"split 'eval'"):
        run_executor(good_root, str(tmp_path / "out"))


def test_empty_eval_class_can_be_allowed(good_root, tmp_path):
    for name in os.listdir(os.path.join(good_root, "PublicTest", "sad")):
        os.remove(os.path.join(good_root, "PublicTest", "sad", name))
    _, report = run_executor(good_root, str(tmp_path / "out"), allow_missing=True)
    assert ingest_report.read_summary(report.uri)["examples"]["eval"] == {"happy": 3, "sad": 0}


def test_class_whose_files_are_all_bad_is_an_error_in_train(good_root, tmp_path):
    sad = os.path.join(good_root, "Training", "sad")
    for name in os.listdir(sad):
        image_folders.write(os.path.join(sad, name), b"")
    with pytest.raises(ingest_report.BadInputError, match=r"\['sad'\] have no usable images in "
                                                     r"split 'train'"):
        run_executor(good_root, str(tmp_path / "out"), on_bad_image="skip")


def test_excluded_class_files_are_listed_not_dropped(tmp_path):
    root = image_folders.make_folders(str(tmp_path / "data"), ("disgust", "happy", "sad"), 2)
    examples, report = run_executor(root, str(tmp_path / "out"))  # classes: happy, sad
    summary = ingest_report.read_summary(report.uri)
    assert summary["skipped"] == {image_checks.REASON_CLASS_NOT_INCLUDED: 4}
    assert summary["files_seen"] == 12
    assert {s["class"] for s in ingest_report.read_skipped(report.uri)} == {"disgust"}


def test_opting_in_a_class_shifts_label_ids_by_sorted_name(tmp_path):
    root = image_folders.make_folders(str(tmp_path / "data"), ("disgust", "happy", "sad"), 1)
    _, report = run_executor(root, str(tmp_path / "out"), classes=["sad", "happy", "disgust"])
    label_map = ingest_report.read_summary(report.uri)["label_map"]
    assert label_map == {"disgust": 0, "happy": 1, "sad": 2}


def test_hash_split_of_a_single_folder_is_deterministic(tmp_path):
    root = str(tmp_path / "data")
    for cls in CLASSES:
        for i in range(20):
            image_folders.write(os.path.join(root, cls, f"{i}.jpg"),
                                image_folders.encode(image_folders.face(cls, i)))
    ratios = {"train": 0.75, "eval": 0.25}
    ex1, report1 = run_executor(root, str(tmp_path / "o1"), split_ratios=ratios)
    ex2, _ = run_executor(root, str(tmp_path / "o2"), split_ratios=ratios)
    def paths(ex, split):
        return sorted(feature(e, contract.SOURCE_PATH_KEY) for e in read_examples(ex, split))

    assert paths(ex1, "eval") == paths(ex2, "eval")
    n_train, n_eval = len(paths(ex1, "train")), len(paths(ex1, "eval"))
    assert n_train + n_eval == 40 and 20 <= n_train <= 38
    assert all(executor.hash_split(p.decode(), ratios) == "eval" for p in paths(ex1, "eval"))


def _source_paths(examples, split):
    return sorted(feature(e, contract.SOURCE_PATH_KEY).decode()
                  for e in read_examples(examples, split))


def test_validation_split_is_carved_from_training_only(tmp_path):
    root = image_folders.make_folders(str(tmp_path / "data"), CLASSES, 30)
    ex1, report = run_executor(root, str(tmp_path / "o1"), validation_fraction=0.25)
    ex2, _ = run_executor(root, str(tmp_path / "o2"), validation_fraction=0.25)
    summary = ingest_report.read_summary(report.uri)
    assert summary["splits"] == ["train", "valid", "eval"]
    train, valid, evals = (_source_paths(ex1, s) for s in ("train", "valid", "eval"))
    # Same images every run; only training images move; nothing lost or duplicated.
    assert valid == _source_paths(ex2, "valid")
    assert valid and all(p.startswith("Training/") for p in valid)
    assert len(evals) == 60 and all(p.startswith("PublicTest/") for p in evals)
    assert not set(train) & set(valid) and len(train) + len(valid) == 60
    assert 5 <= len(valid) <= 25
    assert summary["examples_per_split"] == {"train": len(train), "valid": len(valid), "eval": 60}
    assert all(executor.in_validation(p.split("/", 1)[1], 0.25) for p in valid)
    # Independent of the train/eval hash: the same key is not always in both or neither.
    keys = [f"happy/{i}.jpg" for i in range(400)]
    ratios = {"train": 0.75, "eval": 0.25}
    both = sum(executor.in_validation(k, 0.25) and executor.hash_split(k, ratios) == "eval"
               for k in keys)
    assert 0 < both < 60  # ~25 expected if independent


def test_validation_split_that_draws_nothing_is_an_error(tmp_path):
    root = image_folders.make_folders(str(tmp_path / "data"), CLASSES, 1)
    with pytest.raises(ingest_report.BadInputError, match="'valid' split drew no examples"):
        run_executor(root, str(tmp_path / "out"), validation_fraction=0.01)


def test_validation_fraction_and_a_valid_split_of_ones_own_conflict(tmp_path):
    root = image_folders.make_folders(str(tmp_path / "data"), CLASSES, 2)
    with pytest.raises(LayoutError, match="already given"):
        run_executor(root, str(tmp_path / "out"), validation_fraction=0.1,
                     split_folders={**contract.DEFAULT_SPLIT_FOLDERS, "PrivateTest": "valid"})


def test_layout_errors_surface_before_beam(tmp_path):
    with pytest.raises(LayoutError, match="does not exist"):
        run_executor(str(tmp_path / "nope"), str(tmp_path / "out"))


def test_output_files_are_gzipped_tfrecords(good_root, tmp_path):
    examples, _ = run_executor(good_root, str(tmp_path / "out"))
    split_dir = artifact_utils.get_split_uri([examples], "train")
    files = os.listdir(split_dir)
    assert files and all(f.startswith("data_tfrecord") and f.endswith(".gz") for f in files)
    with gzip.open(os.path.join(split_dir, files[0])) as f:
        f.read(16)


def test_component_rejects_unknown_policy():
    with pytest.raises(ValueError, match="on_bad_image"):
        ImageFolderExampleGen(input_base="/data", on_bad_image="ignore")


def test_component_serializes_its_parameters():
    gen = ImageFolderExampleGen(input_base="/data", classes=None, split_ratios={"train": 4,
                                                                                "eval": 1})
    props = gen.exec_properties
    assert props[executor.CLASSES_KEY] is None
    assert json.loads(props[executor.SPLIT_RATIOS_KEY]) == {"eval": 1, "train": 4}
    assert set(gen.outputs) == {executor.EXAMPLES_KEY, executor.INGEST_REPORT_KEY}


def test_a_file_lost_between_listing_and_output_fails_the_run(good_root, tmp_path, monkeypatch):
    """The executor counts files on the listing; a record lost from Beam's outputs (here: one
    example dropped from the counts it wrote) no longer adds up and stops the run."""
    finish = ingest_report.finish

    def lose_one_example(layout, report_uri, beam_counts, *args, **kwargs):
        with open(beam_counts) as f:
            lines = [json.loads(line) for line in f]
        i = next(i for i, (key, _) in enumerate(lines) if key[0] == ingest_report.EXAMPLE)
        lines[i][1] -= 1
        with open(beam_counts, "w") as f:
            f.writelines(json.dumps(line) + "\n" for line in lines)
        return finish(layout, report_uri, beam_counts, *args, **kwargs)

    monkeypatch.setattr(ingest_report, "finish", lose_one_example)
    with pytest.raises(ingest_report.IngestAccountingError,
                       match=r"12 files listed under .* != 11 accounted for \(11 examples \+ 0 "
                             r"skipped"):
        run_executor(good_root, str(tmp_path / "out"))
