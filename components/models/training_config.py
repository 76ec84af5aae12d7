"""Training settings of the Trainer and Tuner module, with their defaults: the one source.

The pipeline passes them in each Trainer's/Tuner's `custom_config`; run profiles
(pipeline/configs.py) and users override some of them. No TensorFlow here, so that the pipeline's
command line can validate settings without loading it.
"""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Dict, List, Mapping, Optional

from components import contract

VARIANTS = ("fer", "stock")
OPTIMIZERS = ("adam", "sgd")
CLASS_WEIGHTINGS = ("balanced", "none")
BEST_EPOCH_METRICS = ("val_loss", "val_accuracy")
# Test-time augmentation inside the exported model: the mean probability over the views.
TTA_MODES = ("none", "flip", "crops")   # crops: center + 4 corner shifts, each also mirrored
DISTRIBUTE_MODES = ("auto", "default", "mirrored")

# What a Trainer writes beside its SavedModel (warm_start.py), in each Trainer's and Tuner's
# custom_config: TFX's cache key includes it, so a run after a change of that layout trains
# again instead of taking models of the older layout from the cache (2: `keras/classifier.keras`,
# which the ensemble reads). Not a setting: the pipeline adds it, TrainConfig ignores it.
OUTPUTS_VERSION_KEY = "trainer_outputs_version"
OUTPUTS_VERSION = 2

MAX_BUDGET_S = 30 * 24 * 3600.0   # a month: a larger budget is a typo
_DURATION_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([dhms])")

# Hyperparameters used when tuning is off, and the first point of every search.
DEFAULT_HYPERPARAMETERS: Mapping[str, Mapping[str, Any]] = {
    "vgg16": {"learning_rate": 1e-3, "optimizer": "adam", "dropout": 0.5, "head_units": 256},
    "resnet50": {"learning_rate": 1e-3, "optimizer": "adam", "dropout": 0.3, "head_units": 0},
}
HYPERPARAMETER_NAMES = ("learning_rate", "optimizer", "dropout", "head_units",
                        "trainable_base_layers")


@dataclasses.dataclass
class TrainConfig:
    """What one Trainer (and its Tuner) trains, and how."""

    architecture: str
    label_names: List[str]
    variant: str = "fer"                  # "fer" (for 48 px faces) or "stock" keras.applications
    weights: Optional[str] = None         # a local weights file (stock variant); never downloaded
    width: float = 1.0                    # filters x width ("fer" variant): cheaper, narrower nets
    # Overrides of DEFAULT_HYPERPARAMETERS[architecture]: used when tuning is off, and the first
    # point of every search.
    hyperparameters: Dict[str, Any] = dataclasses.field(default_factory=dict)
    epochs: int = 10                      # with a time budget: the most epochs it may plan
    # Wall-clock seconds for this Trainer, from its start to its export (0: none; `epochs`
    # decides). It plans its epochs after the first (time_budget.py); the pipeline sets it
    # from the run's budget and the architectures' `time_share`s.
    time_budget_s: float = 0.0
    time_share: float = 1.0               # weight of this architecture in the run's budget
    batch_size: int = 64
    max_steps_per_epoch: int = 0          # 0: a full pass over the training split
    early_stopping_patience: int = 3
    # bf16; see BENCHMARKS.md#training-throughput before turning it on on CPU
    mixed_precision: bool = False
    # Optimisation recipe (BENCHMARKS.md#gpu-recipe): decoupled weight decay, label
    # smoothing, and the per-epoch schedule: linear warm-up, then cosine down to lr_floor x lr.
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    warmup_epochs: int = 0
    lr_floor: float = 0.05
    class_weighting: str = "balanced"     # inverse class frequency, or "none"
    best_epoch_metric: str = "val_loss"   # early stopping watches it; its best epoch is kept
    augment: bool = True                  # flips, shifts, rotation, contrast on training batches
    # ... and on top of those, when augment is on:
    zoom: float = 0.0                     # random zoom in and out by up to this fraction
    crop_pad: int = 0                     # pad by this many px (reflect), crop back at random
    erasing: float = 0.0                  # probability of erasing one random rectangle
    # Run the augmentation inside the training model (on the accelerator) instead of in the
    # CPU input pipeline; the exported model never holds it.
    augment_in_model: bool = False
    test_time_augmentation: str = "none"  # one of TTA_MODES, inside the exported model
    tta_shift: int = 2                    # px, for the "crops" views
    # "auto": MirroredStrategy over the GPUs when more than one is visible, else the default
    # strategy; "mirrored": MirroredStrategy over the GPUs, or over the logical CPUs if none.
    distribute: str = "auto"
    # Stop before training when TensorFlow sees no GPU (devices.py): the `gpu` profile's networks
    # would train for days on a CPU. `--allow-cpu` turns it off.
    require_gpu: bool = False
    # Cap on the validation examples scored after each epoch (a fixed random subset; 0: all).
    validation_examples: int = 0
    # Starting from the last pushed model's weights (the pipeline's warm start): this many
    # epochs (0: `epochs`) at this share of the learning rate.
    warm_start_epochs: int = 0
    warm_start_lr_scale: float = 0.5
    tuner_trials: int = 2                 # 0: no Tuner for this architecture, even when tuning
    tuner_epochs: int = 1
    tuner_steps_per_epoch: int = 0        # 0: a full pass
    seed: int = 42

    @classmethod
    def from_custom_config(cls, custom_config: Optional[Mapping[str, Any]]) -> "TrainConfig":
        custom_config = dict(custom_config or {})
        custom_config.pop(OUTPUTS_VERSION_KEY, None)
        check_settings(custom_config)
        missing = [k for k in ("architecture", "label_names") if k not in custom_config]
        if missing:
            raise ValueError(f"training settings lack {missing}")
        config = cls(**custom_config)
        if config.architecture not in contract.ARCHITECTURES:
            raise ValueError(f"architecture must be one of {contract.ARCHITECTURES}, "
                             f"got {config.architecture!r}")
        if not config.label_names:
            raise ValueError("label_names must name at least one class")
        return config

    @property
    def num_classes(self) -> int:
        return len(self.label_names)


_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
# Settings a profile or a user may set (the pipeline fills in architecture and label_names).
SETTINGS = tuple(name for name in _FIELDS if name not in ("architecture", "label_names"))
_NON_NEGATIVE = ("epochs", "max_steps_per_epoch", "early_stopping_patience",
                 "validation_examples", "tuner_steps_per_epoch", "warmup_epochs", "crop_pad",
                 "tta_shift", "tuner_trials", "warm_start_epochs")
_POSITIVE = ("batch_size", "tuner_epochs")
# name -> (lowest, highest), both allowed
_FRACTIONS = {"weight_decay": (0.0, 1.0), "label_smoothing": (0.0, 0.5), "lr_floor": (0.0, 1.0),
              "zoom": (0.0, 0.5), "erasing": (0.0, 1.0), "width": (0.0625, 4.0),
              "warm_start_lr_scale": (1e-4, 1.0), "time_budget_s": (0.0, MAX_BUDGET_S),
              "time_share": (0.01, 100.0)}
_CHOICES = {"variant": VARIANTS, "class_weighting": CLASS_WEIGHTINGS,
            "best_epoch_metric": BEST_EPOCH_METRICS, "test_time_augmentation": TTA_MODES,
            "distribute": DISTRIBUTE_MODES}


def default_settings() -> Dict[str, Any]:
    """Every setting in SETTINGS with its default."""
    return {name: _default(_FIELDS[name]) for name in SETTINGS}


def _default(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def check_settings(settings: Mapping[str, Any]) -> None:
    """Raises ValueError naming each unknown setting or out-of-range value."""
    unknown = set(settings) - set(_FIELDS)
    if unknown:
        raise ValueError(f"unknown training settings {sorted(unknown)}; known: {sorted(_FIELDS)}")
    problems = [f"{k}={settings[k]!r} must be >= 0" for k in _NON_NEGATIVE
                if k in settings and not _is_int(settings[k], minimum=0)]
    problems += [f"{k}={settings[k]!r} must be >= 1" for k in _POSITIVE
                 if k in settings and not _is_int(settings[k], minimum=1)]
    problems += [f"{k}={settings[k]!r} must be a number in [{lo}, {hi}]"
                 for k, (lo, hi) in _FRACTIONS.items()
                 if k in settings and not _is_number(settings[k], lo, hi)]
    problems += [f"{k}={settings[k]!r} must be one of {choices}"
                 for k, choices in _CHOICES.items()
                 if k in settings and settings[k] not in choices]
    if settings.get("weights") and settings.get("variant", "fer") != "stock":
        problems.append("weights fit only the stock variant (variant='stock')")
    if settings.get("width", 1.0) != 1.0 and settings.get("variant", "fer") != "fer":
        problems.append("width fits only the fer variant (keras.applications have one width):"
                        " set width=1 with variant='stock'")
    problems += _hyperparameter_problems(settings.get("hyperparameters") or {})
    if problems:
        raise ValueError("bad training settings: " + "; ".join(problems))


def _hyperparameter_problems(hparams: Mapping[str, Any]) -> List[str]:
    problems = [f"unknown hyperparameter {k!r}; known: {HYPERPARAMETER_NAMES}"
                for k in hparams if k not in HYPERPARAMETER_NAMES]
    if "optimizer" in hparams and hparams["optimizer"] not in OPTIMIZERS:
        problems.append(f"optimizer={hparams['optimizer']!r} must be one of {OPTIMIZERS}")
    if "learning_rate" in hparams and not _is_number(hparams["learning_rate"], 1e-7, 10.0):
        problems.append(f"learning_rate={hparams['learning_rate']!r} must be in (0, 10]")
    return problems


def parse_duration(text: str) -> float:
    """Seconds in '2h', '90m', '1h30m', '45s', '1.5h' or a plain number of seconds ('3600');
    '0' is no budget. Raises ValueError on anything else."""
    text = str(text).strip().lower().replace(" ", "")
    try:
        seconds = float(text)
    except ValueError:
        parts = _DURATION.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise ValueError(f"not a duration: {text!r} (e.g. 2h, 90m, 1h30m, 3600)") from None
        seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    if not 0 <= seconds <= MAX_BUDGET_S:
        raise ValueError(f"a duration must be in [0, 30 days], got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """42s, 3m05s, 1h02m."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def hyperparameters(config: TrainConfig) -> Dict[str, Any]:
    """The architecture's default hyperparameters with the config's overrides."""
    return {**DEFAULT_HYPERPARAMETERS[config.architecture], **config.hyperparameters}


def lr_at_epoch(epoch: int, epochs: int, base_lr: float, warmup_epochs: int = 0,
                floor: float = 0.05) -> float:
    """The learning rate of `epoch` (0-based) of `epochs`: linear warm-up over `warmup_epochs`
    (base/w, 2 base/w, ...), then a cosine from base_lr down to floor x base_lr.

    Per epoch and stateless, so a resumed run gets the same rate for an epoch; the GPU recipe
    harness (bench/gpu_recipe) uses this same function.
    """
    if warmup_epochs and epoch < warmup_epochs:
        return base_lr * (epoch + 1) / warmup_epochs
    t = (epoch - warmup_epochs) / max(1, epochs - warmup_epochs)
    return base_lr * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0))))


def _is_int(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _is_number(value: Any, lowest: float, highest: float) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and lowest <= value <= highest)
