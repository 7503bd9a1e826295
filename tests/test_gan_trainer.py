import random

import numpy as np
import pytest
import tensorflow as tf

from autogan_tf import gan_trainer, losses, models, optimizers
from autogan_tf import search_space as ss


def test_hinge_losses_against_numpy():
    real = np.array([[2.0], [0.5], [-1.0]], np.float32)
    fake = np.array([[-2.0], [0.3], [1.5]], np.float32)
    d = losses.discriminator_hinge_loss(real, fake).numpy()
    assert d == pytest.approx(np.maximum(0, 1 - real).mean() + np.maximum(0, 1 + fake).mean())
    assert losses.generator_hinge_loss(fake).numpy() == pytest.approx(-fake.mean())
    with pytest.raises(ValueError, match="shape"):
        losses.generator_hinge_loss(np.zeros([2, 3], np.float32))


def _torch_adam_numpy(value, grads, lr, b1, b2, eps=1e-8):
    """torch.optim.Adam's update written out, one step per gradient (None: skipped)."""
    m, v, t = np.zeros_like(value), np.zeros_like(value), 0
    for g in grads:
        if g is None:
            continue
        t += 1
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        value = value - lr / (1 - b1 ** t) * m / (np.sqrt(v) / np.sqrt(1 - b2 ** t) + eps)
    return value, m, v, t


@pytest.mark.parametrize("b1", [0.0, 0.5])
def test_masked_adam_is_pytorchs_update_and_skips_masked_steps(b1):
    """Against NumPy: per-variable step counts, eps after the bias correction (gradients of
    1e-9 are eps-dominated, where placing eps before it would halve the step), skips."""
    rng = np.random.default_rng(0)
    start = rng.normal(size=(3, 4)).astype(np.float32)
    grads = [rng.normal(size=(3, 4)).astype(np.float32) * scale
             for scale in (1e-9, 1e-9, 0.3, 1e-9, 2.0)]
    active = [True, True, False, True, True]
    opt = optimizers.make_adam(2e-3, b1, 0.9, masked=True)
    var = tf.Variable(start)
    opt.build([var])
    for g, on in zip(grads, active):
        opt.apply_masked([tf.constant(g)], [var], [tf.constant(on)])
    value, m, v, t = _torch_adam_numpy(start, [g if on else None for g, on in zip(grads, active)],
                                       2e-3, b1, 0.9)
    np.testing.assert_allclose(var.numpy(), value, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(_slots(opt, var)[0], m, rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(_slots(opt, var)[1], v, rtol=1e-5, atol=1e-20)
    assert float(opt.slots(var)[2].numpy()) == t == 4


def _search_trainer(unused_ops, beta1=0.0):
    g = models.SuperGenerator(gf_dim=4, latent_dim=4)
    d = models.Discriminator(4)
    return gan_trainer.GANTrainer(g, d, n_critic=2, g_batch_size=3, beta1=beta1,
                                  unused_ops=unused_ops, seed=1)


def _slots(opt, var):
    m, v, _ = opt.slots(var)
    return m.numpy().copy(), v.numpy().copy()


@pytest.mark.parametrize("mode", ["freeze", "momentum"])
def test_unused_ops_policy(mode):
    trainer = _search_trainer(mode, beta1=0.5)
    reals = tf.random.normal([2, 2, 8, 8, 3])
    post = ss.parse_arch("0 0 0 0").padded(3)   # post-activation: uses post1_conv
    pre = ss.parse_arch("1 0 0 0").padded(3)    # pre-activation: post1_conv unused
    kernel = trainer.generator.cells[0].ops["post1_conv"].kernel
    trainer.train_iteration(reals, [post, post], stage=0)
    before = kernel.numpy().copy()
    m_before, v_before = _slots(trainer.g_opt, kernel)
    assert np.any(m_before != 0)
    trainer.train_iteration(reals, [pre, pre], stage=0)
    m_after, v_after = _slots(trainer.g_opt, kernel)
    if mode == "freeze":
        np.testing.assert_array_equal(kernel.numpy(), before)
        np.testing.assert_array_equal(m_after, m_before)
        np.testing.assert_array_equal(v_after, v_before)
    else:  # Adam on a zero gradient: m and v decay, the weight moves by momentum
        np.testing.assert_allclose(m_after, 0.5 * m_before, rtol=1e-6)
        np.testing.assert_allclose(v_after, 0.9 * v_before, rtol=1e-6)
        assert np.any(kernel.numpy() != before)
    # The op that was used moved in both modes.
    used = trainer.generator.cells[0].ops["pre1_conv"].kernel
    snapshot = used.numpy().copy()
    trainer.train_iteration(reals, [pre, pre], stage=0)
    assert np.any(used.numpy() != snapshot)


def test_search_iteration_compiles_once_per_stage():
    trainer = _search_trainer("freeze")
    rng = random.Random(0)
    for stage, side in enumerate((8, 16)):
        reals = tf.random.normal([2, 2, side, side, 3])
        for _ in range(4):
            archs = [ss.sample_arch(3, rng).padded(3) for _ in range(2)]
            out = trainer.train_iteration(reals, archs, stage=stage)
            assert out["d_losses"].shape == (2,) and bool(out["finite"])
    for fn in trainer._compiled.values():
        assert fn.experimental_get_tracing_count() == 1


def test_derived_training_ema_and_lr_decay():
    g = models.DerivedGenerator("autogan_cifar10_a", gf_dim=4, latent_dim=4, bottom_width=2)
    d = models.Discriminator(4)
    # The official average (no warm-up); tests/test_ema.py covers the bias-corrected default.
    trainer = gan_trainer.GANTrainer(g, d, n_critic=1, g_batch_size=2, ema_decay=0.75,
                                     ema_warmup="none", lr_decay_iters=4, seed=0)
    start = [w.numpy().copy() for w in g.trainable_variables]
    out = trainer.train_iteration(tf.random.normal([1, 2, 16, 16, 3]))
    assert bool(out["finite"])
    for ema, live, init in zip(trainer.ema_generator.trainable_variables,
                               g.trainable_variables, start):
        np.testing.assert_allclose(ema.numpy(), 0.75 * init + 0.25 * live.numpy(), atol=1e-6)
    # Linear decay to 0: after 1 of 4 generator steps the rate is 3/4 of the start.
    assert trainer.learning_rates()["g_lr"] == pytest.approx(2e-4 * 0.75)
    assert int(trainer.iterations) == 1


def test_bad_trainer_flags():
    g = models.DerivedGenerator("1 0 1 1", gf_dim=4, latent_dim=4)
    d = models.Discriminator(4, num_cells=1)
    with pytest.raises(ValueError, match="--n_critic"):
        gan_trainer.GANTrainer(g, d, n_critic=0)
    with pytest.raises(ValueError, match="--unused_ops"):
        gan_trainer.GANTrainer(g, d, unused_ops="sometimes")
    with pytest.raises(ValueError, match="--ema_decay"):
        gan_trainer.GANTrainer(g, d, ema_decay=1.5)


def test_a_variable_no_step_trains_is_refused_when_the_trainer_is_built(monkeypatch):
    """A sublayer added to the supernet but not to `variable_usage` would never train."""
    g = models.SuperGenerator(gf_dim=4, latent_dim=4, num_cells=2)
    d = models.Discriminator(4, num_cells=2)
    gan_trainer.GANTrainer(g, d, g_batch_size=4)  # as built: every variable is trained once
    listed = models.SuperGenerator.variable_usage
    forgotten = g.to_rgb.conv.kernel.path
    monkeypatch.setattr(models.SuperGenerator, "variable_usage", lambda self, *a: [
        (v, used) for v, used in listed(self, *a) if v.path != forgotten])
    with pytest.raises(RuntimeError, match=r"G step does not train.*missing \[.*to_rgb/conv"):
        gan_trainer.GANTrainer(g, d, g_batch_size=4)
    monkeypatch.setattr(models.SuperGenerator, "variable_usage", lambda self, *a: [
        *listed(self, *a), (g.l1.kernel, True)])
    with pytest.raises(RuntimeError, match=r"twice \[.*l1/kernel"):
        gan_trainer.GANTrainer(g, d, g_batch_size=4)
