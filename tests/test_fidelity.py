"""Behaviour the official PyTorch code has, checked against closed forms (no torch).

The initialiser bounds below were checked against PyTorch 2.13: ``Conv2d(256,
3, 3).bias`` reaches 0.0208 = 1/sqrt(256*9); ``ConvTranspose2d(64, 32, 2, 2)``
weight and bias reach 0.0884 = 1/sqrt(32*4) (fan_in from weight dimension 1,
not 1/sqrt(64*4) = 0.0625); ``Linear(128, n)`` 0.0884 = 1/sqrt(128).
"""

import numpy as np
import pytest
import tensorflow as tf
from keras import layers as klayers

from autogan_tf import keras_compat, models, spectral_norm, torch_layers


def _bias_bound(layer):
    init = layer.bias_initializer
    assert init.minval == -init.maxval
    return init.maxval


def _expected_fan_in(layer):
    kernel = layer.kernel.shape
    if isinstance(layer, klayers.Conv2DTranspose):  # [kh, kw, out, in]: PyTorch's dim 1 = out
        return kernel[0] * kernel[1] * kernel[2]
    if isinstance(layer, klayers.Conv2D):
        return kernel[0] * kernel[1] * kernel[2]
    return kernel[0]  # Dense [in, out]


@pytest.mark.parametrize("model", ["derived", "super", "disc"])
def test_every_bias_is_pytorch_default(model):
    if model == "derived":
        m = models.DerivedGenerator("autogan_cifar10_a", gf_dim=16, latent_dim=8)
    elif model == "super":
        m = models.SuperGenerator(gf_dim=16, latent_dim=8)
    else:
        m = models.Discriminator(df_dim=16)
    checked = 0
    for layer in keras_compat.sublayers(m)[1:]:
        if isinstance(layer, (klayers.Conv2D, klayers.Dense)) and layer.use_bias:
            assert _bias_bound(layer) == pytest.approx(1 / np.sqrt(_expected_fan_in(layer))), \
                layer.path
            bias = layer.bias.numpy()
            assert np.abs(bias).max() <= _bias_bound(layer)
            checked += 1
    assert checked > 5


def test_output_conv_and_l1_bias_bounds_from_the_issue():
    g = models.DerivedGenerator("autogan_cifar10_a", gf_dim=256, latent_dim=128)
    assert _bias_bound(g.to_rgb.conv) == pytest.approx(1 / np.sqrt(256 * 9))  # 0.0208
    assert _bias_bound(g.l1) == pytest.approx(1 / np.sqrt(128))  # 0.088


def test_transposed_conv_kernel_is_pytorch_default_not_xavier():
    deconv = torch_layers.deconv(64, "d")
    deconv.build((None, 4, 4, 64))
    kernel = deconv.kernel.numpy()  # 4 * 64 * 64 samples of U(+-1/sqrt(64*4))
    bound = 1 / np.sqrt(64 * 4)
    assert np.abs(kernel).max() <= bound
    assert np.abs(kernel).max() > 0.99 * bound
    assert kernel.std() == pytest.approx(bound / np.sqrt(3), rel=0.05)


def test_batch_norm_moving_variance_is_unbiased_as_pytorch():
    bn = torch_layers.batch_norm("bn")
    x = np.random.default_rng(0).normal(2.0, 3.0, (4, 3, 3, 5)).astype(np.float32)
    y = bn(x, training=True).numpy()
    flat = x.reshape(-1, 5).astype(np.float64)
    gamma, beta = bn.gamma.numpy(), bn.beta.numpy()
    expected = (x - flat.mean(0)) / np.sqrt(flat.var(0) + 1e-5) * gamma + beta  # biased
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), 0.9 + 0.1 * flat.var(0, ddof=1),
                               rtol=1e-5)
    np.testing.assert_allclose(bn.moving_mean.numpy(), 0.1 * flat.mean(0), rtol=1e-5, atol=1e-6)
    # Inference uses the moving statistics.
    np.testing.assert_allclose(
        bn(x, training=False).numpy(),
        (x - bn.moving_mean.numpy()) / np.sqrt(bn.moving_variance.numpy() + 1e-5) * gamma + beta,
        rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_fused_batch_norm_equals_the_formula_with_gradients(dtype):
    """One replica uses the fused kernel; the generic path (taken for synchronized batch
    norm) is autodiff of the formula. Same outputs, moving statistics and gradients."""
    policy = "float32" if dtype == "float32" else "mixed_bfloat16"
    fused, generic = (torch_layers.TorchBatchNorm(momentum=torch_layers.BN_MOMENTUM,
                                            epsilon=torch_layers.NORM_EPSILON, synchronized=sync,
                                            dtype=policy) for sync in (False, True))
    shape = (4, 3, 3, 5)
    for bn in (fused, generic):
        bn.build(shape)
        bn.gamma.assign(np.linspace(0.5, 1.5, 5))
        bn.beta.assign(np.linspace(-0.2, 0.2, 5))
    rng = np.random.default_rng(3)
    x = tf.constant(rng.normal(2.0, 3.0, shape), tf.float32)
    coeffs = tf.constant(rng.normal(size=shape), tf.float32)
    results = []
    for bn in (fused, generic):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = bn(tf.cast(x, dtype), training=True)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) * coeffs)
        grads = tape.gradient(loss, [x, bn.gamma, bn.beta])
        assert y.dtype == dtype
        results.append([y, bn.moving_mean, bn.moving_variance, *grads])
    tol = 1e-5 if dtype == "float32" else 3e-2  # bf16 activations: 8 bits of mantissa
    for a, b in zip(*results):
        np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32),
                                   rtol=tol, atol=tol * 10)


@pytest.mark.parametrize("sync", [False, True])
def test_batch_statistics_only_normalises_by_the_batch_and_keeps_moving_statistics(sync):
    """Traced inside `batch_statistics_only`, training mode is (x - mean) / sqrt(var + eps)
    * gamma + beta of the batch (NumPy) with the moving statistics untouched; traced
    after it, the same call updates them again (PyTorch's rule: unbiased variance)."""
    bn = torch_layers.TorchBatchNorm(momentum=torch_layers.BN_MOMENTUM, epsilon=torch_layers.NORM_EPSILON,
                               synchronized=sync)
    shape = (6, 2, 2, 3)
    bn.build(shape)
    bn.gamma.assign([0.5, 1.0, 2.0])
    bn.beta.assign([-1.0, 0.0, 1.0])
    bn.moving_mean.assign([7.0, 8.0, 9.0])
    bn.moving_variance.assign([4.0, 5.0, 6.0])
    x = np.random.default_rng(5).normal(3.0, 2.0, shape).astype(np.float32)
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    expected = (x - mean) / np.sqrt(var + torch_layers.NORM_EPSILON) * [0.5, 1.0, 2.0] + [-1, 0, 1]
    with torch_layers.batch_statistics_only(bn) as switched:
        frozen = tf.function(lambda t: bn(t, training=True))
        y = frozen(x)
    assert switched == [bn]
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-4, atol=1e-4)
    frozen(x)  # still traced without updates after the block
    np.testing.assert_allclose(bn.moving_mean.numpy(), [7.0, 8.0, 9.0])
    np.testing.assert_allclose(bn.moving_variance.numpy(), [4.0, 5.0, 6.0])
    tf.function(lambda t: bn(t, training=True))(x)
    n = x.size // 3
    np.testing.assert_allclose(bn.moving_mean.numpy(), 0.9 * np.array([7, 8, 9]) + 0.1 * mean,
                               rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(),
                               0.9 * np.array([4, 5, 6]) + 0.1 * var * n / (n - 1), rtol=1e-5)


def test_spectral_norm_gradient_goes_through_sigma():
    """d/dW f(W / (u^T W v)) = G / s - <G, W> / s^2 u v^T (u, v constants; G = df/dW_sn)."""
    sn = spectral_norm.SpectralNorm(klayers.Dense(3, use_bias=False))
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    sn.build((None, 4))
    coeffs = np.random.default_rng(2).normal(size=(5, 3)).astype(np.float32)
    with tf.GradientTape() as tape:
        out = sn(x, training=True)  # one power iteration, then W / sigma
        loss = tf.reduce_sum(out * coeffs)
    grad = tape.gradient(loss, sn.layer.kernel).numpy().T  # PyTorch [out, in]
    w = sn.layer.kernel.numpy().T.astype(np.float64)
    u, v = sn.u.numpy().astype(np.float64), sn.v.numpy().astype(np.float64)
    s = u @ w @ v
    g_sn = coeffs.T.astype(np.float64) @ x  # d loss / d (W / s), [out, in]
    expected = g_sn / s - (g_sn * w).sum() / s ** 2 * np.outer(u, v)
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-5)
    # A projection (no gradient through sigma) would give g_sn / s only.
    assert not np.allclose(grad, g_sn / s, rtol=1e-3, atol=1e-4)


def test_spectral_norm_keeps_the_raw_kernel_and_updates_u_only_in_training():
    sn = spectral_norm.SpectralNorm(klayers.Conv2D(4, 3, padding="same"))
    x = tf.random.normal([2, 5, 5, 3])
    sn.build(x.shape)
    kernel, u = sn.layer.kernel.numpy().copy(), sn.u.numpy().copy()
    sn(x, training=False)
    np.testing.assert_array_equal(sn.u.numpy(), u)
    sn(x, training=True)
    assert not np.array_equal(sn.u.numpy(), u)
    np.testing.assert_array_equal(sn.layer.kernel.numpy(), kernel)  # not overwritten
    config = sn.get_config()
    clone = spectral_norm.SpectralNorm.from_config(config)
    assert clone.power_iterations == 1 and clone.eps == 1e-12
    assert isinstance(clone.layer, klayers.Conv2D) and clone.layer.filters == 4
    with pytest.raises(TypeError, match="Conv2D or Dense"):
        spectral_norm.SpectralNorm(klayers.Conv2DTranspose(4, 2))
