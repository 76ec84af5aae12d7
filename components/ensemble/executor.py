"""Ensemble executor: the member models and the Transform graph in, one Model artifact out,
laid out as a Trainer's (`<uri>/Format-Serving`), so the Evaluator and the Pusher read it as
they read a Trainer's model."""
from __future__ import annotations

import json
from typing import Any, Dict, List

from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from components import contract
from components.ensemble import ensemble

TRANSFORM_GRAPH_KEY = "transform_graph"
MODEL_KEY = "model"
# On the output model: JSON list of the member architectures, in the order they are served.
MEMBERS_PROPERTY = "members"


def input_key(architecture: str) -> str:
    return f"{architecture}_model"


class Executor(base_executor.BaseExecutor):

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        member_dirs = {}
        for arch in contract.ARCHITECTURES:
            if input_dict.get(input_key(arch)):
                model = artifact_utils.get_single_instance(input_dict[input_key(arch)])
                member_dirs[arch] = path_utils.serving_model_path(
                    model.uri, path_utils.is_old_model_artifact(model))
        output = artifact_utils.get_single_instance(output_dict[MODEL_KEY])
        ensemble.export(member_dirs, artifact_utils.get_single_uri(input_dict[TRANSFORM_GRAPH_KEY]),
                        path_utils.serving_model_dir(output.uri))
        output.set_string_custom_property(MEMBERS_PROPERTY, json.dumps(list(member_dirs)))
