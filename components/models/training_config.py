"""Training settings of the Trainer and Tuner module, with their defaults: the one source.

The pipeline passes them in each Trainer's/Tuner's `custom_config`; run profiles
(pipeline/configs.py) and users override some of them. No TensorFlow here, so that the pipeline's
command line can validate settings without loading it.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Mapping, Optional

from components import contract

VARIANTS = ("fer", "stock")

# Hyperparameters used when tuning is off, and the first point of every search.
DEFAULT_HYPERPARAMETERS: Mapping[str, Mapping[str, Any]] = {
    "vgg16": {"learning_rate": 1e-3, "optimizer": "adam", "dropout": 0.5, "head_units": 256},
    "resnet50": {"learning_rate": 1e-3, "optimizer": "adam", "dropout": 0.3, "head_units": 0},
}


@dataclasses.dataclass
class TrainConfig:
    """What one Trainer (and its Tuner) trains, and how."""

    architecture: str
    label_names: List[str]
    variant: str = "fer"                  # "fer" (for 48 px faces) or "stock" keras.applications
    weights: Optional[str] = None         # a local weights file (stock variant); never downloaded
    epochs: int = 10
    batch_size: int = 64
    max_steps_per_epoch: int = 0          # 0: a full pass over the training split
    early_stopping_patience: int = 3
    mixed_precision: bool = False         # bf16; see BENCHMARKS.md before turning it on on CPU
    augment: bool = True                  # flips, shifts, rotation, contrast on training batches
    # Cap on the validation examples scored after each epoch (a fixed random subset; 0: all).
    validation_examples: int = 0
    tuner_trials: int = 2
    tuner_epochs: int = 1
    tuner_steps_per_epoch: int = 0        # 0: a full pass
    seed: int = 42

    @classmethod
    def from_custom_config(cls, custom_config: Optional[Mapping[str, Any]]) -> "TrainConfig":
        custom_config = dict(custom_config or {})
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
                 "validation_examples", "tuner_steps_per_epoch")
_POSITIVE = ("batch_size", "tuner_trials", "tuner_epochs")


def default_settings() -> Dict[str, Any]:
    """Every setting in SETTINGS with its default."""
    return {name: _FIELDS[name].default for name in SETTINGS}


def check_settings(settings: Mapping[str, Any]) -> None:
    """Raises ValueError naming each unknown setting or out-of-range value."""
    unknown = set(settings) - set(_FIELDS)
    if unknown:
        raise ValueError(f"unknown training settings {sorted(unknown)}; known: {sorted(_FIELDS)}")
    problems = [f"{k}={settings[k]!r} must be >= 0" for k in _NON_NEGATIVE
                if k in settings and not _is_int(settings[k], minimum=0)]
    problems += [f"{k}={settings[k]!r} must be >= 1" for k in _POSITIVE
                 if k in settings and not _is_int(settings[k], minimum=1)]
    if "variant" in settings and settings["variant"] not in VARIANTS:
        problems.append(f"variant={settings['variant']!r} must be one of {VARIANTS}")
    if settings.get("weights") and settings.get("variant", "fer") != "stock":
        problems.append("weights fit only the stock variant (variant='stock')")
    if problems:
        raise ValueError("bad training settings: " + "; ".join(problems))


def _is_int(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum
