"""Serving: gRPC and REST clients against the loopback Predict server, LocalGenerator, autogan-sample."""

import base64
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from autogan_tf import sampling
from autogan_tf.images import decode_png, make_grid
from autogan_tf.serving import client as serving
from autogan_tf.serving import export
from autogan_tf.testing.predict_server import PredictServer, json_to_array

from conftest import ROOT, assert_close_uint8, cli_env, reference_uint8, run_cli

LATENT = 8  # latent_dim of the `generator` fixture (conftest)
MAX_BATCH = 8
PROTOCOLS = ["grpc", "rest"]


@pytest.fixture(scope="module")
def export_base(generator, tmp_path_factory):
    base = str(tmp_path_factory.mktemp("serving") / "autogan")
    export.export_generator(generator, base, 3, max_batch=MAX_BATCH, warmup_requests=1)
    return base


@pytest.fixture(scope="module")
def server(export_base):
    with PredictServer(export_base, model_name="autogan") as srv:
        yield srv


@pytest.fixture(scope="module")
def local(export_base):
    return serving.LocalGenerator(export_base)


def client_for(server, protocol, **kwargs):
    address = server.grpc_address if protocol == "grpc" else server.rest_address
    return serving.PredictClient(address, protocol, **kwargs)


def rest_post(server, body, path="/v1/models/autogan:predict", raw=None):
    """POST JSON; return (HTTP status, decoded JSON reply)."""
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://{server.rest_address}{path}", data=data,
                                     method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def rest_get(server, path):
    try:
        with urllib.request.urlopen(f"http://{server.rest_address}{path}", timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


# ---------------------------------------------------------------------------
# Happy paths, both protocols
# ---------------------------------------------------------------------------

def test_server_binds_loopback_only(server):
    assert server.grpc_address.startswith("127.0.0.1:")
    assert server.rest_address.startswith("127.0.0.1:")
    assert server.version == 3
    with pytest.raises(ValueError, match="loopback"):
        PredictServer("unused", host="0.0.0.0")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_generate_matches_keras_and_local(server, local, generator, protocol):
    client = client_for(server, protocol)
    images = client.generate(5, seed=42)
    z = sampling.latents(42, 0, 5, LATENT).numpy()
    assert images.shape == (5, 8, 8, 3) and images.dtype == np.uint8
    assert_close_uint8(images, reference_uint8(generator, z))
    np.testing.assert_array_equal(images, local.generate(5, 42))
    np.testing.assert_array_equal(images, client.generate(5, seed=42))
    assert not np.array_equal(images, client.generate(5, seed=43))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_png_bytes_round_trip(server, protocol):
    client = client_for(server, protocol)
    pngs = client.generate_png(3, seed=1)
    images = client.generate(3, seed=1)
    assert len(pngs) == 3 and all(isinstance(p, bytes) for p in pngs)
    for data, image in zip(pngs, images):
        np.testing.assert_array_equal(decode_png(data), image)
    both = client.generate_outputs(3, seed=1)
    np.testing.assert_array_equal(both["images"], images)
    assert both["png_bytes"] == pngs


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_predict_z_matches_keras(server, generator, protocol):
    z = np.random.default_rng(0).standard_normal((4, LATENT)).astype(np.float32)
    images = client_for(server, protocol).predict_z(z)
    assert_close_uint8(images, reference_uint8(generator, z))


def test_local_generator_matches_keras(local, generator):
    z = np.random.default_rng(5).standard_normal((2, LATENT)).astype(np.float32)
    assert_close_uint8(local.predict_z(z), reference_uint8(generator, z))
    assert local.path.endswith(os.sep + "3")


def test_version_pinning(server):
    assert client_for(server, "grpc", version=3).generate(1, 0).shape == (1, 8, 8, 3)
    for protocol in PROTOCOLS:
        with pytest.raises(serving.ServingError) as info:
            client_for(server, protocol, version=4).generate(1, 0)
        assert info.value.code == "NOT_FOUND"


# ---------------------------------------------------------------------------
# Bad requests: clear errors, TF Serving-like codes, and the server keeps serving
# ---------------------------------------------------------------------------

BAD_CALLS = {
    "negative num_samples": (lambda c: c.generate(-1, 0), "INVALID_ARGUMENT", "must be >= 0"),
    "too many samples": (lambda c: c.generate(MAX_BATCH + 1, 0), "INVALID_ARGUMENT",
                         "maximum batch of 8"),
    "z batch too big": (lambda c: c.predict_z(np.zeros((MAX_BATCH + 1, LATENT))),
                        "INVALID_ARGUMENT", "maximum batch of 8"),
    "z wrong width": (lambda c: c.predict_z(np.zeros((2, LATENT + 3))), "INVALID_ARGUMENT",
                      r"shape \[batch, 8\]"),
    "z not finite": (lambda c: c.predict_z(np.full((1, LATENT), np.inf)), "INVALID_ARGUMENT",
                     "finite"),
    "unknown signature": (lambda c: c.predict("nope", {"z": np.zeros((1, LATENT), np.float32)}),
                          "FAILED_PRECONDITION", '"nope" not found'),
    "missing input": (lambda c: c.predict("generate", {"seed": np.int64(1)}),
                      "INVALID_ARGUMENT", "num_samples"),
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_bad_requests_are_clear_errors_and_server_survives(server, protocol, case):
    call, code, message = BAD_CALLS[case]
    client = client_for(server, protocol)
    with pytest.raises(serving.ServingError, match=message) as info:
        call(client)
    assert info.value.code == code
    assert client.generate(2, seed=0).shape == (2, 8, 8, 3)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_wrong_dtype_and_unknown_model(server, protocol):
    client = client_for(server, protocol)
    if protocol == "grpc":  # REST has no dtypes: JSON numbers are typed by the signature
        with pytest.raises(serving.ServingError, match="must be float32") as info:
            client.predict("serving_default", {"z": np.zeros((1, LATENT), np.float64)})
        assert info.value.code == "INVALID_ARGUMENT"
    with pytest.raises(serving.ServingError, match="Servable not found") as info:
        client_for(server, protocol, model_name="other").generate(1, 0)
    assert info.value.code == "NOT_FOUND"


def test_seeds_outside_int64_are_refused(server):
    client = client_for(server, "grpc")
    with pytest.raises(serving.RequestError, match="int64"):
        client.generate(1, 2 ** 63)
    with pytest.raises(serving.RequestError, match="int32"):
        client.generate(2 ** 31, 0)
    # the largest and smallest int64 seeds are fine
    assert client.generate(1, 2 ** 63 - 1).shape == (1, 8, 8, 3)
    assert client.generate(1, -2 ** 63).shape == (1, 8, 8, 3)
    # a raw REST request with a huge seed gets a 400, not a crash
    status, reply = rest_post(server, {"signature_name": "generate",
                                       "inputs": {"num_samples": 1, "seed": 2 ** 70}})
    assert status == 400 and "does not fit in int64" in reply["error"]


RAW_REST_CASES = [
    ({"signature_name": "generate", "inputs": {"num_samples": 1.5, "seed": 0}}, 400,
     "not of expected type int32"),
    ({"signature_name": "generate", "inputs": {"num_samples": True, "seed": 0}}, 400,
     "not of expected type int32"),
    ({"signature_name": "generate", "inputs": {"num_samples": 1, "seed": 0, "x": 1}}, 400,
     "does not have named input: x"),
    ({"signature_name": "generate"}, 400, "Missing 'inputs' or 'instances'"),
    ({"inputs": [[1.0, 2.0], [3.0]]}, 400, "ragged"),
    ({"inputs": {"z": "abc"}}, 400, "not of expected type float32"),
    ({"signature_name": 3, "inputs": {}}, 400, "must be a string"),
    ({"signature_name": "missing", "inputs": {}}, 412, "not found"),
]


@pytest.mark.parametrize("body, status, message", RAW_REST_CASES)
def test_raw_rest_errors(server, body, status, message):
    got, reply = rest_post(server, body)
    assert got == status and message in reply["error"]
    assert set(reply) == {"error"}


def test_raw_rest_malformed_json_and_paths(server):
    status, reply = rest_post(server, None, raw=b"{not json")
    assert status == 400 and "JSON Parse error" in reply["error"]
    status, reply = rest_post(server, {"inputs": {}}, path="/v1/models/autogan:classify")
    assert status == 400 and "Malformed request" in reply["error"]
    status, reply = rest_get(server, "/v1/models/nobody")
    assert status == 404 and "Servable not found" in reply["error"]
    # still serving
    assert client_for(server, "rest").generate(1, 0).shape == (1, 8, 8, 3)


def test_rest_reply_formats_follow_tf_serving(server, generator):
    # columnar, several outputs: named; strings named *_bytes are base64 objects
    status, reply = rest_post(server, {"signature_name": "generate",
                                       "inputs": {"num_samples": 2, "seed": 4}})
    assert status == 200 and set(reply["outputs"]) == {"images", "png_bytes"}
    png = base64.b64decode(reply["outputs"]["png_bytes"][0]["b64"])
    np.testing.assert_array_equal(decode_png(png),
                                  np.asarray(reply["outputs"]["images"][0], np.uint8))
    # columnar, one output: the name is dropped
    z = np.random.default_rng(6).standard_normal((2, LATENT)).astype(np.float32)
    status, reply = rest_post(server, {"inputs": {"z": z.tolist()}})
    assert status == 200 and isinstance(reply["outputs"], list)
    assert_close_uint8(np.asarray(reply["outputs"], np.uint8), reference_uint8(generator, z))
    # row format ("instances") answers with "predictions", one per row
    status, reply = rest_post(server, {"instances": z.tolist()})
    assert status == 200 and len(reply["predictions"]) == 2
    np.testing.assert_array_equal(np.asarray(reply["predictions"], np.uint8),
                                  np.asarray(rest_post(server, {"inputs": z.tolist()})[1]
                                             ["outputs"], np.uint8))


def test_rest_status_and_metadata(server):
    status, reply = rest_get(server, "/v1/models/autogan")
    assert status == 200
    assert reply["model_version_status"][0]["version"] == "3"
    assert reply["model_version_status"][0]["state"] == "AVAILABLE"
    status, reply = rest_get(server, "/v1/models/autogan/versions/3/metadata")
    assert status == 200
    sigs = reply["metadata"]["signature_def"]["signature_def"]
    assert set(sigs) == {"serving_default", "generate"}
    assert sigs["generate"]["inputs"]["seed"]["dtype"] == "DT_INT64"
    assert client_for(server, "rest").model_status() == rest_get(server, "/v1/models/autogan")[1]


def test_grpc_model_metadata(server):
    import grpc
    from tensorflow_serving.apis import get_model_metadata_pb2, prediction_service_pb2_grpc

    with grpc.insecure_channel(server.grpc_address) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        request.model_spec.name = "autogan"
        request.metadata_field.append("signature_def")
        reply = stub.GetModelMetadata(request, timeout=30)
        sigs = get_model_metadata_pb2.SignatureDefMap()
        reply.metadata["signature_def"].Unpack(sigs)
        assert set(sigs.signature_def) == {"serving_default", "generate"}
        assert reply.model_spec.version.value == 3
        # unimplemented methods answer UNIMPLEMENTED, like a server without them
        from tensorflow_serving.apis import classification_pb2
        with pytest.raises(grpc.RpcError) as info:
            stub.Classify(classification_pb2.ClassificationRequest(), timeout=30)
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_unreachable_server_is_a_clear_error():
    client = serving.PredictClient("127.0.0.1:1", "rest", timeout=5)
    with pytest.raises(serving.ServingError) as info:
        client.generate(1, 0)
    assert info.value.code == "UNAVAILABLE" and "127.0.0.1:1" in str(info.value)


def test_client_argument_checks():
    with pytest.raises(ValueError, match="--protocol"):
        serving.PredictClient("localhost:1", "http")
    with pytest.raises(ValueError, match="HOST:PORT"):
        serving.PredictClient("localhost", "grpc")


def test_local_generator_errors_match_server_codes(local):
    with pytest.raises(serving.ServingError) as info:
        local.generate(MAX_BATCH + 1, 0)
    assert info.value.code == "INVALID_ARGUMENT"
    assert "maximum batch" in info.value.message and "Graph execution" not in str(info.value)
    with pytest.raises(serving.ServingError) as info:
        local.predict("nope", {})
    assert info.value.code == "FAILED_PRECONDITION"


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

def test_json_to_array_types():
    np.testing.assert_array_equal(json_to_array([[1, 2]], np.float32, "x"),
                                  np.array([[1, 2]], np.float32))
    assert json_to_array(5, np.int64, "x").shape == ()
    assert json_to_array([{"b64": base64.b64encode(b"\x00\xff").decode()}], object,
                         "x")[0] == b"\x00\xff"
    with pytest.raises(serving.ServingError, match="does not fit in int32"):
        json_to_array([2 ** 31], np.int32, "x")


def test_json_value_round_trip():
    strings = np.array([b"\x89PNG", b""], dtype=object)
    encoded = serving.to_json_value(strings)
    assert encoded == [{"b64": base64.b64encode(b"\x89PNG").decode()}, {"b64": ""}]
    assert list(serving.from_json_value(encoded)) == [b"\x89PNG", b""]
    numbers = np.arange(6, dtype=np.int32).reshape(2, 3)
    np.testing.assert_array_equal(serving.from_json_value(serving.to_json_value(numbers)),
                                  numbers)


def test_image_grid_layout():
    images = np.stack([np.full((2, 3, 3), i + 1, np.uint8) for i in range(5)])
    grid = make_grid(images, nrow=2, padding=1)
    # 3 rows x 2 columns of 2x3 tiles with 1-pixel borders
    assert grid.shape == (3 * 3 + 1, 2 * 4 + 1, 3)
    for i in range(5):
        top, left = 1 + (i // 2) * 3, 1 + (i % 2) * 4
        assert (grid[top:top + 2, left:left + 3] == i + 1).all()
    assert grid[0].max() == 0 and grid[:, 0].max() == 0
    assert (grid[7:9, 5:8] == 0).all()  # the empty sixth cell
    with pytest.raises(ValueError):
        make_grid(images[:0])


def test_readable_tf_error():
    text = ("Graph execution error:\n\nDetected at node x\nassertion failed: "
            "[num_samples exceeds the exported maximum batch of 8] [Condition x <= y]")
    assert serving.readable_tf_error(text) == "num_samples exceeds the exported maximum batch of 8"
    assert serving.readable_tf_error("Graph execution error:\n\nMatrix size-incompatible") == \
        "Matrix size-incompatible"


def test_write_samples_local(local, tmp_path):
    written = serving.write_samples(local, 3, 8, str(tmp_path), nrow=2)
    images = local.generate(3, 8)
    assert len(written["images"]) == 3
    for path, image in zip(written["images"], images):
        np.testing.assert_array_equal(np.asarray(Image.open(path).convert("RGB")), image)
    grid = np.asarray(Image.open(written["grid"]).convert("RGB"))
    np.testing.assert_array_equal(grid, make_grid(images, 2))
    with pytest.raises(serving.RequestError, match="num_samples"):
        serving.write_samples(local, 0, 8, str(tmp_path))


# ---------------------------------------------------------------------------
# Command lines over real sockets
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_autogan_sample_over_the_network(server, local, protocol, tmp_path):
    address = server.grpc_address if protocol == "grpc" else server.rest_address
    out = tmp_path / protocol
    result = run_cli("sample", f"--server={address}", f"--protocol={protocol}",
                               "--model_name=autogan", "--num_samples=4", "--seed=21",
                               f"--output_dir={out}", "--nrow=2", timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    files = sorted(os.listdir(out))
    assert files == [f"sample_21_{i:04d}.png" for i in range(4)] + ["sample_21_grid.png"]
    expected = local.generate(4, 21)
    for i in range(4):
        decoded = np.asarray(Image.open(out / files[i]).convert("RGB"))
        np.testing.assert_array_equal(decoded, expected[i])
    grid = np.asarray(Image.open(out / "sample_21_grid.png").convert("RGB"))
    np.testing.assert_array_equal(grid, make_grid(expected, 2))


def test_autogan_sample_reports_server_refusal(server, tmp_path):
    result = run_cli("sample", f"--server={server.rest_address}", "--protocol=rest",
                     f"--num_samples={MAX_BATCH + 1}", f"--output_dir={tmp_path}", timeout=600)
    assert result.returncode != 0
    assert "maximum batch of 8" in result.stderr
    assert os.listdir(tmp_path) == []


def test_autogan_sample_flag_errors_and_local_mode(export_base, local, tmp_path):
    result = run_cli("sample", f"--output_dir={tmp_path}", timeout=600)
    assert result.returncode != 0 and "exactly one of --server" in result.stderr
    result = run_cli("sample", f"--saved_model={export_base}", "--num_samples=2", "--seed=5",
                               f"--output_dir={tmp_path}", timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    decoded = np.asarray(Image.open(tmp_path / "sample_5_0001.png").convert("RGB"))
    np.testing.assert_array_equal(decoded, local.generate(2, 5)[1])


def test_predict_server_command_line(export_base):
    proc = subprocess.Popen([sys.executable, "-m", "autogan_tf.testing.predict_server",
                             f"--saved_model={export_base}", "--grpc_port=0", "--rest_port=0"],
                            cwd=ROOT, env=cli_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving model autogan version 3"), proc.stderr.read()
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        grpc_images = serving.PredictClient(fields["grpc"], "grpc").generate(2, 0)
        rest_images = serving.PredictClient(fields["rest"], "rest").generate(2, 0)
        np.testing.assert_array_equal(grpc_images, rest_images)
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0


@pytest.mark.parametrize("protocol", PROTOCOLS + ["local"])
def test_an_empty_request_gets_images_of_the_right_shape(server, local, protocol):
    """Zero rows in, ``[0, H, W, 3]`` uint8 out, through each signature and transport (REST's
    JSON cannot say "0 rows of 8": the client asks for one and keeps none)."""
    predictor = local if protocol == "local" else client_for(server, protocol)
    images = predictor.predict_z(np.zeros([0, LATENT], np.float32))
    assert images.shape == (0, 8, 8, 3) and images.dtype == np.uint8
    generated = predictor.generate_outputs(0, seed=1)
    assert generated["images"].shape == (0, 8, 8, 3) and generated["png_bytes"] == []


def test_the_exported_signatures_promise_the_image_shape(export_base):
    import tensorflow as tf

    loaded = tf.saved_model.load(os.path.join(export_base, "3"))
    for name in ("serving_default", "generate"):
        spec = loaded.signatures[name].structured_outputs["images"]
        assert spec.shape.as_list() == [None, 8, 8, 3] and spec.dtype == tf.uint8
    empty = loaded.signatures["serving_default"](z=tf.zeros([0, LATENT]))["images"]
    assert empty.shape == (0, 8, 8, 3)
