"""Resolver strategies for retraining: what is serving, and what data it was trained on.

- LatestPushedModelStrategy: the model whose push is the latest that happened (TFX's
  LatestBlessedModelStrategy returns the latest *blessed* model, which can be a blessed candidate
  that lost the selection and never served). It is the Evaluator's baseline, and, filtered to one
  architecture, the Trainer's warm start.
- TrainedOnStatisticsStrategy: the statistics of the latest earlier data that a run went on to
  train on (its Transform completed), the baseline of the drift check.
- SpanWindowStrategy: this run's Examples plus those of the spans before it that earlier runs
  accepted, the rolling window that Transform and the Trainers read.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import ml_metadata as mlmd
from tfx import types
from tfx.dsl.components.common import resolver
from tfx.dsl.input_resolution.ops import ops_utils

PUSHED_PROPERTY = "pushed"                # set by TFX's Pusher executor
PUSHED_MODEL_ID_PROPERTY = "model_id"     # set by components/pusher/executor.py
ARCHITECTURE_PROPERTY = "architecture"    # set by the ModelSelector on the model it passes on
SOURCE_MODEL_URI_PROPERTY = "source_model_uri"  # ditto: the Trainer's model it copied
EXAMPLES_KEY = "examples"

MODEL_KEY = "model"
PUSHED_MODEL_KEY = "pushed_model"
STATISTICS_KEY = "statistics"
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


def _producers(store: mlmd.MetadataStore, artifact_id: int) -> List[int]:
    return [e.execution_id for e in store.get_events_by_artifact_ids([artifact_id])
            if e.type in (mlmd.proto.Event.OUTPUT, mlmd.proto.Event.DECLARED_OUTPUT)]


def _inputs(store: mlmd.MetadataStore, execution_ids: List[int], key: str) -> List[int]:
    return [e.artifact_id for e in store.get_events_by_execution_ids(execution_ids)
            if e.type in (mlmd.proto.Event.INPUT, mlmd.proto.Event.DECLARED_INPUT)
            and e.path.steps and e.path.steps[0].key == key]


def trained_on_examples(store: mlmd.MetadataStore, model: types.Artifact) -> set:
    """Ids of the Examples a ModelSelector's model was trained on: its source Trainer model
    <- Trainer <- transformed examples <- Transform <- examples (ML Metadata lineage)."""
    trainer_models = store.get_artifacts_by_uri(
        model.get_string_custom_property(SOURCE_MODEL_URI_PROPERTY))
    transformed = _inputs(store, [p for m in trainer_models for p in _producers(store, m.id)],
                          EXAMPLES_KEY)
    return set(_inputs(store, [p for t in transformed for p in _producers(store, t)],
                       EXAMPLES_KEY))


class LatestPushedModelStrategy(resolver.ResolverStrategy):
    """Resolves `model` to the model of the latest push that happened, [] when none did.

    Inputs: `model` (the ModelSelector's models), `pushed_model` (the Pusher's outputs) and,
    for the warm start, `examples` (this run's).
    Config: `architecture` keeps only pushes of that architecture; with `examples`, models
    trained on those very examples are passed over: warm-starting on data the model has already
    learned adds nothing, and it would make a re-run on unchanged data miss the Trainer's cache.
    """

    def __init__(self, architecture: Optional[str] = None):
        self._architecture = architecture

    def resolve_artifacts(self, store: mlmd.MetadataStore,
                          input_dict: Dict[str, List[types.Artifact]]
                          ) -> Optional[Dict[str, List[types.Artifact]]]:
        models = input_dict[MODEL_KEY]
        current = {a.id for a in input_dict.get(EXAMPLES_KEY, [])}
        if current:
            models = [m for m in models if not trained_on_examples(store, m) & current]
        model = latest_pushed_model(models, input_dict[PUSHED_MODEL_KEY], self._architecture)
        return {**{k: [] for k in input_dict}, MODEL_KEY: [model] if model else []}


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


def computed_from(store: mlmd.MetadataStore, statistics_id: int) -> List[int]:
    """Ids of the Examples the StatisticsGen output `statistics_id` was computed from."""
    return _inputs(store, _producers(store, statistics_id), EXAMPLES_KEY)


def statistics_of(store: mlmd.MetadataStore, statistics: List[types.Artifact],
                  examples_id: int) -> Optional[types.Artifact]:
    """The latest of `statistics` computed from the Examples `examples_id`."""
    for stats in sorted(statistics, key=lambda a: a.id, reverse=True):
        if examples_id in computed_from(store, stats.id):
            return stats
    return None


class TrainedOnStatisticsStrategy(resolver.ResolverStrategy):
    """Resolves `statistics` to the baseline of the drift check (trained_on_statistics), given
    every StatisticsGen output of the pipeline (`statistics`) and this run's `examples`; the
    resolver runs after this run's StatisticsGen."""

    def resolve_artifacts(self, store: mlmd.MetadataStore,
                          input_dict: Dict[str, List[types.Artifact]]
                          ) -> Optional[Dict[str, List[types.Artifact]]]:
        statistics = input_dict[STATISTICS_KEY]
        examples = input_dict[EXAMPLES_KEY]
        current = statistics_of(store, statistics, examples[0].id) if examples else None
        if current is None:
            raise ValueError("no statistics of this run's examples: the drift check resolver "
                             "must run after StatisticsGen")
        return {STATISTICS_KEY: [trained_on_statistics(store, statistics, current)],
                EXAMPLES_KEY: []}


def span_window(current: types.Artifact, earlier: List[types.Artifact], num_spans: int,
                accepted) -> List[types.Artifact]:
    """`current`, then the latest version of each of the `num_spans` - 1 latest spans below its
    span among `earlier` artifacts for which `accepted(artifact)` holds, newest span first.

    Span and version semantics are TFX's rolling range (ops_utils.filter_artifacts_by_span: the
    latest version of a span, ties broken by creation time and id). Spans below the current one
    only: a re-run of an older span (`--span N`) reads spans up to N.
    """
    if num_spans < 1:
        raise ValueError(f"num_spans must be at least 1, got {num_spans}")
    below = [a for a in earlier if a.span < current.span and a.id != current.id]
    window = ops_utils.filter_artifacts_by_span(
        [a for a in below if accepted(a)], span_descending=True, n=num_spans - 1) \
        if num_spans > 1 and below else []
    return [current, *sorted(window, key=lambda a: a.span, reverse=True)]


class SpanWindowStrategy(resolver.ResolverStrategy):
    """Resolves `examples` to the rolling window of the last `num_spans` spans (span_window).

    Inputs: `examples`, every ImageFolderExampleGen output of the pipeline, and `statistics`,
    this run's StatisticsGen output: this run's examples are the ones it was computed from.
    (A channel of this run's examples beside the channel of every run's would be one channel to
    TFX's compiler: same producer, same key.) An earlier span counts only if a run went on to
    Transform with it: data that a run stopped (invalid, drifted) is not trained on later either.
    """

    def __init__(self, num_spans: int):
        self._num_spans = int(num_spans)

    def resolve_artifacts(self, store: mlmd.MetadataStore,
                          input_dict: Dict[str, List[types.Artifact]]
                          ) -> Optional[Dict[str, List[types.Artifact]]]:
        examples = input_dict[EXAMPLES_KEY]
        statistics = input_dict[STATISTICS_KEY]
        sources = {e for s in statistics for e in computed_from(store, s.id)}
        current = [a for a in examples if a.id in sources]
        if len(current) != 1:
            raise ValueError(f"expected the one Examples artifact this run's statistics were "
                             f"computed from, found {len(current)}")
        window = span_window(current[0], examples, self._num_spans,
                             lambda a: went_on_to_transform(store, a))
        return {EXAMPLES_KEY: window, STATISTICS_KEY: []}
