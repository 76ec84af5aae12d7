"""Run the pipeline on this machine: LocalDagRunner, Beam DirectRunner, SQLite ML Metadata."""
from __future__ import annotations

import os
from typing import Any, Optional, Sequence

from tfx import v1 as tfx

from pipeline import configs, pipeline as pipeline_lib, run_summary


def run(
    data_root: str,
    output_dir: str = configs.DEFAULT_OUTPUT_DIR,
    profile: str = configs.DEFAULT_PROFILE,
    pipeline_name: str = configs.PIPELINE_NAME,
    beam_args: Sequence[str] = (),
    image_size: Optional[int] = None,
    channels: Optional[int] = None,
    **pipeline_options: Any,
) -> run_summary.RunOutputs:
    """Runs the pipeline locally and returns what the run produced (read back from MLMD).

    `pipeline_options` go to `create_pipeline` (classes, split_folders, schema_dir, ...).
    Outputs land under `output_dir` (see configs.OutputLayout).
    """
    prof = configs.get_profile(profile)
    layout = configs.OutputLayout(os.path.abspath(output_dir))
    if pipeline_options.get("classes", configs.DEFAULT_CLASSES) is None and \
            pipeline_options.get("architectures", configs.ARCHITECTURES):
        # "--classes all": training needs the names now, so list the class folders here.
        from components.image_example_gen import layout as layout_lib
        found = layout_lib.resolve_layout(
            data_root, classes=None,
            split_folders=pipeline_options.get("split_folders", configs.DEFAULT_SPLIT_FOLDERS),
            split_ratios=pipeline_options.get("split_ratios"),
            allow_missing_eval_classes=pipeline_options.get("allow_missing_eval_classes", False))
        pipeline_options["classes"] = list(found.class_names)
    # Profile settings, then the architecture's budget, then the caller's overrides.
    overrides = pipeline_options.pop("training", None) or {}
    training_by_architecture = {arch: {**config, **overrides}
                                for arch, config in prof.training_by_architecture().items()}
    if pipeline_options.get("enable_tuning") is None:
        pipeline_options["enable_tuning"] = prof.tuning
    pipeline_options.setdefault("min_accuracy", prof.min_accuracy)
    pipeline_options.setdefault("serving_dir", layout.serving_dir)
    os.makedirs(os.path.dirname(layout.metadata_path), exist_ok=True)
    pipeline = pipeline_lib.create_pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=layout.pipeline_root,
        data_root=os.path.abspath(data_root),
        image_size=image_size or prof.image_size,
        channels=channels or prof.channels,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            layout.metadata_path),
        # --setup_file ships this project's code to Beam workers (and stops TFX from building
        # a throwaway sdist of itself on every component run).
        training_by_architecture=training_by_architecture,
        beam_pipeline_args=[*prof.beam_pipeline_args(),
                            f"--setup_file={os.path.join(configs.PROJECT_ROOT, 'setup.py')}",
                            *beam_args],
        **pipeline_options,
    )
    tfx.orchestration.LocalDagRunner().run(pipeline)
    return run_summary.latest_run(run_summary.sqlite_store(layout.metadata_path), pipeline_name)
