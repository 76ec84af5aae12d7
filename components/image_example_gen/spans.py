"""Spans of image folders and the fingerprint of what a run reads.

New labelled data arrives as spans, TFX's `{SPAN}` pattern one level below the data root:

  <data_root>/span-<N>/<split folder>/<class>/<image>

A data root without `span-<N>` folders is one dataset, as before (span 0). The fingerprint covers
every file below the folder that is read (relative path, size, modification time in ns), so that
adding, removing, renaming (= relabelling) or rewriting one image changes it: it is what makes
ExampleGen's cache key follow the data.
"""
from __future__ import annotations

import hashlib
import posixpath
import re
from typing import List, Optional

import tensorflow as tf

SPAN_FOLDER_PREFIX = "span-"
# TFX's span placeholder, in the one split pattern the driver resolves (the span folder level).
SPAN_PATTERN = SPAN_FOLDER_PREFIX + "{SPAN}/*"
_SPAN_FOLDER = re.compile(rf"^{re.escape(SPAN_FOLDER_PREFIX)}(\d+)/?$")


def span_folder(span: int) -> str:
    return f"{SPAN_FOLDER_PREFIX}{span}"


def span_root(root: str, span: int) -> str:
    return posixpath.join(root, span_folder(span))


def list_spans(root: str) -> List[int]:
    """The span numbers of the `span-<N>` folders directly under `root`, ascending."""
    if not tf.io.gfile.isdir(root):
        return []
    spans = []
    for name in tf.io.gfile.listdir(root):
        match = _SPAN_FOLDER.match(name)
        if match and tf.io.gfile.isdir(posixpath.join(root, name.rstrip("/"))):
            spans.append(int(match.group(1)))
    return sorted(spans)


def data_root_of(input_base: str, resolved_pattern: Optional[str]) -> str:
    """The folder a run reads: `input_base` itself, or its span folder once the driver resolved
    SPAN_PATTERN to e.g. `span-3/*`."""
    if not resolved_pattern or "{SPAN}" in resolved_pattern:
        return input_base
    return posixpath.join(input_base, resolved_pattern.split("/", 1)[0])


def fingerprint(root: str) -> str:
    """Digest of every file's path (relative to `root`), size and mtime (ns) below `root`."""
    digest = hashlib.sha256()
    files = total_bytes = 0
    for folder, _, names in sorted(tf.io.gfile.walk(root)):
        rel_folder = posixpath.relpath(folder, root)
        for name in sorted(names):
            stat = tf.io.gfile.stat(posixpath.join(folder, name))
            digest.update(f"{posixpath.join(rel_folder, name)}\0{stat.length}\0"
                          f"{stat.mtime_nsec}\n".encode())
            files += 1
            total_bytes += stat.length
    return f"files:{files},bytes:{total_bytes},sha256:{digest.hexdigest()}"
