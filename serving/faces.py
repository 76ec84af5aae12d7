"""Faces in a full photo, with OpenCV's bundled Haar cascade (installed with the wheel: nothing is
downloaded). Each face is cropped square with a margin, converted to gray and encoded as PNG,
ready for the model, which was trained on FER2013's gray face crops.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

CASCADE_FILE = "haarcascade_frontalface_default.xml"
DEFAULT_MIN_FACE_PX = 32
DEFAULT_MARGIN = 0.15  # of the face box, on each side: FER2013 crops include some forehead and chin


@dataclass
class Face:
    """One face found in a photo: its square crop as gray PNG bytes (`png`), and where that
    crop is in the photo (`box`)."""

    box: Tuple[int, int, int, int]  # x, y, width, height in the photo, margin included
    png: bytes


@functools.lru_cache(maxsize=1)
def _cascade():
    import cv2

    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE_FILE)
    if cascade.empty():
        raise RuntimeError(f"OpenCV's {CASCADE_FILE} could not be loaded from "
                           f"{cv2.data.haarcascades}")
    return cascade


def decode_gray(photo: bytes) -> np.ndarray:
    """`photo` (encoded bytes of any format OpenCV reads) as a 2-D uint8 gray array; raises
    ValueError when OpenCV cannot decode it."""
    import cv2

    image = cv2.imdecode(np.frombuffer(photo, np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ValueError("not an image OpenCV can decode")
    return image


def square_box(x: int, y: int, w: int, h: int, margin: float, width: int, height: int
               ) -> Tuple[int, int, int, int]:
    """A square around the detection, grown by `margin` per side, clipped to the photo."""
    side = int(round(max(w, h) * (1 + 2 * margin)))
    cx, cy = x + w / 2, y + h / 2
    left = int(round(max(0, min(cx - side / 2, width - side))))
    top = int(round(max(0, min(cy - side / 2, height - side))))
    return left, top, min(side, width - left), min(side, height - top)


def find_faces(photo: bytes, min_face_px: int = DEFAULT_MIN_FACE_PX,
               margin: float = DEFAULT_MARGIN) -> List[Face]:
    """Faces in `photo` (encoded bytes), largest first; [] when none is found. `min_face_px`
    is the smallest face side to detect, in pixels; `margin` the share of the detection added
    on each side before the crop is squared (square_box). Raises ValueError when the photo
    cannot be decoded."""
    import cv2

    gray = decode_gray(photo)
    detections = _cascade().detectMultiScale(
        cv2.equalizeHist(gray), scaleFactor=1.1, minNeighbors=5,
        minSize=(min_face_px, min_face_px))
    faces = []
    for x, y, w, h in sorted((tuple(int(v) for v in d) for d in detections),
                             key=lambda d: d[2] * d[3], reverse=True):
        left, top, side_w, side_h = square_box(x, y, w, h, margin, gray.shape[1], gray.shape[0])
        ok, png = cv2.imencode(".png", gray[top:top + side_h, left:left + side_w])
        if ok:
            faces.append(Face((left, top, side_w, side_h), png.tobytes()))
    return faces
