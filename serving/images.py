"""Checks of encoded image bytes before they reach the model, so an error names the bad image.

The exported model decodes JPEG, PNG, BMP and GIF (what ExampleGen accepts). A batch with one
bad image fails as a whole, with the index of every bad image in the message: answering the
others would shift them against the client's list, dropping it silently would lose it.
"""
from __future__ import annotations

import re
from typing import List, Optional, Sequence

import tensorflow as tf

from components import contract
from serving import errors


def sniff_format(data: bytes) -> Optional[str]:
    """The decodable format `data` starts like, or None."""
    return contract.sniff_image_format(data)


def _describe_unsupported(data: bytes) -> str:
    return (contract.sniff_unsupported_format(data)
            or f"unknown format (starts with {data[:8]!r})")


def check_batch(images: Sequence[bytes]) -> None:
    """Raises INVALID_ARGUMENT naming every empty or non-image entry of `images`."""
    if len(images) == 0:
        raise errors.invalid("empty batch: the request has no image")
    problems: List[str] = []
    for i, data in enumerate(images):
        if not data:
            problems.append(f"image {i}: empty bytes")
        elif sniff_format(data) is None:
            problems.append(f"image {i}: unsupported format, {_describe_unsupported(data)}; "
                            f"accepted: {', '.join(contract.DECODABLE_FORMATS)}")
    if problems:
        raise errors.invalid(_join(problems, len(images)))


def tf_error_text(error: Exception) -> str:
    """TensorFlow's message without its graph-node prefix and op suffix."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text)
    return re.sub(r"\s*\[Op:\w+\]\s*$", "", text).strip()


def find_undecodable(images: Sequence[bytes]) -> List[str]:
    """One message per image TensorFlow cannot decode (slow path: after a batch failed)."""
    problems = []
    for i, data in enumerate(images):
        try:
            tf.io.decode_image(data, expand_animations=False)
        except (tf.errors.InvalidArgumentError, ValueError) as e:
            problems.append(f"image {i}: cannot be decoded as {sniff_format(data)} "
                            f"({tf_error_text(e)})")
    return problems


def undecodable_error(images: Sequence[bytes], model_error: Exception) -> errors.ServingError:
    problems = find_undecodable(images)
    if not problems:  # every image decodes alone: report what the model said
        return errors.invalid(f"the model rejected the batch: {tf_error_text(model_error)}")
    return errors.invalid(_join(problems, len(images)))


def _join(problems: List[str], batch_size: int) -> str:
    shown = "; ".join(problems[:10])
    more = f"; and {len(problems) - 10} more" if len(problems) > 10 else ""
    return f"{len(problems)} of {batch_size} images rejected: {shown}{more}"
