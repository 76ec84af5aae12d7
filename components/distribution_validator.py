"""TFX's DistributionValidator executor, also when its config arrives as JSON text.

The local orchestrators hand the executor its `config` execution property as a
DistributionValidatorConfig proto; the KFP v2 container entry point hands it the JSON text the
spec holds, which TFX's executor (1.16 and 1.21) uses as a proto: once a baseline exists, every
run on Kubeflow failed with "'str' object has no attribute 'default_slice_config'" (found by the
KFP replay, docs/kubeflow.md).
"""
from __future__ import annotations

from typing import Any, Dict, List

from tfx import types
from tfx.components.distribution_validator import component as tfx_component
from tfx.components.distribution_validator import executor as tfx_executor
from tfx.dsl.components.base import executor_spec
from tfx.proto import distribution_validator_pb2
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

CONFIG_KEY = standard_component_specs.DISTRIBUTION_VALIDATOR_CONFIG_KEY


def config_proto(config: Any) -> Any:
    """The config as a proto, from the proto itself or its JSON text."""
    if isinstance(config, str):
        return proto_utils.json_to_proto(
            config, distribution_validator_pb2.DistributionValidatorConfig())
    return config


class Executor(tfx_executor.Executor):

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]):
        if exec_properties.get(CONFIG_KEY) is not None:
            exec_properties = {**exec_properties,
                               CONFIG_KEY: config_proto(exec_properties[CONFIG_KEY])}
        return super().Do(input_dict, output_dict, exec_properties)


class DistributionValidator(tfx_component.DistributionValidator):
    """TFX's DistributionValidator (same inputs, outputs and id) running the executor above."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
