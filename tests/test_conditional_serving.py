"""A --conditional export: signatures with labels, warmup replay, the gRPC and REST clients
against the loopback Predict server, autogan-sample --labels, and bad labels refused."""

import numpy as np
import pytest

from autogan_tf import models, sampling
from autogan_tf.serving import client as serving
from autogan_tf.serving import export
from autogan_tf.testing.predict_server import PredictServer

from conftest import assert_close_uint8

K = 3
LATENT = 4
ARCH = "0 1 0 0 0 2 1 1 1 0 2 2 1 3"  # batch and instance norms: class affines in the cells


@pytest.fixture(scope="module")
def generator():
    g = models.DerivedGenerator(ARCH, gf_dim=8, latent_dim=LATENT, num_classes=K)
    rng = np.random.default_rng(0)
    for v in g.weights:  # classes that differ: per-class scales away from one
        if "class" in v.path or "embed" in v.path:
            v.assign(rng.normal(1.0 if "gamma" in v.path else 0.0, 0.5, v.shape))
    return g


@pytest.fixture(scope="module")
def export_base(generator, tmp_path_factory):
    base = str(tmp_path_factory.mktemp("cond") / "autogan")
    export.export_generator(generator, base, 1, max_batch=8, warmup_requests=2)
    return base


@pytest.fixture(scope="module")
def local(export_base):
    return serving.LocalGenerator(export_base)


@pytest.fixture(scope="module")
def server(export_base):
    with PredictServer(export_base, model_name="autogan") as srv:
        yield srv


def uint8(generator, z, labels):
    x = np.asarray(generator(z, training=False, labels=labels))
    return np.clip(x * 127.5 + 127.5, 0, 255).astype(np.uint8)


def test_signatures_take_labels(local):
    assert set(local.input_specs(export.SERVING_DEFAULT)) == {"z", "labels"}
    assert set(local.input_specs(export.GENERATE)) == {"num_samples", "seed", "labels"}


def test_an_unconditional_export_keeps_its_signatures(tmp_path):
    g = models.DerivedGenerator(ARCH, gf_dim=8, latent_dim=LATENT)
    path = export.export_generator(g, str(tmp_path / "plain"), 1, max_batch=4,
                                   warmup_requests=0)
    plain = serving.LocalGenerator(path)
    assert set(plain.input_specs(export.SERVING_DEFAULT)) == {"z"}
    assert set(plain.input_specs(export.GENERATE)) == {"num_samples", "seed"}
    with pytest.raises(serving.ServingError, match="takes inputs"):
        plain.generate(2, 0, labels=[0, 1])


def test_the_exported_model_draws_the_classes_asked_for(local, generator):
    z = sampling.latents(5, 0, 4, LATENT).numpy()
    labels = [2, 0, 1, 2]
    assert_close_uint8(local.predict_z(z, labels), uint8(generator, z, labels))
    assert_close_uint8(local.generate(4, 5, labels=labels), uint8(generator, z, labels))
    np.testing.assert_array_equal(local.generate(4, 5, labels=labels),
                                  local.predict_z(z, labels))


def test_label_minus_one_draws_a_class_from_the_seed(local, generator):
    first = local.generate(6, 7, labels=[-1] * 6)
    np.testing.assert_array_equal(first, local.generate(6, 7, labels=[-1] * 6))
    drawn = sampling.random_labels(7, 0, 6, K).numpy()
    assert set(drawn) <= set(range(K)) and len(set(drawn)) > 1
    z = sampling.latents(7, 0, 6, LATENT).numpy()
    assert_close_uint8(first, uint8(generator, z, drawn))
    # Row i's class does not depend on how many images are asked for.
    np.testing.assert_array_equal(sampling.random_labels(7, 0, 3, K), drawn[:3])


@pytest.mark.parametrize("labels, message", [
    ([0, 3], "labels must be in -1..2"),
    ([0, -2], "labels must be in -1..2"),
    ([0], "one class per image"),
])
def test_bad_labels_are_refused_by_generate(local, labels, message):
    inputs = {"num_samples": np.int32(2), "seed": np.int64(0),
              "labels": np.array(labels, np.int32)}
    with pytest.raises(serving.ServingError, match=message) as err:
        local.predict(export.GENERATE, inputs)
    assert err.value.code == "INVALID_ARGUMENT"


@pytest.mark.parametrize("labels, message", [
    (np.array([0, -1], np.int32), "labels must be in 0..2"),
    (np.array([0, 3], np.int32), "labels must be in 0..2"),
    (np.array([0, 1, 2], np.int32), "one class per image"),
    (np.array([0.0, 1.0], np.float32), "input labels must be int32"),
])
def test_bad_labels_are_refused_by_serving_default(local, labels, message):
    with pytest.raises(serving.ServingError, match=message):
        local.predict(export.SERVING_DEFAULT, {"z": np.zeros([2, LATENT], np.float32),
                                               "labels": labels})


def test_the_client_refuses_labels_it_cannot_send(local):
    with pytest.raises(serving.RequestError, match="labels: one class per image: 3 images"):
        local.generate(3, 0, labels=[0, 1])
    with pytest.raises(serving.RequestError, match="labels must be an integer"):
        local.generate(2, 0, labels=[0, 1.5])


def test_warmup_requests_replay(export_base, local):
    path = export.latest_version_dir(export_base)
    logs = export.read_warmup(path)
    assert len(logs) == 4
    import tensorflow as tf

    for log in logs:
        request = log.predict_log.request
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        assert "labels" in inputs
        out = local.predict(request.model_spec.signature_name, inputs)
        assert out["images"].shape[0] == len(inputs["labels"])


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_clients_over_grpc_and_rest_send_labels(server, local, protocol):
    address = server.grpc_address if protocol == "grpc" else server.rest_address
    remote = serving.PredictClient(address, protocol)
    labels = [1, 1, 2, -1]
    np.testing.assert_array_equal(remote.generate(4, 3, labels=labels),
                                  local.generate(4, 3, labels=labels))
    z = sampling.latents(3, 0, 2, LATENT).numpy()
    np.testing.assert_array_equal(remote.predict_z(z, [2, 0]), local.predict_z(z, [2, 0]))
    with pytest.raises(serving.ServingError, match="labels must be in -1..2") as err:
        remote.generate(2, 0, labels=[0, 5])
    assert err.value.code == "INVALID_ARGUMENT"


def test_autogan_sample_writes_the_classes_named(export_base, tmp_path):
    from conftest import run_cli

    out = tmp_path / "s"
    proc = run_cli("autogan_tf.cli.sample", f"--saved_model={export_base}", "--labels=2,0,1",
                   f"--output_dir={out}", "--seed=4")
    assert proc.returncode == 0, proc.stderr
    assert "wrote 3 images" in proc.stdout
    bad = run_cli("autogan_tf.cli.sample", f"--saved_model={export_base}", "--labels=0,7",
                  f"--output_dir={out}")
    assert bad.returncode != 0 and "labels must be in -1..2" in bad.stderr
    mismatch = run_cli("autogan_tf.cli.sample", f"--saved_model={export_base}",
                       "--labels=0,1", "--num_samples=3", f"--output_dir={out}")
    assert mismatch.returncode != 0 and "--num_samples=3 but --labels names 2" in mismatch.stderr
