"""TFX Pusher executor whose new model versions appear all at once.

TF Serving watches `<base_directory>/<version>/` and loads a version as soon as the directory
shows up. TFX's Pusher copies straight into that directory (saved_model.pb last). On a local or
POSIX file system this executor copies into a hidden staging directory beside it, then renames it
to `<version>`: a watcher sees either no version or a complete one. Other file systems (gs://,
...) have no atomic rename; there it falls back to TFX's behaviour.

Each version pushed also gets a TFLite twin (components/pusher/tflite.py: float16 weights, the
class names in its metadata; with the `examples` input, the int8 one too where it kept its eval
accuracy) at `<base_directory>-tflite/<same version>/`, a sibling TF Serving never scans. It is
staged and renamed the same way, before the SavedModel's rename, so a version's TFLite directory
is complete by the time the version itself appears. A model exported without the float-image
function it converts (older code), or that TFLite cannot express (bfloat16 arithmetic), is
pushed without one, with a warning.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
import uuid
from typing import Any, Dict, List, Optional

from absl import logging
from tfx import types
from tfx.components.pusher import executor as tfx_pusher_executor
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.utils import proto_utils

from components import contract, resolvers
from components.pusher import tflite

PUSHED_PROPERTY = resolvers.PUSHED_PROPERTY     # set by TFX's Pusher executor
PUSHED_DESTINATION_PROPERTY = "pushed_destination"
TFLITE_DESTINATION_PROPERTY = "pushed_tflite_destination"  # the version's TFLite directory
ALREADY_SERVING_PROPERTY = "already_serving_version"  # not pushed: that version is this model
EXAMPLES_KEY = "examples"  # optional input: its eval split measures the int8 TFLite model


def pushed_destination(pushed_model) -> Optional[str]:
    """The version directory a Pusher's `pushed_model` (an ML Metadata Artifact) was published
    to, or None when nothing was pushed."""
    pushed = _readable(pushed_model)
    if not pushed.get_int_custom_property(PUSHED_PROPERTY):
        return None
    return pushed.get_string_custom_property(PUSHED_DESTINATION_PROPERTY)


def pushed_tflite_destination(pushed_model) -> Optional[str]:
    """The TFLite version directory pushed with the model (an ML Metadata PushedModel), or None
    when the push had no TFLite twin or nothing was pushed."""
    if not pushed_destination(pushed_model):
        return None
    return _readable(pushed_model).get_string_custom_property(
        TFLITE_DESTINATION_PROPERTY) or None


def describe_push(pushed_model) -> str:
    """The version directory pushed, or why nothing was (an ML Metadata PushedModel)."""
    destination = pushed_destination(pushed_model)
    if destination:
        return destination
    if ALREADY_SERVING_PROPERTY in pushed_model.custom_properties:
        version = _readable(pushed_model).get_string_custom_property(ALREADY_SERVING_PROPERTY)
        return f"nothing new (the winner is already serving as version {version})"
    return "nothing (no blessed winner)"


def _readable(pushed_model) -> types.Artifact:
    """The ML Metadata artifact as a TFX PushedModel, whose getters read a custom property
    however it was stored: typed, as the local orchestrator records it, or as a struct, as the
    KFP v2 entry point hands a task its input artifacts' metadata."""
    artifact = standard_artifacts.PushedModel()
    artifact.set_mlmd_artifact(pushed_model)
    return artifact


def tree_digest(path: str) -> str:
    """sha256 over every file's relative path and bytes below `path`."""
    digest = hashlib.sha256()
    for folder, dirs, names in os.walk(path):
        dirs.sort()
        for name in sorted(names):
            full = os.path.join(folder, name)
            digest.update(os.path.relpath(full, path).encode() + b"\0")
            with open(full, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def serving_version_of(model_path: str, base_directory: str) -> Optional[str]:
    """The latest version under `base_directory` if it holds exactly `model_path`'s files."""
    if not os.path.isdir(base_directory):
        return None
    versions = sorted((v for v in os.listdir(base_directory) if v.isdigit()), key=int)
    if versions and tree_digest(os.path.join(base_directory, versions[-1])) == \
            tree_digest(model_path):
        return versions[-1]
    return None


def _is_local(path: str) -> bool:
    return "://" not in path


def publish_atomically(model_path: str, base_directory: str,
                       tflite_dir: Optional[str] = None) -> str:
    """Copies `model_path` to `<base_directory>/<unix time>`; with `tflite_dir`, copies that to
    `<base_directory>-tflite/<the same version>` (contract.tflite_base_path) and renames it
    into place first. Returns the version directory."""
    copies = [(model_path, base_directory)]
    if tflite_dir is not None:
        copies.insert(0, (tflite_dir, contract.tflite_base_path(base_directory)))
    for _, base in copies:
        os.makedirs(base, exist_ok=True)
    version = int(time.time())
    while any(os.path.exists(os.path.join(base, str(version))) for _, base in copies):
        version += 1  # two pushes within a second: versions must stay unique and increasing
    staged = []
    for source, base in copies:
        staging = os.path.join(base, f".staging-{version}-{uuid.uuid4().hex[:8]}")
        shutil.copytree(source, staging)
        staged.append((staging, os.path.join(base, str(version))))
    for staging, final in staged:
        os.rename(staging, final)  # atomic on one file system
    return os.path.join(base_directory, str(version))


def _write_tflite(model_path: str, tflite_dir: str, examples_uri: Optional[str]) -> bool:
    """Writes the TFLite twin of `model_path` into `tflite_dir` (int8 measured on
    `examples_uri`'s eval split, when given); False (with a warning) for a model that has none
    (tflite.NotConvertibleError): the SavedModel is pushed all the same."""
    try:
        written = tflite.write_version(model_path, tflite_dir, examples_uri)
    except tflite.NotConvertibleError as e:
        logging.warning("%s", e)
        return False
    if "eval" in written:
        logging.info("TFLite eval accuracy on %d images: %s; written: %s",
                     written["eval"]["eval_images"], written["eval"]["accuracy"],
                     ", ".join(written["eval"]["written"]))
    return True


class Executor(tfx_pusher_executor.Executor):

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY],
                                  destination)
        base = destination.filesystem.base_directory
        model_push = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        # Which model this push is of: what resolvers.LatestPushedModelStrategy follows.
        model = artifact_utils.get_single_instance(
            input_dict[standard_component_specs.MODEL_KEY])
        model_push.set_int_custom_property(resolvers.PUSHED_MODEL_ID_PROPERTY, model.id)
        if destination.WhichOneof("destination") != "filesystem" or not _is_local(base):
            return super().Do(input_dict, output_dict, exec_properties)

        self._log_startup(input_dict, output_dict, exec_properties)
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        model_path = self.GetModelPath(input_dict)
        # A re-run on unchanged data re-evaluates the cached model against itself (the serving
        # model is the Evaluator's baseline) and a tie is blessed: push it only once.
        serving = serving_version_of(model_path, base)
        if serving is not None:
            logging.info("Model already serving as version %s: not pushed again", serving)
            self._MarkNotPushed(model_push)
            model_push.set_string_custom_property(ALREADY_SERVING_PROPERTY, serving)
            return
        with tempfile.TemporaryDirectory() as tflite_dir:
            examples = input_dict.get(EXAMPLES_KEY) or []
            with_tflite = _write_tflite(model_path, tflite_dir,
                                        examples[0].uri if examples else None)
            serving_path = publish_atomically(model_path, base,
                                              tflite_dir if with_tflite else None)
        logging.info("Model published to %s", serving_path)
        shutil.copytree(model_path, model_push.uri, dirs_exist_ok=True)  # archive, as TFX does
        self._MarkPushed(model_push, pushed_destination=serving_path,
                         pushed_version=os.path.basename(serving_path))
        if with_tflite:
            tflite_path = os.path.join(contract.tflite_base_path(base),
                                       os.path.basename(serving_path))
            logging.info("TFLite model published to %s", tflite_path)
            model_push.set_string_custom_property(TFLITE_DESTINATION_PROPERTY, tflite_path)
