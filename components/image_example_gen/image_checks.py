"""Is a file an image that Transform and serving can decode? The checks ImageFolderExampleGen
applies to every file, and the reasons it records when one fails.

Every entry listed in a class folder becomes an example or one skip with a reason. Reasons are
of two kinds:

* Bad images (BAD_IMAGE_REASONS), subject to the on_bad_image policy: an entry with an image
  extension that was meant to be an image and cannot be used as one. Besides bad content this
  is a file that cannot be read (permission denied, I/O error), a symlink whose target is
  missing (`dangling_link`: the image it named is gone) and an entry that was listed and then
  gone before it was read (`vanished`: the data changed under the run). Failing on them by
  default keeps an image that went missing from going unnoticed.
* Entries that are no image file at all, always skipped and listed, never an error: hidden
  entries, classes left out, names without an image extension, directories, and FIFOs, sockets
  and devices (`not_a_regular_file`). These hold no image data, whatever their name, and a
  FIFO is never opened: reading one blocks until something writes to it.

Local paths are checked with os.stat (tf.io.gfile cannot tell a FIFO or socket from a file);
other file systems (gs://, ...) go through tf.io.gfile only.
"""
from __future__ import annotations

import errno
import os
import stat
from typing import Optional, Tuple

import tensorflow as tf

from components import contract

# Files with an image extension that cannot be used: subject to the on_bad_image policy.
REASON_EMPTY = "empty_file"
REASON_NOT_AN_IMAGE = "not_an_image"
REASON_UNSUPPORTED_FORMAT = "unsupported_format"
REASON_CORRUPT = "corrupt_image"
REASON_UNREADABLE = "unreadable"
REASON_DANGLING_LINK = "dangling_link"
REASON_VANISHED = "vanished"
BAD_IMAGE_REASONS = frozenset({REASON_EMPTY, REASON_NOT_AN_IMAGE, REASON_UNSUPPORTED_FORMAT,
                               REASON_CORRUPT, REASON_UNREADABLE, REASON_DANGLING_LINK,
                               REASON_VANISHED})
# Entries that are not images at all: always skipped and listed, never an error.
REASON_CLASS_NOT_INCLUDED = "class_not_included"
REASON_NOT_IMAGE_FILE = "not_an_image_file"
REASON_DIRECTORY = "directory"
REASON_NOT_A_REGULAR_FILE = "not_a_regular_file"

VANISHED_DETAIL = "listed, then gone before it was read"
_LOCAL_SCHEME = "file://"
# A link whose target cannot be reached fails to stat with one of these.
_LINK_TARGET_ERRNOS = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)


class BadImage(Exception):
    """Why an entry does not become an example: `reason` (a REASON_* above) and a detail."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def local_path(path: str) -> Optional[str]:
    """The OS path of `path` if it is on the local file system (no scheme, or file://), where
    os.* applies; None for any other file system tf.io.gfile reads."""
    if path.startswith(_LOCAL_SCHEME):
        return path[len(_LOCAL_SCHEME):]
    return None if "://" in path else path


def file_kind(mode: int) -> str:
    """What a stat mode that is not a regular file or directory is, in words."""
    for test, kind in ((stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device")):
        if test(mode):
            return kind
    return f"special file (mode {stat.filemode(mode)})"


def error_detail(error: Exception) -> str:
    """An error as a skip's detail: its message, cut to keep the skip list one short line each."""
    return str(error)[:200]


def check_local_file(path: str) -> None:
    """Raises BadImage unless the local `path` is a regular file or a link to one.

    Uses os.stat, so that nothing is opened to find out: opening a FIFO blocks.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        if os.path.islink(path) and e.errno in _LINK_TARGET_ERRNOS:
            try:
                target = repr(os.readlink(path))
            except OSError:
                target = "its target"
            raise BadImage(REASON_DANGLING_LINK, f"symlink to {target}: "
                           f"{os.strerror(e.errno).lower()}") from None
        if isinstance(e, FileNotFoundError):
            raise BadImage(REASON_VANISHED, VANISHED_DETAIL) from None
        raise BadImage(REASON_UNREADABLE, error_detail(e)) from None
    if stat.S_ISDIR(mode):
        raise BadImage(REASON_DIRECTORY)
    if not stat.S_ISREG(mode):
        raise BadImage(REASON_NOT_A_REGULAR_FILE, file_kind(mode))


def sniff_format(data: bytes) -> Optional[str]:
    """Image format from the file's leading bytes (not its extension), or None."""
    return contract.sniff_image_format(data)


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
        unsupported = contract.sniff_unsupported_format(data)
        if unsupported:
            raise BadImage(REASON_UNSUPPORTED_FORMAT,
                           f"{unsupported}; supported: {', '.join(contract.DECODABLE_FORMATS)}")
        raise BadImage(REASON_NOT_AN_IMAGE,
                       f"content is not {'/'.join(contract.DECODABLE_FORMATS)} "
                       f"(starts with {data[:8]!r})")
    try:
        image = tf.io.decode_image(data, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as e:
        raise BadImage(REASON_CORRUPT, f"{fmt}: {e.message.splitlines()[0][:200]}") from None
    height, width, channels = (int(d) for d in image.shape)
    if height == 0 or width == 0:
        raise BadImage(REASON_CORRUPT, f"{fmt}: decoded to {height}x{width}")
    return fmt, height, width, channels
