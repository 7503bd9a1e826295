"""Step-for-step agreement with the official PyTorch code, from golden fixtures.

The fixtures in tests/golden/ were written by ``tools/official_golden.py``,
which runs the official AutoGAN training functions (``functions.train``,
``train_shared``, ``train_controller``) under PyTorch 2.13 on small models.
These tests need no PyTorch: they load the same initial weights (through
`autogan_tf.official.weights`), feed the same real batches and noise, run our
code and compare.

Tolerances (float32 throughout):

* losses: rtol 1e-5 -- the same sums in a different order (oneDNN vs
  PyTorch's CPU kernels), a few float32 ulps of a value of order 1.
* weights, BN statistics, spectral-norm u/v, EMA: atol 1e-6 plus rtol 1e-5.
  One Adam step with beta1 = 0 moves a weight by lr * g / (|g| + eps), i.e.
  by ~2e-4 whatever |g|: a wrong gradient sign, a missing or extra update or a
  different schedule shows up as >= 2e-4, two hundred times the tolerance.
* Adam moments (m = g, v = 0.1 g^2 after one step) and controller gradients:
  rtol 1e-4 plus atol 1e-5 of the tensor's largest entry: gradients of
  conv layers sum thousands of products, so their float32 rounding is
  relative to the largest terms, not to each entry.
* The exception: weight entries whose official gradient is below 1e-6 of the
  model's largest gradient (measured: all such entries are biases of convs
  followed by batch or instance norm, whose exact gradient is zero, and a few
  conv taps; their gradients are float32 rounding noise of 1e-9..1e-7).
  Adam divides a gradient by its own magnitude, so there both frameworks step
  by up to lr in a direction set by noise; for these entries the test checks
  that our gradient is noise-level too (below ten times that floor) and that
  the weight moved at most one step per Adam step (at most 1.5 lr: the bias
  correction of step t scales it by up to 1/sqrt(1 - 0.9^t)... over 5 D
  steps).
"""

import inspect
import itertools
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from autogan_tf import gan_trainer, models
from autogan_tf.official import weights as W
from autogan_tf.search import controller as ctrl_lib

GOLDEN = os.path.join(os.path.dirname(__file__), "golden")
LOSS_RTOL = 1e-5
WEIGHT_ATOL, WEIGHT_RTOL = 2e-6, 1e-5
GRAD_RTOL, GRAD_ATOL_FRACTION = 1e-4, 3e-5
NOISE_FLOOR = 1e-6
GRAD_NOISE = 1e-6


def load_fixture(name):
    with np.load(os.path.join(GOLDEN, f"{name}.npz")) as f:
        meta = json.loads(str(f["meta"]))
        index = json.loads(str(f["index"]))
        data = f["data"]
    arrays = {key: data[offset:offset + int(np.prod(shape))].reshape(shape)
              for key, offset, shape in index}
    return meta, arrays


def sub(arrays, prefix):
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def assert_weights(ours, ref, name, atol=None):
    np.testing.assert_allclose(ours, ref, rtol=WEIGHT_RTOL, atol=atol or WEIGHT_ATOL,
                               err_msg=name)


def assert_grads(ours, ref, name, rtol=None, atol_fraction=None):
    atol = (atol_fraction or GRAD_ATOL_FRACTION) * float(np.abs(ref).max())
    np.testing.assert_allclose(ours, ref, rtol=rtol or GRAD_RTOL, atol=atol, err_msg=name)


def _noise_feeder(trainer, meta, arrays):
    """Replace the trainer's noise draws by the official run's, in the same order.

    The compiled iteration traces the D step once (its body runs in a `tf.while_loop`)
    and the G step once: the first traced draw reads the official D draws through a
    counter variable, one per loop pass; the second is the G step's draw.

    Returns:
      ``check()``, asserting that both steps drew and the D draws were used up.
    """
    z_d = tf.constant(np.stack(arrays["z_d"]))
    d_index = tf.Variable(0)
    traced = []

    def z(batch):  # batch: a tensor while tracing; the shapes are checked by use
        traced.append(batch)
        if len(traced) == 1:
            i = d_index.read_value()
            with tf.control_dependencies([i]):
                d_index.assign_add(1)
            return tf.gather(z_d, i)
        return tf.constant(arrays["z_g"])

    trainer._z = z

    def check():
        assert len(traced) == 2 and int(d_index.numpy()) == len(arrays["z_d"])

    return check


def _trainer(g, d, meta, n_critic, **kwargs):
    options = dict(g_lr=meta["lr"], d_lr=meta["lr"], beta1=meta["betas"][0],
                   beta2=meta["betas"][1], n_critic=n_critic, g_batch_size=meta["g_batch"],
                   **kwargs)
    if "ema_decay" in kwargs and "ema_warmup" in inspect.signature(
            gan_trainer.GANTrainer).parameters:
        options["ema_warmup"] = "none"  # the official EMA has no warm-up
    return gan_trainer.GANTrainer(g, d, **options)


def _compare_models(arrays, g_vars, d_vars, trainer, lr, d_steps, g_steps=1, weight_atol=None,
                    grad_rtol=None, grad_atol_fraction=None):
    for prefix, variables, opt, steps in (("G", g_vars, trainer.g_opt, g_steps),
                                          ("D", d_vars, trainer.d_opt, d_steps)):
        grads = [v for k, v in arrays.items() if k.startswith(f"adam/{prefix}/m/")]
        floor = NOISE_FLOOR * max(float(np.abs(g).max()) for g in grads)
        for name, (var, to_torch) in variables.items():
            ours, ref = to_torch(var.numpy()), arrays[f"final/{prefix}/{name}"]
            if f"adam/{prefix}/m/{name}" not in arrays:  # no Adam step in PyTorch
                assert_weights(ours, ref, name, weight_atol)
                if var.trainable:  # an unused op: no gradient there, no state here
                    m, v, _ = opt.slots(var)
                    assert not np.any(m.numpy()), name
                    assert not np.any(v.numpy()), name
                continue
            m_ref = arrays[f"adam/{prefix}/m/{name}"]
            v_ref = arrays[f"adam/{prefix}/v/{name}"]
            m, v, _ = opt.slots(var)
            m, v = to_torch(m.numpy()), to_torch(v.numpy())
            signal = np.abs(m_ref) >= floor
            if signal.any():
                assert_grads(m[signal], m_ref[signal], f"m of {name}", grad_rtol,
                             grad_atol_fraction)
                assert_grads(v[signal], v_ref[signal], f"v of {name}", grad_rtol,
                             grad_atol_fraction)
            assert np.all(np.abs(m[~signal]) <= 10 * floor), f"m of {name} (noise level)"
            assert_weights(ours[signal], ref[signal], name, weight_atol)
            # Rounding-noise gradients (a bias right before a normalisation): the
            # step's direction is noise in both frameworks; it is still one step.
            init = arrays[f"init/{prefix}/{name}"]
            assert np.all(np.abs(ours - init)[~signal] <= steps * lr * 1.5), name


@pytest.mark.parametrize("name", ["derived_autogan_cifar10_a", "derived_search_arch"])
def test_derived_generator_iteration_equals_official(name):
    """functions.train: 5 D steps (real and fake passes), the G step, the EMA update."""
    meta, arrays = load_fixture(name)
    g = models.DerivedGenerator(meta["arch"], meta["gf_dim"], meta["latent_dim"],
                                meta["bottom_width"])
    d = models.Discriminator(meta["df_dim"])
    W.load_generator_state(g, sub(arrays, "init/G/"), layout=meta["layout"])
    W.load_discriminator_state(d, sub(arrays, "init/D/"))
    trainer = _trainer(g, d, meta, meta["n_critic"], ema_decay=meta["ema_decay"])
    check_draws = _noise_feeder(trainer, meta, arrays)
    out = trainer.train_iteration(tf.constant(arrays["reals"]))
    check_draws()
    np.testing.assert_allclose(out["d_losses"].numpy(), arrays["d_losses"], rtol=LOSS_RTOL)
    np.testing.assert_allclose(float(out["g_loss"]), arrays["g_loss"][0], rtol=LOSS_RTOL)
    g_vars = W.generator_variables(g, meta["layout"])
    _compare_models(arrays, g_vars, W.discriminator_variables(d), trainer, meta["lr"],
                    meta["n_critic"])
    for name, (var, to_torch) in W.generator_variables(trainer.ema_generator,
                                                       meta["layout"]).items():
        if var.trainable:
            assert_weights(to_torch(var.numpy()), arrays[f"ema/{name}"], f"EMA {name}")


@pytest.mark.parametrize("stage", [0, 1, 2])
def test_supernet_iteration_equals_official(stage):
    """functions.train_shared: one D step and its G step with a given architecture."""
    meta, arrays = load_fixture(f"supernet_stage{stage}")
    g = models.SuperGenerator(meta["gf_dim"], meta["latent_dim"], meta["bottom_width"])
    d = models.Discriminator(meta["df_dim"])
    W.load_generator_state(g, sub(arrays, "init/G/"), layout="search")
    W.load_discriminator_state(d, sub(arrays, "init/D/"))
    trainer = _trainer(g, d, meta, 1, unused_ops="freeze")
    check_draws = _noise_feeder(trainer, meta, arrays)
    arch = list(meta["arch"]) + [0] * (14 - len(meta["arch"]))
    out = trainer.train_iteration(tf.constant(arrays["reals"]), [arch], stage=stage)
    check_draws()
    np.testing.assert_allclose(out["d_losses"].numpy(), arrays["d_losses"], rtol=LOSS_RTOL)
    np.testing.assert_allclose(float(out["g_loss"]), arrays["g_loss"][0], rtol=LOSS_RTOL)
    _compare_models(arrays, W.generator_variables(g), W.discriminator_variables(d), trainer,
                    meta["lr"], 1)


def test_supernet_iterations_with_skipped_ops_equal_official():
    """Four train_shared steps (n_critic 1) with different architectures at stage 2.

    Ops used, skipped, then used again: PyTorch 2 gives skipped ops no
    gradient and Adam leaves them alone, own step count included; so does
    ``unused_ops="freeze"`` with `optimizers.TorchAdam` (checked exactly).
    Values after several iterations agree to float-noise drift only (below).
    """
    meta, arrays = load_fixture("supernet_iterations")
    g = models.SuperGenerator(meta["gf_dim"], meta["latent_dim"], meta["bottom_width"])
    d = models.Discriminator(meta["df_dim"])
    W.load_generator_state(g, sub(arrays, "init/G/"), layout="search")
    W.load_discriminator_state(d, sub(arrays, "init/D/"))
    trainer = _trainer(g, d, meta, 1, unused_ops="freeze")
    d_batch, g_batch = meta["d_batch"], meta["g_batch"]
    z_all = arrays["z_all"]
    assert len(z_all) == len(meta["archs"]) * (d_batch + g_batch)
    # The compiled iteration is traced once: it reads its noise from two variables
    # (the D step's, then the G step's), set to the official draws before each call.
    z_d = tf.Variable(tf.zeros([d_batch, meta["latent_dim"]]))
    z_g = tf.Variable(tf.zeros([g_batch, meta["latent_dim"]]))
    order = itertools.cycle([z_d, z_g])
    trainer._z = lambda batch: tf.convert_to_tensor(next(order))
    d_losses, g_losses = [], []
    for step, arch in enumerate(meta["archs"]):
        start = step * (d_batch + g_batch)
        z_d.assign(z_all[start:start + d_batch])
        z_g.assign(z_all[start + d_batch:start + d_batch + g_batch])
        out = trainer.train_iteration(tf.constant(arrays["reals"][step:step + 1]), [arch],
                                      stage=2)
        d_losses.append(float(out["d_losses"][0]))
        g_losses.append(float(out["g_loss"]))
    # Exact: every parameter's own Adam step count is PyTorch's.
    for prefix, variables, opt in (("G", W.generator_variables(g), trainer.g_opt),
                                   ("D", W.discriminator_variables(d), trainer.d_opt)):
        for name, (var, _) in variables.items():
            key = f"adam/{prefix}/step/{name}"
            if var.trainable:
                ours = float(opt.slots(var)[2].numpy())
                assert ours == float(arrays.get(key, 0.0)), (name, ours)
    # Approximate: in a weight-sharing supernet a parameter whose exact gradient
    # is zero under one architecture (a bias feeding a normalisation) takes a
    # noise-driven step of up to lr in both frameworks (module docstring), and
    # matters under the next architecture. After the first iteration the two
    # runs therefore drift apart at the level of float noise times Adam's
    # normalisation: measured up to 2e-4 relative in the losses, 1.5 lr in a
    # weight, ~1% of a tensor's largest gradient in its moments. These bounds
    # catch gross errors only; the step counts above are the exact check.
    np.testing.assert_allclose(d_losses, arrays["d_losses"], rtol=1e-3)
    np.testing.assert_allclose(g_losses, arrays["g_loss"], rtol=1e-3)
    _compare_models(arrays, W.generator_variables(g), W.discriminator_variables(d), trainer,
                    meta["lr"], len(meta["archs"]), g_steps=len(meta["archs"]),
                    weight_atol=2 * meta["lr"], grad_rtol=0.1, grad_atol_fraction=0.02)


@pytest.mark.parametrize("stage", [0, 2])
def test_controller_equals_official(stage):
    """functions.train_controller: log-probs, entropies, loss, gradients, Adam steps."""
    meta, arrays = load_fixture(f"controller_stage{stage}")
    c = ctrl_lib.Controller(stage, hidden_size=meta["hidden"])
    W.load_controller_state(c, sub(arrays, "init/C/"))
    r = ctrl_lib.Reinforce(learning_rate=meta["lr"], beta1=meta["betas"][0],
                           beta2=meta["betas"][1], entropy_coeff=meta["entropy_coeff"],
                           baseline_decay=meta["baseline_decay"])
    r.build(c)
    r.reset_baseline()
    prefix = c.prefix_length
    for step in range(meta["steps"]):
        archs = arrays[f"step{step}/archs"].astype(np.int32)
        decisions = archs[:, prefix:]
        if stage:
            beam = arrays["beam_archs"].astype(np.int32)
            pick = [i for i in range(len(beam)) if np.array_equal(beam[i], archs[0, :prefix])]
            assert len(pick) == 1
            hidden = (arrays["beam_h"][pick], arrays["beam_c"][pick])
        else:
            hidden = None
        reward = tf.constant([arrays["rewards"][step]])
        h0 = c._zeros(1) if hidden is None else tuple(tf.constant(x) for x in hidden)
        with tf.GradientTape() as tape:
            log_probs, entropies = c.log_prob_and_entropy(decisions, h0)
            loss, _, _, _ = r.policy_loss(log_probs, entropies, reward)
        grads = dict(zip([v.path for v in c.trainable_variables],
                         tape.gradient(loss, c.trainable_variables)))
        np.testing.assert_allclose(log_probs.numpy(), arrays[f"step{step}/log_probs"], rtol=1e-5,
                                   atol=1e-6)
        np.testing.assert_allclose(entropies.numpy()[0], arrays[f"step{step}/entropies"][:, 0],
                                   rtol=1e-5)
        np.testing.assert_allclose(float(loss), arrays["losses"][step], rtol=1e-4, atol=1e-6)
        _compare_controller_grads(c, grads, sub(arrays, f"step{step}/grad/"))
        r.update(c, decisions, h0, reward)
    final = sub(arrays, "final/C/")
    state = W.controller_state(c)
    for name in state:
        # Per entry: the update error a gradient error of GRAD_NOISE x the
        # step's largest gradient causes through Adam's normalisation (see the
        # module docstring); WEIGHT_ATOL where gradients are large.
        tol = np.full(state[name].shape, WEIGHT_ATOL)
        for step in range(meta["steps"]):
            g = np.abs(arrays[f"step{step}/grad/{name}"])
            gmax = max(float(np.abs(arrays[k]).max()) for k in arrays
                       if k.startswith(f"step{step}/grad/"))
            with np.errstate(divide="ignore", invalid="ignore"):  # g == 0: no step (beta1 = 0)
                tol += np.where(g > 0, 1.5 * meta["lr"] * np.minimum(2.0, GRAD_NOISE * gmax / g),
                                0.0)
        err = np.abs(state[name] - final[name])
        assert np.all(err <= tol + WEIGHT_RTOL * np.abs(final[name])), (
            name, float((err - tol).max()))


def _compare_controller_grads(c, grads, ref):
    for name, (var, to_torch) in W.controller_variables(c).items():
        assert_grads(to_torch(tf.convert_to_tensor(grads[var.path]).numpy()), ref[name],
                     f"gradient of {name}")
