"""Resolver strategies for retraining: what is serving, and what data it was trained on.

- LatestPushedModelStrategy: the model whose push is the latest that happened (TFX's
  LatestBlessedModelStrategy returns the latest *blessed* model, which can be a blessed candidate
  that lost the selection and never served). It is the Evaluator's baseline, and, filtered to one
  architecture, the Trainer's warm start.
- TrainedOnStatisticsStrategy: the statistics of the latest earlier data that a run went on to
  train on (its Transform completed), the baseline of the drift check.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import ml_metadata as mlmd
from tfx import types
from tfx.dsl.components.common import resolver

PUSHED_PROPERTY = "pushed"                # set by TFX's Pusher executor
PUSHED_MODEL_ID_PROPERTY = "model_id"     # set by components/pusher/executor.py
ARCHITECTURE_PROPERTY = "architecture"    # set by the ModelSelector on the model it passes on
ARCHITECTURE_CONFIG_KEY = "architecture"

MODEL_KEY = "model"
PUSHED_MODEL_KEY = "pushed_model"
STATISTICS_KEY = "statistics"                 # every StatisticsGen output of the pipeline
CURRENT_STATISTICS_KEY = "current_statistics"  # this run's
TRANSFORM_TYPE_SUFFIX = ".Transform"
PIPELINE_RUN_CONTEXT_TYPE = "pipeline_run"
_DONE_STATES = (mlmd.proto.Execution.COMPLETE, mlmd.proto.Execution.CACHED)


def latest_pushed_model(models: List[types.Artifact], pushes: List[types.Artifact],
                        architecture: Optional[str] = None) -> Optional[types.Artifact]:
    """The model of the latest push that happened (of `architecture`, when given)."""
    by_id = {m.id: m for m in models}
    for push in sorted(pushes, key=lambda a: a.id, reverse=True):
        if not push.get_int_custom_property(PUSHED_PROPERTY):
            continue
        model = by_id.get(push.get_int_custom_property(PUSHED_MODEL_ID_PROPERTY))
        if model is None:
            continue
        if architecture and model.get_string_custom_property(ARCHITECTURE_PROPERTY) != \
                architecture:
            continue
        return model
    return None


class LatestPushedModelStrategy(resolver.ResolverStrategy):
    """Resolves `model` to the model of the latest push that happened, [] when none did.

    Inputs: `model` (the ModelSelector's models) and `pushed_model` (the Pusher's outputs).
    Config: `architecture` keeps only pushes of that architecture (warm start).
    """

    def __init__(self, architecture: Optional[str] = None):
        self._architecture = architecture

    def resolve_artifacts(self, store: mlmd.MetadataStore,
                          input_dict: Dict[str, List[types.Artifact]]
                          ) -> Optional[Dict[str, List[types.Artifact]]]:
        del store
        model = latest_pushed_model(input_dict[MODEL_KEY], input_dict[PUSHED_MODEL_KEY],
                                    self._architecture)
        return {MODEL_KEY: [model] if model else [], PUSHED_MODEL_KEY: []}


def went_on_to_transform(store: mlmd.MetadataStore, artifact: types.Artifact) -> bool:
    """Whether a pipeline run that produced or reused `artifact` completed its Transform."""
    run_type = store.get_context_type(PIPELINE_RUN_CONTEXT_TYPE).id
    for context in store.get_contexts_by_artifact(artifact.id):
        if context.type_id != run_type:
            continue
        executions = store.get_executions_by_context(context.id)
        types_by_id = {t.id: t.name for t in store.get_execution_types_by_id(
            list({e.type_id for e in executions}))}
        if any(types_by_id[e.type_id].endswith(TRANSFORM_TYPE_SUFFIX)
               and e.last_known_state in _DONE_STATES for e in executions):
            return True
    return False


def trained_on_statistics(store: mlmd.MetadataStore, history: List[types.Artifact],
                          current: types.Artifact) -> types.Artifact:
    """The latest statistics other than `current` whose run went on to Transform; `current`
    itself when there are none (the first run: nothing to compare with)."""
    for stats in sorted(history, key=lambda a: a.id, reverse=True):
        if stats.id != current.id and went_on_to_transform(store, stats):
            return stats
    return current


class TrainedOnStatisticsStrategy(resolver.ResolverStrategy):
    """Resolves `statistics` to the baseline of the drift check (trained_on_statistics).

    Inputs: `statistics` (every StatisticsGen output of the pipeline) and `current_statistics`
    (this run's).
    """

    def resolve_artifacts(self, store: mlmd.MetadataStore,
                          input_dict: Dict[str, List[types.Artifact]]
                          ) -> Optional[Dict[str, List[types.Artifact]]]:
        current = input_dict[CURRENT_STATISTICS_KEY]
        if not current:
            return {STATISTICS_KEY: [], CURRENT_STATISTICS_KEY: []}
        baseline = trained_on_statistics(store, input_dict[STATISTICS_KEY], current[0])
        return {STATISTICS_KEY: [baseline], CURRENT_STATISTICS_KEY: current}
