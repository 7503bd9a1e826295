"""The official PyTorch <-> Keras weight mapping (autogan_tf.official.weights), without torch.

References are NumPy re-implementations of PyTorch's layouts (NCHW reshape of
``l1``, ``weight.view(out, -1)`` for spectral norm), not our own outputs.
"""

import numpy as np
import pytest
import tensorflow as tf

from autogan_tf import models
from autogan_tf.official import weights as W
from autogan_tf.search.controller import Controller

ARCH = "autogan_cifar10_a"


def _random_like(state, seed=0):
    rng = np.random.default_rng(seed)
    return {k: (rng.normal(size=np.shape(v)).astype(np.float32) if np.ndim(v) else v)
            for k, v in state.items()}


def test_l1_units_follow_pytorch_nchw_reshape():
    g = models.DerivedGenerator(ARCH, gf_dim=4, latent_dim=6, bottom_width=2)
    state = _random_like(W.generator_state(g, "derived"))
    W.load_generator_state(g, state)
    z = np.random.default_rng(1).normal(size=(3, 6)).astype(np.float32)
    torch_out = z @ state["l1.weight"].T + state["l1.bias"]  # PyTorch Linear
    nchw = torch_out.reshape(3, 4, 2, 2)  # .view(-1, ch, bw, bw)
    ours = g._stem(tf.constant(z)).numpy()
    np.testing.assert_allclose(ours, nchw.transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-5)


def test_conv_kernel_layout_is_pytorch_cross_correlation():
    g = models.DerivedGenerator(ARCH, gf_dim=4, latent_dim=6, bottom_width=2)
    state = _random_like(W.generator_state(g, "derived"))
    W.load_generator_state(g, state)
    x = np.random.default_rng(2).normal(size=(1, 5, 5, 4)).astype(np.float32)
    w, b = state["to_rgb.2.weight"], state["to_rgb.2.bias"]  # [3, 4, 3, 3]
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    ref = np.zeros((1, 5, 5, 3), np.float32)
    for i in range(5):
        for j in range(5):
            ref[0, i, j] = np.einsum("hwc,ochw->o", padded[0, i:i + 3, j:j + 3], w) + b
    np.testing.assert_allclose(g.to_rgb.conv(x).numpy(), ref, rtol=1e-4, atol=1e-4)


def test_spectral_norm_vectors_are_pytorch_weight_view():
    d = models.Discriminator(df_dim=4)
    state = _random_like(W.discriminator_state(d))
    W.load_discriminator_state(d, state)
    w = state["block2.c1.weight_orig"].reshape(4, -1)  # weight.view(out, -1)
    u, v = state["block2.c1.weight_u"], state["block2.c1.weight_v"]
    sn = d.block2.c1
    np.testing.assert_allclose(float(sn.sigma(training=False)), u @ w @ v, rtol=1e-5)
    v1 = w.T @ u
    v1 /= np.linalg.norm(v1)
    u1 = w @ v1
    u1 /= np.linalg.norm(u1)
    np.testing.assert_allclose(float(sn.sigma(training=True)), u1 @ w @ v1, rtol=1e-5)
    np.testing.assert_allclose(W.discriminator_state(d)["block2.c1.weight_u"], u1, atol=1e-6)


@pytest.mark.parametrize("layout", ["search", "derived"])
def test_generator_round_trip(layout):
    g = models.DerivedGenerator(ARCH, gf_dim=4, latent_dim=6)
    state = _random_like(W.generator_state(g, layout))
    state["to_rgb.0.running_var"] = np.abs(state["to_rgb.0.running_var"]) + 0.5
    g2 = models.DerivedGenerator(ARCH, gf_dim=4, latent_dim=6)
    W.load_generator_state(g2, state)
    back = W.generator_state(g2, layout)
    assert set(back) == set(state)
    for k in state:
        np.testing.assert_array_equal(back[k], state[k], err_msg=k)


def test_supernet_round_trip_and_derived_subset():
    sg = models.SuperGenerator(gf_dim=4, latent_dim=6)
    state = _random_like(W.generator_state(sg))
    W.load_generator_state(sg, state)
    # A derived generator reads its ops out of the supernet dict, ignoring the rest.
    g = models.DerivedGenerator("1 1 2 1 0 2 2 1 1 1 1 2 0 3", gf_dim=4, latent_dim=6)
    W.load_generator_state(g, state)
    z = np.random.default_rng(3).normal(size=(2, 6)).astype(np.float32)
    arch = tf.constant([1, 1, 2, 1, 0, 2, 2, 1, 1, 1, 1, 2, 0, 3])
    np.testing.assert_allclose(g(z).numpy(), sg(z, arch, stage=2).numpy(), atol=1e-5)


def test_official_never_used_supernet_modules_are_ignored():
    sg = models.SuperGenerator(gf_dim=4, latent_dim=6)
    state = W.generator_state(sg)
    extra = {"cell1.pre_conv2.deconv.weight": np.zeros((4, 4, 2, 2), np.float32),
             "cell1.skip_deconvx2.weight": np.zeros((4, 4, 2, 2), np.float32),
             "cell2.skip_deconvx4.0.bias": np.zeros((4,), np.float32)}
    assert sorted(W.official_unused_generator_keys({**state, **extra})) == sorted(
        list(extra) + [k for k in state if k.endswith("num_batches_tracked")])
    W.load_generator_state(sg, {**state, **extra})


def test_errors_name_the_tensor_and_shapes():
    d = models.Discriminator(df_dim=4)
    state = W.discriminator_state(d)
    before = [v.numpy().copy() for v in d.variables]
    bad = dict(state)
    bad["block1.c2.weight_orig"] = np.zeros((4, 2, 3, 3), np.float32)
    del bad["l5.weight_u"]
    bad["block9.c1.bias"] = np.zeros(4, np.float32)
    with pytest.raises(W.WeightMappingError) as e:
        W.load_discriminator_state(d, bad)
    msg = str(e.value)
    assert "block1.c2.weight_orig: expected shape (4, 4, 3, 3), found (4, 2, 3, 3)" in msg
    assert "missing: l5.weight_u" in msg and "unexpected: block9.c1.bias" in msg
    for v, old in zip(d.variables, before):  # nothing was assigned
        np.testing.assert_array_equal(v.numpy(), old)


def test_derived_layout_refuses_architectures_it_cannot_hold():
    g = models.DerivedGenerator("0 0 2 1 1 0 0 1 1 1 0 1 0 3", gf_dim=4, latent_dim=6)
    with pytest.raises(W.WeightMappingError, match="cell 1"):
        W.generator_state(g, "derived")


def test_controller_maps_pytorch_lstm_cell():
    c = Controller(cell_indices=1, hidden_size=8)
    state = _random_like(W.controller_state(c))
    W.load_controller_state(c, state)
    back = W.controller_state(c)
    assert set(back) == set(state)
    for k in state:
        np.testing.assert_array_equal(back[k], state[k], err_msg=k)
    # One LSTM step against PyTorch's LSTMCell formula (gate order i, f, g, o).
    x = np.zeros((1, 8), np.float32)
    h0 = np.random.default_rng(4).normal(size=(1, 8)).astype(np.float32)
    c0 = np.random.default_rng(5).normal(size=(1, 8)).astype(np.float32)
    gates = (x @ state["lstm.weight_ih"].T + state["lstm.bias_ih"]
             + h0 @ state["lstm.weight_hh"].T + state["lstm.bias_hh"])
    i, f, g, o = np.split(gates, 4, axis=1)

    def sig(a):
        return 1 / (1 + np.exp(-a))
    c1 = sig(f) * c0 + sig(i) * np.tanh(g)
    h1 = sig(o) * np.tanh(c1)
    logits, (h, cc) = c._step(0, None, (tf.constant(h0), tf.constant(c0)))
    np.testing.assert_allclose(h.numpy(), h1, atol=1e-5)
    np.testing.assert_allclose(logits.numpy(), h1 @ state["decoders.0.weight"].T
                               + state["decoders.0.bias"], atol=1e-5)
