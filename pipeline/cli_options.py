"""Command-line options shared by the local CLI (`fer-pipeline run`) and the Kubeflow compiler
(`python -m pipeline.kubeflow_runner`): the same names, parsing and defaults on both, turned
into configs.RunOptions fields by `run_options`.
"""
from __future__ import annotations

import argparse
import json
from typing import Any, Dict, List, Optional, Tuple

from components import contract
from components.models import devices, training_config
from pipeline import beam_runners, configs


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except for flags and where there is none (None: the
    profile's)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.nargs == 0 or action.default is None or action.default in ([], {}, ()):
            return action.help or ""
        return super()._get_help_string(action)


def parse_mapping(text: str, value_type=str) -> Dict[str, Any]:
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


def parse_setting(text: str) -> Tuple[str, Any]:
    """'NAME=VALUE' -> (NAME, VALUE), VALUE read as JSON when it is JSON, else as text."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name.strip(), json.loads(value)
    except json.JSONDecodeError:
        return name.strip(), value


def parse_duration(text: str) -> float:
    try:
        return training_config.parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _budget_text(seconds: float) -> str:
    return training_config.format_duration(seconds) if seconds else "none"


def parse_architectures(text: str) -> List[str]:
    if text.strip().lower() == "none":
        return []
    archs = [a.strip() for a in text.split(",") if a.strip()]
    unknown = set(archs) - set(contract.ARCHITECTURES)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown architectures {sorted(unknown)}; "
                                         f"choose from {', '.join(contract.ARCHITECTURES)}")
    return archs


def parse_classes(text: str) -> Optional[List[str]]:
    if text.strip().lower() == "all":
        return None
    return [c.strip() for c in text.split(",") if c.strip()]


def add_run_options(parser: argparse.ArgumentParser, schema_dir_default: str,
                    serving_dir_help: str) -> None:
    """Adds the profile, data, training, evaluation and orchestration options.

    Only the schema directory's default and what an unset serving directory means differ
    between runners (a container sees other paths than this machine).
    """
    parser.add_argument("--profile", default=configs.DEFAULT_PROFILE,
                        choices=sorted(configs.PROFILES),
                        help="; ".join(f"{p.name}: {p.description}"
                                       for p in configs.PROFILES.values()))
    data = parser.add_argument_group("data")
    data.add_argument("--classes", type=parse_classes, default=list(contract.DEFAULT_CLASSES),
                      help="comma-separated class folders to ingest, or 'all' (add disgust with "
                           "--classes all on FER2013)")
    data.add_argument("--exclude-classes", type=parse_classes, default=[],
                      help="comma-separated class folders to leave out")
    data.add_argument("--split-folders", type=parse_mapping,
                      default=dict(contract.DEFAULT_SPLIT_FOLDERS),
                      help="FOLDER=SPLIT,... mapping split folders to train/eval/test")
    data.add_argument("--split-ratios", type=lambda t: parse_mapping(t, float),
                      help="hash-split a single folder, e.g. train=0.8,eval=0.2")
    data.add_argument("--validation-fraction", type=float,
                      default=configs.DEFAULT_VALIDATION_FRACTION,
                      help="share of the training images (chosen by hash, the same every run) "
                           "held out as the 'valid' split for tuning and early stopping; 0 "
                           "validates on the eval split instead")
    data.add_argument("--on-bad-image", choices=contract.ON_BAD_IMAGE_CHOICES,
                      default=contract.ON_BAD_IMAGE_FAIL,
                      help="files with an image extension that do not decode: stop the run, or "
                           "skip them (counted and listed in the ingest report)")
    data.add_argument("--allow-missing-eval-classes", action="store_true",
                      help="accept an included class without images in eval/test")
    data.add_argument("--data-csv", metavar="FILE",
                      help="read FER2013's CSV form (emotion,pixels,Usage) instead of image "
                           "folders: a file in the data root (and in each span-<N> folder); "
                           "with no --data-root, the CSV's path (docs/data.md)")
    data.add_argument("--csv-private-test", action="store_true",
                      help="with --data-csv, ingest the PrivateTest rows as the 'test' split "
                           "(by default they are listed in the ingest report as skipped)")
    data.add_argument("--schema-dir", default=schema_dir_default,
                      help="directory holding the curated schema.pbtxt")
    data.add_argument("--transform-statistics", action="store_true",
                      help="let Transform compute pre- and post-transform statistics too")

    model = parser.add_argument_group("models and training")
    model.add_argument("--image-size", type=int,
                       help="model input size (default: the profile's)")
    model.add_argument("--channels", type=int, choices=(1, 3),
                       help="model input channels (default: the profile's)")
    model.add_argument("--architectures", type=parse_architectures,
                       default=list(contract.ARCHITECTURES),
                       help="candidate models, comma-separated, or 'none' for the data half only")
    tuning = model.add_mutually_exclusive_group()
    tuning.add_argument("--tuning", dest="tuning", action="store_true", default=None,
                        help="run KerasTuner before each Trainer (default: the profile's; "
                             "on for demo, off for cpu and gpu)")
    tuning.add_argument("--no-tuning", dest="tuning", action="store_false",
                        help="skip KerasTuner; train with the default hyperparameters")
    model.add_argument("--time-budget", type=parse_duration, dest="time_budget_s",
                       metavar="DURATION",
                       help="wall-clock budget of the whole run, e.g. 2h, 90m, 1h30m; 0 trains "
                            "by epochs. The profile's reserve for the data half and evaluation "
                            "comes off first; the Trainers share the rest by their time_share "
                            "and plan their epochs to end with it (default: the profile's: "
                            + ", ".join(f"{p.name} {_budget_text(p.time_budget_s)}"
                                        for p in configs.PROFILES.values()) + ")")
    model.add_argument("--epochs", type=int,
                       help="training epochs; with a time budget, the most a Trainer may plan "
                            "(default: the profile's)")
    model.add_argument("--max-steps-per-epoch", type=int,
                       help="cap on training steps per epoch, 0 for full passes over the training "
                            "split (default: the profile's, per architecture)")
    model.add_argument("--training-setting", type=parse_setting, action="append", default=[],
                       metavar="NAME=VALUE", dest="training_settings",
                       help="any training setting (components/models/training_config.py), for "
                            "every architecture, repeatable; VALUE is JSON, e.g. width=0.5 or "
                            'hyperparameters=\'{"learning_rate": 0.01}\'')
    model.add_argument(devices.ALLOW_CPU_OPTION, dest="allow_cpu", action="store_true",
                       help="train on the CPU even when the profile needs a GPU (gpu) and "
                            "TensorFlow sees none; without it such a run stops before it starts")
    model.add_argument("--model-variant", type=parse_mapping, default={},
                       help="ARCH=fer|stock,... (stock: keras.applications as is, e.g. for "
                            "ImageNet weights)")
    model.add_argument("--weights", type=parse_mapping, default={},
                       help="ARCH=PATH,...: local pretrained weights (stock variant); nothing is "
                            "downloaded")

    push = parser.add_argument_group("evaluation and push")
    push.add_argument("--min-accuracy", type=float,
                      help="Evaluator threshold to bless a model (default: the profile's)")
    push.add_argument("--serving-dir", help=serving_dir_help)
    push.add_argument("--change-tolerance", type=float, default=configs.DEFAULT_CHANGE_TOLERANCE,
                      help="push a winner that is worse than the serving model by at most this "
                           "much on the selection metric (0: not worse; a tie pushes)")
    push.add_argument("--report-images", choices=contract.REPORT_IMAGES_CHOICES,
                      default=contract.REPORT_IMAGES_ALL,
                      help="none: leave every face image (sample faces, the mistakes gallery, "
                           "the Grad-CAM heatmaps) out of the run report and the model card, "
                           "keeping the numbers and plots (default: all)")

    retrain = parser.add_argument_group("retraining")
    retrain.add_argument("--span", type=int,
                         help="with DATA_ROOT/span-<N>/ folders, read span N (default: latest)")
    retrain.add_argument("--window-spans", type=int, default=configs.DEFAULT_WINDOW_SPANS,
                         metavar="K",
                         help="train on the span read and the K-1 spans before it that earlier "
                              "runs trained on (1: that span alone); the Evaluators read the "
                              "span read alone")
    retrain.add_argument("--accept-drift", action="store_true",
                         help="train even if the data drifted past schema/drift_config.pbtxt's "
                              "thresholds (the drift is still reported)")
    retrain.add_argument("--cold-start", dest="warm_start", action="store_false",
                         help="train from scratch, not from the last pushed model's weights")

    orchestration = parser.add_argument_group("orchestration")
    orchestration.add_argument("--pipeline-name", default=configs.PIPELINE_NAME)
    orchestration.add_argument("--no-cache", dest="enable_cache", action="store_false",
                               help="run every component again, even when an identical earlier "
                                    "run (same files, same settings) could be reused")
    orchestration.add_argument("--beam-runner", default=beam_runners.DEFAULT_RUNNER,
                               choices=beam_runners.NAMES,
                               help="where the Beam components (ExampleGen, StatisticsGen, "
                                    "Transform, the Evaluators) run: "
                                    f"{beam_runners.describe()}; a missing argument stops the "
                                    "run before it starts (docs/beam.md)")
    orchestration.add_argument("--beam-arg", action="append", default=[], dest="beam_args",
                               help="extra Beam pipeline argument (repeatable; it wins over the "
                                    "runner's), e.g. --beam-arg=--direct_num_workers=4 or "
                                    "--beam-arg=--project=PROJECT")


def training_overrides(args: argparse.Namespace) -> Dict[str, Any]:
    """Training settings given on the command line; they override the profile's."""
    overrides = dict(args.training_settings)
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.max_steps_per_epoch is not None:
        overrides["max_steps_per_epoch"] = args.max_steps_per_epoch
    if args.allow_cpu:
        overrides["require_gpu"] = False
    return overrides


# Options whose parsed name is the configs.RunOptions field's name.
_SAME_NAME = ("profile", "classes", "split_folders", "split_ratios", "validation_fraction",
              "on_bad_image", "allow_missing_eval_classes", "data_csv", "csv_private_test",
              "schema_dir", "transform_statistics",
              "image_size", "channels", "architectures", "time_budget_s", "weights",
              "min_accuracy", "serving_dir", "change_tolerance", "report_images", "span",
              "window_spans",
              "accept_drift", "warm_start", "enable_cache", "beam_runner", "beam_args")


def run_options(args: argparse.Namespace) -> Dict[str, Any]:
    """configs.RunOptions fields from parsed options (all but data_root, which each runner
    resolves itself)."""
    options = {name: getattr(args, name) for name in _SAME_NAME}
    options.update(exclude_classes=args.exclude_classes or (), enable_tuning=args.tuning,
                   training=training_overrides(args), model_variants=args.model_variant)
    return options
