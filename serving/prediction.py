"""Runs a Predict request on a loaded version: the request checks and the conversion of inputs and
outputs, shared by the gRPC and REST servers (each converts its own wire format to arrays).

Errors follow TF Serving: INVALID_ARGUMENT for a bad input (key, dtype, shape, empty batch, image
bytes), FAILED_PRECONDITION for a signature the model does not have.
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Mapping, Optional

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import predict_pb2

from components import contract
from serving import errors, images


def signature_name_or_default(name: Optional[str]) -> str:
    return name or contract.SERVING_SIGNATURE


def check_inputs(signature_def, signature_name: str, keys: Iterable[str]) -> None:
    expected = set(signature_def.inputs)
    given = set(keys)
    unknown, missing = sorted(given - expected), sorted(expected - given)
    if unknown or missing:
        parts = []
        if unknown:
            parts.append(f"unknown input key(s) {unknown}")
        if missing:
            parts.append(f"missing input key(s) {missing}")
        raise errors.invalid(f"{' and '.join(parts)} for signature '{signature_name}'; "
                             f"it takes {sorted(expected)}")


def dtype_name(dtype_enum: int) -> str:
    return types_pb2.DataType.Name(dtype_enum)


def check_array(signature_def, key: str, array: np.ndarray) -> None:
    """Rank and batch checks of one input against the signature."""
    spec = signature_def.inputs[key]
    if not spec.tensor_shape.unknown_rank:
        rank = len(spec.tensor_shape.dim)
        if array.ndim != rank:
            raise errors.invalid(f"input '{key}' must have rank {rank} (a batch of "
                                 f"{'values' if rank == 1 else 'tensors'}), got shape "
                                 f"{list(array.shape)}")
    if array.ndim == 0 or array.shape[0] == 0:
        raise errors.invalid(f"empty batch: input '{key}' has no entries")


def check_output_filter(signature_def, signature_name: str, output_filter: Iterable[str]
                        ) -> List[str]:
    wanted = list(output_filter)
    unknown = sorted(set(wanted) - set(signature_def.outputs))
    if unknown:
        raise errors.invalid(f"output_filter names unknown output(s) {unknown}; signature "
                             f"'{signature_name}' has {sorted(signature_def.outputs)}")
    return wanted


def signature_def_of(version, signature_name: str):
    if signature_name not in version.signatures:
        raise errors.ServingError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"serving signature '{signature_name}' not found; version {version.version} has "
            f"{sorted(version.signatures)}")
    return version.signature_defs[signature_name]


def run(version, signature_name: str, inputs: Mapping[str, np.ndarray],
        output_filter: Iterable[str] = ()) -> Dict[str, np.ndarray]:
    """Checks `inputs` against the signature and runs it; returns the outputs as arrays.

    `version` is a model_store.LoadedVersion. String inputs are arrays of bytes objects."""
    signature_def = signature_def_of(version, signature_name)
    function = version.signatures[signature_name]
    check_inputs(signature_def, signature_name, inputs)
    for key, array in inputs.items():
        check_array(signature_def, key, array)
    image_batch = inputs.get(contract.SERVING_INPUT_KEY)
    if image_batch is not None and signature_name == contract.SERVING_SIGNATURE:
        images.check_batch(list(image_batch))
    sizes = {array.shape[0] for array in inputs.values()}
    if len(sizes) > 1:
        raise errors.invalid(f"inputs have different batch sizes {sorted(sizes)}")

    wanted = check_output_filter(signature_def, signature_name, output_filter)
    try:
        outputs = function(**{key: tf.constant(array) for key, array in inputs.items()})
    except tf.errors.InvalidArgumentError as e:
        if image_batch is not None:
            raise images.undecodable_error(list(image_batch), e) from None
        raise errors.invalid(images.tf_error_text(e)) from None
    return {key: value.numpy() for key, value in outputs.items() if not wanted or key in wanted}


# --- gRPC wire format --------------------------------------------------------------------------

def arrays_from_request(version, request: predict_pb2.PredictRequest) -> Dict[str, np.ndarray]:
    """The request's TensorProtos as arrays, after checking keys and dtypes."""
    signature_name = signature_name_or_default(request.model_spec.signature_name)
    signature_def = signature_def_of(version, signature_name)
    check_inputs(signature_def, signature_name, request.inputs)
    arrays = {}
    for key, proto in request.inputs.items():
        expected = signature_def.inputs[key].dtype
        if proto.dtype != expected:
            raise errors.invalid(f"input '{key}' has dtype {dtype_name(proto.dtype)}; signature "
                                 f"'{signature_name}' expects {dtype_name(expected)}")
        try:
            arrays[key] = tf.make_ndarray(proto)
        except (TypeError, ValueError) as e:
            raise errors.invalid(f"input '{key}' is not a valid TensorProto: {e}") from None
    return arrays


def predict_request(version, request: predict_pb2.PredictRequest, runner=None
                    ) -> predict_pb2.PredictResponse:
    """A PredictRequest run on `version`; `runner` (same arguments as `run`) may batch it."""
    signature_name = signature_name_or_default(request.model_spec.signature_name)
    outputs = (runner or run)(version, signature_name, arrays_from_request(version, request),
                              request.output_filter)
    return response_from_outputs(version, signature_name, outputs)


def response_from_outputs(version, signature_name: str, outputs: Mapping[str, np.ndarray]
                          ) -> predict_pb2.PredictResponse:
    response = predict_pb2.PredictResponse()
    response.model_spec.name = version.model_name
    response.model_spec.version.value = version.version
    response.model_spec.signature_name = signature_name
    for key, value in outputs.items():
        response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
    return response
