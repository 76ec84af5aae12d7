"""ImageFolderExampleGen executor: class folders -> tf.Examples, with a report of every skip.

The driver-side work is limited to listing split and class *folders* (layout.py). Listing the
files in each class folder, reading, checking (image_checks.py) and encoding them all run in
Beam, so the work spreads over the runner's workers. Every file ends up either as an example or
as a line in the ingest report's `skipped.jsonl` (ingest_report.py), which checks that
`files seen = examples + skipped`, files seen being counted on the listing itself. That holds for
entries that are no readable file too (dangling links, FIFOs, sockets, entries gone or denied
when read): each is one skip with its reason (image_checks.py says which are bad images), never
an exception that stops the run.

With `data_csv`, the rows of FER2013's CSV form are the input instead (csv_source.py): Beam
reads the file in chunks of lines, and every row is an example or a skip in the same report.
"""
from __future__ import annotations

import json
import os
import posixpath
import stat
from typing import Any, Dict, Iterable, List, Optional, Tuple

import apache_beam as beam
import tensorflow as tf
from absl import logging
from tfx import types
from tfx.components.example_gen import write_split
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs

from components import contract
from components.image_example_gen import csv_source, driver, image_checks, ingest_report, spans
from components.image_example_gen import layout as layout_lib

# Re-exported: callers and tests use them as executor.*.
from components.image_example_gen.tf_examples import (  # noqa: F401
    hash_split,
    in_validation,
    make_example,
    split_of,
)

EXAMPLES_KEY = standard_component_specs.EXAMPLES_KEY
INGEST_REPORT_KEY = "ingest_report"

INPUT_BASE_KEY = "input_base"
SPLIT_FOLDERS_KEY = "split_folders"
CLASSES_KEY = "classes"
EXCLUDE_CLASSES_KEY = "exclude_classes"
SPLIT_RATIOS_KEY = "split_ratios"
ON_BAD_IMAGE_KEY = "on_bad_image"
ALLOW_MISSING_EVAL_CLASSES_KEY = "allow_missing_eval_classes"
VALIDATION_FRACTION_KEY = "validation_fraction"
DATA_CSV_KEY = csv_source.DATA_CSV_KEY
CSV_PRIVATE_TEST_KEY = csv_source.INCLUDE_TEST_KEY

LABEL_MAP_FILE = "label_map.json"
LABEL_NAMES_PROPERTY = "label_names"


def _list_class_folder(folder: layout_lib.ClassFolder, root: str) -> Iterable[Tuple[Any, str]]:
    for name in sorted(tf.io.gfile.listdir(posixpath.join(root, folder.rel_dir))):
        yield folder, name.rstrip("/")


def _read_local(path: str) -> bytes:
    """The bytes of the local regular file `path`. Opened non-blocking and checked again once
    open: a FIFO put in its place after the check would else block the read forever (the flag
    does not change reading a regular file)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with open(fd, "rb") as f:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise image_checks.BadImage(image_checks.REASON_NOT_A_REGULAR_FILE,
                                        image_checks.file_kind(mode))
        return f.read()


def _read_remote(path: str) -> bytes:
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read()


def _read_entry(abs_path: str) -> bytes:
    """The bytes of a listed entry with an image name.

    Raises:
      image_checks.BadImage: why it has none to give (a directory, no regular file, a dangling
        link, gone since the listing, unreadable).
    """
    local = image_checks.local_path(abs_path)
    if local is not None:
        image_checks.check_local_file(local)
        try:
            return _read_local(local)
        except FileNotFoundError:
            # Gone since the check: the file, or the target of a link (check says which).
            image_checks.check_local_file(local)
            raise image_checks.BadImage(image_checks.REASON_VANISHED,
                                        image_checks.VANISHED_DETAIL) from None
        except OSError as e:
            raise image_checks.BadImage(image_checks.REASON_UNREADABLE,
                                        image_checks.error_detail(e)) from None
    try:
        if tf.io.gfile.isdir(abs_path):
            raise image_checks.BadImage(image_checks.REASON_DIRECTORY)
        return _read_remote(abs_path)
    except tf.errors.NotFoundError:
        raise image_checks.BadImage(image_checks.REASON_VANISHED,
                                    image_checks.VANISHED_DETAIL) from None
    except (tf.errors.OpError, OSError) as e:
        raise image_checks.BadImage(image_checks.REASON_UNREADABLE,
                                    image_checks.error_detail(e)) from None


def _file_to_record(entry: Tuple[layout_lib.ClassFolder, str], root: str,
                    split_ratios: Optional[Dict[str, float]], validation_fraction: float = 0.0):
    """One file -> an ingest_report.example_record or an ingest_report.skipped_record."""
    folder, name = entry
    rel_path = posixpath.join(folder.rel_dir, name)
    # Hash keys use the path below the split folder, i.e. class/file.
    key = posixpath.join(folder.class_name, name)
    split = split_of(key, folder.split, split_ratios, validation_fraction)

    def skip(reason: str, detail: str = ""):
        return ingest_report.skipped_record(rel_path, split, folder.class_name, reason, detail)

    if name.startswith("."):
        return skip(layout_lib.REASON_HIDDEN)
    if folder.label is None:
        return skip(image_checks.REASON_CLASS_NOT_INCLUDED)
    abs_path = posixpath.join(root, rel_path)
    if not name.lower().endswith(contract.IMAGE_EXTENSIONS):
        return skip(image_checks.REASON_DIRECTORY if tf.io.gfile.isdir(abs_path)
                    else image_checks.REASON_NOT_IMAGE_FILE)
    try:
        data = _read_entry(abs_path)
        fmt, height, width, channels = image_checks.inspect_image(data)
    except image_checks.BadImage as e:
        return skip(e.reason, e.detail)
    except (OSError, tf.errors.OpError) as e:
        return skip(image_checks.REASON_UNREADABLE, image_checks.error_detail(e))
    example = make_example(data, folder.label, folder.class_name, rel_path, fmt, height, width,
                           channels)
    return ingest_report.example_record(split, folder.class_name, example.SerializeToString())


def _load_json_param(value: Optional[str]):
    return json.loads(value) if value else None


class Executor(base_beam_executor.BaseBeamExecutor):
    """Reads `<root>/<split>/<class>/<image>` into gzipped TFRecords of tf.Examples."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        # The span folder the driver chose (spans.py), or the data root itself.
        root = exec_properties[INPUT_BASE_KEY]
        span = exec_properties.get(driver.SPAN_PROPERTY)
        pattern = (driver.resolved_pattern(exec_properties)
                   if exec_properties.get(driver.INPUT_CONFIG_KEY) else None)
        if pattern and "{SPAN}" not in pattern:
            root = spans.data_root_of(root, pattern)
        elif pattern:  # no driver ran (Kubeflow V2): the same choice, made here
            root, span = driver.span_root_without_driver(exec_properties)
        on_bad_image = exec_properties.get(ON_BAD_IMAGE_KEY) or contract.ON_BAD_IMAGE_FAIL
        if on_bad_image not in contract.ON_BAD_IMAGE_CHOICES:
            raise ValueError(f"on_bad_image must be one of {contract.ON_BAD_IMAGE_CHOICES}, "
                             f"got {on_bad_image!r}")
        allow_missing = bool(exec_properties.get(ALLOW_MISSING_EVAL_CLASSES_KEY))
        split_folders = (_load_json_param(exec_properties.get(SPLIT_FOLDERS_KEY))
                         or contract.DEFAULT_SPLIT_FOLDERS)
        classes = _load_json_param(exec_properties.get(CLASSES_KEY))
        exclude_classes = _load_json_param(exec_properties.get(EXCLUDE_CLASSES_KEY)) or ()
        split_ratios = _load_json_param(exec_properties.get(SPLIT_RATIOS_KEY))
        validation_fraction = float(exec_properties.get(VALIDATION_FRACTION_KEY) or 0.0)
        data_csv = exec_properties.get(DATA_CSV_KEY) or None
        if data_csv:
            source = csv_source.resolve_source(
                root, data_csv, split_folders=split_folders, classes=classes,
                exclude_classes=exclude_classes, split_ratios=split_ratios,
                validation_fraction=validation_fraction,
                include_test=bool(exec_properties.get(CSV_PRIVATE_TEST_KEY)))
            layout = source.layout
            bad_reasons = csv_source.BAD_ROW_REASONS
            logging.info("ImageFolderExampleGen: %s, %d rows in %d chunks, splits=%s classes=%s",
                         source.path, source.rows, len(source.chunks), layout.splits,
                         layout.class_names)
        else:
            layout = layout_lib.resolve_layout(
                root, split_folders=split_folders, classes=classes,
                exclude_classes=exclude_classes, split_ratios=split_ratios,
                allow_missing_eval_classes=allow_missing, validation_fraction=validation_fraction)
            bad_reasons = image_checks.BAD_IMAGE_REASONS
            logging.info("ImageFolderExampleGen: root=%s splits=%s classes=%s (%d class "
                         "folders)", layout.root, layout.splits, layout.class_names,
                         len(layout.class_folders))

        examples = artifact_utils.get_single_instance(output_dict[EXAMPLES_KEY])
        report = artifact_utils.get_single_instance(output_dict[INGEST_REPORT_KEY])
        examples.split_names = artifact_utils.encode_split_names(list(layout.splits))
        tf.io.gfile.makedirs(report.uri)
        counts_prefix = os.path.join(report.uri, "_counts")
        skipped_prefix = os.path.join(report.uri, "_skipped")
        listed_prefix = os.path.join(report.uri, "_listed")

        with self._make_beam_pipeline() as p:
            if data_csv:
                # Rows were counted by the scan, apart from what becomes of each row.
                with tf.io.gfile.GFile(listed_prefix, "w") as f:
                    f.write(f"{source.rows}\n")
                records = (
                    p
                    | "CsvChunks" >> beam.Create(list(source.chunks))
                    # Spread the chunks over workers; each streams its rows.
                    | "Reshuffle" >> beam.Reshuffle()
                    | "ReadRows" >> beam.FlatMap(csv_source.chunk_records, source=source))
            else:
                records = self._folder_records(p, layout, listed_prefix)
            _ = (records
                 | "CountKeys" >> beam.Map(ingest_report.count_key)
                 | "Count" >> beam.combiners.Count.PerElement()
                 | "CountToJson" >> beam.MapTuple(lambda k, n: json.dumps([json.loads(k), n]))
                 | "WriteCounts" >> beam.io.WriteToText(counts_prefix, shard_name_template=""))
            _ = (records
                 | "OnlySkipped" >> beam.Filter(lambda r: r[0] == ingest_report.SKIPPED)
                 | "SkippedToJson" >> beam.Map(lambda r: json.dumps(r[1], sort_keys=True))
                 | "WriteSkipped" >> beam.io.WriteToText(skipped_prefix, shard_name_template=""))
            examples_only = (records | "OnlyExamples" >> beam.Filter(
                lambda r: r[0] == ingest_report.EXAMPLE))
            for split in layout.splits:
                _ = (examples_only
                     | f"Select[{split}]" >> beam.Filter(lambda r, s=split: r[1] == s)
                     | f"Serialized[{split}]" >> beam.Map(lambda r: r[3])
                     | f"WriteSplit[{split}]" >> write_split.WriteSplit(
                         artifact_utils.get_split_uri([examples], split),
                         example_gen_pb2.FORMAT_TFRECORDS_GZIP))

        summary = ingest_report.finish(layout, report.uri, counts_prefix, skipped_prefix,
                                       listed_prefix, on_bad_image, bad_reasons, data_csv)
        examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(
            examples, write_split.to_file_format_str(example_gen_pb2.FORMAT_TFRECORDS_GZIP))
        examples.set_json_value_custom_property(LABEL_NAMES_PROPERTY, list(layout.class_names))
        ingest_report.write_json(os.path.join(examples.uri, LABEL_MAP_FILE), layout.label_map)
        for key in ("files_seen", "examples_total", "skipped_total", "bad_images"):
            report.set_int_custom_property(key, summary[key])
            examples.set_int_custom_property(key, summary[key])
        if span is not None:
            report.set_int_custom_property(driver.SPAN_PROPERTY, int(span))
            examples.set_int_custom_property(driver.SPAN_PROPERTY, int(span))
            # The standard property too: TFX's span ops (rolling range) read `span`, not the
            # custom property; in IR runs the driver's copy does not reach the artifact.
            examples.span = int(span)
        ingest_report.check(summary, layout, report.uri, on_bad_image, allow_missing,
                            bad_reasons)
        logging.info("ImageFolderExampleGen: %s", ingest_report.format_summary(summary))

    @staticmethod
    def _folder_records(p: beam.Pipeline, layout: layout_lib.DatasetLayout,
                        listed_prefix: str) -> beam.PCollection:
        """One record per file in the class folders; the files listed counted apart."""
        listed = (
            p
            | "ClassFolders" >> beam.Create(list(layout.class_folders))
            | "ListFiles" >> beam.FlatMap(_list_class_folder, root=layout.root))
        # The number of files listed, counted apart from what becomes of each file.
        _ = (listed
             | "CountListed" >> beam.combiners.Count.Globally()
             | "ListedToText" >> beam.Map(str)
             | "WriteListed" >> beam.io.WriteToText(listed_prefix, shard_name_template=""))
        return (
            listed
            # Spread files over workers: a class folder can hold thousands.
            | "Reshuffle" >> beam.Reshuffle()
            | "ReadAndCheck" >> beam.Map(_file_to_record, root=layout.root,
                                         split_ratios=layout.split_ratios,
                                         validation_fraction=layout.validation_fraction))
