"""The Trainer's backup key: the same training data, base weights and settings give the same
key whatever their artifact URIs, so a pipeline re-run without the TFX cache resumes a killed
Trainer; anything that changes the training gives another key."""
import json
import os

import pytest
import tensorflow as tf

from components.models import warm_start
from components.models.backup_key import backup_key

HPARAMS = {"space": [], "values": {"learning_rate": 0.01}}
CONFIG = {"architecture": "vgg16", "epochs": 3}


def _record(i):
    features = {"image_xf": tf.train.Feature(float_list=tf.train.FloatList(
                    value=[float(i), i / 7.0, -1.5])),
                "label_xf": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 3]))}
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


TRAIN = [_record(i) for i in range(20)]
EVAL = [_record(100 + i) for i in range(6)]


def _write(directory, shards):
    """Gzip TFRecord shards like Transform's; returns the file pattern TFX passes."""
    os.makedirs(directory, exist_ok=True)
    for n, records in enumerate(shards):
        path = os.path.join(directory, f"transformed_examples-{n:05d}-of-{len(shards):05d}.gz")
        with tf.io.TFRecordWriter(path, options="GZIP") as writer:
            for record in records:
                writer.write(record)
    return [os.path.join(directory, "*")]


def _split(tmp_path, execution, split, shards):
    return _write(str(tmp_path / "Transform" / "transformed_examples" / str(execution) / split),
                  shards)


def _base_model(tmp_path, execution, weights_sha256=None, weights=None):
    """A Model artifact's serving dir with warm_start's `keras/` beside it."""
    serving = tmp_path / "Trainer" / "model" / str(execution) / "Format-Serving"
    keras_dir = serving.parent / warm_start.WEIGHTS_DIR
    os.makedirs(keras_dir)
    if weights_sha256 is not None:
        (keras_dir / warm_start.SPEC_FILE).write_text(json.dumps(
            {"architecture": "vgg16", "head_units": 256, "weights_sha256": weights_sha256}))
    if weights is not None:
        (keras_dir / warm_start.WEIGHTS_FILE).write_bytes(weights)
    return str(serving)


@pytest.fixture
def run1(tmp_path):
    return _split(tmp_path, 7, "Split-train", [TRAIN]), _split(tmp_path, 7, "Split-eval", [EVAL])


def _key(train, evaluation, base=None, hparams=HPARAMS, config=CONFIG):
    return backup_key(train, evaluation, base, hparams, config)


def test_same_records_under_other_uris_shards_and_order_give_the_same_key(tmp_path, run1):
    # A re-run without the cache: Transform writes the same records under a new execution
    # id, in other shards and another order.
    train2 = _split(tmp_path, 12, "Split-train",
                    [TRAIN[13:][::-1], TRAIN[:5], TRAIN[5:13][::-1]])
    eval2 = _split(tmp_path, 12, "Split-eval", [EVAL[3:], EVAL[:3]])
    assert train2 != run1[0]
    assert _key(*run1) == _key(train2, eval2)


def test_a_changed_or_removed_record_gives_another_key(tmp_path, run1):
    changed = [*TRAIN[:4], _record(1000), *TRAIN[5:]]
    assert _key(*run1) != _key(_split(tmp_path, 8, "Split-train", [changed]), run1[1])
    assert _key(*run1) != _key(_split(tmp_path, 9, "Split-train", [TRAIN[1:]]), run1[1])
    # Validation data counts too, and which split is which.
    assert _key(*run1) != _key(run1[0], _split(tmp_path, 10, "Split-eval", [EVAL[:-1]]))
    assert _key(*run1) != _key(run1[1], run1[0])


def test_other_hyperparameters_or_config_give_another_key(run1):
    assert _key(*run1) != _key(*run1, hparams={"space": [], "values": {"learning_rate": 0.02}})
    assert _key(*run1) != _key(*run1, hparams=None)
    assert _key(*run1) != _key(*run1, config={**CONFIG, "epochs": 4})


def test_base_model_keys_on_its_weights_not_its_uri(tmp_path, run1):
    base = _base_model(tmp_path, 20, weights_sha256="a" * 64)
    same_weights = _base_model(tmp_path, 31, weights_sha256="a" * 64)
    other_weights = _base_model(tmp_path, 32, weights_sha256="b" * 64)
    assert _key(*run1, base=base) == _key(*run1, base=same_weights)
    assert _key(*run1, base=base) != _key(*run1, base=other_weights)
    assert _key(*run1, base=base) != _key(*run1)  # cold start


def test_base_model_without_a_weights_digest_keys_on_the_weights_file(tmp_path, run1):
    base = _base_model(tmp_path, 40, weights=b"weights one")
    same = _base_model(tmp_path, 41, weights=b"weights one")
    other = _base_model(tmp_path, 42, weights=b"weights two")
    assert _key(*run1, base=base) == _key(*run1, base=same)
    assert _key(*run1, base=base) != _key(*run1, base=other)
    # Nothing to read: the URI is all there is.
    missing = str(tmp_path / "gone" / "1" / "Format-Serving")
    assert _key(*run1, base=missing) != _key(*run1, base=str(tmp_path / "gone" / "2"))
