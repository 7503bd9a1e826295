"""The AutoGAN search loop: shared GAN training, controller training, growth.

One search iteration (as the official ``search.py``):

1. train the shared supernet GAN for ``shared_iters`` generator iterations,
   sampling a new architecture from the controller for every D step; with
   dynamic resetting, stop early when the variance (``reset_statistic="var"``,
   the official code and the paper's 1e-3; "std" compares the standard
   deviation) of the last ``reset_window`` G or D losses falls below a threshold;
2. train the controller with REINFORCE for ``ctrl_steps`` steps, the reward
   being the Inception Score (or reciprocal FID) of the sampled architectures
   at their native resolution; the REINFORCE baseline restarts at the start
   of this phase (``ctrl_baseline="iteration"``, as the official code;
   "persistent" keeps it across iterations);
3. if the shared training was stopped by a reset, re-initialise the shared G
   and D (never the controller).

At each grow step (and at the end) the current controller proposes
``num_candidates`` architectures; the ``topk`` best by reward, with the
controller's hidden states, form the beam the next stage's new controller
extends (multi-level architecture search).

Everything that must survive a crash is a `tf.Variable` in one
`tf.train.Checkpoint`: the shared G and D with their optimizers, every
controller with its optimizer and baseline, the stage, the iteration, the
phase inside the iteration, the beam, the loss windows, the random
generators, the data iterators (one per stage, so a resumed run sees the same
batches as an uninterrupted one) and the history. Rerunning the same command
after ``kill -9`` resumes from the last complete checkpoint; the initial and
re-initialised weights are drawn from ``seed`` (and the iteration), so a
resumed search is the same computation as an uninterrupted one.

Faults: NaN/Inf in a shared-GAN loss (or a reward) restores the last good
checkpoint and retries with the next batches of data, at most
``max_nan_restores`` times; SIGTERM/SIGINT checkpoint after the current
generator iteration (or controller step) and stop cleanly.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import tensorflow as tf
from absl import logging

from autogan_tf import config as config_lib
from autogan_tf import controller as ctrl_lib
from autogan_tf import distribute, gan_trainer, models, runlog, training
from autogan_tf import search_space as ss
from autogan_tf.config import SearchConfig  # noqa: F401 - importable from here, as before

RESULT_FILE = "search_result.json"
CONFIG_FILE = "search_config.json"
STRUCTURAL_KEYS = ("gf_dim", "df_dim", "latent_dim", "bottom_width", "num_cells", "hid_size",
                   "search", "mlas", "topk", "num_candidates", "grow_steps", "n_critic",
                   "reset_window", "dataset")


def describe_event(record: dict) -> str:
    """One terminal line for a search event of the log (the JSONL keeps every field)."""
    event, it = record.get("event"), record.get("iteration")
    if event == "stage_top_k":
        best = ", ".join(f"{a} ({r:.2f})" for a, r in zip(record["archs"], record["rewards"]))
        return f"iteration {it}: stage {record['stage']} top {len(record['archs'])}: {best}"
    if event == "grow":
        return f"iteration {it}: growing to stage {record['stage']} (one more cell)"
    if event == "finished":
        return (f"search finished: best architecture {record['best_arch']} "
                f"(reward {record['best_reward']:.2f})")
    details = ", ".join(f"{k}={v}" for k, v in record.items()
                        if k not in ("event", "iteration", "time"))
    return f"iteration {it}: {event}" + (f" ({details})" if details else "")


class SearchError(RuntimeError):
    """A search that cannot continue."""


class _Diverged(Exception):
    """A non-finite loss or reward: the state since the last checkpoint is poisoned."""


class _Preempted(Exception):
    """A signal asked the run to stop; the state is checkpointed in ``args[0]``."""


class LossWindow(tf.Module):
    """The last ``size`` losses, on device and checkpointed, with their spread."""

    def __init__(self, size: int, name=None):
        super().__init__(name=name)
        self.size = size
        self.values = tf.Variable(tf.zeros([size], tf.float64), trainable=False)
        self.count = tf.Variable(0, dtype=tf.int64, trainable=False)

    def push(self, values):
        for v in tf.reshape(tf.cast(values, tf.float64), [-1]).numpy():
            self.values.scatter_nd_update([[int(self.count) % self.size]], [v])
            self.count.assign_add(1)

    @property
    def full(self) -> bool:
        return int(self.count) >= self.size

    def statistic(self, kind="std") -> float:
        n = min(int(self.count), self.size)
        if n < 2:
            return float("nan")
        var = float(np.var(self.values.numpy()[:n]))
        return var if kind == "var" else var ** 0.5

    def clear(self):
        self.values.assign(tf.zeros_like(self.values))
        self.count.assign(0)


def _reinitialise(model, fresh, optimizer):
    """Give ``model`` the freshly initialised weights of ``fresh``; zero its optimizer state."""
    model.set_weights(fresh.get_weights())
    for v in optimizer.variables:
        if "learning_rate" not in v.path:
            v.assign(tf.zeros_like(v))


class RandomSampler(tf.Module):
    """Uniform architectures with the controller's interface (``--search=random``)."""

    def __init__(self, cell_indices, seed):
        super().__init__(name="random_sampler")
        self.cell_indices = tuple(cell_indices)
        self.rng = tf.random.Generator.from_seed(seed)

    def sample(self, batch_size, prev_archs=None, prev_hidden=None):
        cols = []
        for index in self.cell_indices:
            for size in ss.decision_sizes(index):
                cols.append(self.rng.uniform([batch_size], 0, size, dtype=tf.int32))
        decisions = tf.stack(cols, 1)
        if prev_archs is not None:
            pick = self.rng.uniform([batch_size], 0, prev_archs.shape[0], dtype=tf.int32)
            archs = tf.concat([tf.gather(prev_archs, pick), decisions], 1)
        else:
            archs = decisions
        hidden = None
        if prev_hidden is not None:
            hidden = tuple(tf.gather(h, pick) for h in prev_hidden)
        return ctrl_lib.SampleResult(archs=archs, decisions=decisions, beam_index=None,
                                     log_probs=None, entropies=None, hidden=hidden)


class Search:
    """State and steps of one search; `run()` drives it to the end.

    ``strategy``: the shared GAN trains data-parallel under it (batches are
    global; ``sync_bn``, default on with several replicas, synchronises the
    supernet's output batch norm) and reward images are generated and
    classified split across its replicas. The controllers stay on the host,
    outside the strategy: on every worker they see the same gathered rewards
    from the same seeds and so make the same samples and updates. Only the
    chief writes into ``model_dir``.
    """

    def __init__(self, config: SearchConfig, model_dir: str, reward_fn=None, strategy=None,
                 sync_bn: bool | None = None):
        self.config = config
        self.model_dir = model_dir
        self.chief = distribute.is_chief()
        self.strategy = strategy or tf.distribute.get_strategy()
        if sync_bn is None:
            sync_bn = self.strategy.num_replicas_in_sync > 1
        c = config
        with runlog.python_random_seed(c.seed), self.strategy.scope():
            self.generator = models.SuperGenerator(c.gf_dim, c.latent_dim, c.bottom_width,
                                                   c.num_cells, sync_bn=sync_bn)
            self.discriminator = models.Discriminator(c.df_dim, c.num_cells)
        self.trainer = gan_trainer.GANTrainer(
            self.generator, self.discriminator, g_lr=c.g_lr, d_lr=c.d_lr, beta1=c.beta1,
            beta2=c.beta2, n_critic=c.n_critic, g_batch_size=c.g_batch_size,
            unused_ops=c.unused_ops, seed=c.seed, precision=c.precision,
            strategy=self.strategy)
        num_levels = c.num_cells if c.mlas else 1
        self.samplers, self.reinforces = [], []
        for level in range(num_levels):
            cells = (level,) if c.mlas else tuple(range(c.num_cells))
            if c.search == "random":
                self.samplers.append(RandomSampler(cells, c.seed + 101 * level))
                self.reinforces.append(None)
            else:
                self.samplers.append(ctrl_lib.Controller(
                    cells, hidden_size=c.hid_size, seed=c.seed + 101 * level,
                    name=f"controller{level}"))
                reinforce = ctrl_lib.Reinforce(
                    learning_rate=c.ctrl_lr, entropy_coeff=c.entropy_coeff,
                    baseline_decay=c.baseline_decay, loss=c.ctrl_loss, name=f"reinforce{level}")
                # Baseline and Adam slots: build before any checkpoint restore.
                reinforce.build(self.samplers[-1])
                self.reinforces.append(reinforce)
        length = ss.vector_length(c.num_cells)
        self.iteration = tf.Variable(0, dtype=tf.int64, name="iteration")
        self.phase = tf.Variable(0, dtype=tf.int64, name="phase")  # 0 shared, 1 controller
        self.phase_step = tf.Variable(0, dtype=tf.int64, name="phase_step")
        self.pending_reset = tf.Variable(False, name="pending_reset")
        self.beam_archs = tf.Variable(tf.zeros([c.topk, length], tf.int32), name="beam_archs")
        self.beam_len = tf.Variable(0, dtype=tf.int32, name="beam_len")
        self.beam_h = tf.Variable(tf.zeros([c.topk, c.hid_size]), name="beam_h")
        self.beam_c = tf.Variable(tf.zeros([c.topk, c.hid_size]), name="beam_c")
        self.history = tf.Variable("{}", dtype=tf.string, name="history")
        self.reward_rng = tf.random.Generator.from_seed(c.seed + 7)
        self.g_window = LossWindow(c.reset_window, name="g_window")
        self.d_window = LossWindow(c.reset_window, name="d_window")
        self.reward_fn = reward_fn
        items = dict(self.trainer.checkpoint_items())
        for level, (sampler, rf) in enumerate(zip(self.samplers, self.reinforces)):
            items[f"sampler{level}"] = sampler
            if rf is not None:
                items[f"reinforce{level}"] = rf
        items.update(iteration=self.iteration, phase=self.phase, phase_step=self.phase_step,
                     pending_reset=self.pending_reset, beam_archs=self.beam_archs,
                     beam_len=self.beam_len, beam_h=self.beam_h, beam_c=self.beam_c,
                     history=self.history, reward_rng=self.reward_rng, g_window=self.g_window,
                     d_window=self.d_window)
        # Everything but the data: what a NaN restore rolls back (the data moves on).
        self._state_checkpoint = tf.train.Checkpoint(**items)
        # The data iterators exist before any restore, so their position is restored too
        # (and a missing data set fails here, before any training).
        self._data_iters = {}
        used_stages = range(c.num_cells) if c.mlas else [c.num_cells - 1]
        data_items = {f"data{stage}": self._data(stage) for stage in used_stages}
        self.checkpoint = tf.train.Checkpoint(**items, **data_items)
        self._nan_restores = 0
        self._models_finite = training.make_finite_check(self.generator, self.discriminator)
        self._preemption = None
        self.manager = distribute.ChiefCheckpoints(self.checkpoint, model_dir, "checkpoints",
                                                   max_to_keep=c.keep_checkpoints)
        self.log = runlog.RunLog(model_dir, name="search_log", is_chief=self.chief)
        self._sample_fn = {}

    # -- history (kept in the checkpoint as JSON) -----------------------------
    def _hist(self):
        return json.loads(self.history.numpy().decode())

    def _hist_append(self, key, record):
        hist = self._hist()
        hist.setdefault(key, []).append(record)
        self.history.assign(json.dumps(hist))

    def _event(self, record):
        record = {"iteration": int(self.iteration), **record}
        self.log.log(record)
        logging.info("%s", describe_event(record))

    # -- pieces -----------------------------------------------------------------
    @property
    def stage(self) -> int:
        return self.config.stage_at(int(self.iteration))

    def _level(self, stage):
        return stage if self.config.mlas else 0

    def _beam(self, stage):
        """The beam the controller of ``stage`` extends (None before the first growth)."""
        n = int(self.beam_len)
        if n == 0 or stage == 0 or not self.config.mlas:
            return None, None
        length = sum(ss.cell_vector_length(i) for i in range(stage))
        return (self.beam_archs[:n, :length],
                (self.beam_h[:n], self.beam_c[:n]))

    def sample(self, batch_size):
        stage = self.stage
        prev_archs, prev_hidden = self._beam(stage)
        sampler = self.samplers[self._level(stage)]
        return sampler.sample(batch_size, prev_archs=prev_archs, prev_hidden=prev_hidden)

    def _padded(self, archs):
        archs = tf.convert_to_tensor(archs, tf.int32)
        pad = ss.vector_length(self.config.num_cells) - archs.shape[1]
        return tf.pad(archs, [[0, 0], [0, pad]])

    def _data(self, stage):
        if stage not in self._data_iters:
            from autogan_tf import data

            c = self.config
            ds = data.make_dataset(c.dataset, c.d_batch_size, c.resolution(stage),
                                   split="train", seed=c.seed + stage,
                                   on_bad_image=c.on_bad_image, data_dir=c.data_dir)
            self._data_iters[stage] = iter(ds.batch(c.n_critic, drop_remainder=True).prefetch(2))
        return self._data_iters[stage]

    def images(self, arch, num, stage, seed):
        """uint8 images of one architecture from the supernet (BN in inference mode)."""
        if stage not in self._sample_fn:  # split across the replicas, gathered
            self._sample_fn[stage] = distribute.ReplicaSplit(
                self.strategy, lambda z, a: training.to_uint8(
                    self.generator(z, a, stage=stage, training=False)))
        arch = self._padded([arch])[0]
        out = []
        for start in range(0, num, self.config.eval_batch_size):
            n = min(self.config.eval_batch_size, num - start)
            z = tf.random.stateless_normal([n, self.config.latent_dim], [seed, start])
            out.append(self._sample_fn[stage](z, arch))
        return tf.concat(out, 0)

    def reward(self, arch, stage):
        seed = int(self.reward_rng.uniform_full_int([], tf.int64)) % (2 ** 31)
        value = float(self.reward_fn(self, arch, stage, seed))
        if not np.isfinite(value):
            raise _Diverged(f"the reward of architecture {ss.Arch.from_list(arch)} is {value}")
        return value

    # -- phases -----------------------------------------------------------------
    def train_shared(self, progress):
        """Shared GAN training for the rest of this iteration; True when a reset fires."""
        c = self.config
        stage = self.stage
        data = self._data(stage)
        total = c.gen_iters_per_search_iter
        while int(self.phase_step) < total:
            sample = self.sample(c.n_critic)
            out = self.trainer.train_iteration(next(data), self._padded(sample.archs), stage)
            if not bool(out["finite"] & self._models_finite()):
                raise _Diverged(f"the shared GAN losses or weights are NaN/Inf at shared step "
                                f"{int(self.phase_step) + 1}")
            self.phase_step.assign_add(1)
            step = int(self.phase_step)
            self.d_window.push(out["d_losses"])
            self.g_window.push(out["g_loss"])
            if step % c.log_every == 0 or step == total:
                record = {"stage": stage, "shared_step": step,
                          "d_loss": float(tf.reduce_mean(out["d_losses"])),
                          "g_loss": float(out["g_loss"])}
                self.log.log({"iteration": int(self.iteration), **record})
                self.log.scalars(self._global_step(), {"shared/d_loss": record["d_loss"],
                                                       "shared/g_loss": record["g_loss"]})
                if progress:
                    self.log.progress(self._global_step(), self._total_steps(),
                                      stage=stage, d_loss=record["d_loss"],
                                      g_loss=record["g_loss"])
            if c.dynamic_reset and self.g_window.full and self.d_window.full:
                g_stat = self.g_window.statistic(c.reset_statistic)
                d_stat = self.d_window.statistic(c.reset_statistic)
                if g_stat < c.reset_threshold or d_stat < c.reset_threshold:
                    event = {"event": "dynamic_reset", "stage": stage, "shared_step": step,
                             f"g_loss_{c.reset_statistic}": g_stat,
                             f"d_loss_{c.reset_statistic}": d_stat}
                    self._event(event)
                    self._hist_append("resets", {"iteration": int(self.iteration),
                                                 "shared_step": step})
                    self.log.scalars(self._global_step(), {"shared/reset": 1.0})
                    self.g_window.clear()
                    self.d_window.clear()
                    self.pending_reset.assign(True)
                    return
            saved = bool(c.save_every and step % c.save_every == 0)
            if saved:
                self.save()
            self._stop_if_requested(saved)

    def train_controller(self):
        c = self.config
        stage = self.stage
        level = self._level(stage)
        sampler, reinforce = self.samplers[level], self.reinforces[level]
        if reinforce is not None and c.ctrl_baseline == "iteration" and int(self.phase_step) == 0:
            reinforce.reset_baseline()  # the official baseline lives one search iteration
        steps = []
        while int(self.phase_step) < c.ctrl_steps:
            prev_archs, prev_hidden = self._beam(stage)
            sample = sampler.sample(c.ctrl_sample_batch, prev_archs=prev_archs,
                                    prev_hidden=prev_hidden)
            rewards = [self.reward(a, stage) for a in sample.archs.numpy().tolist()]
            record = {"stage": stage, "ctrl_step": int(self.phase_step) + 1,
                      "reward": float(np.mean(rewards))}
            if reinforce is not None:
                stats = reinforce.update(sampler, sample, tf.constant(rewards, tf.float32))
                record.update({k: float(v) for k, v in stats.items()})
            record["archs"] = [str(ss.Arch.from_list(a)) for a in sample.archs.numpy().tolist()]
            self.log.log({"iteration": int(self.iteration), **record})
            self.log.scalars(self._ctrl_global_step(),
                             {f"controller/{k}": v for k, v in record.items()
                              if isinstance(v, float)})
            self.phase_step.assign_add(1)
            steps.append(record)
            self._stop_if_requested()
        if steps:  # what a user watches converge; every step is in the JSONL and TensorBoard
            last = steps[-1]
            summary = f"reward {np.mean([r['reward'] for r in steps]):.3f}"
            for key in ("baseline", "entropy_mean"):
                if key in last:
                    summary += f", {key.replace('_mean', '')} {last[key]:.3f}"
            logging.info("iteration %d (stage %d): controller %s; last sampled %s",
                         int(self.iteration), stage, summary, last["archs"][0])

    def top_k(self, stage):
        """Sample candidates, score them, keep the best ``topk`` (archs, hidden, rewards)."""
        c = self.config
        prev_archs, prev_hidden = self._beam(stage)
        sampler = self.samplers[self._level(stage)]
        sample = sampler.sample(c.num_candidates, prev_archs=prev_archs, prev_hidden=prev_hidden)
        archs = sample.archs.numpy().tolist()
        rewards = [self.reward(a, stage) for a in archs]
        order = sorted(range(len(archs)), key=lambda i: -rewards[i])[:c.topk]
        hidden = sample.hidden
        if hidden is None:
            hidden = (tf.zeros([len(archs), c.hid_size]), tf.zeros([len(archs), c.hid_size]))
        return ([archs[i] for i in order], (tf.gather(hidden[0], order),
                                            tf.gather(hidden[1], order)),
                [rewards[i] for i in order])

    def _set_beam(self, archs, hidden):
        padded = self._padded(archs)
        k = len(archs)
        self.beam_archs.assign(tf.tensor_scatter_nd_update(
            tf.zeros_like(self.beam_archs), [[i] for i in range(k)], padded))
        self.beam_h.assign(tf.tensor_scatter_nd_update(
            tf.zeros_like(self.beam_h), [[i] for i in range(k)], hidden[0]))
        self.beam_c.assign(tf.tensor_scatter_nd_update(
            tf.zeros_like(self.beam_c), [[i] for i in range(k)], hidden[1]))
        self.beam_len.assign(k)

    def _record_stage(self, stage, archs, rewards):
        entries = [{"arch": a, "reward": r} for a, r in zip(archs, rewards)]
        self._hist_append("stage_results", {"stage": stage, "iteration": int(self.iteration),
                                            "top_archs": entries})
        self._event({"event": "stage_top_k", "stage": stage, "rewards": rewards,
                     "mean_reward": float(np.mean(rewards)),
                     "archs": [str(ss.Arch.from_list(a)) for a in archs]})
        self.log.scalars(self._ctrl_global_step(),
                         {f"stage{stage}/mean_top_reward": float(np.mean(rewards))})
        grid = runlog.make_grid(self.images(archs[0], 64, stage, seed=stage).numpy(), 8)
        if self.chief:
            runlog.save_png(os.path.join(self.model_dir, "samples", f"stage{stage}.png"), grid)
        self.log.image(self._ctrl_global_step(), f"samples/stage{stage}", grid)

    def reinitialise_shared(self):
        c = self.config
        # Seeded by the iteration: a resumed search re-initialises to the same weights.
        with runlog.python_random_seed(c.seed * 100_003 + 1 + int(self.iteration)):
            fresh_g = models.SuperGenerator(c.gf_dim, c.latent_dim, c.bottom_width, c.num_cells)
            fresh_d = models.Discriminator(c.df_dim, c.num_cells)
        _reinitialise(self.generator, fresh_g, self.trainer.g_opt)
        _reinitialise(self.discriminator, fresh_d, self.trainer.d_opt)
        self._event({"event": "reinitialised_shared_gan"})

    def _global_step(self):
        return int(self.iteration) * self.config.gen_iters_per_search_iter + int(self.phase_step)

    def _total_steps(self):
        return self.config.max_search_iters * self.config.gen_iters_per_search_iter

    def _ctrl_global_step(self):
        return int(self.iteration) * max(1, self.config.ctrl_steps) + (
            int(self.phase_step) if int(self.phase) == 1 else 0)

    def save(self):
        return runlog.save_checkpoint(self.manager)

    def _stop_if_requested(self, saved=False):
        """At a safe point: if a signal asked to stop, checkpoint (unless just done) and stop."""
        if self._preemption is not None and self._preemption.requested:
            raise _Preempted(self.manager.latest_checkpoint if saved else self.save())

    def _position(self):
        return {"iteration": int(self.iteration), "phase": int(self.phase),
                "phase_step": int(self.phase_step)}

    def _recover(self, reason):
        """Roll back to the last good checkpoint after a NaN/Inf, or stop when out of retries."""
        c = self.config
        self._nan_restores += 1
        where = self._position()
        self._event({"event": "nonfinite", "reason": reason, **where,
                     "restores_so_far": self._nan_restores})
        if self._nan_restores > c.max_nan_restores:
            raise SearchError(
                f"{reason} at search iteration {where['iteration']} (phase {where['phase']}); "
                f"this is non-finite value number {self._nan_restores}, more than "
                f"--max_nan_restores={c.max_nan_restores}. The last good checkpoint is kept in "
                f"{self.manager.directory}. Lower --g_lr/--d_lr or check the data")
        # Not the data iterators: the retry trains on the next batches, not the same ones.
        path = runlog.restore_latest(self.manager, self._state_checkpoint, expect_partial=True)
        if path is None:
            raise SearchError(f"{reason} at search iteration {where['iteration']} before the "
                              f"first checkpoint in {self.manager.directory}; nothing to restore. "
                              "Lower --g_lr/--d_lr or check the data")
        self._event({"event": "restored_after_nonfinite", "checkpoint": path,
                     **self._position(), "restores_so_far": self._nan_restores,
                     "max_nan_restores": c.max_nan_restores})
        logging.warning("%s: restored %s (retry %d of --max_nan_restores=%d) with the next "
                        "batches of data; nothing else is changed", reason, path,
                        self._nan_restores, c.max_nan_restores)

    def restore(self):
        path = runlog.restore_latest(self.manager, self.checkpoint)
        if path:
            self._event({"event": "resumed", "checkpoint": path, "phase": int(self.phase),
                         "phase_step": int(self.phase_step)})
        return path

    # -- driver -----------------------------------------------------------------
    def run(self, progress=True) -> dict:
        """Search to the end and return the result; after a SIGTERM/SIGINT, checkpoint and
        return ``{"preempted": True, ...}`` instead (rerun to resume)."""
        c = self.config
        with runlog.Preemption() as preemption:
            self._preemption = preemption
            try:
                while int(self.iteration) < c.max_search_iters:
                    try:
                        self._run_iteration(progress)
                    except _Diverged as e:
                        self._recover(str(e))
            except _Preempted as stop:
                record = {"event": "preempted", "checkpoint": stop.args[0], **self._position()}
                self._event(record)
                logging.warning("stopped after signal %s at %s; checkpoint %s. Rerun the same "
                                "command to resume", preemption.signal, self._position(),
                                stop.args[0])
                return {"preempted": True, **record}
            finally:
                self._preemption = None
        return self.finish()

    def _grown(self, iteration) -> bool:
        return any(change["iteration"] == iteration
                   for change in self._hist().get("stage_changes", []))

    def _run_iteration(self, progress):
        """The rest of the current search iteration, from the checkpointed phase and step."""
        c = self.config
        it = int(self.iteration)
        stage = self.stage
        # A resume from the checkpoint written right after growing must not grow twice.
        if int(self.phase) == 0 and int(self.phase_step) == 0 and it > 0 \
                and c.mlas and it in c.grow_steps_list() and not self._grown(it):
            archs, hidden, rewards = self.top_k(stage - 1)
            self._record_stage(stage - 1, archs, rewards)
            self._set_beam(archs, hidden)
            self._event({"event": "grow", "stage": stage})
            self._hist_append("stage_changes", {"iteration": it, "stage": stage})
            self.save()
            self._stop_if_requested(saved=True)
        if int(self.phase) == 0:
            self.train_shared(progress)
            self.phase.assign(1)
            self.phase_step.assign(0)
            self.save()
            self._stop_if_requested(saved=True)
        if int(self.phase) == 1:
            self.train_controller()
            if bool(self.pending_reset):
                self.reinitialise_shared()
                self.pending_reset.assign(False)
            self.phase.assign(0)
            self.phase_step.assign(0)
            self.iteration.assign_add(1)
            self.save()
            self._stop_if_requested(saved=True)

    def finish(self) -> dict:
        stage = self.config.num_cells - 1
        hist = self._hist()
        done = [r for r in hist.get("stage_results", []) if r["stage"] == stage]
        if done:
            final = done[-1]["top_archs"]
        else:
            try:
                archs, _, rewards = self.top_k(stage)
            except _Diverged as e:
                raise SearchError(f"{e} in the final top-k of the search; the last checkpoint "
                                  f"is kept in {self.manager.directory}") from None
            self._record_stage(stage, archs, rewards)
            self.save()
            final = [{"arch": a, "reward": r} for a, r in zip(archs, rewards)]
            hist = self._hist()
        result = {
            "top_archs": [{"arch": list(map(int, e["arch"])), "reward": e["reward"],
                           "arch_str": str(ss.Arch.from_list(e["arch"]))} for e in final],
            "stage_results": hist.get("stage_results", []),
            "resets": hist.get("resets", []),
            "stage_changes": hist.get("stage_changes", []),
            "config": self.config.to_dict(),
        }
        if self.chief:
            runlog.write_json_atomic(os.path.join(self.model_dir, RESULT_FILE), result)
        self._event({"event": "finished", "best_arch": result["top_archs"][0]["arch_str"],
                     "best_reward": result["top_archs"][0]["reward"]})
        return result


def make_reward_fn(config: SearchConfig, model_dir: str, strategy=None):
    """Reward of an architecture: IS (or 1/FID) of its supernet samples (generated and
    classified split across the replicas of ``strategy``)."""
    from autogan_tf import training

    try:
        config.check_reward()
    except ValueError as e:
        raise SearchError(str(e)) from None
    evaluator = training.Evaluator(
        config.classifier, config.feature_layer, config.inception_path,
        config.fid_stats if config.reward == "fid" else None,
        config.dataset if config.reward == "fid" else None,
        config.resolution(config.num_cells - 1), config.data_dir, model_dir,
        config.eval_batch_size, strategy=strategy)

    def reward(search, arch, stage, seed):
        # Native resolution (8 / 16 / 32 px), as the official get_is: the
        # Inception graph resizes to 299 itself; a Keras classifier's extractor
        # resizes to the data set's resolution (its image_size) only.
        images = search.images(arch, config.reward_num_images, stage, seed)
        result = evaluator.score_images(images)
        if config.reward == "fid":
            return 1.0 / max(result["fid"], 1e-6)
        return result["is_mean"]

    return reward


def check_config(model_dir, config: SearchConfig):
    """Write ``search_config.json``, or refuse a ``model_dir`` holding another search.

    Raises:
      SearchError: the saved configuration is unreadable or differs in a
        `STRUCTURAL_KEYS` setting.
    """
    config_lib.check_run_dir_config(model_dir, CONFIG_FILE, config, STRUCTURAL_KEYS,
                                    SearchError, "search", "use a new --model_dir",
                                    write=distribute.is_chief())  # other workers only check


def run_search(config: SearchConfig, model_dir: str, reward_fn=None, progress=True,
               min_free_mb: float = 200.0, strategy=None, sync_bn: bool | None = None) -> dict:
    """Run (or resume) a search in ``model_dir``; returns the search result, or
    ``{"preempted": True, ...}`` when a SIGTERM/SIGINT stopped it (rerun to resume).

    ``strategy``/``sync_bn``: see `Search`; under a multi-worker strategy
    every worker calls this with the same arguments.
    """
    runlog.check_writable(distribute.worker_dir(model_dir), min_free_mb=min_free_mb)
    check_config(model_dir, config)
    if reward_fn is None:  # fails early on a missing classifier
        reward_fn = make_reward_fn(config, model_dir, strategy)
    search = Search(config, model_dir, reward_fn, strategy=strategy, sync_bn=sync_bn)
    search.restore()
    t0 = time.time()
    result = search.run(progress=progress)
    search.log.log({"event": "wall_time", "seconds": time.time() - t0})
    search.log.close()
    distribute.cleanup_worker_dir(model_dir)
    return {**result, "chief": search.chief}
