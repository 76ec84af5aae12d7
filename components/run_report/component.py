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
                         "evaluation": standard_artifacts.ModelEvaluation,
                         "model": standard_artifacts.Model}


def _candidate_inputs() -> Dict[str, ChannelParameter]:
    return {key: ChannelParameter(type=CANDIDATE_INPUT_TYPES[kind], optional=True)
            for name in contract.CANDIDATES
            for kind, key in executor.input_keys(name).items()}


class RunReportSpec(ComponentSpec):
    # JSON list; absent: the class names the ingest report found.
    PARAMETERS = {executor.LABEL_NAMES_KEY: ExecutionParameter(type=str, optional=True),
                  # contract.REPORT_IMAGES_CHOICES; absent: "all"
                  executor.REPORT_IMAGES_KEY: ExecutionParameter(type=str, optional=True)}
    INPUTS = {
        executor.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        executor.INGEST_REPORT_KEY: ChannelParameter(type=IngestReport),
        executor.STATISTICS_KEY: ChannelParameter(type=standard_artifacts.ExampleStatistics),
        executor.ANOMALIES_KEY: ChannelParameter(type=standard_artifacts.ExampleAnomalies),
        executor.SELECTION_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing,
                                                 optional=True),
        executor.PUSHED_MODEL_KEY: ChannelParameter(type=standard_artifacts.PushedModel,
                                                    optional=True),
        executor.TRANSFORM_GRAPH_KEY: ChannelParameter(type=standard_artifacts.TransformGraph,
                                                       optional=True),
        **_candidate_inputs(),
    }
    OUTPUTS = {executor.REPORT_KEY: ChannelParameter(type=RunReportArtifact)}


class RunReport(base_component.BaseComponent):
    """The run's report. `candidates`: candidate name -> its channels (executor.input_keys:
    "evaluation", "model", and "model_run" for an architecture; any may be left out);
    `selection`: the ModelSelector's blessing (its choice); `pushed_model`: the Pusher's;
    `transform_graph`: Transform's, for the Grad-CAM heat; `report_images`: "all" or "none"
    (no face image in the report or the card)."""

    SPEC_CLASS = RunReportSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, examples: types.BaseChannel, ingest_report: types.BaseChannel,
                 statistics: types.BaseChannel, anomalies: types.BaseChannel,
                 label_names: Optional[Sequence[str]] = None,
                 candidates: Optional[Dict[str, Dict[str, types.BaseChannel]]] = None,
                 selection: Optional[types.BaseChannel] = None,
                 pushed_model: Optional[types.BaseChannel] = None,
                 transform_graph: Optional[types.BaseChannel] = None,
                 report_images: str = contract.REPORT_IMAGES_ALL):
        unknown = set(candidates or {}) - set(contract.CANDIDATES)
        if unknown:
            raise ValueError(f"candidates must be a subset of {contract.CANDIDATES}")
        if report_images not in contract.REPORT_IMAGES_CHOICES:
            raise ValueError(f"report_images must be one of {contract.REPORT_IMAGES_CHOICES}, "
                             f"got {report_images!r}")
        inputs = {}
        for name, channels in (candidates or {}).items():
            for kind, key in executor.input_keys(name).items():
                if channels.get(kind) is not None:
                    inputs[key] = channels[kind]
        super().__init__(spec=RunReportSpec(
            label_names=json.dumps(list(label_names)) if label_names else None,
            examples=examples,
            ingest_report=ingest_report, statistics=statistics, anomalies=anomalies,
            selection=selection, pushed_model=pushed_model, transform_graph=transform_graph,
            report_images=report_images,
            report=types.Channel(type=RunReportArtifact), **inputs))
