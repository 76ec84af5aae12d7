"""Report of a finished local pipeline run, for BENCHMARKS.md: per-component wall time (from ML
Metadata), and per candidate model its training (epochs, steps, images seen) and TFMA results
on the eval split (accuracy, macro-F1, per-class F1).

  python -m bench.run_report --output-dir OUTPUT_DIR [--pipeline-name fer-pipeline]

Run it after e.g. `fer-pipeline run --data-root data/fer2013 --profile cpu --output-dir DIR`.
Not a test: it prints Markdown.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from components import contract  # noqa: E402
from components.model_selector import executor as selector_executor  # noqa: E402
from components.model_selector import selection as selection_lib  # noqa: E402
from components.models import training_summary  # noqa: E402
from pipeline import configs, local_outputs, run_summary  # noqa: E402


def node_executions(store, run: run_summary.RunOutputs) -> Dict[str, object]:
    """Node id -> its latest MLMD execution."""
    out = {}
    for node_id in run.nodes:
        executions = [e for e in store.get_executions()
                      if any(c.name.endswith("." + node_id)
                             for c in store.get_contexts_by_execution(e.id))]
        if executions:
            out[node_id] = max(executions, key=lambda e: e.id)
    return out


def _seconds(execution) -> float:
    return (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000.0


def latest_run_from_command_line(description: str, argv=None):
    """(ML Metadata store, the latest run or None, its metadata path) of `--output-dir` and
    `--pipeline-name`, the arguments of the benchmarks that read a finished local run."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--pipeline-name", default=configs.PIPELINE_NAME)
    args = parser.parse_args(argv)
    layout = local_outputs.OutputLayout(os.path.abspath(args.output_dir))
    if not os.path.isfile(layout.metadata_path):  # a read-only store would not open
        return None, None, layout.metadata_path
    store = run_summary.sqlite_store(layout.metadata_path)
    return store, run_summary.latest_run(store, args.pipeline_name), layout.metadata_path


def main(argv=None) -> int:
    store, run, metadata_path = latest_run_from_command_line(__doc__, argv)
    if run is None:
        print(f"no run in {metadata_path}", file=sys.stderr)
        return 1
    executions_by_node = node_executions(store, run)
    seconds = {n: _seconds(e) for n, e in executions_by_node.items()}
    executions = list(executions_by_node.values())
    print(f"run {run.run_id}: {len(run.nodes)} nodes")
    print("\n| component | state | wall time |\n|---|---|---|")
    for node_id, node in run.nodes.items():
        print(f"| {node_id} | {node.state} | {seconds.get(node_id, 0.0) / 60:.1f} min |")
    first = min(e.create_time_since_epoch for e in executions)
    last = max(e.last_update_time_since_epoch for e in executions)
    print(f"\nfirst component start to last component end: {(last - first) / 60000:.1f} min")

    if "ModelSelector" not in run.nodes:
        return 0
    selection = selection_lib.read(run["ModelSelector"].uri(selector_executor.BLESSING_KEY))
    print(f"winner: {selection.winner or 'none'}")
    print("\n| model | epochs | steps/epoch | batch | images seen | val_accuracy by epoch "
          "| accuracy | macro-F1 | blessed | Trainer wall time |\n"
          "|---|---|---|---|---|---|---|---|---|---|")
    per_class_rows = []
    for arch, candidate in selection.candidates.items():
        metrics = candidate["metrics"]
        per_class_rows.append((arch, metrics["per_class"]))
        trainer_id = f"Trainer_{arch}"
        if trainer_id not in run.nodes:  # the ensemble: trained by its members' Trainers
            print(f"| {arch} | - | - | - | - | - "
                  f"| {metrics.get(contract.ACCURACY_METRIC, float('nan')):.4f} "
                  f"| {metrics.get(contract.MACRO_F1_METRIC, float('nan')):.4f} "
                  f"| {candidate['blessed']} | - |")
            continue
        summary = training_summary.read_training_summary(run[trainer_id].uri("model_run"))
        config = json.loads(
            executions_by_node[trainer_id].custom_properties["custom_config"].string_value)
        steps, batch = config.get("max_steps_per_epoch") or "all", config["batch_size"]
        epochs = summary["epochs_run"]
        seen = epochs * summary.get("steps_per_epoch", 0) * batch or None
        val = ", ".join(f"{v:.3f}" for v in summary["history"].get("val_accuracy", []))
        print(f"| {arch} ({summary['variant']}) | {epochs} | {steps} | {batch} | {seen} "
              f"| {val or '-'} "
              f"| {metrics.get(contract.ACCURACY_METRIC, float('nan')):.4f} "
              f"| {metrics.get(contract.MACRO_F1_METRIC, float('nan')):.4f} "
              f"| {candidate['blessed']} | {seconds.get(trainer_id, 0.0) / 60:.1f} min |")
    if per_class_rows:
        names = sorted({n for _, pc in per_class_rows for n in pc}, key=str)
        print("\nPer-class F1 (one-vs-rest on the argmax):\n")
        print("| model | " + " | ".join(map(str, names)) + " |")
        print("|---|" + "---|" * len(names))
        for arch, pc in per_class_rows:
            print(f"| {arch} | " + " | ".join(f"{pc.get(n, {}).get('f1', float('nan')):.3f}"
                                             for n in names) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
