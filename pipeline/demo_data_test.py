"""Demo data: deterministic, in FER2013's layout, and different per class."""
import hashlib
import os

import numpy as np
from PIL import Image

from components import contract
from pipeline import demo_data


def digest(root):
    h = hashlib.sha256()
    for dirpath, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            path = os.path.join(dirpath, name)
            h.update(os.path.relpath(path, root).encode())
            with open(path, "rb") as f:
                h.update(f.read())
    return h.hexdigest()


def test_layout_counts_and_format(tmp_path):
    written = demo_data.write_demo_dataset(str(tmp_path), {"train": 3, "eval": 2})
    assert written == {"train": 18, "eval": 12}
    assert sorted(os.listdir(tmp_path)) == ["PublicTest", "Training"]
    assert sorted(os.listdir(tmp_path / "Training")) == sorted(contract.DEFAULT_CLASSES)
    with Image.open(tmp_path / "Training" / "happy" / "demo_0000.jpg") as im:
        assert (im.format, im.mode, im.size) == ("JPEG", "L", (48, 48))


def test_deterministic(tmp_path):
    demo_data.write_demo_dataset(str(tmp_path / "a"), {"train": 2, "eval": 1})
    demo_data.write_demo_dataset(str(tmp_path / "b"), {"train": 2, "eval": 1})
    assert digest(tmp_path / "a") == digest(tmp_path / "b")


def test_rewriting_leaves_identical_files_untouched_so_the_cache_holds(tmp_path):
    from components.image_example_gen import spans

    demo_data.write_demo_dataset(str(tmp_path), {"train": 2, "eval": 1})
    before = spans.fingerprint(str(tmp_path))
    demo_data.write_demo_dataset(str(tmp_path), {"train": 2, "eval": 1})
    assert spans.fingerprint(str(tmp_path)) == before
    demo_data.write_demo_dataset(str(tmp_path), {"train": 2, "eval": 1}, seed=1)
    assert spans.fingerprint(str(tmp_path)) != before


def test_adding_a_class_leaves_the_others_unchanged(tmp_path):
    demo_data.write_demo_dataset(str(tmp_path / "six"), {"train": 2})
    demo_data.write_demo_dataset(str(tmp_path / "seven"), {"train": 2},
                                 classes=contract.FER2013_CLASSES)
    assert digest(tmp_path / "six" / "Training" / "sad") == \
        digest(tmp_path / "seven" / "Training" / "sad")


def test_classes_are_learnable_by_a_linear_model():
    """Ridge regression on standardized pixels, demo-sized training set: far above chance (1/6).

    Measured 0.88 with this seed; a CNN should do better. Guards against a drawing change that
    makes the expressions indistinguishable.
    """
    rng = np.random.default_rng(0)
    classes = contract.DEFAULT_CLASSES

    def sample(n):
        xs, ys = [], []
        for label, c in enumerate(classes):
            for _ in range(n):
                x = demo_data.draw_face(c, rng).astype(float)
                xs.append(((x - x.mean()) / x.std()).ravel())
                ys.append(label)
        return np.stack(xs), np.array(ys)

    x_train, y_train = sample(60)
    x_test, y_test = sample(20)
    w = np.linalg.solve(x_train.T @ x_train + 10 * np.eye(x_train.shape[1]),
                        x_train.T @ np.eye(len(classes))[y_train])
    accuracy = np.mean(np.argmax(x_test @ w, axis=1) == y_test)
    assert accuracy > 0.6
