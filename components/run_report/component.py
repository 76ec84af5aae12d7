"""RunReport: a TFX component writing a person's view of the run (report.html, its figures and
the pushed model's model card) from the run's artifacts."""
from __future__ import annotations

import json
from typing import Dict, Optional, Sequence

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components import contract
from components.image_example_gen.component import IngestReport
from components.run_report import executor


class RunReportArtifact(types.Artifact):
    """A folder holding report.html, its PNG figures and model_card.md / .html."""

    # KFP v2 takes "ns.Name" only, and its container entry point imports the class by it.
    TYPE_NAME = "components.RunReport"


CANDIDATE_INPUT_TYPES = {"model_run": standard_artifacts.ModelRun,
                         "evaluation": standard_artifacts.ModelEvaluation}


def _candidate_inputs() -> Dict[str, ChannelParameter]:
    return {key: ChannelParameter(type=CANDIDATE_INPUT_TYPES[kind], optional=True)
            for name in contract.CANDIDATES
            for kind, key in executor.input_keys(name).items()}


class RunReportSpec(ComponentSpec):
    # JSON list; absent: the class names the ingest report found.
    PARAMETERS = {executor.LABEL_NAMES_KEY: ExecutionParameter(type=str, optional=True)}
    INPUTS = {
        executor.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        executor.INGEST_REPORT_KEY: ChannelParameter(type=IngestReport),
        executor.STATISTICS_KEY: ChannelParameter(type=standard_artifacts.ExampleStatistics),
        executor.ANOMALIES_KEY: ChannelParameter(type=standard_artifacts.ExampleAnomalies),
        executor.SELECTION_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing,
                                                 optional=True),
        executor.PUSHED_MODEL_KEY: ChannelParameter(type=standard_artifacts.PushedModel,
                                                    optional=True),
        **_candidate_inputs(),
    }
    OUTPUTS = {executor.REPORT_KEY: ChannelParameter(type=RunReportArtifact)}


class RunReport(base_component.BaseComponent):
    """The run's report. `candidates`: candidate name -> its channels (executor.input_keys:
    "evaluation", and "model_run" for an architecture); `selection`: the ModelSelector's
    blessing (its choice); `pushed_model`: the Pusher's."""

    SPEC_CLASS = RunReportSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, examples: types.BaseChannel, ingest_report: types.BaseChannel,
                 statistics: types.BaseChannel, anomalies: types.BaseChannel,
                 label_names: Optional[Sequence[str]] = None,
                 candidates: Optional[Dict[str, Dict[str, types.BaseChannel]]] = None,
                 selection: Optional[types.BaseChannel] = None,
                 pushed_model: Optional[types.BaseChannel] = None):
        unknown = set(candidates or {}) - set(contract.CANDIDATES)
        if unknown:
            raise ValueError(f"candidates must be a subset of {contract.CANDIDATES}")
        inputs = {}
        for name, channels in (candidates or {}).items():
            for kind, key in executor.input_keys(name).items():
                inputs[key] = channels[kind]
        super().__init__(spec=RunReportSpec(
            label_names=json.dumps(list(label_names)) if label_names else None,
            examples=examples,
            ingest_report=ingest_report, statistics=statistics, anomalies=anomalies,
            selection=selection, pushed_model=pushed_model,
            report=types.Channel(type=RunReportArtifact), **inputs))
