"""`fer-pipeline`: the command-line entry point.

  fer-pipeline run                         # demo: generates demo faces, runs the pipeline
  fer-pipeline run --data-root DIR --profile cpu
  fer-pipeline demo-data DIR               # only write the demo image folders
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Dict, List, Optional, Sequence

import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported
# google-api-core warns on every import that Python 3.10 is old; the stack is pinned to 3.10.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.")

from pipeline import configs  # noqa: E402  (after the environment is set)


def _parse_mapping(text: str, value_type=str) -> Dict[str, object]:
    """'a=x,b=y' -> {'a': x, 'b': y}."""
    out = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        if "=" not in item:
            raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = value_type(v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad value in {item!r}") from None
    return out


def _parse_architectures(text: str) -> List[str]:
    if text.strip().lower() == "none":
        return []
    archs = [a.strip() for a in text.split(",") if a.strip()]
    unknown = set(archs) - set(configs.ARCHITECTURES)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown architectures {sorted(unknown)}; "
                                         f"choose from {', '.join(configs.ARCHITECTURES)}")
    return archs


def _parse_classes(text: str) -> Optional[List[str]]:
    if text.strip().lower() == "all":
        return None
    return [c.strip() for c in text.split(",") if c.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fer-pipeline",
        description="Facial-expression recognition TFX pipeline: image folders -> validated, "
                    "transformed examples (and, in later stages, trained and served models).")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run", help="run the pipeline locally (LocalDagRunner + Beam DirectRunner)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Run the pipeline locally. Without --data-root, a deterministic demo dataset "
                    "is generated under OUTPUT_DIR/demo_data and used.")
    run.add_argument("--data-root", help="image folders: DATA_ROOT/<split>/<class>/<image>; "
                     "default: generated demo data")
    run.add_argument("--output-dir", default=configs.DEFAULT_OUTPUT_DIR,
                     help="artifacts (pipeline_root/), ML Metadata (metadata/) and demo data")
    run.add_argument("--profile", default=configs.DEFAULT_PROFILE, choices=sorted(configs.PROFILES),
                     help="; ".join(f"{p.name}: {p.description}" for p in configs.PROFILES.values()))
    run.add_argument("--classes", type=_parse_classes, default=list(configs.DEFAULT_CLASSES),
                     help="comma-separated class folders to ingest, or 'all' (add disgust with "
                          "--classes all on FER2013)")
    run.add_argument("--exclude-classes", type=_parse_classes, default=[],
                     help="comma-separated class folders to leave out")
    run.add_argument("--split-folders", type=_parse_mapping, default=configs.DEFAULT_SPLIT_FOLDERS,
                     help="FOLDER=SPLIT,... mapping split folders to train/eval/test")
    run.add_argument("--split-ratios", type=lambda t: _parse_mapping(t, float),
                     help="hash-split a single folder, e.g. train=0.8,eval=0.2")
    run.add_argument("--validation-fraction", type=float,
                     default=configs.DEFAULT_VALIDATION_FRACTION,
                     help="share of the training images (chosen by hash, the same every run) "
                          "held out as the 'valid' split for tuning and early stopping; 0 "
                          "validates on the eval split instead")
    run.add_argument("--on-bad-image", choices=configs.ON_BAD_IMAGE_CHOICES,
                     default=configs.ON_BAD_IMAGE_FAIL,
                     help="files with an image extension that do not decode: stop the run, or "
                          "skip them (counted and listed in the ingest report)")
    run.add_argument("--allow-missing-eval-classes", action="store_true",
                     help="accept an included class without images in eval/test")
    run.add_argument("--schema-dir", default=configs.SCHEMA_DIR,
                     help="directory holding the curated schema.pbtxt")
    run.add_argument("--image-size", type=int, help="model input size (default: the profile's)")
    run.add_argument("--channels", type=int, choices=(1, 3),
                     help="model input channels (default: the profile's)")
    run.add_argument("--architectures", type=_parse_architectures,
                     default=list(configs.ARCHITECTURES),
                     help="candidate models, comma-separated, or 'none' for the data half only")
    tuning = run.add_mutually_exclusive_group()
    tuning.add_argument("--tuning", dest="tuning", action="store_true", default=None,
                        help="run KerasTuner before each Trainer (default: the profile's; "
                             "on for demo and gpu, off for cpu)")
    tuning.add_argument("--no-tuning", dest="tuning", action="store_false",
                        help="skip KerasTuner; train with the default hyperparameters")
    run.add_argument("--epochs", type=int, help="training epochs (default: the profile's)")
    run.add_argument("--max-steps-per-epoch", type=int,
                     help="cap on training steps per epoch, 0 for full passes over the training "
                          "split (default: the profile's, per architecture)")
    run.add_argument("--model-variant", type=_parse_mapping, default={},
                     help="ARCH=fer|stock,... (stock: keras.applications as is, e.g. for "
                          "ImageNet weights)")
    run.add_argument("--weights", type=_parse_mapping, default={},
                     help="ARCH=PATH,...: local pretrained weights (stock variant); nothing is "
                          "downloaded")
    run.add_argument("--min-accuracy", type=float,
                     help="Evaluator threshold to bless a model (default: the profile's)")
    run.add_argument("--serving-dir", help="Pusher target: SERVING_DIR/fer/<version>/ "
                     "(default: OUTPUT_DIR/serving)")
    run.add_argument("--pipeline-name", default=configs.PIPELINE_NAME)
    run.add_argument("--enable-cache", action="store_true",
                     help="reuse results of identical earlier runs (only if the data is unchanged)")
    run.add_argument("--beam-arg", action="append", default=[], dest="beam_args",
                     help="extra Beam pipeline argument (repeatable), e.g. "
                          "--beam-arg=--direct_num_workers=4")
    run.add_argument("-v", "--verbose", action="store_true", help="show every TFX/Beam log line")

    demo = sub.add_parser("demo-data", help="write the demo image folders and exit")
    demo.add_argument("out_dir")
    demo.add_argument("--train-per-class", type=int,
                      default=configs.DEMO_IMAGES_PER_CLASS[configs.TRAIN_SPLIT])
    demo.add_argument("--eval-per-class", type=int,
                      default=configs.DEMO_IMAGES_PER_CLASS[configs.EVAL_SPLIT])
    return parser


class _ProgressFilter(logging.Filter):
    """Keeps the orchestrator's 'Component X is running/finished' lines and our own logs."""

    _ORCHESTRATOR = os.path.join("tfx", "orchestration", "local") + os.sep
    _OURS = (os.path.join(configs.PROJECT_ROOT, "components") + os.sep,
             os.path.join(configs.PROJECT_ROOT, "pipeline") + os.sep)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING or record.pathname.startswith(self._OURS):
            return True
        return self._ORCHESTRATOR in record.pathname and str(record.msg).startswith("Component")


def _configure_logging(verbose: bool) -> None:
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.INFO)
    if not verbose:
        logging.getLogger("absl").addFilter(_ProgressFilter())


def _print_summary(outputs, output_dir: str) -> None:
    from components.image_example_gen import executor as example_gen_executor

    layout = configs.OutputLayout(os.path.abspath(output_dir))
    print(f"\n=== {configs.PIPELINE_NAME}: run {outputs.run_id} finished ===")
    for node_id, node in outputs.nodes.items():
        print(f"{node_id:<22} {node.state}")
    if "ImageFolderExampleGen" in outputs.nodes:
        gen = outputs["ImageFolderExampleGen"]
        report_uri = gen.uri(example_gen_executor.INGEST_REPORT_KEY)
        summary = example_gen_executor.read_summary(report_uri)
        print("\nIngest:", example_gen_executor.format_summary(summary))
        print(f"  label map: {json.dumps(summary['label_map'])}")
        print(f"  examples: {gen.uri('examples')}")
        print(f"  report:   {report_uri}/{example_gen_executor.SUMMARY_FILE}, "
              f"skipped files: {report_uri}/{example_gen_executor.SKIPPED_FILE}")
    if "StatisticsGen" in outputs.nodes:
        print(f"Statistics: {outputs['StatisticsGen'].uri('statistics')}")
    if "ExampleValidator" in outputs.nodes:
        print(f"Anomalies:  {outputs['ExampleValidator'].uri('anomalies')} (none: the gate passed)"
              if "SchemaValidationGate" in outputs.nodes else "")
    if "Transform" in outputs.nodes:
        t = outputs["Transform"]
        print(f"Transform:  graph {t.uri('transform_graph')}\n"
              f"            transformed examples {t.uri('transformed_examples')}")
    _print_models(outputs)
    print(f"ML Metadata: {layout.metadata_path}")


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _print_models(outputs) -> None:
    from components import evaluation
    from components.model_selector import executor as selector_executor

    if "ModelSelector" not in outputs.nodes:
        return
    blessing = outputs["ModelSelector"].artifacts[selector_executor.BLESSING_KEY][0]
    selection = json.loads(blessing.custom_properties["selection"].string_value)
    print(f"\nModels (eval split; selection metric: {selection['metric']}):")
    for arch, c in sorted(selection["candidates"].items()):
        metrics = c.get("metrics", {})
        print(f"  {arch:<9} accuracy {_fmt(metrics.get(evaluation.ACCURACY))}  "
              f"macro-F1 {_fmt(metrics.get(evaluation.MACRO_F1))}  "
              f"{'blessed' if c['blessed'] else 'not blessed'}  evaluation: {c['evaluation_uri']}")
    winner = selection["winner"]
    print(f"  winner: {winner or 'none (no blessed candidate)'}")
    if winner:
        per_class = selection["candidates"][winner].get("metrics", {}).get("per_class", {})
        for name, m in sorted(per_class.items()):
            print(f"    {name:<10} precision {_fmt(m.get('precision'))}  "
                  f"recall {_fmt(m.get('recall'))}  F1 {_fmt(m.get('f1'))}")
    if "Pusher" in outputs.nodes:
        pushed = outputs["Pusher"].artifacts["pushed_model"][0].custom_properties
        if pushed["pushed"].int_value:
            print(f"  pushed: {pushed['pushed_destination'].string_value}")
        else:
            print("  pushed: nothing (no blessed winner)")


def _training_overrides(args: argparse.Namespace) -> Dict[str, int]:
    """Training settings given on the command line; they override the profile's."""
    overrides = {}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.max_steps_per_epoch is not None:
        overrides["max_steps_per_epoch"] = args.max_steps_per_epoch
    return overrides


def _cmd_run(args: argparse.Namespace) -> int:
    from components.image_example_gen.executor import BadInputError
    from components.image_example_gen.layout import LayoutError
    from components.validation_gate import DataValidationError
    from pipeline import demo_data, local_runner

    _configure_logging(args.verbose)
    data_root = args.data_root
    if data_root is None:
        data_root = configs.OutputLayout(os.path.abspath(args.output_dir)).demo_data_dir
        written = demo_data.write_demo_dataset(data_root)
        print(f"Demo data: {written} images written to {data_root}")
    try:
        outputs = local_runner.run(
            data_root=data_root,
            output_dir=args.output_dir,
            profile=args.profile,
            pipeline_name=args.pipeline_name,
            beam_args=args.beam_args,
            image_size=args.image_size,
            channels=args.channels,
            schema_dir=os.path.abspath(args.schema_dir),
            classes=args.classes,
            exclude_classes=args.exclude_classes or (),
            split_folders=args.split_folders,
            split_ratios=args.split_ratios,
            validation_fraction=args.validation_fraction,
            on_bad_image=args.on_bad_image,
            allow_missing_eval_classes=args.allow_missing_eval_classes,
            enable_cache=args.enable_cache,
            architectures=args.architectures,
            enable_tuning=args.tuning,
            training=_training_overrides(args),
            model_variants=args.model_variant,
            weights=args.weights,
            **({"min_accuracy": args.min_accuracy} if args.min_accuracy is not None else {}),
            **({"serving_dir": os.path.abspath(args.serving_dir)} if args.serving_dir else {}),
        )
    except (LayoutError, BadInputError, DataValidationError) as e:
        print(f"\nERROR ({type(e).__name__}): {e}", file=sys.stderr)
        return 2
    _print_summary(outputs, args.output_dir)
    return 0


def _cmd_demo_data(args: argparse.Namespace) -> int:
    from pipeline import demo_data

    written = demo_data.write_demo_dataset(
        args.out_dir, {configs.TRAIN_SPLIT: args.train_per_class,
                       configs.EVAL_SPLIT: args.eval_per_class})
    print(f"{written} images written to {args.out_dir}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return {"run": _cmd_run, "demo-data": _cmd_demo_data}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
