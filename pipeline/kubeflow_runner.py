"""Compile the pipeline for Kubeflow Pipelines (KFP v2 / Vertex AI Pipelines spec).

  python -m pipeline.kubeflow_runner --image REGISTRY/fer-pipeline:TAG \
      --data-root gs://BUCKET/fer2013 --pipeline-root gs://BUCKET/fer-pipeline \
      --output-file fer-pipeline.json

then upload `fer-pipeline.json` to KFP (UI, `kfp` client, or Vertex AI). The image must contain
this project installed from requirements.lock (see Dockerfile). ML Metadata is the cluster's.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from tfx import v1 as tfx

from pipeline import configs, pipeline as pipeline_lib


def compile_pipeline(image: str, data_root: str, pipeline_root: str, output_file: str,
                     profile: str = "cpu", pipeline_name: str = configs.PIPELINE_NAME,
                     beam_args: Sequence[str] = (), **pipeline_options) -> str:
    """Writes the KFP pipeline spec JSON; returns its path."""
    prof = configs.get_profile(profile)
    pipeline = pipeline_lib.create_pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        data_root=data_root,
        image_size=prof.image_size,
        channels=prof.channels,
        beam_pipeline_args=[*prof.beam_pipeline_args(), *beam_args],
        training_by_architecture=prof.training_by_architecture(),
        enable_tuning=pipeline_options.pop("enable_tuning", prof.tuning),
        min_accuracy=prof.min_accuracy,
        **pipeline_options,
    )
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image),
        output_dir=os.path.dirname(os.path.abspath(output_file)),
        output_filename=os.path.basename(output_file),
    )
    runner.run(pipeline, write_out=True)
    return output_file


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", required=True, help="container image with this project")
    parser.add_argument("--data-root", required=True, help="image folders, as the cluster sees them")
    parser.add_argument("--pipeline-root", required=True, help="artifact root (e.g. gs://...)")
    parser.add_argument("--output-file", default=f"{configs.PIPELINE_NAME}.json")
    parser.add_argument("--profile", default="cpu", choices=sorted(configs.PROFILES))
    parser.add_argument("--schema-dir", default="/app/schema",
                        help="schema directory inside the image (or on shared storage)")
    parser.add_argument("--serving-dir", help="Pusher target as the cluster sees it "
                        "(SERVING_DIR/fer/<version>/); without it nothing is pushed")
    parser.add_argument("--beam-arg", action="append", default=[], dest="beam_args")
    args = parser.parse_args(argv)
    path = compile_pipeline(args.image, args.data_root, args.pipeline_root, args.output_file,
                            profile=args.profile, beam_args=args.beam_args,
                            schema_dir=args.schema_dir, serving_dir=args.serving_dir)
    print(f"Kubeflow pipeline spec written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
