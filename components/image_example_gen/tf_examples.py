"""The tf.Example of one image and the split it goes to: shared by the image-folder and the
CSV sources, so that one image gives the same example and lands in the same split either way;
and the reader of a split's examples in the Examples artifact (the run report, the Pusher).
"""
from __future__ import annotations

import glob
import hashlib
import os
from typing import Dict, List, NamedTuple, Optional, Sequence

import numpy as np
import tensorflow as tf

from components import contract


def _bytes_feature(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int_feature(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def make_example(data: bytes, label: int, class_name: str, rel_path: str,
                 fmt: str, height: int, width: int, channels: int) -> tf.train.Example:
    return tf.train.Example(features=tf.train.Features(feature={
        contract.IMAGE_KEY: _bytes_feature(data),
        contract.LABEL_KEY: _int_feature(label),
        contract.LABEL_NAME_KEY: _bytes_feature(class_name.encode()),
        contract.SOURCE_PATH_KEY: _bytes_feature(rel_path.encode()),
        contract.IMAGE_HEIGHT_KEY: _int_feature(height),
        contract.IMAGE_WIDTH_KEY: _int_feature(width),
        contract.IMAGE_CHANNELS_KEY: _int_feature(channels),
        contract.IMAGE_FORMAT_KEY: _bytes_feature(fmt.encode()),
    }))


def _hash_bucket(key: str) -> float:
    """A number in [0, 1) from `key`, the same on every machine and run."""
    return int.from_bytes(hashlib.md5(key.encode()).digest()[:8], "big") / 2.0**64


def hash_split(key: str, ratios: Dict[str, float]) -> str:
    """Deterministic split for `key` (same on every machine and run) by cumulative ratios."""
    bucket = _hash_bucket(key)
    cumulative = 0.0
    names = sorted(ratios)          # fixed order so the mapping does not depend on dict order
    for name in names:
        cumulative += ratios[name]
        if bucket < cumulative:
            return name
    return names[-1]


def in_validation(key: str, fraction: float) -> bool:
    """Whether training file `key` (class/file name) belongs to the carved-out validation split.

    Salted, so that the choice is independent of hash_split's on the same key.
    """
    return _hash_bucket(f"{contract.VALID_SPLIT}:{key}") < fraction


def split_of(key: str, split: Optional[str], split_ratios: Optional[Dict[str, float]],
             validation_fraction: float) -> str:
    """The split of the image `key` (`<class>/<file name>`) from a source of split `split`
    (None: hash-split by `split_ratios`), after the validation share is carved out of train."""
    if split is None:
        split = hash_split(key, split_ratios)
    if (split == contract.TRAIN_SPLIT and validation_fraction
            and in_validation(key, validation_fraction)):
        split = contract.VALID_SPLIT
    return split


def split_files(examples_uri: str, split: str) -> List[str]:
    """The gzipped TFRecord files of `split` in an Examples artifact, in order."""
    return sorted(glob.glob(os.path.join(examples_uri, f"Split-{split}", "*")))


class LabelledImages(NamedTuple):
    records: List[bytes]      # the serialized tf.Examples
    labels: np.ndarray        # int64 index into the label names asked for
    images: List[bytes]       # the encoded images


def labelled_images(examples_uri: str, split: str,
                    label_names: Sequence[str]) -> LabelledImages:
    """`split`'s examples in reading order, with their labels as indices into `label_names`
    and their encoded images; examples of other classes are left out."""
    records, labels, images = [], [], []
    index = {name: i for i, name in enumerate(label_names)}
    files = split_files(examples_uri, split)
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        serialized = record.numpy()
        features = tf.train.Example.FromString(serialized).features.feature
        name = features[contract.LABEL_NAME_KEY].bytes_list.value[0].decode()
        if name in index:
            records.append(serialized)
            labels.append(index[name])
            images.append(features[contract.IMAGE_KEY].bytes_list.value[0])
    return LabelledImages(records, np.asarray(labels, np.int64), images)
