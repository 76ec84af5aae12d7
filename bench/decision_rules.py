"""Would a decision rule other than the argmax of the mean lift a finished run's macro-F1?

  python -m bench.decision_rules --output-dir OUTPUT_DIR [--pipeline-name fer-pipeline]

Scores the `valid` and `eval` splits with each Trainer's exported model of the run's latest
execution (through its examples signature, test-time views included), then prints one JSON line
per split, model and rule with accuracy and macro-F1:
- prior-adjusted argmax, argmax(p / prior^tau) for tau in TAUS, with the prior of the training
  split's classes (from the training summary): tau = 1 predicts as a model trained with
  balanced class weights would, to first order (logit adjustment);
- weighted means of the two architectures' probabilities, VGG16-fer's weight in WEIGHTS (the
  pipeline's ensemble candidate is 0.5).
A rule chosen on `valid` and read on `eval` is an honest estimate; one read off `eval` alone is
not. An estimate beside a pipeline run, not the pipeline: the run's TFMA figures stay the ones
quoted.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Dict, List

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "0")

import numpy as np  # noqa: E402
from tfx.utils import path_utils  # noqa: E402

from bench.ensemble_of_runs import scores  # noqa: E402
from bench.run_report import latest_run_from_command_line  # noqa: E402
from components import contract  # noqa: E402
from components.image_example_gen import tf_examples  # noqa: E402
from components.models import training_summary  # noqa: E402
from components.run_report import sources  # noqa: E402

TAUS = (0.0, 0.5, 1.0)
WEIGHTS = (0.5, 0.6, 0.7, 0.8)
SPLITS = (contract.VALID_SPLIT, contract.EVAL_SPLIT)


def prior_adjusted(probabilities: np.ndarray, prior: np.ndarray, tau: float) -> np.ndarray:
    """Scores whose argmax is the prior-adjusted decision (not probabilities: rows don't sum
    to 1)."""
    return probabilities / prior ** tau


def rules(labels: np.ndarray, probabilities: Dict[str, np.ndarray], prior: np.ndarray
          ) -> List[Dict[str, object]]:
    rows = []
    for model, p in probabilities.items():
        for tau in TAUS:
            rows.append({"model": model, "rule": f"prior^{tau}",
                         **scores(labels, prior_adjusted(p, prior, tau))})
    if set(contract.ARCHITECTURES) <= set(probabilities):
        vgg16, resnet50 = probabilities["vgg16"], probabilities["resnet50"]
        for w in WEIGHTS:
            rows.append({"model": "ensemble", "rule": f"vgg16 weight {w}",
                         **scores(labels, w * vgg16 + (1 - w) * resnet50)})
    return rows


def main(argv=None) -> int:
    _, run, metadata_path = latest_run_from_command_line(__doc__, argv)
    trainers = [a for a in contract.ARCHITECTURES if run and f"Trainer_{a}" in run.nodes]
    if not trainers:
        print(f"no run with a Trainer in {metadata_path}", file=sys.stderr)
        return 1
    examples_uri = next(n.uri("examples") for n in run.nodes.values()
                        if n.node_id.endswith("ExampleGen"))
    summary = training_summary.read_training_summary(run[f"Trainer_{trainers[0]}"].uri("model_run"))
    counts = summary["train_examples_per_class"]
    label_names = list(counts)  # written in the model's label order
    prior = np.asarray([counts[n] for n in label_names], np.float64)
    prior /= prior.sum()
    for split in SPLITS:
        records, labels, _ = tf_examples.labelled_images(examples_uri, split, label_names)
        probabilities = {}
        for arch in trainers:
            # The Trainers of this project's TFX write the current layout (Format-Serving).
            model_dir = path_utils.serving_model_path(run[f"Trainer_{arch}"].uri("model"),
                                                      is_old_artifact=False)
            probabilities[arch] = sources.served_probabilities(model_dir, records)
        for row in rules(labels, probabilities, prior):
            print(json.dumps({"split": split, "examples": len(records), **row}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
