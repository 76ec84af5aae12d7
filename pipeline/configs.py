"""Every constant and default of the FER pipeline, in one place.

Feature keys, class names, split folder names and run profiles are defined here and imported
everywhere else; nothing downstream re-spells them.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Dict, Mapping, Optional, Tuple

PIPELINE_NAME = "fer-pipeline"
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# --- Raw features written by ImageFolderExampleGen (one tf.Example per image) ----------------
IMAGE_KEY = "image"                # encoded image bytes exactly as read from disk
LABEL_KEY = "label"                # int64 class id (index into the sorted class names)
LABEL_NAME_KEY = "label_name"      # class folder name, e.g. b"happy"
SOURCE_PATH_KEY = "source_path"    # path relative to the data root, e.g. b"Training/happy/x.jpg"
IMAGE_HEIGHT_KEY = "image_height"
IMAGE_WIDTH_KEY = "image_width"
IMAGE_CHANNELS_KEY = "image_channels"
IMAGE_FORMAT_KEY = "image_format"  # b"JPEG", b"PNG", b"BMP" or b"GIF"

# Features present at serving time (a client sends only the encoded image).
SERVING_FEATURE_KEYS = (IMAGE_KEY,)


def transformed_name(key: str) -> str:
    """Name of a feature after Transform (TFX convention: `_xf` suffix)."""
    return key + "_xf"


# --- Classes ----------------------------------------------------------------------------------
# All FER2013 classes. Label ids are the index in the *sorted* list of included class names, so
# they are the same on every machine and run for the same class selection.
FER2013_CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
# The original study used six classes; `disgust` (436 training images) is opt-in.
DEFAULT_CLASSES = tuple(c for c in FER2013_CLASSES if c != "disgust")

# --- Splits -----------------------------------------------------------------------------------
TRAIN_SPLIT = "train"
EVAL_SPLIT = "eval"
TEST_SPLIT = "test"
# Carved out of the training split by hash (ImageFolderExampleGen's validation_fraction): the
# Tuner's objective and the Trainer's early stopping read it, so the eval split (FER2013's
# PublicTest) stays untouched until the Evaluator scores it.
VALID_SPLIT = "valid"
DEFAULT_VALIDATION_FRACTION = 0.1
# Split folder name -> output split. FER2013's names and Kaggle's; override with --split-folders.
DEFAULT_SPLIT_FOLDERS: Dict[str, str] = {
    "Training": TRAIN_SPLIT,
    "train": TRAIN_SPLIT,
    "PublicTest": EVAL_SPLIT,
    "test": EVAL_SPLIT,
    "PrivateTest": TEST_SPLIT,
}
REQUIRED_SPLITS = (TRAIN_SPLIT, EVAL_SPLIT)

# --- Image files ------------------------------------------------------------------------------
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
# Formats tf.io.decode_image (used by Transform and serving) can decode.
DECODABLE_FORMATS = ("JPEG", "PNG", "BMP", "GIF")

# Bad-input policies for files with an image extension that cannot be used as an image.
ON_BAD_IMAGE_FAIL = "fail"  # stop the run, listing the offending files
ON_BAD_IMAGE_SKIP = "skip"  # count, list in the ingest report, and go on
ON_BAD_IMAGE_CHOICES = (ON_BAD_IMAGE_FAIL, ON_BAD_IMAGE_SKIP)

# --- Schema -----------------------------------------------------------------------------------
SCHEMA_DIR = os.path.join(PROJECT_ROOT, "schema")

# --- Transform --------------------------------------------------------------------------------
DEFAULT_IMAGE_SIZE = 48
DEFAULT_CHANNELS = 1


# --- Models -----------------------------------------------------------------------------------
ARCHITECTURES = ("vgg16", "resnet50")
# Used when tuning is off, and as the first trial of every search.
DEFAULT_HYPERPARAMETERS = {
    "vgg16": {"learning_rate": 1e-3, "optimizer": "adam", "dropout": 0.5, "head_units": 256},
    "resnet50": {"learning_rate": 1e-3, "optimizer": "adam", "dropout": 0.3, "head_units": 0},
}


@dataclasses.dataclass(frozen=True)
class Profile:
    """A named bundle of run settings (data size, Beam parallelism, model input)."""

    name: str
    description: str
    image_size: int = DEFAULT_IMAGE_SIZE
    channels: int = DEFAULT_CHANNELS
    beam_direct_running_mode: str = "in_memory"
    beam_direct_num_workers: int = 1
    # Training (components/models/trainer.py TrainConfig) and evaluation.
    epochs: int = 8
    batch_size: int = 32
    max_steps_per_epoch: int = 0          # 0: full passes
    # bf16 mixed precision. Off on CPU profiles: on CPUs without native bf16 (AVX2 only, as our
    # 2-core machines) it trains 3-8x slower than fp32 (BENCHMARKS.md).
    mixed_precision: bool = False
    augment: bool = True                  # flips, shifts, rotation, contrast on training batches
    # Cap on the validation examples scored after each epoch (a fixed random subset; 0: all).
    # Validation feeds early stopping and best-epoch restore only; the Evaluator scores the
    # whole eval split.
    validation_examples: int = 0
    tuning: bool = True                   # run KerasTuner before each Trainer
    tuner_trials: int = 2
    tuner_epochs: int = 1
    tuner_steps_per_epoch: int = 5
    early_stopping_patience: int = 3
    # Per-architecture overrides of the training settings above (budgets differ: ResNet50
    # trains at about half VGG16's images/s on CPU).
    architecture_training: Mapping[str, Mapping[str, object]] = dataclasses.field(
        default_factory=dict)
    min_accuracy: float = 0.5             # Evaluator value threshold (blessing)

    def training_config(self, architecture: Optional[str] = None) -> Dict[str, object]:
        """TrainConfig settings, with `architecture`'s overrides when given."""
        config: Dict[str, object] = {k: getattr(self, k) for k in (
            "epochs", "batch_size", "max_steps_per_epoch", "mixed_precision", "augment",
            "validation_examples", "tuner_trials", "tuner_epochs", "tuner_steps_per_epoch",
            "early_stopping_patience")}
        if architecture:
            config.update(self.architecture_training.get(architecture, {}))
        return config

    def training_by_architecture(self) -> Dict[str, Dict[str, object]]:
        return {arch: self.training_config(arch) for arch in ARCHITECTURES}

    def beam_pipeline_args(self) -> Tuple[str, ...]:
        return (
            f"--direct_running_mode={self.beam_direct_running_mode}",
            f"--direct_num_workers={self.beam_direct_num_workers}",
        )


PROFILES: Mapping[str, Profile] = {
    "demo": Profile(
        name="demo",
        description="generated demo faces, a few hundred images: the whole run in minutes",
        image_size=32,          # cartoon faces need no more; 2.25x less compute than 48 px
        # Measured on the demo faces (BENCHMARKS.md): VGG16-fer leaves chance after 3-4 epochs of
        # 12 steps and passes 0.5 after 5; augmentation only slowed that (the faces already vary
        # in position, scale and contrast). ResNet50-fer costs about 2.5x VGG16's time per step
        # here and needs more steps than a few-minute demo affords: it runs a token budget, so
        # its branch is exercised, and is not expected to be blessed.
        epochs=7,
        batch_size=32,
        augment=False,
        tuner_steps_per_epoch=3,
        architecture_training={
            "resnet50": {"epochs": 2, "tuner_trials": 1, "tuner_steps_per_epoch": 2},
        },
    ),
    "cpu": Profile(
        name="cpu",
        description="FER2013 on a 2-core CPU machine: the whole pipeline within 2 hours",
        # One in-process Beam worker: on 2 cores, for FER2013's 32k images, starting worker
        # processes costs more than it saves (data half 63 s vs 104 s; BENCHMARKS.md).
        beam_direct_running_mode="in_memory",
        beam_direct_num_workers=1,
        # The 2-hour budget buys about one pass over FER2013 per model on 2 cores (VGG16-fer
        # ~12.5, ResNet50-fer ~7.8 training images/s at 48 px, batch 64; BENCHMARKS.md), so each
        # model trains a fixed number of steps, split into 4 epochs for the LR schedule and
        # early stopping, validated on 1,000 held-out training images. A search trial would
        # cost a sizeable part of that budget and, at a few dozen steps, rank configurations
        # by noise: tuning is off here (--tuning turns it on) and the Trainers use
        # configs.DEFAULT_HYPERPARAMETERS.
        epochs=4,
        batch_size=64,
        # No augmentation: at one to two passes the models underfit (the 3-epoch run at c4db347
        # ended at 0.29 training vs 0.32 validation accuracy), so there is no overfitting for
        # it to prevent, and on the demo faces it slowed learning. The gpu profile keeps it.
        augment=False,
        validation_examples=1000,
        tuning=False,
        tuner_trials=2,
        tuner_epochs=1,
        tuner_steps_per_epoch=30,
        architecture_training={
            "vgg16": {"max_steps_per_epoch": 150},     # 38k images, ~1.5 passes; ~45 min
            "resnet50": {"max_steps_per_epoch": 120},  # 31k images, ~1.2 passes; ~50 min
        },
        min_accuracy=0.35,
    ),
    "gpu": Profile(
        name="gpu",
        description="FER2013-sized or larger data on a many-core machine with an accelerator",
        beam_direct_running_mode="multi_processing",
        beam_direct_num_workers=0,  # 0 = one worker per CPU core
        epochs=40,
        batch_size=128,
        mixed_precision=True,
        tuner_trials=10,
        tuner_epochs=3,
        tuner_steps_per_epoch=0,
        early_stopping_patience=5,
        min_accuracy=0.35,
    ),
}
DEFAULT_PROFILE = "demo"

# --- Demo data --------------------------------------------------------------------------------
DEMO_IMAGES_PER_CLASS = {TRAIN_SPLIT: 60, EVAL_SPLIT: 20}
DEMO_SEED = 2013

MODEL_NAME = "fer"  # TF Serving model name: <serving_dir>/<MODEL_NAME>/<version>/

# --- Output layout (local runs) ---------------------------------------------------------------
DEFAULT_OUTPUT_DIR = os.path.join(PROJECT_ROOT, "outputs")


@dataclasses.dataclass(frozen=True)
class OutputLayout:
    """Where a local run writes: artifacts, ML Metadata, and (later) the serving directory."""

    root: str

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.root, "pipeline_root")

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.root, "metadata", "metadata.sqlite")

    @property
    def serving_dir(self) -> str:
        return os.path.join(self.root, "serving")

    @property
    def demo_data_dir(self) -> str:
        return os.path.join(self.root, "demo_data")


def get_profile(name: Optional[str]) -> Profile:
    try:
        return PROFILES[name or DEFAULT_PROFILE]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}") from None
