"""Compile the pipeline for Kubeflow Pipelines (KFP v2 / Vertex AI Pipelines spec).

  python -m pipeline.kubeflow_runner --image REGISTRY/fer-pipeline:TAG \\
      --data-root gs://BUCKET/fer2013 --pipeline-root gs://BUCKET/fer-pipeline \\
      --output-file fer-pipeline.json --profile cpu

then upload `fer-pipeline.json` to KFP (UI, `kfp` client, or Vertex AI). The image must contain
this project installed from requirements.lock (see Dockerfile). ML Metadata is the cluster's.
The data and training options are the local `fer-pipeline run`'s, with the same defaults.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Optional, Sequence

from components.quiet_start import quiet_start
from pipeline import cli_options, configs

# Where the Dockerfile puts the project inside the image.
IMAGE_SCHEMA_DIR = "/app/schema"
EXAMPLE_GEN_TASK = "ImageFolderExampleGen"


def compile_pipeline(image: str, data_root: str, pipeline_root: str, output_file: str,
                     profile: str = configs.DEFAULT_PROFILE,
                     pipeline_name: str = configs.PIPELINE_NAME, **options: Any) -> str:
    """Writes the KFP pipeline spec JSON; returns its path. `options` are configs.RunOptions
    fields; `schema_dir` defaults to the schema inside the image, and Beam's SDK workers run
    `image` (pipeline/beam_runners.py) unless `beam_args` name another."""
    from tfx import v1 as tfx

    from pipeline import pipeline as pipeline_lib

    options.setdefault("schema_dir", IMAGE_SCHEMA_DIR)
    # The image doubles as the SDK container of Beam runners whose workers run an image.
    options.setdefault("beam_sdk_image", image)
    arguments = configs.pipeline_arguments(configs.RunOptions(
        data_root=data_root, profile=profile, **options))
    # The drift thresholds become part of the spec: read from this checkout's schema folder
    # (the schema itself is read inside the image at run time).
    pipeline = pipeline_lib.create_pipeline(
        pipeline_name=pipeline_name, pipeline_root=pipeline_root,
        drift_config_dir=configs.SCHEMA_DIR, kfp_v2_resolvers=True, **arguments)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image),
        output_dir=os.path.dirname(os.path.abspath(output_file)),
        output_filename=os.path.basename(output_file),
    )
    runner.run(pipeline, write_out=True)
    _never_cache_example_gen(output_file)
    return output_file


def _never_cache_example_gen(spec_file: str) -> None:
    """KFP caches a task by its inputs and parameters, and no driver fingerprints the files on
    KFP (TFX runs drivers there for its own ExampleGens only): a cached ImageFolderExampleGen
    would miss new or changed images. Its fresh output then gives every task after it new
    inputs, so their caching stays safe."""
    with open(spec_file) as f:
        spec = json.load(f)
    task = spec["pipelineSpec"]["root"]["dag"]["tasks"][EXAMPLE_GEN_TASK]
    task["cachingOptions"] = {"enableCache": False}
    with open(spec_file, "w") as f:
        json.dump(spec, f, indent=2, sort_keys=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline.kubeflow_runner",
                                     description=__doc__,
                                     formatter_class=cli_options.HelpFormatter)
    parser.add_argument("--image", required=True, help="container image with this project")
    parser.add_argument("--data-root", required=True,
                        help="image folders, as the cluster sees them")
    parser.add_argument("--pipeline-root", required=True, help="artifact root (e.g. gs://...)")
    parser.add_argument("--output-file", default=f"{configs.PIPELINE_NAME}.json",
                        help="where to write the KFP pipeline spec (JSON)")
    cli_options.add_run_options(
        parser, schema_dir_default=IMAGE_SCHEMA_DIR,
        serving_dir_help="Pusher target as the cluster sees it (SERVING_DIR/fer/<version>/); "
                         "without it nothing is pushed")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show TFX's, Beam's and TensorFlow's log lines too")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    failure = None
    # TFX, TensorFlow and the Google Cloud clients log dozens of lines while compiling; they
    # reach the terminal with -v, or when compiling fails unexpectedly.
    with quiet_start(args.verbose):
        from components.image_example_gen.layout import LayoutError

        try:
            path = compile_pipeline(args.image, args.data_root, args.pipeline_root,
                                    args.output_file, pipeline_name=args.pipeline_name,
                                    **cli_options.run_options(args))
        except (configs.PipelineArgumentError, LayoutError) as e:
            failure = e
    if failure is not None:
        print(f"ERROR ({type(failure).__name__}): {failure}", file=sys.stderr)
        return 2
    print(f"Kubeflow pipeline spec written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
