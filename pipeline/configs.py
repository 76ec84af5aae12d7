"""Run profiles and the defaults of a run, and the one way from a profile and a user's options to
the arguments of `create_pipeline` (both runners use it).

Names shared with the components (feature keys, splits, classes, signatures) live in
components/contract.py; training settings and their defaults in
components/models/training_config.py. Only light modules are imported here: the command line
reads this module before TensorFlow is loaded.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from components import contract
from components.models import training_config
from pipeline import beam_runners

PIPELINE_NAME = "fer-pipeline"
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA_DIR = os.path.join(PROJECT_ROOT, "schema")

DEFAULT_VALIDATION_FRACTION = 0.1
DEFAULT_MIN_ACCURACY = 0.5   # Evaluator value threshold for blessing
DEFAULT_SELECTION_METRIC = contract.ACCURACY_METRIC
SELECTION_METRICS = (contract.ACCURACY_METRIC, contract.MACRO_F1_METRIC)
DEFAULT_CHANGE_TOLERANCE = 0.0  # a candidate as good as the serving model is pushed
DEFAULT_WINDOW_SPANS = 1        # train on the span read alone


class PipelineArgumentError(ValueError):
    """Options or `create_pipeline` arguments that cannot make a pipeline."""


def check_arguments(classes: Optional[Sequence[str]], exclude_classes: Sequence[str],
                    image_size: int, channels: int, validation_fraction: float,
                    on_bad_image: str, training: Mapping[str, Mapping[str, Any]],
                    min_accuracy: float, selection_metric: str,
                    change_tolerance: float = DEFAULT_CHANGE_TOLERANCE,
                    window_spans: int = DEFAULT_WINDOW_SPANS,
                    kfp_v2_resolvers: bool = False,
                    data_csv: Optional[str] = None,
                    split_ratios: Optional[Mapping[str, float]] = None,
                    report_images: str = contract.REPORT_IMAGES_ALL) -> List[str]:
    """Raises PipelineArgumentError naming every bad argument; returns the class names
    by label id (empty when nothing is trained)."""
    problems = []
    unknown = set(training) - set(contract.ARCHITECTURES)
    if unknown:
        problems.append(f"unknown architectures {sorted(unknown)}; choose from "
                        f"{contract.ARCHITECTURES}")
    for arch, settings in sorted(training.items()):
        reserved = {"architecture", "label_names"} & set(settings)
        if reserved:
            problems.append(f"training[{arch!r}] sets {sorted(reserved)}, which the pipeline sets")
        try:
            training_config.check_settings(settings)
        except ValueError as e:
            problems.append(f"training[{arch!r}]: {e}")
    label_names: List[str] = []
    if training:
        if classes is None:
            problems.append("training needs the class names: pass classes explicitly")
        else:
            label_names = list(contract.label_names(classes, exclude_classes))
            if not label_names:
                problems.append(f"no classes left to train: classes {list(classes)}, "
                                f"excluded {list(exclude_classes)}")
    if not (isinstance(image_size, int) and image_size >= 1):
        problems.append(f"image_size must be a positive integer, got {image_size!r}")
    if channels not in (1, 3):
        problems.append(f"channels must be 1 or 3, got {channels!r}")
    if not 0.0 <= validation_fraction < 1.0:
        problems.append(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    if on_bad_image not in contract.ON_BAD_IMAGE_CHOICES:
        problems.append(f"on_bad_image must be one of {contract.ON_BAD_IMAGE_CHOICES}, "
                        f"got {on_bad_image!r}")
    if not 0.0 <= min_accuracy <= 1.0:
        problems.append(f"min_accuracy must be in [0, 1], got {min_accuracy}")
    if not 0.0 <= change_tolerance < 1.0:
        problems.append(f"change_tolerance must be in [0, 1), got {change_tolerance}")
    if not (isinstance(window_spans, int) and window_spans >= 1):
        problems.append(f"window_spans must be a positive integer, got {window_spans!r}")
    elif window_spans > 1 and kfp_v2_resolvers:
        problems.append(f"window_spans {window_spans}: a window of spans reads ML Metadata "
                        "lineage, which TFX's Kubeflow V2 compiler cannot compile; use 1")
    if data_csv:
        from components.image_example_gen import csv_source

        problem = csv_source.data_csv_problem(data_csv, split_ratios)
        if problem:
            problems.append(problem)
    if report_images not in contract.REPORT_IMAGES_CHOICES:
        problems.append(f"report_images must be one of {contract.REPORT_IMAGES_CHOICES}, "
                        f"got {report_images!r}")
    if selection_metric not in SELECTION_METRICS:
        problems.append(f"selection_metric must be one of {SELECTION_METRICS}, "
                        f"got {selection_metric!r}")
    if problems:
        raise PipelineArgumentError("create_pipeline: " + "; ".join(problems))
    return label_names


@dataclasses.dataclass(frozen=True)
class Profile:
    """A named bundle of run settings: model input, Beam parallelism, training budget."""

    name: str
    description: str
    image_size: int = contract.DEFAULT_IMAGE_SIZE
    channels: int = contract.DEFAULT_CHANNELS
    beam_direct_running_mode: str = "in_memory"
    beam_direct_num_workers: int = 1
    tuning: bool = True                   # run KerasTuner before each Trainer
    min_accuracy: float = DEFAULT_MIN_ACCURACY
    # The whole run's wall-clock budget (0: none; epochs decide), and what comes off it before
    # the Trainers share the rest by their `time_share`: the data half, the evaluations and
    # the components around them, as measured for the profile's data (see TimeBudget).
    time_budget_s: float = 0.0
    time_reserve_s: float = 0.0
    # Overrides of training_config.TrainConfig's defaults, for every architecture ...
    training: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # ... and per architecture on top (budgets differ: ResNet50 trains slower than VGG16).
    architecture_training: Mapping[str, Mapping[str, Any]] = dataclasses.field(
        default_factory=dict)

    def training_config(self, architecture: Optional[str] = None) -> Dict[str, Any]:
        """Every training setting: TrainConfig's defaults, then this profile's, then
        `architecture`'s."""
        config = {**training_config.default_settings(), **self.training}
        if architecture:
            config.update(self.architecture_training.get(architecture, {}))
        return config

    def training_by_architecture(self) -> Dict[str, Dict[str, Any]]:
        return {arch: self.training_config(arch) for arch in contract.ARCHITECTURES}

    def beam_pipeline_args(self) -> Tuple[str, ...]:
        return (
            f"--direct_running_mode={self.beam_direct_running_mode}",
            f"--direct_num_workers={self.beam_direct_num_workers}",
        )


# The `gpu` profile's training recipe, as measured with bench/gpu_recipe on an H100 (run 2 in
# bench/gpu_recipe/results; pipeline/configs_test.py checks the two agree). SGD with Nesterov
# momentum, decoupled weight decay, 3 warm-up epochs then a cosine to 0, label smoothing, flips,
# shifts, rotation, contrast, zoom, pad-and-crop and random erasing; the epoch with the best
# validation accuracy is kept; the exported model averages ten crops (center, 4 corners, mirrors).
GPU_RECIPE: Mapping[str, Any] = {
    "training": {
        "batch_size": 128, "mixed_precision": True, "weight_decay": 1e-3,
        "label_smoothing": 0.1, "warmup_epochs": 3, "lr_floor": 0.0, "class_weighting": "none",
        "best_epoch_metric": "val_accuracy", "augment": True, "zoom": 0.1, "crop_pad": 4,
        "erasing": 0.5, "test_time_augmentation": "crops", "tta_shift": 2,
        # On the accelerator, as measured: on the CPU these layers ran at about 2,100 images/s
        # per core (BENCHMARKS.md#input-pipeline), the H100 trained VGG16 at 35,000.
        "augment_in_model": True,
    },
    "architecture_training": {
        # early_stopping_patience = epochs: never stops early, keeps the best epoch.
        "vgg16": {"epochs": 113, "early_stopping_patience": 113,
                  "hyperparameters": {"optimizer": "sgd", "learning_rate": 0.01}},
        "resnet50": {"epochs": 53, "early_stopping_patience": 53,
                     "hyperparameters": {"optimizer": "sgd", "learning_rate": 0.05}},
    },
}

# Why each budget is what it is: BENCHMARKS.md#demo, BENCHMARKS.md#training-time-budget (and the
# previous `cpu` profile's whole run, BENCHMARKS.md#fer2013-cpu), BENCHMARKS.md#data-half-fer2013.
PROFILES: Mapping[str, Profile] = {
    "demo": Profile(
        name="demo",
        description="generated demo faces, a few hundred images: the whole run in minutes",
        image_size=32,  # the cartoon faces need no more
        # Both architectures at a quarter of their width: the cartoon faces need no more, and
        # both learn them in a few epochs (BENCHMARKS.md#demo-profile).
        training={"epochs": 7, "batch_size": 32, "augment": False, "tuner_steps_per_epoch": 3,
                  "width": 0.25, "warm_start_epochs": 3},
        # ResNet50-fer trains its defaults untuned: a one-trial search would train just the
        # defaults (the first trial is always the defaults) and cost a minute.
        architecture_training={
            "resnet50": {"epochs": 8, "tuner_trials": 0,
                         "hyperparameters": {"learning_rate": 3e-3}},
        },
    ),
    "cpu": Profile(
        name="cpu",
        description="FER2013 on a 2-core CPU machine: the whole pipeline in 2 hours",
        # In-process Beam: on 2 cores, starting worker processes costs more than it saves.
        beam_direct_running_mode="in_memory",
        beam_direct_num_workers=1,
        # Trained to the clock, not to a number of epochs: our 2-core machines differ 4-6x in
        # training speed. The data half and the evaluations took under 15 minutes of the 2
        # hours on the slower ones; the Trainers share the rest by their time_share and plan
        # their epochs
        # (BENCHMARKS.md#training-time-budget).
        time_budget_s=2 * 3600,
        time_reserve_s=15 * 60,
        # Both architectures at a quarter width: on 2 cores they learn more per pass than the
        # full ones and train 4-7x as many images an hour (BENCHMARKS.md#cpu-recipe-width).
        # Epochs of at most 400 steps of 64 (one pass over FER2013's training split);
        # the budget decides how many, up to `epochs`, with no early stop: the epoch with the
        # best validation accuracy is kept. The recipe is the `gpu` profile's (SGD + Nesterov,
        # decoupled weight decay, label smoothing, every augmentation, ten-crop views in the
        # export): without augmentation the networks overfit after about 8 passes, and the
        # budget buys more than that (BENCHMARKS.md#training-time-budget). The
        # augmentation runs in the input pipeline: about 2,000 images/s per core. Tuning
        # trials would rank configurations by noise at this budget: the defaults train.
        tuning=False,
        min_accuracy=0.45,
        training={**{k: v for k, v in GPU_RECIPE["training"].items()
                     if k not in ("batch_size", "mixed_precision", "augment_in_model")},
                  "width": 0.25, "batch_size": 64, "max_steps_per_epoch": 400,
                  "validation_examples": 1000, "warmup_epochs": 2,
                  "epochs": 100, "early_stopping_patience": 100,
                  "tuner_trials": 2, "tuner_epochs": 1, "tuner_steps_per_epoch": 30},
        architecture_training={
            # A warm-started retraining run trains a few epochs, within the same budget.
            "vgg16": {**GPU_RECIPE["architecture_training"]["vgg16"], "epochs": 100,
                      "early_stopping_patience": 100, "warm_start_epochs": 2},
            # ResNet50-fer: with SGD at 0.05 (the GPU recipe's rate, for batches twice these)
            # it learned nothing for its first 6 of 21 epochs and ended at 54.7%, under the
            # 56% asked; Adam at 1e-3 learned from the first epoch in the earlier `cpu` recipe.
            # Equal shares: with 1.4 of them ResNet50-fer reached 59% but VGG16-fer, the
            # model pushed, got 49 passes instead of 52 and was still underfitting (training
            # accuracy 0.63 with augmentation, validation 0.61) (BENCHMARKS.md#fer2013-cpu-2h).
            "resnet50": {**GPU_RECIPE["architecture_training"]["resnet50"], "epochs": 100,
                         "early_stopping_patience": 100, "warm_start_epochs": 1,
                         "hyperparameters": {"optimizer": "adam", "learning_rate": 1e-3}},
        },
    ),
    "gpu": Profile(
        name="gpu",
        description="FER2013-sized or larger data on a many-core machine with an accelerator",
        beam_direct_running_mode="multi_processing",
        beam_direct_num_workers=0,  # 0 = one worker per CPU core
        # The recipe measured on an H100 (BENCHMARKS.md#gpu-recipe; GPU_RECIPE below), with
        # no search: `--tuning` searches around it.
        tuning=False,
        # A guard more than a plan: on an H100 the recipe's epochs (its cap) take minutes
        # (BENCHMARKS.md#gpu-recipe-probe); a slower accelerator stops at the budget instead.
        time_budget_s=3600,
        time_reserve_s=10 * 60,
        training={**GPU_RECIPE["training"], "tuner_trials": 10, "tuner_epochs": 3,
                  "tuner_steps_per_epoch": 0, "require_gpu": True},
        architecture_training=GPU_RECIPE["architecture_training"],
    ),
}
DEFAULT_PROFILE = "demo"

# --- Demo data --------------------------------------------------------------------------------
DEMO_IMAGES_PER_CLASS = {contract.TRAIN_SPLIT: 60, contract.EVAL_SPLIT: 20}
DEMO_SEED = 2013


def get_profile(name: Optional[str]) -> Profile:
    try:
        return PROFILES[name or DEFAULT_PROFILE]
    except KeyError:
        raise PipelineArgumentError(
            f"unknown profile {name!r}; choose one of {sorted(PROFILES)}") from None


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """What a user chooses for a run on top of a profile; None means "the profile's".

    The same options, with the same defaults, reach `create_pipeline` from the local runner and
    from the Kubeflow runner (see `pipeline_arguments`).
    """

    data_root: str
    profile: str = DEFAULT_PROFILE
    # Data
    classes: Optional[Sequence[str]] = contract.DEFAULT_CLASSES   # None: every class folder
    exclude_classes: Sequence[str] = ()
    split_folders: Mapping[str, str] = dataclasses.field(
        default_factory=lambda: dict(contract.DEFAULT_SPLIT_FOLDERS))
    split_ratios: Optional[Mapping[str, float]] = None
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION
    on_bad_image: str = contract.ON_BAD_IMAGE_FAIL
    allow_missing_eval_classes: bool = False
    data_csv: Optional[str] = None        # FER2013's CSV form, relative to data_root
    csv_private_test: bool = False        # with data_csv: PrivateTest rows as the test split
    schema_dir: str = SCHEMA_DIR
    transform_statistics: bool = False
    # Model input and training
    image_size: Optional[int] = None
    channels: Optional[int] = None
    architectures: Sequence[str] = contract.ARCHITECTURES
    enable_tuning: Optional[bool] = None
    time_budget_s: Optional[float] = None   # the whole run's; 0: none (epochs decide)
    training: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # every architecture
    model_variants: Mapping[str, str] = dataclasses.field(default_factory=dict)
    weights: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # Evaluation and push
    min_accuracy: Optional[float] = None
    selection_metric: str = DEFAULT_SELECTION_METRIC
    serving_dir: Optional[str] = None     # None: nothing is pushed
    change_tolerance: float = DEFAULT_CHANGE_TOLERANCE  # how much worse than serving still pushes
    report_images: str = contract.REPORT_IMAGES_ALL     # "none": no face image in the report
    # Retraining
    span: Optional[int] = None            # None: the latest span-<N> folder (if any)
    window_spans: int = DEFAULT_WINDOW_SPANS  # train on this span and the ones before it
    accept_drift: bool = False
    warm_start: bool = True
    # Orchestration
    enable_cache: bool = True
    beam_runner: str = beam_runners.DEFAULT_RUNNER
    beam_args: Sequence[str] = ()          # the user's, last: they win
    beam_sdk_image: Optional[str] = None   # the pipeline image, where the runner knows it
    beam_setup_file: Optional[str] = None  # ships this project to workers without the image


def pipeline_arguments(options: RunOptions) -> Dict[str, Any]:
    """`create_pipeline` keyword arguments for `options` on top of its profile: all but
    `pipeline_name`, `pipeline_root` and `metadata_connection_config`, which are the runner's.

    Training settings merge in this order: TrainConfig's defaults, the profile's, the profile's
    for the architecture, then the user's (`options.training`, `model_variants`, `weights`).
    With `classes=None` and models to train, the class folders under the data root are listed
    now: the exported model needs the class names.
    """
    profile = get_profile(options.profile)
    beam_pipeline_args = _beam_pipeline_args(options, profile)
    unknown = set(options.architectures) - set(contract.ARCHITECTURES)
    if unknown:
        raise PipelineArgumentError(f"unknown architectures {sorted(unknown)}; "
                                    f"choose from {contract.ARCHITECTURES}")
    for name, per_arch in (("model_variants", options.model_variants),
                           ("weights", options.weights)):
        stray = set(per_arch) - set(options.architectures)
        if stray:
            raise PipelineArgumentError(
                f"{name} names architectures that are not trained: {sorted(stray)}")
    budget = time_budget(options)
    training = {}
    for arch in options.architectures:
        settings = {**profile.training_config(arch), **options.training}
        if budget and "time_budget_s" not in options.training:
            settings["time_budget_s"] = budget.trainers[arch]
        if arch in options.model_variants:
            settings["variant"] = options.model_variants[arch]
        if arch in options.weights:
            settings["weights"] = options.weights[arch]
        training[arch] = settings
    classes = options.classes
    if classes is None and training:
        classes = _class_folders(options)
    return dict(
        data_root=options.data_root,
        schema_dir=options.schema_dir,
        split_folders=dict(options.split_folders),
        classes=None if classes is None else list(classes),
        exclude_classes=list(options.exclude_classes),
        split_ratios=dict(options.split_ratios) if options.split_ratios else None,
        validation_fraction=options.validation_fraction,
        on_bad_image=options.on_bad_image,
        allow_missing_eval_classes=options.allow_missing_eval_classes,
        data_csv=options.data_csv,
        csv_private_test=options.csv_private_test,
        transform_statistics=options.transform_statistics,
        image_size=options.image_size or profile.image_size,
        channels=options.channels or profile.channels,
        training=training,
        enable_tuning=profile.tuning if options.enable_tuning is None else options.enable_tuning,
        min_accuracy=(profile.min_accuracy if options.min_accuracy is None
                      else options.min_accuracy),
        selection_metric=options.selection_metric,
        serving_dir=options.serving_dir,
        change_tolerance=options.change_tolerance,
        report_images=options.report_images,
        span=options.span,
        window_spans=options.window_spans,
        accept_drift=options.accept_drift,
        warm_start=options.warm_start,
        enable_cache=options.enable_cache,
        beam_pipeline_args=beam_pipeline_args,
    )


@dataclasses.dataclass(frozen=True)
class TimeBudget:
    """A run's wall-clock budget: what is kept for the data half and evaluation, and each
    Trainer's share of the rest (seconds)."""

    run_s: float
    reserve_s: float
    trainers: Mapping[str, float]

    def describe(self) -> str:
        """'Time budget 2h00m: 15m00s for the data and evaluation, Trainer vgg16 52m30s, ...'"""
        fmt = training_config.format_duration
        reserve = f"{fmt(self.reserve_s)} for the data and evaluation, " if self.reserve_s else ""
        return (f"Time budget {fmt(self.run_s)}: {reserve}"
                + ", ".join(f"Trainer {arch} {fmt(s)}" for arch, s in self.trainers.items()))


def time_budget(options: RunOptions) -> Optional[TimeBudget]:
    """The run's budget split (None without one): the profile's reserve off the top, the rest
    by the architectures' `time_share`s. A budget smaller than twice the reserve is refused:
    the Trainers would get too little to plan with."""
    profile = get_profile(options.profile)
    run_s = profile.time_budget_s if options.time_budget_s is None else options.time_budget_s
    if not run_s or not options.architectures:
        return None
    reserve_s = profile.time_reserve_s
    if run_s < 2 * reserve_s:
        fmt = training_config.format_duration
        raise PipelineArgumentError(
            f"time budget {fmt(run_s)} is too small for profile {profile.name!r}: "
            f"{fmt(reserve_s)} of it go to the data half and evaluation; give at least "
            f"{fmt(2 * reserve_s)}, or 0 to train by epochs")
    shares = {arch: float({**profile.training_config(arch), **options.training}["time_share"])
              for arch in options.architectures}
    total = sum(shares.values())
    return TimeBudget(run_s=run_s, reserve_s=reserve_s,
                      trainers={arch: round((run_s - reserve_s) * share / total, 1)
                                for arch, share in shares.items()})


def _beam_pipeline_args(options: RunOptions, profile: Profile) -> List[str]:
    """The runner profile's Beam arguments (pipeline/beam_runners.py), checked."""
    try:
        return beam_runners.beam_pipeline_args(
            options.beam_runner, profile.beam_pipeline_args(), options.beam_args,
            sdk_image=options.beam_sdk_image, setup_file=options.beam_setup_file)
    except beam_runners.BeamRunnerError as e:
        raise PipelineArgumentError(str(e)) from None


def _class_folders(options: RunOptions) -> Tuple[str, ...]:
    from components.image_example_gen import layout  # lists folders with tf.io.gfile

    if options.data_csv:  # its emotion ids name FER2013's classes
        return contract.FER2013_CLASSES

    try:
        found = layout.resolve_layout(
            options.data_root, classes=None, split_folders=options.split_folders,
            split_ratios=options.split_ratios,
            allow_missing_eval_classes=options.allow_missing_eval_classes)
    except layout.LayoutError as e:
        raise layout.LayoutError(
            f"classes 'all' lists the class folders under the data root before the run, and "
            f"that failed: {e}. Name the classes instead (--classes a,b,c).") from None
    return found.class_names
