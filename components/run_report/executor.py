"""RunReport executor: reads the run's artifacts (sources) and writes the report (report)."""
from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Dict, List

import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from components import contract
from components.image_example_gen import ingest_report
from components.model_selector import selection as selection_lib
from components.pusher import executor as pusher_executor
from components.run_report import report, sources

EXAMPLES_KEY = "examples"
INGEST_REPORT_KEY = "ingest_report"
STATISTICS_KEY = "statistics"
ANOMALIES_KEY = "anomalies"
SELECTION_KEY = "selection"
PUSHED_MODEL_KEY = "pushed_model"
REPORT_KEY = "report"
LABEL_NAMES_KEY = "label_names"
REPORT_PATH_PROPERTY = "report_path"


def input_keys(candidate: str) -> Dict[str, str]:
    """The report's inputs of a candidate: its evaluation, and a trained architecture's
    training record (the ensemble trains nothing)."""
    keys = {"evaluation": f"{candidate}_evaluation"}
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
            artifacts={"examples": examples.uri, "statistics": statistics.uri,
                       "anomalies": anomalies.uri, **artifacts})
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
