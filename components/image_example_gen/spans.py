"""Spans of image folders and the fingerprint of what a run reads.

New labelled data arrives as spans, TFX's `{SPAN}` pattern one level below the data root:

  <data_root>/span-<N>/<split folder>/<class>/<image>

A data root without `span-<N>` folders is one dataset, as before (span 0). The fingerprint covers
every entry below the folder that is read: each file's relative path, size and modification time
in ns, so that adding, removing, renaming (= relabelling) or rewriting one image changes it: it
is what makes ExampleGen's cache key follow the data. Entries the executor skips without reading
them are in it too, with a marker of what they are (directory, dangling link and its target,
FIFO, socket, an entry gone between the walk and its stat), so that one appearing or going away
changes the fingerprint as it changes the ingest report, and none of them stops the driver.
"""
from __future__ import annotations

import errno
import hashlib
import os
import posixpath
import re
import stat
from typing import List, Optional, Tuple

import tensorflow as tf

from components.image_example_gen import image_checks

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


# Markers of the entries that are no file to read, in place of size and mtime.
_DIRECTORY = "dir"
_MISSING = "missing"
_LINK = "link"
_ERROR = "error"


def _entry_record(path: str) -> Tuple[str, Optional[int]]:
    """What the fingerprint records of one entry the walk listed as a file, and its size: size
    and mtime (ns) for a (link to a) regular file, else a marker of what it is and no size."""
    local = image_checks.local_path(path)
    if local is None:
        try:
            info = tf.io.gfile.stat(path)
        except tf.errors.NotFoundError:
            return _MISSING, None
        except tf.errors.OpError as e:
            return f"{_ERROR}\0{type(e).__name__}", None
        return f"{info.length}\0{info.mtime_nsec}", info.length
    # os.stat locally: tf.io.gfile's stat keeps whole seconds of the mtime and cannot tell a
    # FIFO or socket from an empty file.
    try:
        info = os.stat(local)
    except OSError as e:
        try:
            return f"{_LINK}\0{os.readlink(local)}", None     # dangling or looping link
        except FileNotFoundError:
            return _MISSING, None                               # gone since the walk
        except OSError:
            return f"{_ERROR}\0{errno.errorcode.get(e.errno, e.errno)}", None
    if stat.S_ISREG(info.st_mode):
        return f"{info.st_size}\0{info.st_mtime_ns}", info.st_size
    return f"{image_checks.file_kind(info.st_mode)}\0{info.st_mtime_ns}", None


def fingerprint(root: str) -> str:
    """Digest of every entry below `root`: path (relative to `root`) and, for files, size and
    mtime (ns); directories and entries that are no readable file with a marker instead."""
    digest = hashlib.sha256()
    files = total_bytes = 0
    for folder, dirs, names in sorted(tf.io.gfile.walk(root)):
        rel_folder = posixpath.relpath(folder, root)
        for name in sorted(d.rstrip("/") for d in dirs):
            digest.update(f"{posixpath.join(rel_folder, name)}\0{_DIRECTORY}\n".encode())
        for name in sorted(names):
            record, size = _entry_record(posixpath.join(folder, name))
            digest.update(f"{posixpath.join(rel_folder, name)}\0{record}\n".encode())
            files += 1
            total_bytes += size or 0
    return f"files:{files},bytes:{total_bytes},sha256:{digest.hexdigest()}"


def file_fingerprint(root: str, rel_path: str) -> str:
    """`fingerprint`'s digest for the one file `root/rel_path` a run reads (a CSV): its path,
    size and mtime (ns), so that other files beside it do not change it."""
    record, size = _entry_record(posixpath.join(root, rel_path))
    digest = hashlib.sha256(f"{rel_path}\0{record}\n".encode())
    return f"files:1,bytes:{size or 0},sha256:{digest.hexdigest()}"
