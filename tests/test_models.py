import random

import numpy as np
import pytest
import tensorflow as tf

from autogan_tf import cells, discriminator_blocks, models
from autogan_tf import search_space as ss

# ---------------------------------------------------------------------------
# A NumPy re-implementation of the official AutoGAN search cell (NCHW logic,
# written in NHWC), used as an independent reference.
# ---------------------------------------------------------------------------


def np_conv(x, kernel, bias):
    """'same' convolution, NHWC x, HWIO kernel."""
    k = kernel.shape[0]
    pad = k // 2
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(1, 2))
    return np.einsum("bhwcij,ijco->bhwo", windows, kernel) + bias


def np_deconv2(x, kernel, bias):
    """2x2 stride-2 transposed conv; Keras kernel layout is (kh, kw, out, in)."""
    b, h, w, _ = x.shape
    out = np.einsum("bhwc,ijoc->bhiwjo", x, kernel).reshape(b, 2 * h, 2 * w, kernel.shape[2])
    return out + bias


def np_resize(x, factor, mode):
    if mode == "nearest":
        return x.repeat(factor, 1).repeat(factor, 2)
    # bilinear, half-pixel centres (PyTorch align_corners=False), border clamped
    def axis_weights(n):
        src = (np.arange(n * factor) + 0.5) / factor - 0.5
        src = np.clip(src, 0, n - 1)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, n - 1)
        return lo, hi, src - lo
    lo, hi, t = axis_weights(x.shape[1])
    x = x[:, lo] * (1 - t)[None, :, None, None] + x[:, hi] * t[None, :, None, None]
    lo, hi, t = axis_weights(x.shape[2])
    return x[:, :, lo] * (1 - t)[None, None, :, None] + x[:, :, hi] * t[None, None, :, None]


def np_bn_train(x, gamma, beta, eps=1e-5):
    mean, var = x.mean((0, 1, 2)), x.var((0, 1, 2))
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


def np_in(x, eps=1e-5):
    mean, var = x.mean((1, 2), keepdims=True), x.var((1, 2), keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def weights(layer):
    return [w.numpy() for w in layer.weights]


def np_official_cell(cell, spec, x, skips):
    """Official Cell.forward in training mode, with the Keras cell's weights."""
    ops = cell.ops
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    mode = spec.up_type

    def conv(name, v):
        k, b = weights(ops[name])
        return np_conv(v, k, b)

    def norm(prefix, v):
        if spec.norm_type == "bn":
            g, bt = weights(ops[f"{prefix}_bn"])[:2]
            return np_bn_train(v, g, bt)
        return np_in(v) if spec.norm_type == "in" else v

    def up(v, deconv_name, factor=2):
        if mode == "deconv":
            return np_deconv2(v, *weights(ops[deconv_name]))
        return np_resize(v, factor, mode)

    if spec.conv_type == "pre":
        h = conv("pre1_conv", up(relu(norm("pre1", x)), "pre1_deconv"))
    else:
        h = relu(norm("post1", conv("post1_conv", up(x, "post1_deconv"))))
    for src in spec.skip_sources:
        f = skips[src]
        factor = h.shape[1] // f.shape[1]
        if mode == "deconv":
            ws = weights(ops[f"skip_deconv_x{factor}"])
            for i in range(0, len(ws), 2):
                f = np_deconv2(f, ws[i], ws[i + 1])
        else:
            f = np_resize(f, factor, mode)
        h = h + conv(f"skip{src}_conv", f)  # in place: the skip output includes this
    if spec.conv_type == "pre":
        out = conv("pre2_conv", relu(norm("pre2", h)))
    else:
        out = relu(norm("post2", conv("post2_conv", h)))
    if spec.shortcut:
        out = out + conv("sc_conv", up(x, "sc_deconv"))
    return h, out


CELL_CASES = [
    "1 0 1 1 1 0 0 1 1 1 0 1 0 3",   # the paper's best: pre, nearest/bilinear, skips
    "0 1 2 1 0 2 2 0 1 1 1 0 1 2",   # post, BN/IN, deconv everywhere
    "0 2 0 0 1 1 2 1 0 0 0 1 1 1",
]


@pytest.mark.parametrize("vector", CELL_CASES)
def test_derived_cells_match_numpy_reference(vector):
    arch = ss.parse_arch(vector)
    rng = np.random.default_rng(0)
    gen = models.DerivedGenerator(arch, gf_dim=6, latent_dim=5, bottom_width=2)
    x = rng.normal(size=(3, 2, 2, 6)).astype(np.float32)
    skips_tf, skips_np = [], []
    h_tf, h_np = tf.constant(x), x
    for cell, spec in zip(gen.cells, arch.cells):
        # Perturb BN gammas/betas so a wrong norm placement would show.
        for name, op in cell.ops.items():
            if name.endswith("_bn"):
                op.gamma.assign(rng.normal(1, 0.3, op.gamma.shape))
                op.beta.assign(rng.normal(0, 0.3, op.beta.shape))
        skip_tf, h_tf = cell(h_tf, skips_tf, training=True)
        skip_np, h_np = np_official_cell(cell, spec, h_np, skips_np)
        np.testing.assert_allclose(skip_tf.numpy(), skip_np, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(h_tf.numpy(), h_np, rtol=1e-4, atol=1e-4)
        skips_tf.append(skip_tf)
        skips_np.append(skip_np)


def test_upsampling_against_reference():
    x = np.random.default_rng(1).normal(size=(2, 3, 5, 4)).astype(np.float32)
    for factor in (2, 4):
        np.testing.assert_array_equal(cells.nearest_upsample(tf.constant(x), factor).numpy(),
                                      np_resize(x, factor, "nearest"))
        np.testing.assert_allclose(cells.bilinear_upsample(tf.constant(x), factor).numpy(),
                                   np_resize(x, factor, "bilinear"), atol=1e-5)


def test_nearest_upsample_has_gradient_under_xla():
    x = tf.random.normal([1, 2, 2, 3])

    @tf.function(jit_compile=True)
    def grad(v):
        with tf.GradientTape() as tape:
            tape.watch(v)
            y = tf.reduce_sum(cells.nearest_upsample(v) ** 2)
        return tape.gradient(y, v)

    np.testing.assert_allclose(grad(x).numpy(), 8 * x.numpy(), rtol=1e-5)


# ---------------------------------------------------------------------------
# Sizes: the official implementation's parameter counts, computed by hand.
# ---------------------------------------------------------------------------

def official_g_params(gf, latent, bw=4):
    conv3 = gf * gf * 9 + gf
    conv1 = gf * gf + gf
    l1 = latent * bw * bw * gf + bw * bw * gf
    cell1 = 2 * conv3 + conv1                  # shortcut
    cell2 = 2 * conv3 + conv1 + conv1          # shortcut + 1 skip
    cell3 = 2 * conv3 + 2 * conv1              # 2 skips, no shortcut
    to_rgb = 2 * gf + gf * 3 * 9 + 3
    return l1 + cell1 + cell2 + cell3 + to_rgb


def official_d_params(df):
    conv3 = lambda i, o: i * o * 9 + o  # noqa: E731
    block1 = conv3(3, df) + conv3(df, df) + 3 * df + df
    block2 = 2 * conv3(df, df) + df * df + df
    return block1 + block2 + 2 * (2 * conv3(df, df)) + df


@pytest.mark.parametrize("gf,df", [(256, 128), (32, 16)])
def test_parameter_counts_equal_official(gf, df):
    g = models.DerivedGenerator("autogan_cifar10_a", gf_dim=gf)
    d = models.Discriminator(df)
    assert models.count_params(g) == official_g_params(gf, 128)
    assert models.count_params(d) == official_d_params(df)
    if gf == 256:
        assert models.count_params(g) == 4_405_251
        assert models.count_params(d) == 1_053_824


def _profiled_macs(fn, spec):
    concrete = tf.function(fn).get_concrete_function(spec)
    graph = concrete.graph
    total = 0
    for op in graph.get_operations():
        if "/sigma/" in op.name:  # spectral norm's sigma: per batch, not per image
            continue
        if op.type in ("Conv2D", "Conv2DBackpropInput", "MatMul"):
            out = op.outputs[0].shape
            if op.type == "MatMul":
                a = op.inputs[0].shape
                total += a[0] * a[1] * out[1]
            elif op.type == "Conv2D":
                k = op.inputs[1].shape
                total += out[1] * out[2] * k[0] * k[1] * k[2] * k[3]
            else:  # transposed conv: every input pixel meets every kernel tap
                k = op.inputs[1].shape
                inp = op.inputs[2].shape
                total += inp[1] * inp[2] * k[0] * k[1] * k[2] * k[3]
    return total


@pytest.mark.parametrize("vector", CELL_CASES)
def test_mac_counts_match_graph(vector):
    g = models.DerivedGenerator(vector, gf_dim=8, latent_dim=4)
    spec = tf.TensorSpec([1, 4])
    assert models.generator_macs(vector, 8, 4) == _profiled_macs(lambda z: g(z), spec)
    d = models.Discriminator(8)
    for stage in range(3):
        side = 4 * 2 ** (stage + 1)
        assert models.discriminator_macs(8, side, stage=stage) == _profiled_macs(
            lambda x: d(x, stage=stage), tf.TensorSpec([1, side, side, 3]))


def test_paper_gflops_are_multiply_accumulates():
    # The paper's 1.77 "GFLOPs" for its best G at 256 channels counts MACs.
    assert round(models.generator_macs("autogan_cifar10_a", 256) / 1e9, 2) == 1.77


# ---------------------------------------------------------------------------
# Supernet.
# ---------------------------------------------------------------------------

def test_supernet_matches_derived_after_weight_copy():
    rng = random.Random(3)
    sup = models.SuperGenerator(gf_dim=8, latent_dim=6)
    z = tf.random.normal([4, 6], seed=1)
    for _ in range(6):
        arch = ss.sample_arch(3, rng)
        for stage in range(3):
            prefix = ss.Arch(arch.cells[:stage + 1])
            derived = models.derive_generator(sup, prefix)
            for training in (False, True):
                a = sup(z, tf.constant(arch.padded(3)), stage=stage, training=training)
                b = derived(z, training=training)
                np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


def test_one_trace_per_stage_over_random_architectures():
    sup = models.SuperGenerator(gf_dim=4, latent_dim=4)
    traces = []

    @tf.function
    def forward(z, arch, stage):
        traces.append(stage)
        return sup(z, arch, stage=stage, training=True)

    rng = random.Random(0)
    z = tf.random.normal([2, 4])
    for stage in range(3):
        for _ in range(20):
            forward(z, tf.constant(ss.sample_arch(3, rng).padded(3), tf.int32), stage)
    assert traces == [0, 1, 2]


def test_variable_usage_matches_nonzero_gradients():
    sup = models.SuperGenerator(gf_dim=4, latent_dim=4)
    arch = tf.constant(ss.parse_arch("0 1 2 1 1 2 0 0 1 1 0 1 1 2").padded(3))

    @tf.function
    def grads_and_usage(z):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(sup(z, arch, stage=2, training=True) ** 2)
        usage = sup.variable_usage(arch, stage=2)
        grads = tape.gradient(loss, [v for v, _ in usage])
        return grads, [u for _, u in usage]

    grads, used = grads_and_usage(tf.random.normal([3, 4]))
    assert len(grads) == len(sup.trainable_variables)
    for g, u in zip(grads, used):
        assert g is not None  # unselected branches give zeros, not None
        assert bool(u.numpy()) == bool(np.any(g.numpy() != 0))


def test_bad_stage_and_widths():
    sup = models.SuperGenerator(gf_dim=4, latent_dim=4)
    with pytest.raises(ValueError, match="stage"):
        sup(tf.zeros([1, 4]), tf.zeros([14], tf.int32), stage=3)
    with pytest.raises(ValueError, match="--gf_dim"):
        models.DerivedGenerator("autogan_cifar10_a", gf_dim=0)


# ---------------------------------------------------------------------------
# Discriminator.
# ---------------------------------------------------------------------------

def test_discriminator_grows_and_normalises():
    d = models.Discriminator(8)
    for stage, side in enumerate((8, 16, 32)):
        out = d(tf.random.normal([2, side, side, 3]), stage=stage, training=True)
        assert out.shape == (2, 1)
    for _ in range(30):  # power iterations converge to the top singular value
        d(tf.random.normal([2, 32, 32, 3]), training=True)
    sn = d.growing[1].c1
    kernel = sn.layer.kernel.numpy()  # the raw weight is kept (reparameterisation)
    top = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
    assert float(sn.sigma()) == pytest.approx(top, rel=0.02)
    normalised = sn.normalized_kernel().numpy()
    assert np.linalg.svd(normalised.reshape(-1, kernel.shape[-1]), compute_uv=False)[0] == \
        pytest.approx(1.0, abs=0.02)


def _minibatch_std_numpy(x, group_size):
    """The minibatch standard deviation written from its definition, one group at a time."""
    n = x.shape[0]
    group = min(group_size, n)
    stride = n // group
    spread = np.empty(n)
    for i in range(n):
        members = x[i % stride::stride]  # images i % stride, + stride, + 2 stride, ...
        assert len(members) == group
        spread[i] = members.std(axis=0).mean()  # population std per feature, then mean
    return np.concatenate([x, np.broadcast_to(spread[:, None, None, None],
                                              x.shape[:3] + (1,))], axis=-1)


@pytest.mark.parametrize("batch,group", [(8, 4), (8, 2), (3, 4), (6, 6)])
def test_minibatch_std_matches_numpy(batch, group):
    x = np.random.default_rng(batch + group).normal(size=(batch, 3, 2, 5)).astype(np.float32)
    x[1] *= 3.0  # groups differ in spread
    got = discriminator_blocks.MinibatchStd(group)(tf.constant(x)).numpy()
    np.testing.assert_allclose(got, _minibatch_std_numpy(x, group), rtol=1e-5, atol=1e-6)


def test_minibatch_std_refuses_bad_groups():
    with pytest.raises(ValueError, match="group_size"):
        discriminator_blocks.MinibatchStd(1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="multiple of group_size=4"):
        discriminator_blocks.MinibatchStd(4)(tf.zeros([6, 2, 2, 1]))
    with pytest.raises(Exception, match="--d_minibatch_std must be 0"):
        models.Discriminator(8, minibatch_std=1)
    from autogan_tf.config import SearchConfig, TrainConfig
    for config in (TrainConfig, SearchConfig):
        with pytest.raises(Exception, match="--g_batch_size=30 must be a multiple of "
                                            "--d_minibatch_std=4"):
            config(d_minibatch_std=4, g_batch_size=30, d_batch_size=32)
        assert config(d_minibatch_std=8, g_batch_size=4, d_batch_size=32).d_minibatch_std == 8


def test_discriminator_with_minibatch_std_sees_the_batch():
    d = models.Discriminator(8, minibatch_std=4)
    assert models.Discriminator(8).get_config()["minibatch_std"] == 0
    assert d.get_config()["minibatch_std"] == 4
    x = tf.random.normal([4, 32, 32, 3], seed=1)
    plain = models.Discriminator(8)
    for _ in range(10):  # spectral norms' power iterations: logits of a normalised scale
        d(x, training=True), plain(x, training=True)
    alone = d(x[:1], training=False)
    # Image 0's logit depends on the other images in its group only with the option on.
    assert not np.allclose(d(x, training=False)[:1], alone, atol=1e-6)
    np.testing.assert_allclose(plain(x, training=False)[:1], plain(x[:1], training=False),
                               rtol=1e-5, atol=1e-6)
    def names(model):
        return {v.path.split("/", 1)[1] for v in model.trainable_variables}

    extra = names(d) - names(plain)
    assert extra and all(n.startswith("batch_std_conv/") for n in extra)
    assert names(plain) <= names(d)


def test_configs_round_trip():
    g = models.DerivedGenerator("autogan_cifar10_c", gf_dim=8, latent_dim=4)
    config = g.get_config()
    g2 = models.DerivedGenerator(config["arch"], gf_dim=config["gf_dim"],
                                 latent_dim=config["latent_dim"],
                                 bottom_width=config["bottom_width"])
    assert str(g2.arch) == str(g.arch)
    assert g.cells[0].get_config()["spec"]["norm"] == 1
    assert models.Discriminator(8).get_config()["df_dim"] == 8
