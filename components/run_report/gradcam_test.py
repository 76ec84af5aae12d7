"""Grad-CAM checked, not just drawn: a network trained on synthetic faces whose class is decided
by one region (horizontal or vertical stripes in the top-left cell of a 3 x 3 grid; stripes of
either kind in three other cells are noise) must put its heat in that region."""
import keras
import numpy as np
import pytest

from components.models import vgg16
from components.run_report import gradcam

SIZE, CELL, PATCH = 48, 16, 12     # 3 x 3 cells of 16 px
REGION = 0                         # the top-left cell decides the class


def _cell_origin(rng, cell: int):
    row, col = divmod(cell, 3)
    dy, dx = rng.integers(0, CELL - PATCH + 1, 2)
    return row * CELL + dy, col * CELL + dx


def region_decided_images(count: int, seed: int):
    """(images [N, 48, 48, 1] in [0, 1], labels: 0 horizontal, 1 vertical stripes in REGION)."""
    rng = np.random.default_rng(seed)
    images = rng.normal(0.5, 0.08, (count, SIZE, SIZE, 1)).astype(np.float32)
    labels = rng.integers(0, 2, count)
    stripes = np.zeros((PATCH, PATCH), np.float32)
    stripes[::3] = 1.0
    for image, label in zip(images, labels, strict=True):
        for other in rng.choice([c for c in range(9) if c != REGION], 3, replace=False):
            y, x = _cell_origin(rng, other)
            image[y:y + PATCH, x:x + PATCH, 0] = 0.05 + 0.9 * (
                stripes.T if rng.integers(0, 2) else stripes)
        y, x = _cell_origin(rng, REGION)
        image[y:y + PATCH, x:x + PATCH, 0] = 0.05 + 0.9 * (stripes.T if label else stripes)
    return np.clip(images, 0, 1), labels


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(7)
    model = vgg16.build((SIZE, SIZE, 1), 2, width=0.125, head_units=0, dropout=0.1)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    images, labels = region_decided_images(1500, seed=1)
    model.fit(images, labels, batch_size=32, epochs=8, verbose=0)
    return (model, *region_decided_images(90, seed=2))


def test_the_heat_comes_from_the_last_grid_a_quarter_of_the_input_or_finer(trained):
    model = trained[0]
    assert gradcam.feature_layer(model).name == "block3_relu3"          # 12 x 12 at 48 px
    assert gradcam.feature_layer(model, min_fraction=0.0).name == "block5_relu3"   # 3 x 3


def _cell_heat(model, images, labels, layer=None):
    predicted = model.predict(images, verbose=0).argmax(axis=1)
    correct = predicted == labels
    assert correct.mean() >= 0.9      # it learned the rule
    heat = gradcam.heatmaps(model, images[correct], predicted[correct], layer=layer)
    assert heat.shape == (correct.sum(), SIZE, SIZE)
    assert heat.min() >= 0.0 and heat.max() <= 1.0
    return heat.reshape(-1, 3, CELL, 3, CELL).mean(axis=(2, 4)).reshape(-1, 9)


def test_the_heat_lies_in_the_region_that_decides_the_class(trained):
    per_cell = _cell_heat(*trained)
    # The region is the hottest cell on average, and in far more images than chance (1 in 9).
    assert per_cell.mean(axis=0).argmax() == REGION, per_cell.mean(axis=0).round(2)
    assert (per_cell.argmax(axis=1) == REGION).mean() >= 0.35


def test_the_last_block_alone_would_miss_the_region(trained):
    """Why the heat does not come from the last block: there it sits at the centre."""
    model = trained[0]
    per_cell = _cell_heat(*trained, layer=gradcam.feature_layer(model, min_fraction=0.0))
    assert per_cell.mean(axis=0).argmax() != REGION


def test_overlay_keeps_a_cold_face_and_reddens_a_hot_one():
    image = np.full((4, 4, 1), 0.5, np.float32)
    cold = gradcam.overlay(image, np.zeros((4, 4), np.float32))
    hot = gradcam.overlay(image, np.ones((4, 4), np.float32))
    assert cold.shape == (4, 4, 3) and (cold == 128).all()
    assert (hot[..., 0] > cold[..., 0]).all() and (hot[..., 1] < cold[..., 1]).all()
