"""SavedModel export: signatures, parity with Keras, determinism, guards, warmup file."""

import io
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from autogan_tf import sampling
from autogan_tf.serving import export
from autogan_tf.testing import TinyGenerator

from conftest import assert_close_uint8, reference_uint8

LATENT = 8  # latent_dim of the `generator` fixture (conftest)
MAX_BATCH = 8


@pytest.fixture(scope="module")
def exported(generator, tmp_path_factory):
    base = str(tmp_path_factory.mktemp("export") / "autogan")
    path = export.export_generator(generator, base, 1, max_batch=MAX_BATCH, warmup_requests=3)
    return path


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(exported)


def run_generate(loaded, n, seed):
    return loaded.signatures["generate"](num_samples=tf.constant(n, tf.int32),
                                         seed=tf.constant(seed, tf.int64))


def test_layout_is_a_versioned_savedmodel_with_warmup(exported):
    base = os.path.dirname(exported)
    assert os.path.basename(exported) == "1"
    assert os.listdir(base) == ["1"]  # no staging directory left behind
    assert os.path.isfile(os.path.join(exported, "saved_model.pb"))
    assert os.path.isdir(os.path.join(exported, "variables"))
    assert os.path.isfile(os.path.join(exported, "assets.extra", "tf_serving_warmup_requests"))


def test_serving_default_matches_keras(generator, loaded):
    z = np.random.default_rng(1).standard_normal((5, LATENT)).astype(np.float32)
    out = loaded.signatures["serving_default"](z=tf.constant(z))
    assert set(out) == {"images"}
    images = out["images"].numpy()
    assert images.shape == (5, 8, 8, 3)
    assert_close_uint8(images, reference_uint8(generator, z))
    # not a constant image: the weights really are in the graph
    assert images.std() > 5


def test_exported_graph_uses_inference_batchnorm(generator, loaded):
    z = np.random.default_rng(2).standard_normal((4, LATENT)).astype(np.float32)
    trained = np.asarray(generator(tf.constant(z), training=True))
    trained = np.clip(trained * 127.5 + 127.5, 0, 255).astype(np.uint8)
    served = loaded.signatures["serving_default"](z=tf.constant(z))["images"].numpy()
    assert np.abs(served.astype(int) - trained.astype(int)).max() > 1


def test_generate_matches_keras_on_seeded_latents(generator, loaded):
    out = run_generate(loaded, 4, 123)
    assert set(out) == {"images", "png_bytes"}
    z = sampling.latents(123, 0, 4, LATENT).numpy()
    assert_close_uint8(out["images"].numpy(), reference_uint8(generator, z))


def test_seeded_latents_are_standard_normal():
    z = sampling.latents(7, 0, 4096, LATENT).numpy()
    assert z.shape == (4096, LATENT) and z.dtype == np.float32
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05


def test_generate_is_deterministic_per_seed_and_differs_across_seeds(loaded):
    a = run_generate(loaded, 4, 5)["images"].numpy()
    b = run_generate(loaded, 4, 5)["images"].numpy()
    c = run_generate(loaded, 4, 6)["images"].numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # images within one request differ from each other
    assert not np.array_equal(a[0], a[1])


def test_sample_i_of_a_seed_does_not_depend_on_num_samples(loaded):
    few = run_generate(loaded, 2, 9)["images"].numpy()
    many = run_generate(loaded, 6, 9)["images"].numpy()
    np.testing.assert_array_equal(few, many[:2])


def test_png_bytes_decode_to_the_images(loaded):
    out = run_generate(loaded, 3, 11)
    pngs = out["png_bytes"].numpy()
    assert pngs.shape == (3,)
    for data, image in zip(pngs, out["images"].numpy()):
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        np.testing.assert_array_equal(decoded, image)


def test_zero_samples_gives_empty_outputs(loaded):
    out = run_generate(loaded, 0, 1)
    assert out["images"].shape == (0, 8, 8, 3) and out["png_bytes"].shape == (0,)


@pytest.mark.parametrize("n, message", [(MAX_BATCH + 1, "exceeds the exported maximum batch"),
                                        (-1, "num_samples must be >= 0")])
def test_generate_batch_guard(loaded, n, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        run_generate(loaded, n, 0)
    assert run_generate(loaded, MAX_BATCH, 0)["images"].shape[0] == MAX_BATCH


def test_serving_default_batch_guard_and_bad_z(loaded):
    fn = loaded.signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="maximum batch of 8"):
        fn(z=tf.zeros([MAX_BATCH + 1, LATENT]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"z must have shape \[batch, 8\]"):
        fn(z=tf.zeros([2, LATENT + 1]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="z must be finite"):
        fn(z=tf.fill([1, LATENT], np.nan))


def test_signature_defs_have_the_contract_dtypes_and_shapes(exported):
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(exported, "saved_model.pb"), "rb") as f:
        saved.ParseFromString(f.read())
    sigs = saved.meta_graphs[0].signature_def

    def io_spec(infos):
        return {k: (tf.dtypes.as_dtype(v.dtype).name, [d.size for d in v.tensor_shape.dim])
                for k, v in infos.items()}

    assert io_spec(sigs["serving_default"].inputs) == {"z": ("float32", [-1, LATENT])}
    assert io_spec(sigs["serving_default"].outputs) == {"images": ("uint8", [-1, 8, 8, 3])}
    assert io_spec(sigs["generate"].inputs) == {"num_samples": ("int32", []),
                                                "seed": ("int64", [])}
    assert io_spec(sigs["generate"].outputs) == {"images": ("uint8", [-1, 8, 8, 3]),
                                                 "png_bytes": ("string", [-1])}
    for name in ("serving_default", "generate"):
        assert sigs[name].method_name == "tensorflow/serving/predict"


def test_saved_model_cli_lists_both_signatures(exported):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    if not os.path.exists(cli):
        pytest.skip(f"saved_model_cli not installed beside {sys.executable}")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    text = subprocess.run([cli, "show", "--dir", exported, "--all"], capture_output=True,
                          text=True, check=True, env=env, timeout=600).stdout
    # split into per-signature blocks
    blocks = {}
    for chunk in text.split("signature_def['")[1:]:
        name, body = chunk.split("']", 1)
        blocks[name] = body.split("Method name is")[0]
    assert {"serving_default", "generate"} <= set(blocks)
    sd, gen = blocks["serving_default"], blocks["generate"]
    assert "inputs['z']" in sd and "DT_FLOAT" in sd and f"(-1, {LATENT})" in sd
    assert "outputs['images']" in sd and "DT_UINT8" in sd and "(-1, 8, 8, 3)" in sd
    assert "inputs['num_samples']" in gen and "DT_INT32" in gen
    assert "inputs['seed']" in gen and "DT_INT64" in gen
    assert "outputs['png_bytes']" in gen and "DT_STRING" in gen
    assert "outputs['images']" in gen and "DT_UINT8" in gen


def test_warmup_file_parses_and_replays(exported, loaded):
    logs = export.read_warmup(exported)
    by_signature = {}
    for log in logs:
        assert log.WhichOneof("log_type") == "predict_log"
        request = log.predict_log.request
        by_signature.setdefault(request.model_spec.signature_name, []).append(request)
    assert sorted(by_signature) == ["generate", "serving_default"]
    assert all(len(v) == 3 for v in by_signature.values())
    for signature, requests in by_signature.items():
        for request in requests:
            inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
            out = loaded.signatures[signature](**inputs)
            expected = (int(inputs["num_samples"]) if signature == "generate"
                        else int(inputs["z"].shape[0]))
            assert 1 <= expected <= MAX_BATCH
            assert out["images"].shape[0] == expected


def test_warmup_batch_sizes_are_capped():
    assert export.warmup_batch_sizes(4, 256) == [1, 2, 4, 8]
    assert export.warmup_batch_sizes(4, 3) == [1, 2, 3, 3]
    assert export.warmup_batch_sizes(0, 3) == []


def test_existing_version_is_refused_unless_overwrite(generator, tmp_path):
    base = str(tmp_path / "m")
    first = export.export_generator(generator, base, "7", max_batch=4, warmup_requests=0)
    assert not os.path.exists(os.path.join(first, "assets.extra"))
    with pytest.raises(export.ExportError, match="already exists"):
        export.export_generator(generator, base, 7, max_batch=4)
    # the weights exported are the ones given: change them, overwrite, see the change
    z = np.random.default_rng(3).standard_normal((2, LATENT)).astype(np.float32)
    before = tf.saved_model.load(first).signatures["serving_default"](z=z)["images"].numpy()
    other = TinyGenerator(latent_dim=LATENT, seed=1)
    export.export_generator(other, base, 7, max_batch=4, warmup_requests=0, overwrite=True)
    after = tf.saved_model.load(first).signatures["serving_default"](z=z)["images"].numpy()
    assert_close_uint8(after, reference_uint8(other, z))
    assert not np.array_equal(before, after)
    assert sorted(os.listdir(base)) == ["7"]


@pytest.mark.parametrize("version", [0, -1, "a", "1.5", True, None])
def test_bad_version(generator, tmp_path, version):
    with pytest.raises(export.ExportError, match="version"):
        export.export_generator(generator, str(tmp_path), version)


def test_bad_arguments(generator, tmp_path):
    with pytest.raises(export.ExportError, match="max_batch"):
        export.export_generator(generator, str(tmp_path), 1, max_batch=0)
    with pytest.raises(export.ExportError, match="warmup_requests"):
        export.export_generator(generator, str(tmp_path), 1, warmup_requests=-1)
    with pytest.raises(export.ExportError, match="disagrees"):
        export.export_generator(generator, str(tmp_path), 1, latent_dim=LATENT + 1)
    assert os.listdir(tmp_path) == []


def test_generator_contract_is_checked(tmp_path):
    import keras

    gray = keras.Sequential([keras.Input((4,)), keras.layers.Dense(16),
                             keras.layers.Reshape((4, 4, 1))])
    with pytest.raises(export.ExportError, match=r"\[B, H, W, 3\]"):
        export.export_generator(gray, str(tmp_path), 1, latent_dim=4)
    with pytest.raises(export.ExportError, match="latent_dim"):
        export.export_generator(gray, str(tmp_path), 1)


def test_latest_version_dir(exported, tmp_path):
    base = os.path.dirname(exported)
    assert export.latest_version_dir(base) == exported
    assert export.latest_version_dir(exported) == exported
    os.makedirs(os.path.join(base, "10"))  # no saved_model.pb: ignored
    assert export.latest_version_dir(base) == exported
    with pytest.raises(export.ExportError, match="neither a SavedModel"):
        export.latest_version_dir(str(tmp_path))


def test_real_derived_generator_exports(tmp_path):
    from autogan_tf import models

    gen = models.DerivedGenerator("autogan_cifar10_a", gf_dim=8, latent_dim=16)
    path = export.export_generator(gen, str(tmp_path), 1, max_batch=4, warmup_requests=1)
    loaded = tf.saved_model.load(path)
    z = np.random.default_rng(4).standard_normal((3, 16)).astype(np.float32)
    images = loaded.signatures["serving_default"](z=tf.constant(z))["images"].numpy()
    assert images.shape == (3, 32, 32, 3)
    assert_close_uint8(images, reference_uint8(gen, z))


def test_bfloat16_export_is_close_to_float32(tmp_path):
    from autogan_tf import models

    gen = models.DerivedGenerator("autogan_cifar10_a", gf_dim=8, latent_dim=16)
    z = np.random.default_rng(5).standard_normal((4, 16)).astype(np.float32)
    reference = reference_uint8(gen, z)
    models.set_precision(gen, "bfloat16")
    path = export.export_generator(gen, str(tmp_path), 1, max_batch=4, warmup_requests=0)
    images = tf.saved_model.load(path).signatures["serving_default"](z=tf.constant(z))["images"]
    assert images.dtype == tf.uint8
    diff = np.abs(images.numpy().astype(int) - reference.astype(int))
    # bfloat16 keeps 8 significant bits: most pixels within a few levels, none far off.
    assert np.mean(diff) < 3 and diff.max() < 40
    assert np.mean(diff) > 0  # it really computed in bfloat16
