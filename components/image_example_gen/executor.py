"""ImageFolderExampleGen executor: class folders -> tf.Examples, with a report of every skip.

The driver-side work is limited to listing split and class *folders* (layout.py). Listing the
files in each class folder, reading, checking and encoding them all run in Beam, so the work
spreads over the runner's workers. Every file ends up either as an example or as a line in the
ingest report's `skipped.jsonl`; the executor checks that `files seen = examples + skipped`.
"""
from __future__ import annotations

import hashlib
import json
import os
import posixpath
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

from components.image_example_gen import layout as layout_lib
from pipeline import configs

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

LABEL_MAP_FILE = "label_map.json"
SUMMARY_FILE = "summary.json"
SKIPPED_FILE = "skipped.jsonl"
LABEL_NAMES_PROPERTY = "label_names"

# Files with an image extension that cannot be used: subject to the on_bad_image policy.
REASON_EMPTY = "empty_file"
REASON_NOT_AN_IMAGE = "not_an_image"
REASON_UNSUPPORTED_FORMAT = "unsupported_format"
REASON_CORRUPT = "corrupt_image"
REASON_UNREADABLE = "unreadable"
BAD_IMAGE_REASONS = frozenset(
    {REASON_EMPTY, REASON_NOT_AN_IMAGE, REASON_UNSUPPORTED_FORMAT, REASON_CORRUPT, REASON_UNREADABLE})
# Entries that are not images at all: always skipped and listed, never an error.
REASON_CLASS_NOT_INCLUDED = "class_not_included"
REASON_NOT_IMAGE_FILE = "not_an_image_file"
REASON_DIRECTORY = "directory"

_EXAMPLE = "example"
_SKIPPED = "skipped"


class BadInputError(RuntimeError):
    """Input data cannot be ingested under the configured policy."""


class BadImage(Exception):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
)
_UNSUPPORTED_MAGIC = (
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"RIFF", "WEBP/RIFF"),
)


def sniff_format(data: bytes) -> Optional[str]:
    """Image format from the file's leading bytes (not its extension), or None."""
    for magic, fmt in _MAGIC:
        if data.startswith(magic):
            return fmt
    return None


def inspect_image(data: bytes) -> Tuple[str, int, int, int]:
    """(format, height, width, channels) of an encoded image, decoded as Transform will.

    Uses tf.io.decode_image, the decoder of the Transform graph and of serving, so that every
    accepted file is one they can decode.

    Raises:
      BadImage: empty, not an image, a format TensorFlow cannot decode, or corrupt/truncated.
    """
    if not data:
        raise BadImage(REASON_EMPTY, "zero-byte file")
    fmt = sniff_format(data)
    if fmt is None:
        for magic, name in _UNSUPPORTED_MAGIC:
            if data.startswith(magic):
                raise BadImage(REASON_UNSUPPORTED_FORMAT,
                               f"{name}; supported: {', '.join(configs.DECODABLE_FORMATS)}")
        raise BadImage(REASON_NOT_AN_IMAGE,
                       f"content is not {'/'.join(configs.DECODABLE_FORMATS)} "
                       f"(starts with {data[:8]!r})")
    try:
        image = tf.io.decode_image(data, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as e:
        raise BadImage(REASON_CORRUPT, f"{fmt}: {e.message.splitlines()[0][:200]}") from None
    height, width, channels = (int(d) for d in image.shape)
    if height == 0 or width == 0:
        raise BadImage(REASON_CORRUPT, f"{fmt}: decoded to {height}x{width}")
    return fmt, height, width, channels


def _bytes_feature(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int_feature(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def make_example(data: bytes, label: int, class_name: str, rel_path: str,
                 fmt: str, height: int, width: int, channels: int) -> tf.train.Example:
    return tf.train.Example(features=tf.train.Features(feature={
        configs.IMAGE_KEY: _bytes_feature(data),
        configs.LABEL_KEY: _int_feature(label),
        configs.LABEL_NAME_KEY: _bytes_feature(class_name.encode()),
        configs.SOURCE_PATH_KEY: _bytes_feature(rel_path.encode()),
        configs.IMAGE_HEIGHT_KEY: _int_feature(height),
        configs.IMAGE_WIDTH_KEY: _int_feature(width),
        configs.IMAGE_CHANNELS_KEY: _int_feature(channels),
        configs.IMAGE_FORMAT_KEY: _bytes_feature(fmt.encode()),
    }))


def _hash_bucket(key: str) -> float:
    """A number in [0, 1) from `key`, the same on every machine and run."""
    return int.from_bytes(hashlib.md5(key.encode()).digest()[:8], "big") / 2.0**64


def hash_split(key: str, ratios: Dict[str, float]) -> str:
    """Deterministic split for `key` (same on every machine and run) by cumulative ratios."""
    bucket = _hash_bucket(key)
    cumulative = 0.0
    names = sorted(ratios)          # fixed order so the mapping does not depend on dict order
    for name in names:
        cumulative += ratios[name]
        if bucket < cumulative:
            return name
    return names[-1]


def in_validation(key: str, fraction: float) -> bool:
    """Whether training file `key` (class/file name) belongs to the carved-out validation split.

    Salted, so that the choice is independent of hash_split's on the same key.
    """
    return _hash_bucket(f"{configs.VALID_SPLIT}:{key}") < fraction


def _list_class_folder(folder: layout_lib.ClassFolder, root: str) -> Iterable[Tuple[Any, str]]:
    for name in sorted(tf.io.gfile.listdir(posixpath.join(root, folder.rel_dir))):
        yield folder, name.rstrip("/")


def _skip(rel_path: str, split: Optional[str], class_name: str, reason: str, detail: str = ""):
    return (_SKIPPED, {"path": rel_path, "split": split, "class": class_name,
                       "reason": reason, "detail": detail})


def _file_to_record(entry: Tuple[layout_lib.ClassFolder, str], root: str,
                    split_ratios: Optional[Dict[str, float]], validation_fraction: float = 0.0):
    """One file -> (_EXAMPLE, split, class, serialized example) or (_SKIPPED, info dict)."""
    folder, name = entry
    rel_path = posixpath.join(folder.rel_dir, name)
    # Hash keys use the path below the split folder, i.e. class/file.
    key = posixpath.join(folder.class_name, name)
    split = folder.split
    if split is None:
        split = hash_split(key, split_ratios)
    if split == configs.TRAIN_SPLIT and validation_fraction and in_validation(key, validation_fraction):
        split = configs.VALID_SPLIT
    if name.startswith("."):
        return _skip(rel_path, split, folder.class_name, layout_lib.REASON_HIDDEN)
    if folder.label is None:
        return _skip(rel_path, split, folder.class_name, REASON_CLASS_NOT_INCLUDED)
    abs_path = posixpath.join(root, rel_path)
    if not name.lower().endswith(configs.IMAGE_EXTENSIONS):
        reason = REASON_DIRECTORY if tf.io.gfile.isdir(abs_path) else REASON_NOT_IMAGE_FILE
        return _skip(rel_path, split, folder.class_name, reason)
    try:
        if tf.io.gfile.isdir(abs_path):
            return _skip(rel_path, split, folder.class_name, REASON_DIRECTORY)
        with tf.io.gfile.GFile(abs_path, "rb") as f:
            data = f.read()
        fmt, height, width, channels = inspect_image(data)
    except BadImage as e:
        return _skip(rel_path, split, folder.class_name, e.reason, e.detail)
    except (OSError, tf.errors.OpError) as e:
        return _skip(rel_path, split, folder.class_name, REASON_UNREADABLE, str(e)[:200])
    example = make_example(data, folder.label, folder.class_name, rel_path, fmt, height, width,
                           channels)
    return (_EXAMPLE, split, folder.class_name, example.SerializeToString())


def _count_key(record) -> str:
    if record[0] == _EXAMPLE:
        return json.dumps([_EXAMPLE, record[1], record[2]])
    info = record[1]
    return json.dumps([_SKIPPED, info["split"], info["reason"]])


def _load_json_param(value: Optional[str]):
    return json.loads(value) if value else None


class Executor(base_beam_executor.BaseBeamExecutor):
    """Reads `<root>/<split>/<class>/<image>` into gzipped TFRecords of tf.Examples."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        root = exec_properties[INPUT_BASE_KEY]
        on_bad_image = exec_properties.get(ON_BAD_IMAGE_KEY) or configs.ON_BAD_IMAGE_FAIL
        if on_bad_image not in configs.ON_BAD_IMAGE_CHOICES:
            raise ValueError(f"on_bad_image must be one of {configs.ON_BAD_IMAGE_CHOICES}, "
                             f"got {on_bad_image!r}")
        allow_missing = bool(exec_properties.get(ALLOW_MISSING_EVAL_CLASSES_KEY))
        layout = layout_lib.resolve_layout(
            root,
            split_folders=_load_json_param(exec_properties.get(SPLIT_FOLDERS_KEY))
            or configs.DEFAULT_SPLIT_FOLDERS,
            classes=_load_json_param(exec_properties.get(CLASSES_KEY)),
            exclude_classes=_load_json_param(exec_properties.get(EXCLUDE_CLASSES_KEY)) or (),
            split_ratios=_load_json_param(exec_properties.get(SPLIT_RATIOS_KEY)),
            allow_missing_eval_classes=allow_missing,
            validation_fraction=float(exec_properties.get(VALIDATION_FRACTION_KEY) or 0.0),
        )
        logging.info("ImageFolderExampleGen: root=%s splits=%s classes=%s (%d class folders)",
                     layout.root, layout.splits, layout.class_names, len(layout.class_folders))

        examples = artifact_utils.get_single_instance(output_dict[EXAMPLES_KEY])
        report = artifact_utils.get_single_instance(output_dict[INGEST_REPORT_KEY])
        examples.split_names = artifact_utils.encode_split_names(list(layout.splits))
        tf.io.gfile.makedirs(report.uri)
        counts_prefix = os.path.join(report.uri, "_counts")
        skipped_prefix = os.path.join(report.uri, "_skipped")

        with self._make_beam_pipeline() as p:
            records = (
                p
                | "ClassFolders" >> beam.Create(list(layout.class_folders))
                | "ListFiles" >> beam.FlatMap(_list_class_folder, root=layout.root)
                # Spread files over workers: a class folder can hold thousands.
                | "Reshuffle" >> beam.Reshuffle()
                | "ReadAndCheck" >> beam.Map(_file_to_record, root=layout.root,
                                             split_ratios=layout.split_ratios,
                                             validation_fraction=layout.validation_fraction))
            _ = (records
                 | "CountKeys" >> beam.Map(_count_key)
                 | "Count" >> beam.combiners.Count.PerElement()
                 | "CountToJson" >> beam.MapTuple(lambda k, n: json.dumps([json.loads(k), n]))
                 | "WriteCounts" >> beam.io.WriteToText(counts_prefix, shard_name_template=""))
            _ = (records
                 | "OnlySkipped" >> beam.Filter(lambda r: r[0] == _SKIPPED)
                 | "SkippedToJson" >> beam.Map(lambda r: json.dumps(r[1], sort_keys=True))
                 | "WriteSkipped" >> beam.io.WriteToText(skipped_prefix, shard_name_template=""))
            examples_only = records | "OnlyExamples" >> beam.Filter(lambda r: r[0] == _EXAMPLE)
            for split in layout.splits:
                _ = (examples_only
                     | f"Select[{split}]" >> beam.Filter(lambda r, s=split: r[1] == s)
                     | f"Serialized[{split}]" >> beam.Map(lambda r: r[3])
                     | f"WriteSplit[{split}]" >> write_split.WriteSplit(
                         artifact_utils.get_split_uri([examples], split),
                         example_gen_pb2.FORMAT_TFRECORDS_GZIP))

        summary = _finish_report(layout, report.uri, counts_prefix, skipped_prefix, on_bad_image)
        examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(
            examples, write_split.to_file_format_str(example_gen_pb2.FORMAT_TFRECORDS_GZIP))
        examples.set_json_value_custom_property(LABEL_NAMES_PROPERTY, list(layout.class_names))
        _write_json(os.path.join(examples.uri, LABEL_MAP_FILE), layout.label_map)
        for key in ("files_seen", "examples_total", "skipped_total", "bad_images"):
            report.set_int_custom_property(key, summary[key])
            examples.set_int_custom_property(key, summary[key])
        _check_summary(summary, layout, report.uri, on_bad_image, allow_missing)
        logging.info("ImageFolderExampleGen: %s", format_summary(summary))


def _write_json(path: str, obj) -> None:
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def _finish_report(layout: layout_lib.DatasetLayout, report_uri: str, counts_path: str,
                   skipped_path: str, on_bad_image: str) -> Dict[str, Any]:
    """Merges Beam's counts and skip list with the driver-side stray entries into summary.json."""
    examples: Dict[str, Dict[str, int]] = {s: {c: 0 for c in layout.class_names}
                                           for s in layout.splits}
    skipped: Dict[str, int] = {}
    files_seen = 0
    with tf.io.gfile.GFile(counts_path) as f:
        for line in f:
            (kind, split, key), n = json.loads(line)
            files_seen += n
            if kind == _EXAMPLE:
                examples[split][key] += n
            else:
                skipped[key] = skipped.get(key, 0) + n
    # Stray entries (found while listing folders) go to the same list as Beam's skips.
    with tf.io.gfile.GFile(os.path.join(report_uri, SKIPPED_FILE), "w") as out:
        with tf.io.gfile.GFile(skipped_path) as f:
            skipped_lines = sorted(f)
        for entry in layout.stray_entries:
            skipped_lines.append(json.dumps({"path": entry.rel_path, "split": None, "class": None,
                                             "reason": entry.reason, "detail": ""},
                                            sort_keys=True) + "\n")
            skipped[entry.reason] = skipped.get(entry.reason, 0) + 1
            files_seen += 1
        out.write("".join(skipped_lines))
    tf.io.gfile.remove(counts_path)
    tf.io.gfile.remove(skipped_path)

    summary = {
        "data_root": layout.root,
        "class_names": list(layout.class_names),
        "label_map": layout.label_map,
        "splits": list(layout.splits),
        "split_ratios": layout.split_ratios,
        "validation_fraction": layout.validation_fraction,
        "on_bad_image": on_bad_image,
        "files_seen": files_seen,
        "examples": examples,
        "examples_per_split": {s: sum(c.values()) for s, c in examples.items()},
        "examples_total": sum(sum(c.values()) for c in examples.values()),
        "skipped": dict(sorted(skipped.items())),
        "skipped_total": sum(skipped.values()),
        "bad_images": sum(n for r, n in skipped.items() if r in BAD_IMAGE_REASONS),
        "skipped_list": SKIPPED_FILE,
    }
    _write_json(os.path.join(report_uri, SUMMARY_FILE), summary)
    return summary


def read_skipped(report_uri: str) -> List[Dict[str, Any]]:
    with tf.io.gfile.GFile(os.path.join(report_uri, SKIPPED_FILE)) as f:
        return [json.loads(line) for line in f if line.strip()]


def read_summary(report_uri: str) -> Dict[str, Any]:
    with tf.io.gfile.GFile(os.path.join(report_uri, SUMMARY_FILE)) as f:
        return json.load(f)


def _check_summary(summary: Dict[str, Any], layout: layout_lib.DatasetLayout, report_uri: str,
                   on_bad_image: str, allow_missing_eval_classes: bool) -> None:
    if summary["files_seen"] != summary["examples_total"] + summary["skipped_total"]:
        raise RuntimeError(f"ingest accounting broken: {summary['files_seen']} files seen != "
                           f"{summary['examples_total']} examples + {summary['skipped_total']} "
                           "skipped")
    skipped_list = os.path.join(report_uri, SKIPPED_FILE)
    if summary["bad_images"] and on_bad_image == configs.ON_BAD_IMAGE_FAIL:
        bad = [s for s in read_skipped(report_uri) if s["reason"] in BAD_IMAGE_REASONS]
        shown = "\n".join(f"  {s['path']}: {s['reason']} {s['detail']}".rstrip() for s in bad[:10])
        more = f"\n  ... and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise BadInputError(
            f"{len(bad)} file(s) under {layout.root} have an image extension but cannot be used "
            f"as images:\n{shown}{more}\nFull list: {skipped_list}\nFix or remove them, or rerun "
            "with --on-bad-image skip to leave them out (they stay listed in the report).")
    for split, per_class in summary["examples"].items():
        empty = [c for c, n in per_class.items() if n == 0]
        if not empty:
            continue
        if split == configs.VALID_SPLIT:
            # Carved at random: a small class can miss it. Training only needs some examples.
            if len(empty) == len(per_class):
                raise BadInputError(
                    f"the {configs.VALID_SPLIT!r} split drew no examples: validation_fraction "
                    f"{layout.validation_fraction} of {summary['examples_per_split'].get(configs.TRAIN_SPLIT, 0)}"
                    " training images is too small; raise it, or set it to 0 to validate on "
                    f"the {configs.EVAL_SPLIT!r} split")
            logging.warning("class(es) %s drew no images into split %r", empty, split)
            continue
        if split == configs.TRAIN_SPLIT or not allow_missing_eval_classes:
            raise BadInputError(
                f"class(es) {empty} have no usable images in split {split!r} (empty folder, or "
                f"every file skipped; see {skipped_list}). Exclude them with --exclude-classes"
                + ("" if split == configs.TRAIN_SPLIT else
                   ", or accept this with --allow-missing-eval-classes"))
        logging.warning("class(es) %s have no images in split %r", empty, split)


def format_summary(summary: Dict[str, Any]) -> str:
    """A human-readable multi-line summary of an ingest report."""
    lines = [f"{summary['files_seen']} files seen under {summary['data_root']}: "
             f"{summary['examples_total']} examples, {summary['skipped_total']} skipped"]
    for split in summary["splits"]:
        per_class = summary["examples"][split]
        counts = ", ".join(f"{c}={n}" for c, n in per_class.items())
        lines.append(f"  {split}: {sum(per_class.values())} ({counts})")
    if summary["skipped"]:
        reasons = ", ".join(f"{r}={n}" for r, n in summary["skipped"].items())
        lines.append(f"  skipped: {reasons}")
    return "\n".join(lines)
