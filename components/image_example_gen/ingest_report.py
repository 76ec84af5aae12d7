"""The ingest report of ImageFolderExampleGen: its writer and its readers.

`summary.json` holds the counts (files seen, examples per split and class, skips per reason) and
`skipped.jsonl` one line per file that did not become an example (path, split, class, reason,
detail). The executor's Beam pipeline counts the files it lists in the class folders, emits one
record per file (`example_record` or `skipped_record`) and counts the examples by `count_key`.
`finish` writes the report: files seen = the files listed in class folders + the stray entries
found while listing the root and split folders (a count of the listing, independent of what
became of each file), examples from Beam's counts, skips from the lines of the skip list.
`check` enforces `files seen = examples + skipped` (a file lost between listing and output
raises IngestAccountingError) and the bad-input policy.
"""
from __future__ import annotations

import json
import os
import posixpath
from typing import Any, Dict, FrozenSet, List, Optional

import tensorflow as tf
from absl import logging

from components import contract
from components.image_example_gen import image_checks
from components.image_example_gen import layout as layout_lib

SUMMARY_FILE = "summary.json"
SKIPPED_FILE = "skipped.jsonl"

# Kinds of per-file records of the Beam pipeline.
EXAMPLE = "example"
SKIPPED = "skipped"


class BadInputError(RuntimeError):
    """Input data cannot be ingested under the configured policy."""


class IngestAccountingError(RuntimeError):
    """The files listed do not add up to the examples and skips in the outputs: a file was lost
    (or counted twice) between listing and writing."""


def example_record(split: str, class_name: str, serialized_example: bytes):
    return (EXAMPLE, split, class_name, serialized_example)


def skipped_record(rel_path: str, split: Optional[str], class_name: Optional[str], reason: str,
                   detail: str = ""):
    return (SKIPPED, {"path": rel_path, "split": split, "class": class_name,
                      "reason": reason, "detail": detail})


def count_key(record) -> str:
    """What a per-file record is counted under: (example, split, class) or (skipped, split,
    reason)."""
    if record[0] == EXAMPLE:
        return json.dumps([EXAMPLE, record[1], record[2]])
    info = record[1]
    return json.dumps([SKIPPED, info["split"], info["reason"]])


def summary_path(report_uri: str) -> str:
    return os.path.join(report_uri, SUMMARY_FILE)


def skipped_path(report_uri: str) -> str:
    return os.path.join(report_uri, SKIPPED_FILE)


def write_json(path: str, obj) -> None:
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def finish(layout: layout_lib.DatasetLayout, report_uri: str, beam_counts: str,
           beam_skipped: str, beam_listed: str, on_bad_image: str,
           bad_reasons: FrozenSet[str] = image_checks.BAD_IMAGE_REASONS,
           data_csv: Optional[str] = None) -> Dict[str, Any]:
    """Writes summary.json and skipped.jsonl from Beam's outputs (the files `beam_counts`,
    `beam_skipped` and `beam_listed`, removed afterwards) and the layout's stray entries.

    `files_seen` counts the listing only: the files Beam listed in class folders
    (`beam_listed`, one number) plus the stray entries, or a CSV's data rows as its scan
    counted them; examples come from Beam's counts and skips from the lines of the skip list,
    so `check` compares independent numbers. `bad_images` counts the skips of `bad_reasons`.
    """
    examples: Dict[str, Dict[str, int]] = {s: {c: 0 for c in layout.class_names}
                                           for s in layout.splits}
    with tf.io.gfile.GFile(beam_counts) as f:
        for line in f:
            (kind, split, key), n = json.loads(line)
            if kind == EXAMPLE:
                examples[split][key] += n
    with tf.io.gfile.GFile(beam_listed) as f:
        listed = [int(line) for line in f if line.strip()]
    files_seen = sum(listed) + len(layout.stray_entries)
    # Stray entries (found while listing folders) go to the same list as Beam's skips.
    with tf.io.gfile.GFile(beam_skipped) as f:
        skipped_lines = sorted(line for line in f if line.strip())
    for entry in layout.stray_entries:
        _, info = skipped_record(entry.rel_path, None, None, entry.reason)
        skipped_lines.append(json.dumps(info, sort_keys=True) + "\n")
    with tf.io.gfile.GFile(skipped_path(report_uri), "w") as out:
        out.write("".join(skipped_lines))
    skipped: Dict[str, int] = {}
    for line in skipped_lines:
        reason = json.loads(line)["reason"]
        skipped[reason] = skipped.get(reason, 0) + 1
    for path in (beam_counts, beam_skipped, beam_listed):
        tf.io.gfile.remove(path)

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
        "bad_images": sum(n for r, n in skipped.items() if r in bad_reasons),
        "skipped_list": SKIPPED_FILE,
        "data_csv": data_csv,
    }
    write_json(summary_path(report_uri), summary)
    return summary


def read_skipped(report_uri: str) -> List[Dict[str, Any]]:
    with tf.io.gfile.GFile(skipped_path(report_uri)) as f:
        return [json.loads(line) for line in f if line.strip()]


def read_summary(report_uri: str) -> Dict[str, Any]:
    with tf.io.gfile.GFile(summary_path(report_uri)) as f:
        return json.load(f)


def check(summary: Dict[str, Any], layout: layout_lib.DatasetLayout, report_uri: str,
          on_bad_image: str, allow_missing_eval_classes: bool,
          bad_reasons: FrozenSet[str] = image_checks.BAD_IMAGE_REASONS) -> None:
    """Raises IngestAccountingError unless the files listed = examples + the skip list's lines
    (read back from `report_uri`), then BadInputError where the bad-input policy says so
    (skips of `bad_reasons`)."""
    skipped_list = skipped_path(report_uri)
    skipped_total = len(read_skipped(report_uri))
    accounted = summary["examples_total"] + skipped_total
    if summary["files_seen"] != accounted:
        listed = (f"rows in {summary['data_csv']}" if summary.get("data_csv")
                  else "files listed")
        raise IngestAccountingError(
            f"ingest accounting broken: {summary['files_seen']} {listed} under "
            f"{layout.root} != {accounted} accounted for ({summary['examples_total']} examples + "
            f"{skipped_total} skipped in {skipped_list})")
    if summary["bad_images"] and on_bad_image == contract.ON_BAD_IMAGE_FAIL:
        bad = [s for s in read_skipped(report_uri) if s["reason"] in bad_reasons]
        shown = "\n".join(f"  {s['path']}: {s['reason']} {s['detail']}".rstrip() for s in bad[:10])
        more = f"\n  ... and {len(bad) - 10} more" if len(bad) > 10 else ""
        what = (f"row(s) of {layout.root}/{summary['data_csv']} cannot be used as images"
                if summary.get("data_csv") else f"file(s) under {layout.root} have an image "
                "extension but cannot be used as images")
        raise BadInputError(
            f"{len(bad)} {what}:\n{shown}{more}\nFull list: {skipped_list}\nFix or remove them, "
            "or rerun with --on-bad-image skip to leave them out (they stay listed in the "
            "report).")
    for split, per_class in summary["examples"].items():
        empty = [c for c, n in per_class.items() if n == 0]
        if not empty:
            continue
        if split == contract.VALID_SPLIT:
            # Carved at random: a small class can miss it. Training only needs some examples.
            if len(empty) == len(per_class):
                raise BadInputError(
                    f"the {contract.VALID_SPLIT!r} split drew no examples: validation_fraction "
                    f"{layout.validation_fraction} of "
                    f"{summary['examples_per_split'].get(contract.TRAIN_SPLIT, 0)} training "
                    "images is too small; raise it, or set it to 0 to validate on the "
                    f"{contract.EVAL_SPLIT!r} split")
            logging.warning("class(es) %s drew no images into split %r", empty, split)
            continue
        if split == contract.TRAIN_SPLIT or not allow_missing_eval_classes:
            raise BadInputError(
                f"class(es) {empty} have no usable images in split {split!r} (empty folder, or "
                f"every file skipped; see {skipped_list}). Exclude them with --exclude-classes"
                + ("" if split == contract.TRAIN_SPLIT else
                   ", or accept this with --allow-missing-eval-classes"))
        logging.warning("class(es) %s have no images in split %r", empty, split)


def format_summary(summary: Dict[str, Any]) -> str:
    """A human-readable multi-line summary of an ingest report."""
    seen = (f"rows read from {posixpath.join(summary['data_root'], summary['data_csv'])}"
            if summary.get("data_csv") else f"files seen under {summary['data_root']}")
    lines = [f"{summary['files_seen']} {seen}: "
             f"{summary['examples_total']} examples, {summary['skipped_total']} skipped"]
    for split in summary["splits"]:
        per_class = summary["examples"][split]
        counts = ", ".join(f"{c}={n}" for c, n in per_class.items())
        lines.append(f"  {split}: {sum(per_class.values())} ({counts})")
    if summary["skipped"]:
        reasons = ", ".join(f"{r}={n}" for r, n in summary["skipped"].items())
        lines.append(f"  skipped: {reasons}")
    return "\n".join(lines)
