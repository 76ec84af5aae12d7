"""Fixtures of the serving tests: tiny exported models (tests/tiny_models.py), published the way
the Pusher publishes, and a running fer-serve over them."""
import os

import pytest

from tests import image_folders, tiny_models


@pytest.fixture(scope="session")
def tiny_exports(tmp_path_factory):
    """Two exported tiny models with different weights (exported once per test session)."""
    root = tmp_path_factory.mktemp("tiny_exports")
    return [tiny_models.export(str(root / f"seed{seed}"), seed) for seed in (1, 2)]


@pytest.fixture
def model_base(tmp_path):
    return str(tmp_path / "serving" / "fer")


@pytest.fixture(scope="session")
def face_images():
    return [image_folders.encode(image_folders.face(expr, seed))
            for seed, expr in enumerate(["happy", "sad", "angry", "surprise"])]


def push(export_dir: str, model_base: str) -> int:
    return tiny_models.push(export_dir, model_base)


def corrupt_copy(export_dir: str, model_base: str, version: int) -> str:
    """A version directory whose saved_model.pb is garbage."""
    import shutil

    path = os.path.join(model_base, str(version))
    shutil.copytree(export_dir, path)
    with open(os.path.join(path, "saved_model.pb"), "wb") as f:
        f.write(b"not a SavedModel")
    return path
