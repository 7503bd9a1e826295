"""A/B in one process: the unrolled critic loop (before 2026-12-05) vs the tf.while_loop.

    python bench/results/2026-12-05/critic_loop_ab.py STAGE [SECONDS]

Supernet at the paper's widths (G 128 / D 64, batch 128/64, n_critic 5): first call of
each, then both timed alternately (bench/peak.py's `interleaved`). Output in
critic_loop_ab_stage2.txt beside this file.
"""
import os, sys, time, random, types
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import tensorflow as tf
tf.config.threading.set_inter_op_parallelism_threads(1)
import peak
from autogan_tf import models, gan_trainer, search_space as ss
stage = int(sys.argv[1]); seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 20

def unrolled(self, reals, archs, stage):
    d_losses = []
    for i in range(self.n_critic):
        arch = None if archs is None else archs[i]
        z = self._z(tf.shape(reals[i])[0])
        d_losses.append(self._run(self._d_step, reals[i], z, arch, stage))
    z = self._z(self.g_batch_size)
    g_loss = self._run(self._g_step, z, None if archs is None else archs[-1], stage)
    d_losses = tf.stack(d_losses)
    finite = tf.reduce_all(tf.math.is_finite(d_losses)) & tf.math.is_finite(g_loss)
    return {"d_losses": d_losses, "g_loss": g_loss, "finite": finite}

def make(kind):
    g = models.SuperGenerator(128, 128, num_cells=3); d = models.Discriminator(64, num_cells=3)
    tr = gan_trainer.GANTrainer(g, d, n_critic=5, g_batch_size=128, seed=0)
    if kind == "unrolled":
        tr._iteration = types.MethodType(unrolled, tr)
    return tr
side = 4 * 2 ** (stage + 1)
reals = tf.random.normal([5, 64, side, side, 3], seed=1)
rng = random.Random(0)
plans = [tf.constant([ss.sample_arch(3, rng).padded(3) for _ in range(5)], tf.int32) for _ in range(16)]
fns = {}
for kind in ("unrolled", "while"):
    tr = make(kind); c = iter(range(10**9))
    def step(tr=tr, c=c):
        tr.train_iteration(reals, plans[next(c) % 16], stage=stage)["g_loss"].numpy()
    t = time.perf_counter(); step(); print(kind, "first call", round(time.perf_counter() - t, 1), flush=True)
    step(); fns[kind] = step
samples = peak.interleaved(fns, seconds * 2, rounds=4)
for k, v in samples.items():
    print(k, peak.summary(v))
