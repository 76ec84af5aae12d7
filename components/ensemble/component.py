"""Ensemble: a TFX component serving the architectures a run trained as one model."""
from __future__ import annotations

from typing import Dict

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec

from components import contract
from components.ensemble import ensemble, executor


class EnsembleSpec(ComponentSpec):
    PARAMETERS: Dict = {}
    INPUTS = {
        executor.TRANSFORM_GRAPH_KEY: ChannelParameter(type=standard_artifacts.TransformGraph),
        **{executor.input_key(arch): ChannelParameter(type=standard_artifacts.Model,
                                                      optional=True)
           for arch in contract.ARCHITECTURES},
    }
    OUTPUTS = {executor.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model)}


class Ensemble(base_component.BaseComponent):
    """One SavedModel serving the mean class probabilities of the Trainers' models in `models`
    (architecture -> Model channel, at least ensemble.MIN_MEMBERS of them), behind the
    `transform_graph` they were trained on."""

    SPEC_CLASS = EnsembleSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, models: Dict[str, types.BaseChannel], transform_graph: types.BaseChannel):
        unknown = set(models) - set(contract.ARCHITECTURES)
        if unknown or len(models) < ensemble.MIN_MEMBERS:
            raise ValueError(f"models must be at least {ensemble.MIN_MEMBERS} of "
                             f"{contract.ARCHITECTURES}, got {sorted(models)}")
        super().__init__(spec=EnsembleSpec(
            transform_graph=transform_graph,
            model=types.Channel(type=standard_artifacts.Model),
            **{executor.input_key(arch): channel for arch, channel in models.items()}))
