
import cv2
import numpy as np
import pytest

from serving import faces
from tests.face_photos import fer_faces, photo_with


def test_square_box_grows_by_the_margin_and_stays_inside_the_photo():
    assert faces.square_box(100, 100, 50, 50, 0.1, 640, 480) == (95, 95, 60, 60)
    assert faces.square_box(0, 0, 50, 40, 0.2, 640, 480) == (0, 0, 70, 70)  # clipped at 0
    left, top, w, h = faces.square_box(600, 440, 40, 40, 0.5, 640, 480)
    assert left + w <= 640 and top + h <= 480 and w == h == 80


def test_a_photo_without_faces_has_none_and_junk_is_an_error():
    ok, blank = cv2.imencode(".png", np.full((240, 320), 180, np.uint8))
    assert faces.find_faces(blank.tobytes()) == []
    with pytest.raises(ValueError, match="not an image OpenCV can decode"):
        faces.find_faces(b"not an image")


def test_faces_pasted_into_a_photo_are_found_where_they_are():
    crops = fer_faces(20)
    # FER2013 crops are tight, with little of the head around the face, which the frontal
    # cascade relies on: it finds 8 of these 20. Every face it finds must be where it is.
    detected = []
    for crop in crops:
        found = faces.find_faces(photo_with([crop], [(240, 100)]))
        for face in found:
            x, y, w, h = face.box
            cx, cy = x + w / 2, y + h / 2
            assert 240 <= cx <= 400 and 100 <= cy <= 260, face.box  # centre inside the paste
            assert cv2.imdecode(np.frombuffer(face.png, np.uint8), 0).shape == (h, w)
        detected.append(bool(found))
    assert sum(detected) >= 5

    two = [c for c, d in zip(crops, detected, strict=True) if d][:2]
    found = faces.find_faces(photo_with(two, [(40, 100), (420, 100)]))
    assert len(found) == 2
    assert sorted(f.box[0] < 320 for f in found) == [False, True]  # one on each side
