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
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2

from components import contract
from serving import errors, images
from serving.limits import DEFAULT_LIMITS, Limits, flag_of


def signature_name_or_default(name: Optional[str]) -> str:
    """`name`, or the serving signature when it is empty or None (TF Serving's default)."""
    return name or contract.SERVING_SIGNATURE


def check_inputs(signature_def, signature_name: str, keys: Iterable[str]) -> None:
    """Raises INVALID_ARGUMENT naming the input `keys` that `signature_def` does not take and
    those it takes that are missing; `signature_name` is for the message."""
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
    """The name of a DataType value, e.g. "DT_STRING", for error messages."""
    return types_pb2.DataType.Name(dtype_enum)


def check_array(signature_def, key: str, array: np.ndarray,
                limits: Limits = DEFAULT_LIMITS) -> None:
    """Rank and batch checks of one input against the signature and the limits."""
    spec = signature_def.inputs[key]
    if not spec.tensor_shape.unknown_rank:
        rank = len(spec.tensor_shape.dim)
        if array.ndim != rank:
            raise errors.invalid(f"input '{key}' must have rank {rank} (a batch of "
                                 f"{'values' if rank == 1 else 'tensors'}), got shape "
                                 f"{list(array.shape)}")
    if array.ndim == 0:
        raise errors.invalid(f"input '{key}' is a scalar; it must be a batch (rank >= 1)")
    check_batch_size(key, array.shape[0], limits)


def check_batch_size(key: str, size: int, limits: Limits) -> None:
    """Raises INVALID_ARGUMENT when the batch of input `key` (`size` entries) is empty or over
    `limits.max_images_per_request`."""
    if size == 0:
        raise errors.invalid(f"empty batch: input '{key}' has no entries")
    if size > limits.max_images_per_request:
        raise errors.invalid(f"input '{key}' has a batch of {size}, over the limit of "
                             f"{limits.max_images_per_request} per request "
                             f"({flag_of('max_images_per_request')}); split it")


def check_output_filter(signature_def, signature_name: str, output_filter: Iterable[str]
                        ) -> List[str]:
    """The outputs `output_filter` asks for, as a list ([]: all); INVALID_ARGUMENT naming any
    that `signature_def` does not have (`signature_name` is for the message)."""
    wanted = list(output_filter)
    unknown = sorted(set(wanted) - set(signature_def.outputs))
    if unknown:
        raise errors.invalid(f"output_filter names unknown output(s) {unknown}; signature "
                             f"'{signature_name}' has {sorted(signature_def.outputs)}")
    return wanted


def signature_def_of(version, signature_name: str):
    """The SignatureDef of `signature_name` in `version` (a model_store.LoadedVersion);
    FAILED_PRECONDITION when the version has no such signature."""
    if signature_name not in version.signatures:
        raise errors.ServingError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"serving signature '{signature_name}' not found; version {version.version} has "
            f"{sorted(version.signatures)}")
    return version.signature_defs[signature_name]


def check(version, signature_name: str, inputs: Mapping[str, np.ndarray],
          output_filter: Iterable[str] = (), limits: Limits = DEFAULT_LIMITS) -> List[str]:
    """Every check of a request that needs no model call; returns the outputs wanted ([] for
    all). Raises ServingError naming the problem."""
    signature_def = signature_def_of(version, signature_name)
    check_inputs(signature_def, signature_name, inputs)
    for key, array in inputs.items():
        check_array(signature_def, key, array, limits)
    sizes = {array.shape[0] for array in inputs.values()}
    if len(sizes) > 1:
        raise errors.invalid(f"inputs have different batch sizes {sorted(sizes)}")
    image_batch = inputs.get(contract.SERVING_INPUT_KEY)
    if image_batch is not None and signature_name == contract.SERVING_SIGNATURE:
        images.check_batch(list(image_batch), limits)
    return check_output_filter(signature_def, signature_name, output_filter)


def execute(version, signature_name: str, inputs: Mapping[str, np.ndarray],
            wanted: Iterable[str] = ()) -> Dict[str, np.ndarray]:
    """Runs checked `inputs` (see `check`) on the signature; returns the outputs as arrays.

    `version` is a model_store.LoadedVersion. String inputs are arrays of bytes objects."""
    wanted = set(wanted)
    try:
        outputs = version.signatures[signature_name](
            **{key: tf.constant(array) for key, array in inputs.items()})
    except tf.errors.InvalidArgumentError as e:
        image_batch = inputs.get(contract.SERVING_INPUT_KEY)
        if image_batch is not None:
            raise images.undecodable_error(list(image_batch), e) from None
        raise errors.invalid(images.tf_error_text(e)) from None
    return {key: value.numpy() for key, value in outputs.items() if not wanted or key in wanted}


def run(version, signature_name: str, inputs: Mapping[str, np.ndarray],
        output_filter: Iterable[str] = (), limits: Limits = DEFAULT_LIMITS
        ) -> Dict[str, np.ndarray]:
    """`check`, then `execute`."""
    wanted = check(version, signature_name, inputs, output_filter, limits)
    return execute(version, signature_name, inputs, wanted)


# --- gRPC wire format --------------------------------------------------------------------------

# The TensorProto field that carries each dtype's values one by one (tensor_content aside).
_VALUE_FIELDS = {
    types_pb2.DT_FLOAT: "float_val", types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT32: "int_val", types_pb2.DT_INT16: "int_val", types_pb2.DT_INT8: "int_val",
    types_pb2.DT_UINT8: "int_val", types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_INT64: "int64_val", types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val", types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_STRING: "string_val", types_pb2.DT_HALF: "half_val",
    types_pb2.DT_BFLOAT16: "half_val",
}


def _values_carried(proto: tensor_pb2.TensorProto) -> int:
    if proto.tensor_content:
        itemsize = tf.as_dtype(proto.dtype).size
        return len(proto.tensor_content) // itemsize if itemsize else 0
    field = _VALUE_FIELDS.get(proto.dtype)
    return len(getattr(proto, field)) if field else 0


def check_tensor_proto(signature_def, key: str, proto: tensor_pb2.TensorProto,
                       limits: Limits) -> None:
    """The shape a TensorProto claims, checked before it is converted: TensorFlow would pad a
    proto with fewer values than its shape out to the full shape, allocating what the client
    never sent."""
    if proto.tensor_shape.unknown_rank:
        raise errors.invalid(f"input '{key}' has an unknown rank; give its shape")
    dims = [d.size for d in proto.tensor_shape.dim]
    if any(d < 0 for d in dims):
        raise errors.invalid(f"input '{key}' has a negative dimension in shape {dims}")
    spec = signature_def.inputs[key]
    if not spec.tensor_shape.unknown_rank and len(dims) != len(spec.tensor_shape.dim):
        rank = len(spec.tensor_shape.dim)
        raise errors.invalid(f"input '{key}' must have rank {rank} (a batch of "
                             f"{'values' if rank == 1 else 'tensors'}), got shape {dims}")
    if not dims:
        raise errors.invalid(f"input '{key}' is a scalar; it must be a batch (rank >= 1)")
    check_batch_size(key, dims[0], limits)
    elements = 1
    for d in dims:
        elements *= d
    carried = _values_carried(proto)
    if carried != elements:
        raise errors.invalid(f"input '{key}' claims shape {dims} ({elements} values) but "
                             f"carries {carried}; send every value")


def arrays_from_request(version, request: predict_pb2.PredictRequest,
                        limits: Limits = DEFAULT_LIMITS) -> Dict[str, np.ndarray]:
    """The request's TensorProtos as arrays, after checking keys, dtypes and shapes."""
    signature_name = signature_name_or_default(request.model_spec.signature_name)
    signature_def = signature_def_of(version, signature_name)
    check_inputs(signature_def, signature_name, request.inputs)
    arrays = {}
    for key, proto in request.inputs.items():
        expected = signature_def.inputs[key].dtype
        if proto.dtype != expected:
            raise errors.invalid(f"input '{key}' has dtype {dtype_name(proto.dtype)}; signature "
                                 f"'{signature_name}' expects {dtype_name(expected)}")
        check_tensor_proto(signature_def, key, proto, limits)
        try:
            arrays[key] = tf.make_ndarray(proto)
        except (TypeError, ValueError) as e:
            raise errors.invalid(f"input '{key}' is not a valid TensorProto: {e}") from None
    return arrays


def predict_request(version, request: predict_pb2.PredictRequest, runner=None,
                    limits: Limits = DEFAULT_LIMITS) -> predict_pb2.PredictResponse:
    """A PredictRequest run on `version`; `runner` (same arguments as `run`) may batch it."""
    signature_name = signature_name_or_default(request.model_spec.signature_name)
    outputs = (runner or run)(version, signature_name,
                              arrays_from_request(version, request, limits),
                              request.output_filter, limits)
    return response_from_outputs(version, signature_name, outputs)


def tensor_proto(value: np.ndarray) -> tensor_pb2.TensorProto:
    """`value` with its values in the typed field (float_val, int64_val, string_val...), as TF
    Serving answers: clients read `outputs[k].float_val` directly."""
    dtype = tf.as_dtype(value.dtype) if value.dtype != object else tf.string
    field = _VALUE_FIELDS.get(dtype.as_datatype_enum)
    if field is None or field == "half_val":
        return tf.make_tensor_proto(value)
    proto = tensor_pb2.TensorProto(dtype=dtype.as_datatype_enum)
    for size in value.shape:
        proto.tensor_shape.dim.add(size=size)
    getattr(proto, field).extend(value.ravel().tolist())
    return proto


def response_from_outputs(version, signature_name: str, outputs: Mapping[str, np.ndarray]
                          ) -> predict_pb2.PredictResponse:
    """A PredictResponse naming the model, `version` and `signature_name` that ran, with
    `outputs` (key -> array) as TensorProtos (tensor_proto)."""
    response = predict_pb2.PredictResponse()
    response.model_spec.name = version.model_name
    response.model_spec.version.value = version.version
    response.model_spec.signature_name = signature_name
    for key, value in outputs.items():
        response.outputs[key].CopyFrom(tensor_proto(value))
    return response
