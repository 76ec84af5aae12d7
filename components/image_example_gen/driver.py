"""ImageFolderExampleGen's driver: which span to read, and the fingerprint of its files.

TFX's file-based ExampleGen driver resolves `{SPAN}` patterns (latest span, or the one a
RangeConfig's static range names) and records span, version and input fingerprint as execution
properties and on the Examples artifact. The fingerprint is part of the cache key: a re-run on
the same files reuses ExampleGen and everything downstream; one changed image re-runs it all.
TFX's own fingerprint (file count, bytes, mtimes in whole seconds) misses a file renamed into
another class folder, so this driver replaces it with spans.fingerprint (of the one CSV file,
with `data_csv`).
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from tfx.components.example_gen import driver as example_gen_driver
from tfx.components.example_gen import utils as example_gen_utils
from tfx.proto import example_gen_pb2, range_config_pb2
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from components.image_example_gen import csv_source, spans

INPUT_CONFIG_KEY = standard_component_specs.INPUT_CONFIG_KEY
RANGE_CONFIG_KEY = standard_component_specs.RANGE_CONFIG_KEY
SPAN_PROPERTY = example_gen_utils.SPAN_PROPERTY_NAME
VERSION_PROPERTY = example_gen_utils.VERSION_PROPERTY_NAME
FINGERPRINT_PROPERTY = example_gen_utils.FINGERPRINT_PROPERTY_NAME


class NoSpanError(ValueError):
    """A span was asked for and the data root has no such `span-<N>` folder."""


def input_config() -> str:
    """The `input_config` exec property: one pattern at the span folder level."""
    return proto_utils.proto_to_json(example_gen_pb2.Input(splits=[
        example_gen_pb2.Input.Split(name="span", pattern=spans.SPAN_PATTERN)]))


def resolved_pattern(exec_properties: Dict[str, Any]) -> str:
    config = example_gen_pb2.Input()
    proto_utils.json_to_proto(exec_properties[INPUT_CONFIG_KEY], config)
    return config.splits[0].pattern


def static_range(span: int) -> str:
    """A RangeConfig (JSON) that names `span`."""
    return proto_utils.proto_to_json(range_config_pb2.RangeConfig(
        static_range=range_config_pb2.StaticRange(start_span_number=span,
                                                  end_span_number=span)))


def asked_span(exec_properties: Dict[str, Any]) -> Optional[int]:
    """The span a static RangeConfig names, or None (latest)."""
    if not exec_properties.get(RANGE_CONFIG_KEY):
        return None
    config = range_config_pb2.RangeConfig()
    proto_utils.json_to_proto(exec_properties[RANGE_CONFIG_KEY], config)
    return config.static_range.start_span_number


class ImageFolderDriver(example_gen_driver.FileBasedDriver):

    def resolve_exec_properties(self, exec_properties, pipeline_info, component_info):
        input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
        found = spans.list_spans(input_base)
        asked = asked_span(exec_properties)
        if found:
            if asked is not None and asked not in found:
                raise NoSpanError(f"span {asked} asked for, but {input_base!r} has only spans "
                                  f"{found}")
            exec_properties = super().resolve_exec_properties(
                exec_properties, pipeline_info, component_info)
        elif asked is not None:
            raise NoSpanError(f"a span was asked for, but {input_base!r} has no "
                              f"{spans.SPAN_FOLDER_PREFIX}<N> folders")
        else:
            exec_properties[SPAN_PROPERTY] = 0
            exec_properties[VERSION_PROPERTY] = None
        if found:
            # The span as a static range however it was asked for (latest, or by number): the
            # cache key then depends on the span read, not on how it was chosen.
            exec_properties[RANGE_CONFIG_KEY] = static_range(exec_properties[SPAN_PROPERTY])
        root = spans.data_root_of(input_base, resolved_pattern(exec_properties))
        data_csv = exec_properties.get(csv_source.DATA_CSV_KEY)
        exec_properties[FINGERPRINT_PROPERTY] = (spans.file_fingerprint(root, data_csv)
                                                 if data_csv else spans.fingerprint(root))
        return exec_properties


def span_root_without_driver(exec_properties: Dict[str, Any]) -> Tuple[str, Optional[int]]:
    """The folder to read and its span when no driver resolved them: TFX's Kubeflow V2 runner
    runs drivers for its own file-based ExampleGens only. Same choice as the driver (the span
    asked for, else the latest); no fingerprint (KFP caches by its own keys)."""
    input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
    found = spans.list_spans(input_base)
    asked = asked_span(exec_properties)
    if not found:
        if asked is not None:
            raise NoSpanError(f"a span was asked for, but {input_base!r} has no "
                              f"{spans.SPAN_FOLDER_PREFIX}<N> folders")
        return input_base, None
    span = found[-1] if asked is None else asked
    if span not in found:
        raise NoSpanError(f"span {span} asked for, but {input_base!r} has only spans {found}")
    return spans.span_root(input_base, span), span
