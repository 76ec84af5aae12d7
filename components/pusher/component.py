"""Pusher: TFX's Pusher with this project's executor (versions appear at once, each with its
TFLite twin) and one more input, the examples whose eval split decides whether the int8 TFLite
model is published beside the float16 one."""
from __future__ import annotations

from tfx import types
from tfx.components import Pusher as TfxPusher
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter

from components.pusher import executor

EXAMPLES_KEY = executor.EXAMPLES_KEY


class PusherSpec(standard_component_specs.PusherSpec):
    INPUTS = {
        **standard_component_specs.PusherSpec.INPUTS,
        EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples, optional=True),
    }


class Pusher(TfxPusher):
    """Pushes `model` when `model_blessing` blesses it, to `push_destination`; with `examples`,
    measures the TFLite twin's int8 form on their eval split (components/pusher/tflite.py)."""

    SPEC_CLASS = PusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, model: types.BaseChannel, model_blessing: types.BaseChannel,
                 push_destination: pusher_pb2.PushDestination,
                 examples: types.BaseChannel | None = None):
        # TFX's __init__ builds its own spec class; this one adds `examples`.
        base_component.BaseComponent.__init__(self, spec=PusherSpec(
            model=model, model_blessing=model_blessing, push_destination=push_destination,
            pushed_model=types.Channel(type=standard_artifacts.PushedModel),
            **({EXAMPLES_KEY: examples} if examples is not None else {})))
