"""Width, height, channels and frame count of an encoded image, read from its header without
decoding it: what a decoder would allocate, known before it does (decompression bombs).

Covers the formats the exported model decodes (contract.DECODABLE_FORMATS). A header that
cannot be read raises MalformedHeader; the decoder would reject the image anyway.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass


class MalformedHeader(ValueError):
    """An image header that cannot be read (truncated, or not the format it starts like)."""


@dataclass(frozen=True)
class ImageHeader:
    """What decoding the image would produce: `width` x `height` pixels (GIF: the logical
    screen's, or a larger frame's), `channels` per decoded pixel (where the header leaves it
    open, the most TensorFlow may give), `frames` images (GIF: each decodes to a full
    screen)."""

    width: int
    height: int
    channels: int
    frames: int = 1

    @property
    def pixels(self) -> int:
        """Width x height of one frame."""
        return self.width * self.height

    @property
    def decoded_bytes(self) -> int:
        """Bytes of the decoded image at one byte per channel, every frame included."""
        return self.width * self.height * self.channels * self.frames


_PNG_CHANNELS = {0: 1, 2: 3, 3: 4, 4: 2, 6: 4}  # colour type -> decoded channels (palette: RGBA)
# JPEG start-of-frame markers (C4 DHT, C8 JPG and CC DAC share the range but are not frames).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_NO_LENGTH = frozenset(range(0xD0, 0xDA)) | {0x01}  # RSTn, SOI, EOI, TEM


def _png(data: bytes) -> ImageHeader:
    if len(data) < 26 or data[12:16] != b"IHDR":
        raise MalformedHeader("PNG without an IHDR chunk")
    width, height = struct.unpack(">II", data[16:24])
    return ImageHeader(width, height, _PNG_CHANNELS.get(data[25], 4))


def _jpeg(data: bytes) -> ImageHeader:
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise MalformedHeader(f"JPEG marker expected at byte {i}")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _JPEG_NO_LENGTH:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if marker in _JPEG_SOF:
            if i + 10 > len(data):
                break
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return ImageHeader(width, height, max(1, data[i + 9]))
        if marker == 0xDA:  # start of scan before any frame header
            break
        i += 2 + length
    raise MalformedHeader("JPEG without a frame header")


def _gif(data: bytes) -> ImageHeader:
    if len(data) < 13:
        raise MalformedHeader("GIF shorter than its screen descriptor")
    width, height = struct.unpack("<HH", data[6:10])
    flags = data[10]
    i = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    frames = 0

    def skip_sub_blocks(j: int) -> int:
        while j < len(data) and data[j]:
            j += 1 + data[j]
        return j + 1

    # Every frame decodes to a full screen (TensorFlow's decode_gif), so count them all.
    while i < len(data):
        block = data[i]
        if block == 0x3B:  # trailer
            break
        if block == 0x21:  # extension: label, then sub-blocks
            i = skip_sub_blocks(i + 2)
        elif block == 0x2C:  # image descriptor
            if i + 10 > len(data):
                break
            frame_w, frame_h = struct.unpack("<HH", data[i + 5:i + 9])
            width, height = max(width, frame_w), max(height, frame_h)
            local = data[i + 9]
            i += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0)
            i = skip_sub_blocks(i + 1)  # LZW minimum code size, then the data sub-blocks
            frames += 1
        else:
            break
    return ImageHeader(width, height, 3, max(frames, 1))


def _bmp(data: bytes) -> ImageHeader:
    if len(data) < 30:
        raise MalformedHeader("BMP shorter than its info header")
    width, height = struct.unpack("<ii", data[18:26])
    (bits,) = struct.unpack("<H", data[28:30])
    return ImageHeader(abs(width), abs(height), min(max(bits // 8, 1), 4))


_READERS = {"PNG": _png, "JPEG": _jpeg, "GIF": _gif, "BMP": _bmp}


def read_header(data: bytes, fmt: str) -> ImageHeader:
    """The header of `data`, which starts like `fmt` (contract.sniff_image_format)."""
    return _READERS[fmt](data)
