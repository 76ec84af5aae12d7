"""Run the pipeline on this machine: LocalDagRunner, Beam DirectRunner, SQLite ML Metadata."""
from __future__ import annotations

import os
from typing import Any, Dict

from tfx import v1 as tfx

from components.models import devices
from pipeline import configs, local_outputs, run_summary
from pipeline import pipeline as pipeline_lib

SETUP_FILE = os.path.join(configs.PROJECT_ROOT, "setup.py")


def run(
    data_root: str,
    output_dir: str = local_outputs.DEFAULT_OUTPUT_DIR,
    profile: str = configs.DEFAULT_PROFILE,
    pipeline_name: str = configs.PIPELINE_NAME,
    **options: Any,
) -> run_summary.RunOutputs:
    """Runs the pipeline locally and returns what the run produced (read back from MLMD).

    `options` are configs.RunOptions fields (classes, training, min_accuracy, ...). Outputs land
    under `output_dir` (see local_outputs.OutputLayout); the winner is pushed to its `serving/`
    unless `serving_dir` says otherwise.
    """
    layout = local_outputs.OutputLayout(os.path.abspath(output_dir))
    if options.get("serving_dir") is None:
        options["serving_dir"] = layout.serving_dir
    # --setup_file ships this project's code to Beam workers that run this machine's Python
    # (and stops TFX from building a throwaway sdist of itself on every component run); workers
    # that run the pipeline image have it installed (pipeline/beam_runners.py).
    options.setdefault("beam_setup_file", SETUP_FILE)
    arguments = configs.pipeline_arguments(configs.RunOptions(
        data_root=os.path.abspath(data_root), profile=profile, **options))
    _check_devices(arguments["training"])
    os.makedirs(os.path.dirname(layout.metadata_path), exist_ok=True)
    pipeline = pipeline_lib.create_pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=layout.pipeline_root,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            layout.metadata_path),
        **arguments,
    )
    tfx.orchestration.LocalDagRunner().run(pipeline)
    outputs = run_summary.latest_run(run_summary.sqlite_store(layout.metadata_path),
                                     pipeline_name)
    # LocalDagRunner raises when an executor fails, but a node whose inputs could not be
    # resolved is only logged as failed, and the nodes after it still run.
    failed = sorted(node_id for node_id, node in outputs.nodes.items()
                    if node.state == run_summary.FAILED)
    if failed:
        raise RunFailedError(f"components failed: {', '.join(failed)} (run {outputs.run_id})")
    return outputs


def _check_devices(training: Dict[str, Dict[str, Any]]) -> None:
    """Stops before the run when a Trainer would stop for want of a GPU (devices.NoGpuError),
    rather than after the data half."""
    needs_gpu = sorted(arch for arch, settings in training.items()
                       if settings.get("require_gpu"))
    if needs_gpu:
        devices.check(True, devices.describe(), f"Training {', '.join(needs_gpu)}")


class RunFailedError(RuntimeError):
    """A component of the run failed without LocalDagRunner raising."""
