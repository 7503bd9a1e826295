"""The serving client without TensorFlow: same requests as TensorFlow's protos, and no TF import."""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import predict_pb2

from autogan_tf.serving import client as serving
from autogan_tf.serving import export
from autogan_tf.serving import proto as sp
from autogan_tf.testing import TinyGenerator
from autogan_tf.testing.predict_server import PredictServer

LATENT = 8
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARRAYS = {
    "scalar int32": np.int32(5), "scalar int64": np.int64(-2 ** 40), "float32 z":
    np.random.default_rng(0).standard_normal((3, LATENT)).astype(np.float32),
    "one float32": np.ones((1, 1), np.float32), "float64": np.linspace(0, 1, 4),
    "float16": np.arange(6, dtype=np.float16).reshape(2, 3), "one float16": np.float16(1.5),
    "uint8 images": np.arange(48, dtype=np.uint8).reshape(1, 4, 4, 3),
    "int8": np.array([-3, 4], np.int8), "int16": np.array([7], np.int16),
    "uint16": np.array([1, 65535], np.uint16), "uint32": np.array([2 ** 32 - 1], np.uint32),
    "uint64": np.array([1, 2 ** 64 - 1], np.uint64), "bool": np.array([True, False]),
    "empty": np.zeros((2, 0), np.float32), "bytes": np.array([b"\x89PNG", b""], dtype=object),
    "str": np.array(["a", "bc"]), "one bytes": b"raw",
}


def tensorflow_request(model_name, signature, inputs, outputs=None, version=None):
    """The request as serving.PredictClient built it before: TF Serving's classes and TF."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = int(version)
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    if outputs:
        request.output_filter.extend(outputs)
    return request


def test_dtype_numbers_are_tensorflows():
    for dtype, (number, _) in sp._DTYPES.items():
        assert tf.as_dtype(dtype).as_datatype_enum == number, dtype
    assert sp.DT_STRING == types_pb2.DT_STRING


@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_tensor_proto_bytes_equal_make_tensor_proto(name):
    value = ARRAYS[name]
    ours = sp.tensor_proto(value).SerializeToString(deterministic=True)
    assert ours == tf.make_tensor_proto(value).SerializeToString(deterministic=True)


@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_to_ndarray_reads_like_make_ndarray(name):
    wire = tf.make_tensor_proto(ARRAYS[name]).SerializeToString()
    ours = sp.to_ndarray(sp.messages()["TensorProto"].FromString(wire))
    theirs = tf.make_ndarray(tf.make_tensor_proto(ARRAYS[name]))
    assert ours.shape == theirs.shape
    assert ours.dtype == theirs.dtype or (ours.dtype == object and theirs.dtype == object)
    np.testing.assert_array_equal(ours, theirs)


def test_to_ndarray_fills_from_a_short_value_list():
    proto = tf.make_tensor_proto(np.zeros((2, 3), np.float32))
    proto.ClearField("tensor_content")
    proto.float_val.extend([1.0, 2.0])
    ours = sp.to_ndarray(sp.messages()["TensorProto"].FromString(proto.SerializeToString()))
    np.testing.assert_array_equal(ours, tf.make_ndarray(proto))


@pytest.mark.parametrize("case", [
    ("generate", serving.generate_inputs(16, 2 ** 40), ("images", "png_bytes"), None),
    ("generate", serving.generate_inputs(1, -3), ("png_bytes",), 3),
    ("serving_default", {"z": ARRAYS["float32 z"]}, ("images",), 7),
    ("serving_default", {"z": np.zeros((1, LATENT), np.float64)}, None, None),
], ids=["generate", "generate_png_v3", "predict_z", "all_outputs"])
def test_predict_request_bytes_equal_tensorflow_serving(case):
    signature, inputs, outputs, version = case
    ours = sp.predict_request("autogan", signature, inputs, outputs, version)
    theirs = tensorflow_request("autogan", signature, inputs, outputs, version)
    assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(
        deterministic=True)
    assert predict_pb2.PredictRequest.FromString(ours.SerializeToString()) == theirs


def test_unsendable_values_are_request_errors():
    with pytest.raises(TypeError, match="complex"):
        sp.tensor_proto(np.ones(2, np.complex64))
    client = serving.PredictClient("127.0.0.1:1", "grpc")
    with pytest.raises(serving.RequestError, match="complex"):
        client.predict("serving_default", {"z": np.ones(2, np.complex64)})


CLIENT = """
import hashlib, json, sys
from autogan_tf.serving import client as serving
out = {}
for protocol, address in (("grpc", sys.argv[1]), ("rest", sys.argv[2])):
    with serving.PredictClient(address, protocol, model_name="autogan") as client:
        result = client.generate_outputs(3, 11)
        out[protocol] = [hashlib.sha256(result["images"].tobytes()).hexdigest(),
                         [len(png) for png in result["png_bytes"]]]
out["modules"] = sorted(m for m in sys.modules
                        if m.split(".")[0] in ("tensorflow", "tensorflow_serving", "keras"))
print(json.dumps(out))
"""


def test_client_in_a_fresh_process_never_imports_tensorflow(tmp_path):
    base = str(tmp_path / "autogan")
    export.export_generator(TinyGenerator(latent_dim=LATENT), base, 1, max_batch=4,
                            warmup_requests=0)
    expected = serving.LocalGenerator(base).generate_outputs(3, 11)
    with PredictServer(base, model_name="autogan") as server:
        result = subprocess.run(
            [sys.executable, "-c", CLIENT, server.grpc_address, server.rest_address],
            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout)
    assert out["modules"] == []
    digest = hashlib.sha256(expected["images"].tobytes()).hexdigest()
    for protocol in ("grpc", "rest"):
        assert out[protocol] == [digest, [len(png) for png in expected["png_bytes"]]], protocol
