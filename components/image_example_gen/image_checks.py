"""Is a file an image that Transform and serving can decode? The checks ImageFolderExampleGen
applies to every file, and the reasons it records when one fails."""
from __future__ import annotations

from typing import Optional, Tuple

import tensorflow as tf

from components import contract

# Files with an image extension that cannot be used: subject to the on_bad_image policy.
REASON_EMPTY = "empty_file"
REASON_NOT_AN_IMAGE = "not_an_image"
REASON_UNSUPPORTED_FORMAT = "unsupported_format"
REASON_CORRUPT = "corrupt_image"
REASON_UNREADABLE = "unreadable"
BAD_IMAGE_REASONS = frozenset({REASON_EMPTY, REASON_NOT_AN_IMAGE, REASON_UNSUPPORTED_FORMAT,
                               REASON_CORRUPT, REASON_UNREADABLE})
# Entries that are not images at all: always skipped and listed, never an error.
REASON_CLASS_NOT_INCLUDED = "class_not_included"
REASON_NOT_IMAGE_FILE = "not_an_image_file"
REASON_DIRECTORY = "directory"


class BadImage(Exception):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


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
