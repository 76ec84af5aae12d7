"""ModelSelector: a TFX component choosing the best blessed candidate model."""
from __future__ import annotations

import json
from typing import Dict, Optional, Sequence

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components import contract
from components.model_selector import executor


def _candidate_inputs() -> Dict[str, ChannelParameter]:
    inputs = {}
    for name in contract.CANDIDATES:
        keys = executor.input_keys(name)
        inputs[keys["model"]] = ChannelParameter(type=standard_artifacts.Model, optional=True)
        inputs[keys["blessing"]] = ChannelParameter(type=standard_artifacts.ModelBlessing,
                                                    optional=True)
        inputs[keys["evaluation"]] = ChannelParameter(type=standard_artifacts.ModelEvaluation,
                                                      optional=True)
    return inputs


class ModelSelectorSpec(ComponentSpec):
    PARAMETERS = {
        executor.METRIC_KEY: ExecutionParameter(type=str),
        # JSON list: names for the per-class metrics recorded with the choice.
        executor.LABEL_NAMES_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS = _candidate_inputs()
    OUTPUTS = {
        executor.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        executor.BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing),
    }


class ModelSelector(base_component.BaseComponent):
    """Compares candidates (per architecture, and the ensemble: model, Evaluator blessing,
    Evaluator evaluation) on `metric` (overall slice, higher is better) and outputs the best
    blessed one."""

    SPEC_CLASS = ModelSelectorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, candidates: Dict[str, Dict[str, types.BaseChannel]], metric: str,
                 label_names: Optional[Sequence[str]] = None):
        """`candidates`: candidate name (contract.CANDIDATES) -> {"model", "blessing",
        "evaluation"} channels; `label_names`: class names by label id (per-class metrics are
        keyed by id without)."""
        unknown = set(candidates) - set(contract.CANDIDATES)
        if unknown or not candidates:
            raise ValueError(f"candidates must be a non-empty subset of {contract.CANDIDATES}")
        inputs = {}
        for name, channels in candidates.items():
            for kind, key in executor.input_keys(name).items():
                inputs[key] = channels[kind]
        super().__init__(spec=ModelSelectorSpec(
            metric=metric,
            label_names=json.dumps(list(label_names)) if label_names else None,
            model=types.Channel(type=standard_artifacts.Model),
            blessing=types.Channel(type=standard_artifacts.ModelBlessing),
            **inputs))
