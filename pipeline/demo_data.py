"""A deterministic, learnable demo dataset: cartoon faces, one expression per class folder.

Written in FER2013's layout (`Training/<class>/*.jpg`, `PublicTest/<class>/*.jpg`, 48x48
grayscale JPEG) so the demo exercises the same code path as the real data. Each expression
differs in brows, eyes and mouth; position, scale, contrast and noise vary per image, so a model
has to learn the shapes rather than memorise pixels.
"""
from __future__ import annotations

import io
import os
import zlib
from typing import Dict, Mapping, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw

from components import contract
from pipeline import configs

_SPLIT_FOLDER = {contract.TRAIN_SPLIT: "Training", contract.EVAL_SPLIT: "PublicTest",
                 contract.TEST_SPLIT: "PrivateTest"}
_SUPERSAMPLE = 4  # draw large, then downscale: smooth edges like a real photo


def draw_face(expression: str, rng: np.random.Generator, size: int = 48) -> np.ndarray:
    """A `size`x`size` uint8 grayscale cartoon face showing `expression`."""
    s = size * _SUPERSAMPLE
    bg, skin, ink = int(rng.integers(10, 80)), int(rng.integers(140, 220)), int(rng.integers(0, 50))
    img = Image.new("L", (s, s), bg)
    d = ImageDraw.Draw(img)
    scale = rng.uniform(0.85, 1.05) * s
    cx, cy = s / 2 + rng.uniform(-0.06, 0.06) * s, s / 2 + rng.uniform(-0.06, 0.06) * s

    def p(x: float, y: float):  # face coordinates in [-0.5, 0.5] -> pixels
        return (cx + x * scale, cy + y * scale)

    def box(x0, y0, x1, y1):
        (a, b), (c, e) = p(x0, y0), p(x1, y1)
        return [min(a, c), min(b, e), max(a, c), max(b, e)]

    w = max(1, int(0.035 * scale))
    d.ellipse(box(-0.40, -0.46, 0.40, 0.48), fill=skin)

    eye_h = {"surprise": 0.09, "fear": 0.085}.get(expression, 0.045)
    for side in (-1, 1):
        ex = side * 0.16
        d.ellipse(box(ex - 0.07, -0.10 - eye_h, ex + 0.07, -0.10 + eye_h), fill=ink)
        # Brows: (outer y, inner y); y grows downwards.
        outer, inner = {
            "angry": (-0.25, -0.16),
            "sad": (-0.20, -0.29),
            "fear": (-0.27, -0.32),
            "surprise": (-0.34, -0.34),
        }.get(expression, (-0.24, -0.24))
        d.line([p(side * 0.28, outer), p(side * 0.06, inner)], fill=ink, width=w)

    if expression == "happy":
        d.arc(box(-0.22, 0.02, 0.22, 0.30), start=20, end=160, fill=ink, width=w)
    elif expression == "sad":
        d.arc(box(-0.20, 0.20, 0.20, 0.42), start=200, end=340, fill=ink, width=w)
    elif expression == "surprise":
        d.ellipse(box(-0.09, 0.12, 0.09, 0.34), fill=ink)
    elif expression == "fear":
        d.rectangle(box(-0.18, 0.18, 0.18, 0.26), fill=ink)
    elif expression == "angry":
        d.line([p(-0.16, 0.26), p(0.16, 0.22)], fill=ink, width=w * 2)
    elif expression == "disgust":
        d.line([p(-0.18, 0.22), p(0.0, 0.28), p(0.18, 0.18)], fill=ink, width=w)
    else:  # neutral
        d.line([p(-0.15, 0.24), p(0.15, 0.24)], fill=ink, width=w)

    arr = np.asarray(img.resize((size, size), Image.BILINEAR), dtype=np.float32)
    arr = arr * rng.uniform(0.8, 1.2) + rng.normal(0, 8, arr.shape)
    return np.clip(arr, 0, 255).astype(np.uint8)


def encode_jpeg(pixels: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _write_if_changed(path: str, data: bytes) -> None:
    """Leaves an identical file untouched: its mtime is part of ExampleGen's input
    fingerprint, so a second `make run` reuses the first one's results."""
    if os.path.exists(path):
        with open(path, "rb") as f:
            if f.read() == data:
                return
    with open(path, "wb") as f:
        f.write(data)


def write_demo_dataset(
    root: str,
    images_per_split: Optional[Mapping[str, int]] = None,
    classes: Sequence[str] = contract.DEFAULT_CLASSES,
    seed: int = configs.DEMO_SEED,
    size: int = 48,
) -> Dict[str, int]:
    """Writes `<root>/<Training|PublicTest>/<class>/demo_<n>.jpg`; returns images per split.

    Deterministic: the same arguments give byte-identical files (existing identical files are
    left as they are).
    """
    images_per_split = dict(images_per_split or configs.DEMO_IMAGES_PER_CLASS)
    written = {}
    for split, per_class in sorted(images_per_split.items()):
        folder = _SPLIT_FOLDER[split]
        for name in sorted(classes):
            # One generator per (split, class): adding a class does not change the others.
            rng = np.random.default_rng(
                [seed, zlib.crc32(name.encode()), zlib.crc32(split.encode())])
            class_dir = os.path.join(root, folder, name)
            os.makedirs(class_dir, exist_ok=True)
            for i in range(per_class):
                _write_if_changed(os.path.join(class_dir, f"demo_{i:04d}.jpg"),
                                  encode_jpeg(draw_face(name, rng, size)))
        written[split] = per_class * len(classes)
    return written
