"""In-process A/B: the supernet step with the code of its commit against one older form.

    python ab_old_forms.py FORM STAGES SECONDS     # e.g. sn_transposed 0,1 40

Two trainers in one process, the second with FORM patched in (instance attributes, before
the first trace); calls interleaved by bench/peak.interleaved, 4 rounds; prints the median
seconds per generator iteration of each and old / new. Supernet G 128 / D 64, batch
128 / 64, n_critic 5, a new random architecture every D step, fp32. Results and what each
form is: ab_results.txt. The two forms that were dropped (two_d_calls, sn_div_plus) were
copies of the library's code of the time, timed against edited copies; they are in this
script as of commit 3e7705c.
"""
import os
import random
import sys
import types

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, ROOT)
import peak  # noqa: E402

peak.quiet_tensorflow()
peak.configure_threads(1, 0)
import tensorflow as tf  # noqa: E402

from autogan_tf import gan_trainer, models  # noqa: E402
from autogan_tf import layers as L  # noqa: E402
from autogan_tf import search_space as ss  # noqa: E402


def sn_transposed_sigma(self, training):
    """Before 9e61d73: the kernel transposed to PyTorch's [out, in*kh*kw] at every call."""
    kernel = tf.cast(tf.convert_to_tensor(self.layer.kernel), tf.float32)
    w = (tf.transpose(kernel) if kernel.shape.rank == 2 else
         tf.reshape(tf.transpose(kernel, [3, 2, 0, 1]), [kernel.shape[-1], -1]))
    u, v = tf.convert_to_tensor(self.u), tf.convert_to_tensor(self.v)
    if training:
        w_const = tf.stop_gradient(w)
        for _ in range(self.power_iterations):
            v = L.l2_normalize(tf.linalg.matvec(w_const, u, transpose_a=True), self.eps)
            u = L.l2_normalize(tf.linalg.matvec(w_const, v), self.eps)
        self.u.assign(u)
        self.v.assign(v)
    return tf.tensordot(u, tf.linalg.matvec(w, v), 1)


def elementwise_adam(self, gradient, variable, learning_rate):
    """Before 9e61d73: PyTorch's Adam as element-wise ops."""
    dtype = variable.dtype
    index = self._get_variable_index(variable)
    step, m, v = self._steps[index], self._momentums[index], self._velocities[index]
    gradient = tf.cast(gradient, dtype)
    b1, b2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
    self.assign_add(step, tf.ones((), dtype))
    t = tf.convert_to_tensor(step)
    self.assign_add(m, (gradient - m) * (1 - b1))
    self.assign_add(v, (tf.square(gradient) - v) * (1 - b2))
    step_size = tf.cast(learning_rate, dtype) / (1 - tf.pow(b1, t))
    denom = tf.sqrt(tf.convert_to_tensor(v)) / tf.sqrt(1 - tf.pow(b2, t)) + self.epsilon
    self.assign_sub(variable, step_size * tf.convert_to_tensor(m) / denom)


def elementwise_masked_adam(self, gradient, variable, learning_rate):
    """Before 9e61d73: update, then put the old values back where the mask is False."""
    mask = None if self._step_masks is None else self._step_masks.get(self._var_key(variable))
    if mask is None:
        return elementwise_adam(self, gradient, variable, learning_rate)
    index = self._get_variable_index(variable)
    slots = [variable, self._momentums[index], self._velocities[index], self._steps[index]]
    before = [tf.identity(slot) for slot in slots]
    elementwise_adam(self, gradient, variable, learning_rate)
    for slot, old in zip(slots, before):
        self.assign(slot, tf.where(mask, tf.convert_to_tensor(slot), old))


def _patch_spectral_norms(trainer, name, fn):
    for layer in trainer.discriminator._flatten_layers():
        if isinstance(layer, L.SpectralNorm):
            setattr(layer, name, types.MethodType(fn, layer))


FORMS = {
    "sn_transposed": lambda t: _patch_spectral_norms(t, "_sigma", sn_transposed_sigma),
    "elementwise_adam": lambda t: (
        setattr(t.g_opt, "update_step", types.MethodType(elementwise_masked_adam, t.g_opt)),
        setattr(t.d_opt, "update_step", types.MethodType(elementwise_adam, t.d_opt))),
}


def make_step(stage, form=None):
    g = models.SuperGenerator(128, 128, num_cells=3)
    d = models.Discriminator(64, num_cells=3)
    trainer = gan_trainer.GANTrainer(g, d, n_critic=5, g_batch_size=128, seed=0)
    if form:
        FORMS[form](trainer)
    side = 4 * 2 ** (stage + 1)
    reals = tf.random.normal([5, 64, side, side, 3], seed=1)
    rng = random.Random(0)
    plans = [tf.constant([ss.sample_arch(3, rng).padded(3) for _ in range(5)], tf.int32)
             for _ in range(8)]
    counter = iter(range(10 ** 9))

    def step():
        return trainer.train_iteration(reals, plans[next(counter) % 8], stage=stage)["g_loss"].numpy()

    step(), step()
    return step


def main(form, stages, seconds):
    for stage in [int(s) for s in stages.split(",")]:
        fns = {"old": make_step(stage, form), "new": make_step(stage)}
        samples = peak.interleaved(fns, float(seconds), rounds=4, min_calls=3)
        med = {k: peak.summary(v)["median_seconds"] for k, v in samples.items()}
        print(form, "stage", stage, {k: round(v, 4) for k, v in med.items()},
              "old/new", round(med["old"] / med["new"], 3), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
