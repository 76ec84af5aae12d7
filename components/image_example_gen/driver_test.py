"""Span resolution and the input fingerprint that ExampleGen's cache key is made of."""
import json
import os

import pytest
import tensorflow as tf
from tfx.orchestration import data_types

from components.image_example_gen import component, driver, spans
from tests import image_folders, ingest, special_entries


def _resolve(input_base, span=None):
    gen = component.ImageFolderExampleGen(input_base=input_base, span=span)
    props = {k: v for k, v in gen.exec_properties.items()}
    info = data_types.PipelineInfo("p", "/tmp")
    return driver.ImageFolderDriver(metadata_handle=None).resolve_exec_properties(
        props, info, data_types.ComponentInfo("c", "c", info))


def test_latest_span_is_read_unless_one_is_named(tmp_path):
    for span in (1, 2, 10):
        image_folders.make_folders(str(tmp_path / f"span-{span}"), ["happy"], per_class=1)
    image_folders.write(str(tmp_path / "notes.txt"), b"x")
    assert spans.list_spans(str(tmp_path)) == [1, 2, 10]

    latest = _resolve(str(tmp_path))
    assert latest[driver.SPAN_PROPERTY] == 10
    assert spans.data_root_of(str(tmp_path), driver.resolved_pattern(latest)) == \
        str(tmp_path / "span-10")
    assert latest[driver.FINGERPRINT_PROPERTY] == spans.fingerprint(str(tmp_path / "span-10"))

    # However the span was chosen, the resolved properties (the cache key) name it alike.
    assert latest[driver.RANGE_CONFIG_KEY] == \
        _resolve(str(tmp_path), span=10)[driver.RANGE_CONFIG_KEY] == driver.static_range(10)

    named = _resolve(str(tmp_path), span=2)
    assert named[driver.SPAN_PROPERTY] == 2
    assert spans.data_root_of(str(tmp_path), driver.resolved_pattern(named)) == \
        str(tmp_path / "span-2")
    with pytest.raises(driver.NoSpanError, match=r"span 3 asked for.* only spans \[1, 2, 10\]"):
        _resolve(str(tmp_path), span=3)
    # TFX's pattern matching refuses a span folder whose number is not one.
    image_folders.write(str(tmp_path / "span-x" / "a.png"), b"x")
    with pytest.raises(ValueError, match="Cannot find span number"):
        _resolve(str(tmp_path))


def test_a_flat_data_root_is_span_zero_and_cannot_be_asked_for_a_span(tmp_path):
    image_folders.make_folders(str(tmp_path), ["happy"], per_class=1)
    flat = _resolve(str(tmp_path))
    assert flat[driver.SPAN_PROPERTY] == 0
    assert spans.data_root_of(str(tmp_path), driver.resolved_pattern(flat)) == str(tmp_path)
    assert flat[driver.FINGERPRINT_PROPERTY] == spans.fingerprint(str(tmp_path))
    with pytest.raises(driver.NoSpanError, match="no span-<N> folders"):
        _resolve(str(tmp_path), span=1)


def test_fingerprint_changes_with_any_added_renamed_or_rewritten_file(tmp_path):
    root = str(tmp_path)
    image_folders.write(os.path.join(root, "Training", "happy", "a.png"), b"aaaa")
    image_folders.write(os.path.join(root, "Training", "sad", "b.png"), b"bbbb")
    first = spans.fingerprint(root)
    assert first == spans.fingerprint(root)                # stable
    assert first.startswith("files:2,bytes:8,")

    # Relabelled: same bytes, same mtime, another class folder.
    stat = os.stat(os.path.join(root, "Training", "sad", "b.png"))
    os.rename(os.path.join(root, "Training", "sad", "b.png"),
              os.path.join(root, "Training", "happy", "b.png"))
    os.utime(os.path.join(root, "Training", "happy", "b.png"), ns=(stat.st_atime_ns,
                                                                  stat.st_mtime_ns))
    relabelled = spans.fingerprint(root)
    assert relabelled != first

    # Rewritten: same size, another mtime.
    image_folders.write(os.path.join(root, "Training", "happy", "a.png"), b"AAAA")
    os.utime(os.path.join(root, "Training", "happy", "a.png"), ns=(1, 1))
    rewritten = spans.fingerprint(root)
    assert rewritten not in (first, relabelled)

    image_folders.write(os.path.join(root, "Training", "happy", "c.png"), b"c")
    assert spans.fingerprint(root) not in (first, relabelled, rewritten)


def test_a_dangling_link_in_a_class_folder_does_not_stop_the_driver(tmp_path):
    """The executor skips the link with a reason; the fingerprint must not raise on it."""
    image_folders.make_folders(str(tmp_path), ["happy"], per_class=1)
    before = spans.fingerprint(str(tmp_path))
    link = special_entries.dangling_link(str(tmp_path / "Training" / "happy" / "gone.jpg"))
    resolved = _resolve(str(tmp_path))
    with_link = resolved[driver.FINGERPRINT_PROPERTY]
    assert with_link == spans.fingerprint(str(tmp_path)) != before
    # Pointed elsewhere, it is another entry.
    os.remove(link)
    os.symlink("elsewhere.jpg", link)
    assert spans.fingerprint(str(tmp_path)) not in (before, with_link)


def test_fingerprint_changes_with_each_entry_the_executor_skips_unread(tmp_path):
    root = str(tmp_path)
    happy = os.path.join(root, "Training", "happy")
    image_folders.write(os.path.join(happy, "a.png"), b"aaaa")
    seen = [spans.fingerprint(root)]
    added = []
    for make, name in ((special_entries.dangling_link, "gone.jpg"),
                       (special_entries.fifo, "pipe.jpg"),
                       (special_entries.unix_socket, "socket.png"),
                       (special_entries.directory, "folder.png")):
        added.append(make(os.path.join(happy, name)))
        current = spans.fingerprint(root)
        assert current == spans.fingerprint(root) and current not in seen, name
        seen.append(current)
    assert seen[-1].startswith("files:4,bytes:4,")  # listed, no size for what is no file
    # Each one gone: back to the fingerprint before it came.
    for i in reversed(range(len(added))):
        (os.rmdir if i == 3 else os.remove)(added[i])
        assert spans.fingerprint(root) == seen[i], added[i]


def test_fingerprint_survives_an_entry_gone_between_the_walk_and_its_stat(tmp_path, monkeypatch):
    root = str(tmp_path)
    image_folders.write(os.path.join(root, "Training", "happy", "a.png"), b"aaaa")
    image_folders.write(os.path.join(root, "Training", "happy", "b.png"), b"bbbb")
    entry_record = spans._entry_record

    def remove_b_first(path):
        if path.endswith("b.png"):
            os.remove(path)
        return entry_record(path)

    monkeypatch.setattr(spans, "_entry_record", remove_b_first)
    during = spans.fingerprint(root)
    monkeypatch.undo()
    assert during.startswith("files:2,bytes:4,")
    # Not the fingerprint of what is left: the next run reads the files again.
    assert during != spans.fingerprint(root)


def test_fingerprint_of_a_remote_folder_uses_tf_io_gfile(tmp_path, monkeypatch):
    """Other file systems (here TensorFlow's in-memory ram://): stat by tf.io.gfile, an entry
    gone before its stat recorded as missing."""
    root = f"ram://{tmp_path.name}"
    tf.io.gfile.makedirs(f"{root}/Training/happy")
    for name in ("a.png", "b.png"):
        with tf.io.gfile.GFile(f"{root}/Training/happy/{name}", "wb") as f:
            f.write(b"xy")
    entry_record = spans._entry_record

    def remove_b_first(path):
        if path.endswith("b.png"):
            tf.io.gfile.remove(path)
        return entry_record(path)

    try:
        first = spans.fingerprint(root)
        assert first.startswith("files:2,bytes:4,") and first == spans.fingerprint(root)
        monkeypatch.setattr(spans, "_entry_record", remove_b_first)
        during = spans.fingerprint(root)
        monkeypatch.undo()
        assert during.startswith("files:2,bytes:2,")
        assert during not in (first, spans.fingerprint(root))
    finally:
        tf.io.gfile.rmtree(root)


def test_the_span_asked_for_is_a_static_range(tmp_path):
    gen = component.ImageFolderExampleGen(input_base=str(tmp_path), span=4)
    static = json.loads(gen.exec_properties[driver.RANGE_CONFIG_KEY])["static_range"]
    assert static == {"start_span_number": 4, "end_span_number": 4}
    assert driver.asked_span(gen.exec_properties) == 4
    assert component.ImageFolderExampleGen(
        input_base=str(tmp_path)).exec_properties.get(driver.RANGE_CONFIG_KEY) is None


def test_without_a_driver_the_executor_makes_the_same_choice(tmp_path):
    # TFX's Kubeflow V2 runner runs no driver for custom components.
    for span in (1, 3):
        image_folders.make_folders(str(tmp_path / f"span-{span}"), ["happy"], per_class=1)
    props = component.ImageFolderExampleGen(input_base=str(tmp_path)).exec_properties
    assert driver.span_root_without_driver(props) == (str(tmp_path / "span-3"), 3)
    props = component.ImageFolderExampleGen(input_base=str(tmp_path), span=1).exec_properties
    assert driver.span_root_without_driver(props) == (str(tmp_path / "span-1"), 1)
    props = component.ImageFolderExampleGen(input_base=str(tmp_path), span=2).exec_properties
    with pytest.raises(driver.NoSpanError, match="only spans \\[1, 3\\]"):
        driver.span_root_without_driver(props)
    flat = str(tmp_path / "span-1")
    assert driver.span_root_without_driver(
        component.ImageFolderExampleGen(input_base=flat).exec_properties) == (flat, None)


def test_the_span_read_is_recorded_as_the_examples_span_property(tmp_path):
    """TFX's span ops (rolling range) read the standard `span` property. Without a driver (as on
    Kubeflow) the executor picks the latest span itself and records it."""
    for span in (1, 3):
        image_folders.make_folders(str(tmp_path / "data" / f"span-{span}"), ingest.CLASSES,
                                   per_class=1)
    examples, report = ingest.run_executor(
        str(tmp_path / "data"), str(tmp_path / "out"),
        exec_properties={driver.INPUT_CONFIG_KEY: driver.input_config()})
    assert examples.span == 3
    assert examples.get_int_custom_property(driver.SPAN_PROPERTY) == 3
    assert report.get_int_custom_property(driver.SPAN_PROPERTY) == 3
