"""Read what a pipeline run produced from ML Metadata (for the CLI summary and the tests)."""
from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Optional

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.dsl.compiler import constants

_STATE_NAMES = {v: k for k, v in metadata_store_pb2.Execution.State.items()}
FAILED = "FAILED"
CACHED = "CACHED"


@dataclasses.dataclass
class NodeOutputs:
    node_id: str
    state: str                                                  # COMPLETE, CACHED, FAILED, ...
    artifacts: Dict[str, List[metadata_store_pb2.Artifact]]     # output key -> artifacts
    inputs: Dict[str, List[metadata_store_pb2.Artifact]] = dataclasses.field(
        default_factory=dict)                                   # input key -> artifacts

    def uri(self, key: str) -> str:
        return self.artifacts[key][0].uri

    def property(self, key: str, name: str):
        value = self.artifacts[key][0].custom_properties[name]
        return getattr(value, value.WhichOneof("value"))


@dataclasses.dataclass
class RunOutputs:
    run_id: str
    nodes: Dict[str, NodeOutputs]

    def __getitem__(self, node_id: str) -> NodeOutputs:
        return self.nodes[node_id]


def sqlite_store(metadata_path: str) -> metadata_store.MetadataStore:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(config)


def latest_run(store: metadata_store.MetadataStore, pipeline_name: str) -> Optional[RunOutputs]:
    """Outputs of every node executed in the most recent run of `pipeline_name`."""
    pipeline_ctx = store.get_context_by_type_and_name(constants.PIPELINE_CONTEXT_TYPE_NAME,
                                                      pipeline_name)
    if pipeline_ctx is None:
        return None
    pipeline_execution_ids = {e.id for e in store.get_executions_by_context(pipeline_ctx.id)}
    runs = [c for c in store.get_contexts_by_type(constants.PIPELINE_RUN_CONTEXT_TYPE_NAME)
            if pipeline_execution_ids.intersection(
                e.id for e in store.get_executions_by_context(c.id))]
    if not runs:
        return None
    run = max(runs, key=lambda c: (c.create_time_since_epoch, c.id))
    node_type = store.get_context_type(constants.NODE_CONTEXT_TYPE_NAME)
    nodes: Dict[str, NodeOutputs] = {}
    for execution in sorted(store.get_executions_by_context(run.id), key=lambda e: e.id):
        node_ctx = [c for c in store.get_contexts_by_execution(execution.id)
                    if c.type_id == node_type.id]
        node_id = node_ctx[0].name.split(".", 1)[-1] if node_ctx else str(execution.id)
        outputs: Dict[str, List[int]] = {}
        inputs: Dict[str, List[int]] = {}
        for event in store.get_events_by_execution_ids([execution.id]):
            key = event.path.steps[0].key if event.path.steps else ""
            if event.type in (metadata_store_pb2.Event.OUTPUT,
                              metadata_store_pb2.Event.DECLARED_OUTPUT):
                outputs.setdefault(key, []).append(event.artifact_id)
            elif event.type in (metadata_store_pb2.Event.INPUT,
                                metadata_store_pb2.Event.DECLARED_INPUT):
                inputs.setdefault(key, []).append(event.artifact_id)
        nodes[node_id] = NodeOutputs(
            node_id, _STATE_NAMES.get(execution.last_known_state, "?"),
            {k: list(store.get_artifacts_by_id(ids)) for k, ids in outputs.items()},
            {k: list(store.get_artifacts_by_id(ids)) for k, ids in inputs.items()})
    return RunOutputs(run.name, nodes)


def outcome(outputs: RunOutputs) -> str:
    """One line: span, winner and its selection metric against the serving model's (both on
    this run's eval split), and the pushed version or why nothing was pushed."""
    from components import evaluation
    from components.image_example_gen import driver
    from components.model_selector import executor as selector_executor
    from components.model_selector import selection as selection_lib
    from components.pusher import executor as pusher_executor

    parts = []
    gen = outputs.nodes.get("ImageFolderExampleGen")
    if gen is not None:
        span = gen.artifacts["examples"][0].custom_properties.get(driver.SPAN_PROPERTY)
        parts.append(f"span {span.int_value if span is not None else 0}")
        transform = outputs.nodes.get("Transform")
        window = sorted({a.properties[driver.SPAN_PROPERTY].int_value for a in
                         (transform.inputs.get("examples", []) if transform else [])})
        if len(window) > 1:  # --window-spans: what Transform and the Trainers read
            parts[-1] += f" (trained on spans {', '.join(map(str, window))})"
    if "ModelSelector" not in outputs.nodes:
        return " | ".join(parts + ["data checked, no training"])
    selection = selection_lib.read(outputs["ModelSelector"].uri(selector_executor.BLESSING_KEY))
    best = selection.winner or max(
        selection.candidates, key=lambda a: selection.candidates[a]["metric_value"] or 0.0)
    candidate = selection.candidates[best]
    serving = evaluation.overall_metrics(candidate["evaluation_uri"], baseline=True)
    against = (f"serving model {serving[selection.metric]:.4f}" if selection.metric in serving
               else "no model serving yet")
    parts.append(f"{'winner' if selection.winner else 'best (not blessed)'} "
                 f"{selection.label(best)} {selection.metric} {candidate['metric_value']:.4f} "
                 f"vs {against}")
    pusher = outputs.nodes.get("Pusher")
    if pusher is None:
        parts.append("not pushed: no serving directory")
    else:
        pushed = pusher.artifacts["pushed_model"][0]
        destination = pusher_executor.pushed_destination(pushed)
        already = pushed.custom_properties.get(pusher_executor.ALREADY_SERVING_PROPERTY)
        if destination:
            parts.append(f"pushed version {os.path.basename(destination)}")
        elif already is not None:
            parts.append(f"not pushed: already serving as version {already.string_value}")
        else:
            parts.append("not pushed: no candidate passed the thresholds (min accuracy, not "
                         "worse than the serving model)")
    return " | ".join(parts)
