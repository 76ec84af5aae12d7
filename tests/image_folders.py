"""Small generated image folders for tests (nothing is read from the shared data set here)."""
from __future__ import annotations

import io
import os
from typing import Iterable, Optional

import numpy as np
from PIL import Image

from pipeline import demo_data


def encode(pixels: np.ndarray, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


def face(expression: str = "happy", seed: int = 0, size: int = 48) -> np.ndarray:
    return demo_data.draw_face(expression, np.random.default_rng(seed), size)


def write(path: str, data: bytes) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


def make_folders(root: str, classes: Iterable[str], per_class: int = 3,
                 splits: Iterable[str] = ("Training", "PublicTest"),
                 size: int = 48, fmt: str = "JPEG", ext: Optional[str] = None) -> str:
    """<root>/<split>/<class>/img_<i>.<ext> with valid grayscale faces."""
    ext = ext or {"JPEG": "jpg", "PNG": "png", "BMP": "bmp"}[fmt]
    for s_i, split in enumerate(splits):
        for c_i, cls in enumerate(classes):
            for i in range(per_class):
                pixels = face(cls, seed=1000 * s_i + 100 * c_i + i, size=size)
                write(os.path.join(root, split, cls, f"img_{i}.{ext}"), encode(pixels, fmt))
    return root
