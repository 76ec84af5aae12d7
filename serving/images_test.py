import io

import grpc
import numpy as np
import pytest
from PIL import Image

from serving import errors, images


def _encoded(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8), 128, np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP", "GIF"])
def test_decodable_formats_are_recognised(fmt):
    assert images.sniff_format(_encoded(fmt)) == fmt
    images.check_batch([_encoded(fmt)])


def test_every_bad_image_is_named_with_its_index():
    good = _encoded("PNG")
    with pytest.raises(errors.ServingError) as e:
        images.check_batch([good, b"", good, _encoded("WEBP"), b"hello"])
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    message = e.value.message
    assert message.startswith("3 of 5 images rejected")
    assert "image 1: empty bytes" in message
    assert "image 3: unsupported format, WEBP" in message
    assert "image 4: unsupported format, unknown format" in message
    assert "image 0" not in message and "image 2" not in message


def test_empty_batch_is_invalid():
    with pytest.raises(errors.ServingError, match="empty batch"):
        images.check_batch([])


def test_truncated_image_is_found_by_the_slow_path_with_a_clean_message():
    good, truncated = _encoded("JPEG"), _encoded("JPEG")[:40]
    problems = images.find_undecodable([good, truncated])
    assert len(problems) == 1 and problems[0].startswith("image 1: cannot be decoded as JPEG")
    assert "{{" not in problems[0] and "[Op:" not in problems[0]
    error = images.undecodable_error([good, truncated], RuntimeError("batch failed"))
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT and "image 1" in error.message
