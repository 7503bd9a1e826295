"""bfloat16 compute with float32 variables (`models.set_precision`, `GANTrainer(precision=)`)."""

import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from autogan_tf import config as config_lib
from autogan_tf import gan_trainer, keras_compat, models, precision


def _conv_layers(model):
    return [l for l in keras_compat.sublayers(model)[1:]
            if isinstance(l, layers.Conv2D)]


def test_bfloat16_generator_keeps_float32_weights_and_output():
    g32 = models.DerivedGenerator("autogan_cifar10_b", gf_dim=8, latent_dim=4, bottom_width=2)
    g16 = models.DerivedGenerator("autogan_cifar10_b", gf_dim=8, latent_dim=4, bottom_width=2,
                                  precision="bfloat16")
    g16.set_weights(g32.get_weights())
    assert {v.dtype for v in g16.weights} == {"float32"}
    assert {l.compute_dtype for l in _conv_layers(g16)} == {"bfloat16"}
    z = tf.random.normal([3, 4], seed=2)
    ref, out = g32(z, training=True).numpy(), g16(z, training=True)
    assert out.dtype == tf.float32
    err = np.abs(out.numpy() - ref)
    # bfloat16 keeps 8 significant bits: close to float32, but visibly not equal.
    assert err.max() < 0.1 and err.max() > 1e-6
    assert g16.get_config()["precision"] == "bfloat16"


def test_set_precision_round_trips_to_exact_float32():
    g = models.DerivedGenerator("autogan_cifar10_a", gf_dim=4, latent_dim=4, bottom_width=2)
    z = tf.random.normal([2, 4], seed=3)
    ref = g(z, training=False).numpy()
    models.set_precision(g, "bfloat16")
    assert not np.array_equal(g(z, training=False).numpy(), ref)
    models.set_precision(g, "float32")
    np.testing.assert_array_equal(g(z, training=False).numpy(), ref)


def test_bfloat16_discriminator_spectral_norm_in_float32():
    d = models.Discriminator(8, precision="bfloat16")
    assert d.l5.compute_dtype == "float32"  # the logits head
    sn = d.growing[1].c1
    kernel = sn.layer.kernel
    # PyTorch's weight.view(out, -1) of the [kh, kw, in, out] kernel, in float64.
    w = kernel.numpy().astype(np.float64).transpose(3, 2, 0, 1).reshape(kernel.shape[-1], -1)
    u = sn.u.numpy().astype(np.float64)
    logits = d(tf.random.normal([2, 32, 32, 3]), training=True)
    assert logits.dtype == tf.float32
    # One power iteration from the previous u, in float64: the float32 result
    # agrees to ~1e-6, a bfloat16 one would be off by ~1e-2.
    v = w.T @ u
    v /= np.linalg.norm(v)
    u_new = w @ v
    u_new /= np.linalg.norm(u_new)
    sigma = u_new @ w @ v
    np.testing.assert_allclose(sn.u.numpy(), u_new, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(sn.v.numpy(), v, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(float(sn.sigma()), sigma, rtol=1e-5)
    np.testing.assert_allclose(sn.normalized_kernel().numpy(), kernel.numpy() / sigma,
                               rtol=1e-4, atol=1e-6)
    assert sn.u.dtype == "float32" and kernel.dtype == "float32"


def _trainer(precision, **kwargs):
    g = models.DerivedGenerator("autogan_cifar10_a", gf_dim=4, latent_dim=4, bottom_width=2)
    d = models.Discriminator(4)
    return gan_trainer.GANTrainer(g, d, n_critic=2, g_batch_size=3, seed=5, precision=precision,
                                  **kwargs)


def test_bfloat16_trainer_losses_close_to_float32():
    t32 = _trainer("float32")
    t16 = _trainer("bfloat16", ema_decay=0.5)
    t16.generator.set_weights(t32.generator.get_weights())
    t16.discriminator.set_weights(t32.discriminator.get_weights())
    reals = tf.random.normal([2, 2, 16, 16, 3], seed=4)
    a, b = t32.train_iteration(reals), t16.train_iteration(reals)
    assert b["d_losses"].dtype == tf.float32 and b["g_loss"].dtype == tf.float32
    assert bool(b["finite"])
    # Same weights, same noise seed: the first D loss differs only by rounding.
    assert float(b["d_losses"][0]) == pytest.approx(float(a["d_losses"][0]), abs=0.05)
    assert t16.precision == "bfloat16" and t16.ema_generator.precision == "float32"
    for opt in (t16.g_opt, t16.d_opt):
        assert {v.dtype for v in opt.variables if v.dtype != "int64"} == {"float32"}


def test_bad_precision():
    with pytest.raises(ValueError, match="--precision"):
        models.DerivedGenerator("1 0 1 1", gf_dim=4, latent_dim=4, precision="float16")
    with pytest.raises(ValueError, match="--precision"):
        _trainer("half")


def test_precision_flag_reaches_the_trainers():
    from autogan_tf import training

    config = config_lib.TrainConfig(arch="1 0 1 1", gf_dim=4, df_dim=4, latent_dim=4,
                                  g_batch_size=2, d_batch_size=2, n_critic=1,
                                  precision="bfloat16", eval_every=0)
    g, d = training.build_models(config)
    trainer = training.make_trainer(config, g, d)
    assert trainer.precision == "bfloat16" and g.compute_dtype == "bfloat16"
    assert d.compute_dtype == "bfloat16"
    with pytest.raises(ValueError, match="--precision"):
        config_lib.TrainConfig(precision="fp16")
    with pytest.raises(ValueError, match="--precision"):
        config_lib.SearchConfig(precision="fp16")


CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
flags\t\t: fpu vme sse2 avx2 avx512f avx512bw{extra} xsave
"""


@pytest.mark.parametrize("extra, expected", [
    (" avx512_bf16", "bfloat16"), (" amx_bf16 amx_tile", "bfloat16"),
    ("", "float32"), (" avx512_bf16x", "float32"),  # a longer flag name is not the flag
])
def test_auto_precision_follows_the_cpus_bfloat16_flags(tmp_path, extra, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO.format(extra=extra))
    flags = precision.cpu_flags(str(cpuinfo))
    assert "avx2" in flags and "processor" not in flags
    choice = precision.choose("auto", gpus=[], flags=flags)
    assert choice.precision == expected
    assert ("natively" in choice.reason) == (expected == "bfloat16")
    assert precision.cpu_flags(str(tmp_path / "missing")) == set()
    assert precision.choose("auto", gpus=[], flags=set()).precision == "float32"


A100 = {"device_name": "NVIDIA A100-SXM4-40GB", "compute_capability": (8, 0)}
RTX4090 = {"device_name": "NVIDIA GeForce RTX 4090", "compute_capability": (8, 9)}
V100 = {"device_name": "Tesla V100-SXM2-16GB", "compute_capability": (7, 0)}
T4 = {"device_name": "Tesla T4", "compute_capability": (7, 5)}


@pytest.mark.parametrize("gpus, expected", [
    ([A100], "bfloat16"), ([RTX4090, A100], "bfloat16"),
    ([V100], "float32"), ([T4], "float32"),
    ([A100, V100], "float32"),  # one older card holds the whole replica group back
    ([{"device_name": "GPU"}], "float32"),  # capability not reported: not assumed
    ([{"device_name": "A10", "compute_capability": [8, 6]}], "bfloat16"),  # a list
    ([{"device_name": "A10", "compute_capability": "8.6"}], "bfloat16"),  # a string
    ([{"device_name": "P100", "compute_capability": "6.0"}], "float32"),
])
def test_auto_precision_follows_the_gpus_compute_capability(gpus, expected):
    # The CPU's flags do not matter once there is a GPU: the models run on the GPU.
    for flags in (set(), {"amx_bf16"}):
        choice = precision.choose("auto", gpus=gpus, flags=flags)
        assert choice.precision == expected, choice
    if expected == "bfloat16":
        assert "8." in choice.reason
    else:
        assert "below 8.0" in choice.reason or "does not report" in choice.reason


def test_explicit_precision_is_kept_whatever_the_devices():
    for requested in ("float32", "bfloat16"):
        for gpus, flags in (([V100], set()), ([A100], set()), ([], {"amx_bf16"}), ([], set())):
            choice = precision.choose(requested, gpus=gpus, flags=flags)
            assert choice == precision.Choice(requested, f"--precision={requested}")


def test_gpu_details_reads_tensorflows_device_details(monkeypatch):
    devices = {"GPU:0": {"device_name": "NVIDIA A100", "compute_capability": (8, 0)}}
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: list(devices))
    monkeypatch.setattr(tf.config.experimental, "get_device_details", devices.__getitem__)
    assert precision.gpu_details() == [devices["GPU:0"]]
    assert precision.choose("auto").precision == "bfloat16"
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    assert precision.gpu_details() == []


def test_auto_precision_is_resolved_and_explained_in_the_configuration(monkeypatch, tmp_path):
    from autogan_tf import rundir

    monkeypatch.setattr(precision, "gpu_details", lambda: [])
    monkeypatch.setattr(precision, "cpu_flags", lambda cpuinfo=None: {"amx_bf16"})
    c = config_lib.TrainConfig(precision="auto")
    assert c.precision == "bfloat16" and c.to_dict()["precision"] == "bfloat16"
    assert "amx_bf16" in c.to_dict()["precision_reason"]
    assert config_lib.SearchConfig(precision="auto").precision == "bfloat16"
    # The reason goes into config.json, and a saved config.json loads back.
    rundir.check_config(str(tmp_path), rundir.TRAIN_CONFIG, c, ("precision",), "run", True)
    saved = rundir.read_config(str(tmp_path), rundir.TRAIN_CONFIG, "run")
    assert saved["precision_reason"] == c.precision_reason
    assert config_lib.TrainConfig.from_dict(saved).precision == "bfloat16"
    monkeypatch.setattr(precision, "cpu_flags", lambda cpuinfo=None: set())
    assert config_lib.TrainConfig(precision="auto").precision == "float32"
    assert config_lib.TrainConfig(precision="float32").precision_reason == "--precision=float32"
    assert models.check_precision("auto") == "float32"
    g = models.DerivedGenerator("1 0 1 1", gf_dim=4, latent_dim=4, bottom_width=2)
    assert models.set_precision(g, "auto").precision == "float32"  # recorded resolved


def test_bfloat16_supernet_keeps_batch_norm_statistics_in_float32():
    """The float32 islands of a bfloat16 search: batch-norm moving statistics are
    variables of float32 and updated from the bfloat16 activations without losing them."""
    g = models.SuperGenerator(gf_dim=8, latent_dim=4, bottom_width=2, precision="bfloat16")
    arch = tf.constant([0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])  # batch norm in cell 1
    z = tf.random.normal([6, 4], seed=1)
    g(z, arch, stage=2, training=True)
    stats = [v for v in g.non_trainable_weights if "moving" in v.path]
    assert stats and {v.dtype for v in stats} == {"float32"}
    moved = [v for v in stats if float(tf.reduce_max(tf.abs(v))) not in (0.0, 1.0)]
    assert moved, "the batch-norm statistics were not updated by a training call"
    assert g(z, arch, stage=2, training=False).dtype == tf.float32


def test_the_reason_survives_copies_and_saved_files(monkeypatch):
    """A configuration copied (`replace`, the search's epoch count, the Python API) or read
    back from its config.json keeps why it computes in its precision."""
    from autogan_tf import api
    from autogan_tf.search import loop

    monkeypatch.setattr(precision, "gpu_details", lambda: [])
    monkeypatch.setattr(precision, "cpu_flags", lambda cpuinfo=None: {"avx512_bf16"})
    c = config_lib.SearchConfig(precision="auto", dataset="shapes", epoch_images=0,
                                shared_iters=0)
    assert c.precision == "bfloat16" and c.precision_reason.startswith("auto: the CPU")
    assert c.replace(seed=3).precision_reason == c.precision_reason
    assert c.replace(precision="float32").precision_reason == "--precision=float32"
    assert config_lib.SearchConfig.from_dict(c.to_dict()).precision_reason == c.precision_reason
    counted = loop.with_epoch_images(c)
    assert counted.epoch_images == 10_000 and counted.precision_reason == c.precision_reason
    saved = config_lib.TrainConfig(precision="auto").to_dict()  # as config.json holds it
    for given in (saved, config_lib.TrainConfig.from_dict(saved)):
        made = api._config(config_lib.TrainConfig, given, {"seed": 4})
        assert made.seed == 4 and made.precision_reason == saved["precision_reason"]
    made = api._config(config_lib.TrainConfig, saved, {"precision": "float32"})
    assert made.precision_reason == "--precision=float32"
