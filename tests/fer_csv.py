"""FER2013's CSV form written from pixels or from image folders (test and bench helper)."""
from __future__ import annotations

import io
import os
from typing import Iterable, Iterator, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from components.image_example_gen import csv_source

HEADER = "emotion,pixels,Usage"


def pixel_text(pixels: np.ndarray) -> str:
    """48x48 uint8 gray pixels as the CSV's space-separated values."""
    return " ".join(map(str, np.asarray(pixels, np.uint8).reshape(-1).tolist()))


def row_line(emotion, pixels, usage: str) -> str:
    """One CSV line: `pixels` an array (written as values) or the text of the field as is."""
    text = pixels if isinstance(pixels, str) else pixel_text(pixels)
    return f"{emotion},{text},{usage}"


def write_csv(path: str, lines: Iterable[str], header: str = HEADER,
              newline: str = "\n") -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(header + newline)
        for line in lines:
            f.write(line + newline)
    return path


def gray_pixels(path: str) -> np.ndarray:
    """An image file's pixels as 8-bit gray (FER2013's own files are gray already)."""
    with open(path, "rb") as f:
        return np.asarray(Image.open(io.BytesIO(f.read())).convert("L"))


def folder_rows(root: str, split_folders: Sequence[str] = ("Training", "PublicTest"),
                classes: Optional[Sequence[str]] = None
                ) -> Iterator[Tuple[int, np.ndarray, str]]:
    """(emotion id, pixels, Usage) of every image under `root/<split folder>/<class>/`, sorted
    by split folder, class, file name; classes outside FER2013's are left out."""
    for split in split_folders:
        for cls in sorted(os.listdir(os.path.join(root, split))):
            if cls not in csv_source.FER2013_EMOTIONS or (classes and cls not in classes):
                continue
            folder = os.path.join(root, split, cls)
            for name in sorted(os.listdir(folder)):
                yield (csv_source.FER2013_EMOTIONS.index(cls), gray_pixels(
                    os.path.join(folder, name)), split)
