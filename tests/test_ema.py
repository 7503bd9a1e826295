"""The generator EMA: the bias-corrected warm-up and the official average, against closed forms."""

import numpy as np
import pytest
import tensorflow as tf

from autogan_tf import gan_trainer, models

DECAY = 0.9


def _trainer(warmup):
    g = models.DerivedGenerator("1 1 1 1", gf_dim=4, latent_dim=4, bottom_width=2)
    d = models.Discriminator(4, num_cells=1)
    return gan_trainer.GANTrainer(g, d, n_critic=1, g_batch_size=3, ema_decay=DECAY,
                                  ema_warmup=warmup, seed=3)


def _run(trainer, steps):
    """Train ``steps`` iterations; the raw weights before and after each one."""
    history = [[v.numpy().copy() for v in trainer.generator.trainable_variables]]
    reals = tf.random.stateless_normal([1, 3, 4, 4, 3], [1, 2])
    for _ in range(steps):
        trainer.train_iteration(reals)
        history.append([v.numpy().copy() for v in trainer.generator.trainable_variables])
    return history


def _closed_form(history, warmup):
    """sum_i (1-d) d^(T-i) w_i (+ d^T w_0 for the official average, / (1-d^T) corrected)."""
    steps = len(history) - 1
    out = []
    for k in range(len(history[0])):
        total = sum((1 - DECAY) * DECAY ** (steps - i) * history[i][k]
                    for i in range(1, steps + 1))
        if warmup == "none":
            total = total + DECAY ** steps * history[0][k]
        else:
            total = total / (1 - DECAY ** steps)
        out.append(total)
    return out


@pytest.mark.parametrize("warmup", ["bias_correction", "none"])
def test_ema_weights_equal_the_closed_form(warmup):
    trainer = _trainer(warmup)
    history = _run(trainer, 6)
    expected = _closed_form(history, warmup)
    for ema, want in zip(trainer.ema_generator.trainable_variables, expected):
        np.testing.assert_allclose(ema.numpy(), want, rtol=1e-5, atol=1e-6)


def test_bias_corrected_ema_starts_at_the_trained_weights_not_the_initial_ones():
    trainer = _trainer("bias_correction")
    history = _run(trainer, 1)
    for ema, raw, init in zip(trainer.ema_generator.trainable_variables, history[1], history[0]):
        np.testing.assert_allclose(ema.numpy(), raw, rtol=1e-6, atol=1e-7)
        assert not np.allclose(raw, init)


def test_effective_decay_ramps_up_to_the_configured_one():
    decays = [float(gan_trainer.ema_decay_at(0.999, t)) for t in (1, 2, 10, 1000, 50_000)]
    assert decays[0] == 0.0
    assert decays[1] == pytest.approx(0.999 / (1 + 0.999))  # the mean of two weights
    assert decays == sorted(decays)
    assert decays[-1] == pytest.approx(0.999, abs=1e-15)  # the paper's 50k iterations
    assert float(gan_trainer.ema_decay_at(0.999, 5, "none")) == pytest.approx(0.999)


def test_bad_ema_warmup_is_refused_by_name():
    with pytest.raises(ValueError, match="--ema_warmup"):
        gan_trainer.ema_decay_at(0.9, 1, "linear")
    with pytest.raises(ValueError, match="--ema_warmup"):
        _trainer("adam")
