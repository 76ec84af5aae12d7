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
from serving import errors, image_headers
from serving.limits import DEFAULT_LIMITS, Limits, flag_of


def sniff_format(data: bytes) -> Optional[str]:
    """The decodable format `data` starts like, or None."""
    return contract.sniff_image_format(data)


def _describe_unsupported(data: bytes) -> str:
    return (contract.sniff_unsupported_format(data)
            or f"unknown format (starts with {data[:8]!r})")


def check_batch(images: Sequence[bytes], limits: Limits = DEFAULT_LIMITS) -> None:
    """Raises INVALID_ARGUMENT naming every empty, non-image or oversized entry of `images`,
    or a batch that would decode to more than the request's limit. Reads headers only."""
    if len(images) == 0:
        raise errors.invalid("empty batch: the request has no image")
    problems: List[str] = []
    decoded_bytes = 0
    for i, data in enumerate(images):
        if not isinstance(data, bytes) or not data:
            problems.append(f"image {i}: empty bytes" if not data
                            else f"image {i}: not bytes but {type(data).__name__}")
            continue
        fmt = sniff_format(data)
        if fmt is None:
            problems.append(f"image {i}: unsupported format, {_describe_unsupported(data)}; "
                            f"accepted: {', '.join(contract.DECODABLE_FORMATS)}")
            continue
        try:
            header = image_headers.read_header(data, fmt)
        except image_headers.MalformedHeader as e:
            problems.append(f"image {i}: cannot be decoded as {fmt} ({e})")
            continue
        if header.pixels > limits.max_pixels_per_image:
            problems.append(f"image {i}: {header.width}x{header.height} {fmt} is "
                            f"{header.pixels} pixels, over the limit of "
                            f"{limits.max_pixels_per_image} "
                            f"({flag_of('max_pixels_per_image')})")
        decoded_bytes += header.decoded_bytes
    if problems:
        raise errors.invalid(_join(problems, len(images)))
    if decoded_bytes > limits.max_decoded_bytes_per_request:
        raise errors.invalid(
            f"the {len(images)} images would decode to {decoded_bytes} bytes, over the limit "
            f"of {limits.max_decoded_bytes_per_request} per request "
            f"({flag_of('max_decoded_bytes_per_request')}); send fewer or smaller images")


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
    """The INVALID_ARGUMENT to answer when the model failed on `images` with `model_error`:
    naming each image TensorFlow cannot decode alone, or, when all decode, the model's message
    (not raised: the caller raises it)."""
    problems = find_undecodable(images)
    if not problems:  # every image decodes alone: report what the model said
        return errors.invalid(f"the model rejected the batch: {tf_error_text(model_error)}")
    return errors.invalid(_join(problems, len(images)))


def _join(problems: List[str], batch_size: int) -> str:
    shown = "; ".join(problems[:10])
    more = f"; and {len(problems) - 10} more" if len(problems) > 10 else ""
    return f"{len(problems)} of {batch_size} images rejected: {shown}{more}"
