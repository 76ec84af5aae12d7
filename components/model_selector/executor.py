"""ModelSelector executor: compare candidates on one TFMA metric, pass on the best blessed one.

Inputs are per candidate, each architecture and the ensemble (`<name>_model`, `<name>_blessing`,
`<name>_evaluation`). The output `model` is a copy of the winner (Pusher's input) and `blessing`
says whether there is one: with no blessed candidate, `blessing.blessed` is 0 and Pusher pushes
nothing. The choice and every candidate's metric (and an ensemble's members) are recorded as
custom properties (ML Metadata) and in `selection.json`.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List

from absl import logging
from tfx import types
from tfx.components.evaluator import constants as evaluator_constants
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils

from components import contract, resolvers
from components import evaluation as evaluation_lib
from components.ensemble import executor as ensemble_executor
from components.model_selector import selection

MODEL_KEY = "model"
BLESSING_KEY = "blessing"
METRIC_KEY = "metric"
LABEL_NAMES_KEY = "label_names"
BLESSED_PROPERTY = "blessed"  # what TFX's Evaluator sets on ModelBlessing
# The models an Evaluator's blessing names: on Kubeflow, where they are artifact names, TFX's
# latest-blessed-model resolver finds the model by them.
MODEL_ID_PROPERTIES = (evaluator_constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY,
                       evaluator_constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY)


def input_keys(candidate: str) -> Dict[str, str]:
    return {"model": f"{candidate}_model", "blessing": f"{candidate}_blessing",
            "evaluation": f"{candidate}_evaluation"}


class Executor(base_executor.BaseExecutor):

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        metric = exec_properties[METRIC_KEY]
        label_names = json.loads(exec_properties.get(LABEL_NAMES_KEY) or "null")
        candidates: Dict[str, Dict[str, Any]] = {}
        models, blessings = {}, {}
        for name in contract.CANDIDATES:
            keys = input_keys(name)
            if not input_dict.get(keys["model"]):
                continue  # architecture switched off, or no ensemble of fewer than two
            model = artifact_utils.get_single_instance(input_dict[keys["model"]])
            blessing = artifact_utils.get_single_instance(input_dict[keys["blessing"]])
            evaluation = artifact_utils.get_single_instance(input_dict[keys["evaluation"]])
            models[name], blessings[name] = model, blessing
            metrics = evaluation_lib.overall_metrics(evaluation.uri, label_names)
            candidates[name] = {
                "model_uri": model.uri,
                "blessed": bool(blessing.get_int_custom_property(BLESSED_PROPERTY)),
                "metric_value": metrics.get(metric),
                # Recorded with the choice: accuracy, macro-F1, per-class precision/recall/F1.
                "metrics": metrics,
                "evaluation_uri": evaluation.uri,
            }
            if model.has_custom_property(ensemble_executor.MEMBERS_PROPERTY):
                candidates[name][selection.MEMBERS] = json.loads(
                    model.get_string_custom_property(ensemble_executor.MEMBERS_PROPERTY))
        if not candidates:
            raise ValueError("ModelSelector got no candidate models")
        choice = selection.Selection(metric=metric, winner=selection.select(candidates),
                                     candidates=candidates)
        winner = choice.winner

        out_model = artifact_utils.get_single_instance(output_dict[MODEL_KEY])
        out_blessing = artifact_utils.get_single_instance(output_dict[BLESSING_KEY])
        if winner:
            # Pusher takes one Model channel: hand it a copy of the winner.
            io_utils.copy_dir(models[winner].uri, out_model.uri)
            out_model.set_string_custom_property(resolvers.ARCHITECTURE_PROPERTY, winner)
            out_model.set_string_custom_property(resolvers.SOURCE_MODEL_URI_PROPERTY,
                                                 models[winner].uri)
            out_model.set_float_custom_property(metric, candidates[winner]["metric_value"])
            # This blessing is the newest of the run: on Kubeflow the next run's Evaluators take
            # the model it names as their baseline, so it names the winner's, as the winner's
            # Evaluator did (ML Metadata ids here, artifact names on Kubeflow: copied as they are).
            for key in MODEL_ID_PROPERTIES:
                if key in blessings[winner].mlmd_artifact.custom_properties:
                    out_blessing.mlmd_artifact.custom_properties[key].CopyFrom(
                        blessings[winner].mlmd_artifact.custom_properties[key])
        out_blessing.set_int_custom_property(BLESSED_PROPERTY, int(winner is not None))
        out_blessing.set_string_custom_property("winner", winner or "")
        out_blessing.set_string_custom_property(selection.SELECTION_PROPERTY, choice.to_json())
        selection.write(choice, out_blessing.uri)
        for name, c in candidates.items():
            logging.info("ModelSelector: %s %s=%s blessed=%s", name, metric, c["metric_value"],
                         c["blessed"])
        logging.info("ModelSelector: winner %s", winner or "none (no blessed candidate)")
