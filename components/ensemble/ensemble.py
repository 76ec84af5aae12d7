"""The ensemble candidate: a run's trained networks served as one model, the mean of their
class probabilities.

Each member is a Trainer's model: its classifier and test-time views come from the `keras/`
folder beside its SavedModel (warm_start.load_classifier). The export is the Trainers' own
(model_export.export_members): one Transform layer feeding every network, each network with
its own test-time views, the same signatures, outputs and warm-up records. TF Serving, fer-serve
and the Evaluator take it as they take a single model, and it loads with TensorFlow alone.
"""
from __future__ import annotations

from typing import List, Mapping

import tensorflow_transform as tft

from components.models import export as model_export
from components.models import input_pipeline, warm_start

MIN_MEMBERS = 2  # one network is its own candidate already


def export(member_dirs: Mapping[str, str], transform_graph_dir: str, export_dir: str
           ) -> List[str]:
    """Writes the ensemble of `member_dirs` (member name -> the SavedModel directory of a
    Trainer's model) over the Transform graph in `transform_graph_dir` as a SavedModel in
    `export_dir`; returns the class names. Raises ValueError when there are fewer than
    MIN_MEMBERS, or when the members were trained for other images or classes than each other
    or the Transform graph (warm_start.NoClassifierError for a model saved without its
    classifier)."""
    if len(member_dirs) < MIN_MEMBERS:
        raise ValueError(f"an ensemble needs at least {MIN_MEMBERS} members, got "
                         f"{sorted(member_dirs)}")
    tf_transform_output = tft.TFTransformOutput(transform_graph_dir)
    image_shape = [int(d) for d in input_pipeline.image_shape(tf_transform_output)]
    members, label_names = [], None
    for name, serving_model_dir in member_dirs.items():
        network, spec = warm_start.load_classifier(serving_model_dir)
        if spec["image_shape"] != image_shape:
            raise ValueError(f"member {name} takes images of shape {spec['image_shape']}; the "
                             f"Transform graph makes {image_shape}")
        label_names = label_names or spec["label_names"]
        if spec["label_names"] != label_names:
            raise ValueError(f"member {name} classifies {spec['label_names']}, another member "
                             f"{label_names}")
        members.append(model_export.Member(network, spec["test_time_augmentation"],
                                           spec["tta_shift"]))
    model_export.export_members(members, tf_transform_output, label_names, export_dir)
    return label_names
