"""Photos made of FER2013 faces, for the face-finding tests (test helpers)."""
import tarfile

import cv2
import numpy as np
import pytest

from tests import fer2013


def fer_faces(count: int, expression: str = "happy"):
    """The first `count` PublicTest images of one class, decoded (48x48 gray)."""
    if not fer2013.available():
        pytest.skip("FER2013 archives not found")
    found = []
    with tarfile.open(f"{fer2013.FER2013_DIR}/PublicTest.tar.gz") as tar:
        for member in tar:
            if member.isfile() and f"/{expression}/" in member.name:
                data = np.frombuffer(tar.extractfile(member).read(), np.uint8)
                found.append(cv2.imdecode(data, cv2.IMREAD_GRAYSCALE))
                if len(found) == count:
                    break
    return found


def photo_with(face_crops, positions, side=160, shape=(360, 640)):
    canvas = np.full(shape, 200, np.uint8)
    for crop, (x, y) in zip(face_crops, positions, strict=True):
        canvas[y:y + side, x:x + side] = cv2.resize(crop, (side, side))
    return cv2.imencode(".jpg", canvas)[1].tobytes()
