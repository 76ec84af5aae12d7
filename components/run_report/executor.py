"""RunReport executor: reads the run's artifacts (sources) and writes the report (report)."""
from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Dict, List, Optional

import tensorflow as tf
from absl import logging
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from components import contract
from components.image_example_gen import ingest_report, tf_examples
from components.model_selector import selection as selection_lib
from components.pusher import executor as pusher_executor
from components.pusher import tflite
from components.run_report import mistakes, report, sources

EXAMPLES_KEY = "examples"
INGEST_REPORT_KEY = "ingest_report"
STATISTICS_KEY = "statistics"
ANOMALIES_KEY = "anomalies"
SELECTION_KEY = "selection"
PUSHED_MODEL_KEY = "pushed_model"
TRANSFORM_GRAPH_KEY = "transform_graph"
REPORT_KEY = "report"
LABEL_NAMES_KEY = "label_names"
REPORT_IMAGES_KEY = "report_images"
REPORT_PATH_PROPERTY = "report_path"


def input_keys(candidate: str) -> Dict[str, str]:
    """The report's inputs of a candidate: its evaluation, its model (for its mistakes and, a
    trained architecture's, its Grad-CAM heat), and a trained architecture's training record
    (the ensemble trains nothing)."""
    keys = {"evaluation": f"{candidate}_evaluation", "model": f"{candidate}_model"}
    if candidate in contract.ARCHITECTURES:
        keys["model_run"] = f"{candidate}_model_run"
    return keys


def _single(input_dict: Dict[str, List[types.Artifact]], key: str):
    artifacts = input_dict.get(key) or []
    return artifacts[0] if artifacts else None


class Executor(base_executor.BaseExecutor):

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        ingest = ingest_report.read_summary(_single(input_dict, INGEST_REPORT_KEY).uri)
        label_names = (json.loads(exec_properties[LABEL_NAMES_KEY])
                       if exec_properties.get(LABEL_NAMES_KEY) else ingest["class_names"])
        examples = _single(input_dict, EXAMPLES_KEY)
        statistics = _single(input_dict, STATISTICS_KEY)
        anomalies = _single(input_dict, ANOMALIES_KEY)
        selection_artifact = _single(input_dict, SELECTION_KEY)
        selection = selection_lib.read(selection_artifact.uri) if selection_artifact else None
        pushed = _single(input_dict, PUSHED_MODEL_KEY)

        trainings, evaluations, artifacts = {}, {}, {}
        for name in contract.CANDIDATES:
            keys = input_keys(name)
            model_run = _single(input_dict, keys["model_run"]) if "model_run" in keys else None
            evaluation = _single(input_dict, keys["evaluation"])
            if model_run:
                trainings[name] = sources.training(model_run.uri)
                artifacts[f"Trainer {name} model_run"] = model_run.uri
            if evaluation:
                blessed = bool(selection and selection.candidates.get(name, {}).get("blessed"))
                evaluations[name] = sources.evaluation(evaluation.uri, label_names, blessed)
                artifacts[f"Evaluator {name} evaluation"] = evaluation.uri
        report_images = exec_properties.get(REPORT_IMAGES_KEY) or report.REPORT_IMAGES_ALL
        galleries, attention = {}, {}
        if report_images == report.REPORT_IMAGES_ALL:
            galleries, attention = _mistakes_and_attention(
                input_dict, examples.uri, label_names)
        inputs = report.ReportInputs(
            label_names=label_names,
            ingest=ingest,
            samples=sources.sample_images(examples.uri, contract.TRAIN_SPLIT, label_names),
            statistics=sources.statistics(
                statistics.uri, artifact_utils.decode_split_names(statistics.split_names)),
            anomalies=sources.anomalies(
                anomalies.uri, artifact_utils.decode_split_names(anomalies.split_names)),
            trainings=trainings, evaluations=evaluations,
            members=selection.members() if selection else {},
            selection_metric=selection.metric if selection else None,
            winner=selection.winner if selection else None,
            pushed_destination=(pusher_executor.pushed_destination(pushed.mlmd_artifact)
                                if pushed else None),
            pushed_tflite=_tflite_line(pushed),
            artifacts={"examples": examples.uri, "statistics": statistics.uri,
                       "anomalies": anomalies.uri, **artifacts},
            galleries=galleries, attention=attention, report_images=report_images)
        output = artifact_utils.get_single_instance(output_dict[REPORT_KEY])
        # Written locally, then copied: the artifact may live on GCS (Kubeflow).
        with tempfile.TemporaryDirectory() as local_dir:
            report.write_report(inputs, local_dir)
            tf.io.gfile.makedirs(output.uri)
            for name in sorted(os.listdir(local_dir)):
                tf.io.gfile.copy(os.path.join(local_dir, name), os.path.join(output.uri, name),
                                 overwrite=True)
        output.set_string_custom_property(REPORT_PATH_PROPERTY,
                                          os.path.join(output.uri, report.REPORT_FILE))


def _tflite_line(pushed) -> Optional[str]:
    """The pushed version's TFLite twin and its eval scores, None without one."""
    destination = (pusher_executor.pushed_tflite_destination(pushed.mlmd_artifact)
                   if pushed else None)
    return tflite.describe(destination, tflite.read_eval(destination)) if destination else None


def _mistakes_and_attention(input_dict, examples_uri: str, label_names: List[str]):
    """(candidate -> report.Gallery, architecture -> class -> Grad-CAM overlays) for the
    candidates whose model is an input; Grad-CAM needs the Transform graph too."""
    models = {name: _single(input_dict, input_keys(name)["model"])
              for name in contract.CANDIDATES}
    models = {name: model for name, model in models.items() if model}
    if not models:
        return {}, {}
    records, labels, images = tf_examples.labelled_images(examples_uri, contract.EVAL_SPLIT,
                                                          label_names)
    transform_graph = _single(input_dict, TRANSFORM_GRAPH_KEY)
    galleries, attention = {}, {}
    for name, model in models.items():
        model_dir = path_utils.serving_model_path(model.uri,
                                                  path_utils.is_old_model_artifact(model))
        probabilities = sources.served_probabilities(model_dir, records)
        worst = mistakes.confident_mistakes(labels, probabilities, label_names)
        galleries[name] = report.Gallery(
            mistakes=worst, images={e.index: images[e.index]
                                    for shown in worst.values() for e in shown})
        if name in contract.ARCHITECTURES and transform_graph:
            attention[name] = sources.attention(
                model_dir, transform_graph.uri, images,
                mistakes.heatmap_examples(labels, probabilities, label_names), label_names)
        logging.info("RunReport: %s scored %d eval examples for its mistakes", name,
                     len(records))
    return galleries, attention
