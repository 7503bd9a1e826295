"""TF Serving's Predict messages and TensorProto <-> NumPy in plain protobuf, without TensorFlow.

Why this module exists: the message classes of ``tensorflow_serving.apis``
import ``tensorflow.core.framework.tensor_pb2``, and importing anything under
``tensorflow`` runs ``tensorflow/__init__.py``, which loads all of TensorFlow
(seconds and thousands of modules), as does ``tf.make_tensor_proto``. A
client only needs the wire format, so the few messages of a Predict call are
declared here in a private descriptor pool (the default pool, where
TensorFlow registers its own messages of the same names, is left alone):

* ``tensorflow.TensorShapeProto`` and ``tensorflow.TensorProto`` (the dtype as
  its enum's number; the value fields of the dtypes below);
* ``tensorflow.serving.ModelSpec``, ``PredictRequest`` and ``PredictResponse``;
* ``google.protobuf.Int64Value`` (the model version), from protobuf itself.

Field numbers are TF Serving's, so the bytes on the wire are the ones its own
classes produce; fields left out here (e.g. ``request_options``) are kept as
unknown fields when parsing. `tensor_proto` encodes an array the way
``tf.make_tensor_proto`` does and `to_ndarray` decodes like ``tf.make_ndarray``
(tests/test_serving_client.py compares both with TensorFlow's).
"""

from __future__ import annotations

import functools

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"

# NumPy dtype -> (TensorFlow DataType number, the TensorProto field of single values).
_DTYPES = {
    np.dtype(np.float16): (19, "half_val"), np.dtype(np.float32): (1, "float_val"),
    np.dtype(np.float64): (2, "double_val"), np.dtype(np.int8): (6, "int_val"),
    np.dtype(np.int16): (5, "int_val"), np.dtype(np.int32): (3, "int_val"),
    np.dtype(np.int64): (9, "int64_val"), np.dtype(np.uint8): (4, "int_val"),
    np.dtype(np.uint16): (17, "int_val"), np.dtype(np.uint32): (22, "uint32_val"),
    np.dtype(np.uint64): (23, "uint64_val"), np.dtype(np.bool_): (10, "bool_val"),
}
DT_STRING = 7
_NUMPY_FOR = {number: dtype for dtype, (number, _) in _DTYPES.items()}
# The dtypes whose arrays of more than one element TensorFlow packs into tensor_content.
_PACKED = frozenset(d for d in _DTYPES if d not in (np.dtype(np.uint16), np.dtype(np.bool_)))

_F = descriptor_pb2.FieldDescriptorProto


def _field(name: str, number: int, kind: int, repeated: bool = False, message: str = ""):
    """One field declaration; ``message`` the full type name of a message field."""
    label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
    field = _F(name=name, number=number, type=kind, label=label)
    if message:
        field.type_name = "." + message
    return field


def _map_entry(name: str, value_type: str):
    """The entry message of a ``map<string, value_type>`` field."""
    entry = descriptor_pb2.DescriptorProto(name=name, field=[
        _field("key", 1, _F.TYPE_STRING), _field("value", 2, _F.TYPE_MESSAGE, message=value_type)])
    entry.options.map_entry = True
    return entry


def _tensor_file():
    """``tensorflow/core/framework/tensor.proto``'s TensorProto, the fields a client meets."""
    dim = descriptor_pb2.DescriptorProto(name="Dim", field=[
        _field("size", 1, _F.TYPE_INT64), _field("name", 2, _F.TYPE_STRING)])
    shape = descriptor_pb2.DescriptorProto(name="TensorShapeProto", nested_type=[dim], field=[
        _field("dim", 2, _F.TYPE_MESSAGE, True, "tensorflow.TensorShapeProto.Dim"),
        _field("unknown_rank", 3, _F.TYPE_BOOL)])
    tensor = descriptor_pb2.DescriptorProto(name="TensorProto", field=[
        _field("dtype", 1, _F.TYPE_INT32),  # enum DataType on the wire: the same varint
        _field("tensor_shape", 2, _F.TYPE_MESSAGE, message="tensorflow.TensorShapeProto"),
        _field("version_number", 3, _F.TYPE_INT32),
        _field("tensor_content", 4, _F.TYPE_BYTES),
        _field("half_val", 13, _F.TYPE_INT32, True),
        _field("float_val", 5, _F.TYPE_FLOAT, True),
        _field("double_val", 6, _F.TYPE_DOUBLE, True),
        _field("int_val", 7, _F.TYPE_INT32, True),
        _field("string_val", 8, _F.TYPE_BYTES, True),
        _field("int64_val", 10, _F.TYPE_INT64, True),
        _field("bool_val", 11, _F.TYPE_BOOL, True),
        _field("uint32_val", 16, _F.TYPE_UINT32, True),
        _field("uint64_val", 17, _F.TYPE_UINT64, True)])
    return descriptor_pb2.FileDescriptorProto(
        name="autogan_tf/tensor.proto", package="tensorflow", syntax="proto3",
        message_type=[shape, tensor])


def _predict_file():
    """``tensorflow_serving/apis/{model,predict}.proto``: ModelSpec and the Predict pair."""
    spec = descriptor_pb2.DescriptorProto(name="ModelSpec", field=[
        _field("name", 1, _F.TYPE_STRING),
        _field("version", 2, _F.TYPE_MESSAGE, message="google.protobuf.Int64Value"),
        _field("signature_name", 3, _F.TYPE_STRING),
        _field("version_label", 4, _F.TYPE_STRING)])
    request = descriptor_pb2.DescriptorProto(
        name="PredictRequest", nested_type=[_map_entry("InputsEntry", "tensorflow.TensorProto")],
        field=[_field("model_spec", 1, _F.TYPE_MESSAGE, message="tensorflow.serving.ModelSpec"),
               _field("inputs", 2, _F.TYPE_MESSAGE, True,
                      "tensorflow.serving.PredictRequest.InputsEntry"),
               _field("output_filter", 3, _F.TYPE_STRING, True)])
    response = descriptor_pb2.DescriptorProto(
        name="PredictResponse",
        nested_type=[_map_entry("OutputsEntry", "tensorflow.TensorProto")],
        field=[_field("outputs", 1, _F.TYPE_MESSAGE, True,
                      "tensorflow.serving.PredictResponse.OutputsEntry"),
               _field("model_spec", 2, _F.TYPE_MESSAGE, message="tensorflow.serving.ModelSpec")])
    return descriptor_pb2.FileDescriptorProto(
        name="autogan_tf/predict.proto", package="tensorflow.serving", syntax="proto3",
        dependency=["autogan_tf/tensor.proto", wrappers_pb2.DESCRIPTOR.name],
        message_type=[spec, request, response])


@functools.lru_cache(maxsize=None)
def messages() -> dict:
    """The message classes by short name: TensorProto, ModelSpec, PredictRequest, PredictResponse.

    Built once, on first use, in a descriptor pool of their own.
    """
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    for file in (_tensor_file(), _predict_file()):
        pool.AddSerializedFile(file.SerializeToString())
    names = {"TensorProto": "tensorflow.TensorProto",
             "ModelSpec": "tensorflow.serving.ModelSpec",
             "PredictRequest": "tensorflow.serving.PredictRequest",
             "PredictResponse": "tensorflow.serving.PredictResponse"}
    return {short: message_factory.GetMessageClass(pool.FindMessageTypeByName(full))
            for short, full in names.items()}


def tensor_proto(value):
    """A TensorProto of ``value``, field for field what ``tf.make_tensor_proto(value)`` gives.

    Args:
      value: a NumPy array or scalar (or anything ``np.asarray`` takes) of a
        bool, integer or float dtype, or of bytes/str (a string tensor; str is
        encoded as UTF-8).

    Returns:
      The message. An array of more than one element of a packed dtype goes
      into ``tensor_content`` (little-endian, C order), anything else into
      the dtype's ``*_val`` field; an empty array has neither.

    Raises:
      TypeError: a dtype TensorFlow Serving cannot take from this client
        (complex, datetime, Python objects other than bytes and str).
    """
    array = np.asarray(value)
    if array.dtype.kind in "biuf":
        array = array.astype(array.dtype.newbyteorder("="), copy=False)
    proto = messages()["TensorProto"]()
    proto.tensor_shape.SetInParent()  # TensorFlow writes the shape of a scalar too: empty
    for size in array.shape:
        proto.tensor_shape.dim.add().size = size
    if array.dtype.kind in "SUO":
        proto.dtype = DT_STRING
        proto.string_val.extend(_as_bytes(item) for item in array.ravel())
        return proto
    if array.dtype not in _DTYPES:
        raise TypeError(f"cannot send a tensor of dtype {array.dtype}")
    proto.dtype, field = _DTYPES[array.dtype]
    if array.dtype in _PACKED and array.size > 1:
        proto.tensor_content = np.ascontiguousarray(array, array.dtype.newbyteorder("<")).tobytes()
    elif array.dtype == np.float16:
        proto.half_val.extend(array.ravel().view(np.uint16).tolist())
    else:
        getattr(proto, field).extend(array.ravel().tolist())
    return proto


def _as_bytes(item) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode("utf-8")
    raise TypeError(f"cannot send {type(item).__name__} {item!r} in a string tensor")


def to_ndarray(proto) -> np.ndarray:
    """The NumPy array of a TensorProto, as ``tf.make_ndarray`` reads it.

    Args:
      proto: a TensorProto (of this module, or any message with its fields).

    Returns:
      An array of the proto's shape: from ``tensor_content`` when set, else
      from the dtype's ``*_val`` field, its last value repeated when it holds
      fewer than the shape's elements (TensorFlow's shorthand for a filled
      tensor), zeros when it is empty. Strings come back as an object array
      of bytes.

    Raises:
      TypeError: a dtype this client cannot decode (e.g. bfloat16, complex).
    """
    shape = tuple(dim.size for dim in proto.tensor_shape.dim)
    count = int(np.prod(shape, dtype=np.int64))
    if proto.dtype == DT_STRING:
        values = list(proto.string_val)
        values += values[-1:] * (count - len(values)) if values else [b""] * count
        out = np.empty(count, dtype=object)
        out[:] = values[:count]
        return out.reshape(shape)
    if proto.dtype not in _NUMPY_FOR:
        raise TypeError(f"cannot decode a tensor of TensorFlow dtype number {proto.dtype}")
    dtype = _NUMPY_FOR[proto.dtype]
    if proto.tensor_content:
        return np.frombuffer(proto.tensor_content, dtype.newbyteorder("<")).astype(
            dtype).reshape(shape)
    field = _DTYPES[dtype][1]
    if dtype == np.float16:
        values = np.array(proto.half_val, np.uint16).view(np.float16)
    else:
        values = np.array(getattr(proto, field), dtype)
    if values.size == 0:
        return np.zeros(shape, dtype)
    if values.size < count:
        values = np.pad(values, (0, count - values.size), mode="edge")
    return values.reshape(shape)


def predict_request(model_name: str, signature: str, inputs: dict, outputs=None,
                    version: int | None = None):
    """A PredictRequest for ``signature`` of ``model_name`` (optionally one ``version``).

    Args:
      model_name, signature: the served model and its signature.
      inputs: ``{name: array}``; each becomes a `tensor_proto`.
      outputs: names of the outputs to return (all when empty or None).
      version: a version number, or None for the server's choice.

    Returns:
      The message, equal to the one ``tensorflow_serving.apis`` and
      ``tf.make_tensor_proto`` build from the same arguments.
    """
    request = messages()["PredictRequest"]()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = int(version)
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tensor_proto(value))
    if outputs:
        request.output_filter.extend(outputs)
    return request
