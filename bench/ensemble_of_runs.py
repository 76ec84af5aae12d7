"""What averaging the probabilities of models trained by bench/cpu_recipe.py would score.

  python -m bench.ensemble_of_runs /tmp/recipe/vgg16.npz /tmp/recipe/resnet50.npz

Each file is a `cpu_recipe --save-probabilities` output (PublicTest's labels and each test-time
mode's probabilities). Prints, per test-time mode, each member's accuracy and macro-F1 and the
ensemble's (the mean of the members' probabilities, as the pipeline's ensemble candidate
serves), as one JSON line. An estimate before a pipeline run, not the pipeline.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List

import numpy as np
from sklearn.metrics import f1_score


def scores(labels: np.ndarray, probabilities: np.ndarray) -> Dict[str, float]:
    predictions = np.argmax(probabilities, axis=-1)
    return {"accuracy": round(float(np.mean(predictions == labels)), 4),
            "macro_f1": round(float(f1_score(labels, predictions, average="macro")), 4)}


def ensemble_scores(paths: List[str]) -> Dict[str, Dict[str, Dict[str, float]]]:
    runs = {os.path.basename(p): np.load(p) for p in paths}
    labels = next(iter(runs.values()))["labels"]
    if any(not np.array_equal(r["labels"], labels) for r in runs.values()):
        raise SystemExit("the files score different examples (labels differ)")
    modes = sorted(set.intersection(*(set(r.files) - {"labels"} for r in runs.values())))
    out = {}
    for mode in modes:
        out[mode] = {name: scores(labels, r[mode]) for name, r in runs.items()}
        out[mode]["ensemble"] = scores(labels, np.mean([r[mode] for r in runs.values()], 0))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", metavar="FILE.npz")
    args = parser.parse_args(argv)
    print(json.dumps(ensemble_scores(args.files)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
