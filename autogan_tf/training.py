"""Training a derived architecture from scratch (the paper's final step).

`train(config, model_dir)` runs the whole job: it refuses a ``--model_dir``
of another configuration, resumes from the latest complete checkpoint, logs
to ``metrics.jsonl`` and TensorBoard, evaluates the EMA generator
periodically (keeping the best-FID checkpoint beside the latest), writes
sample grids, and checkpoints on SIGTERM before exiting.

The checkpoint holds the data iterator's position and the step of the last
evaluation as well as the models and optimizers, and the initial weights are
drawn from ``seed``: a run resumed after ``kill -9`` repeats at most one
``save_every`` interval, sees the same batches as an uninterrupted run, and
finishes an evaluation that the crash (or a signal) interrupted. A NaN/Inf
loss restores the last good checkpoint and continues with the next batches,
at most ``max_nan_restores`` times.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import tensorflow as tf
from absl import logging

from autogan_tf import (checkpointing, conditional, data, distribute, errors, gan_trainer, lifecycle, models,
                        rundir, runlog, sampling, seeds)
from autogan_tf.config import IS_SPLITS, TrainConfig
from autogan_tf.images import make_grid, save_png
from autogan_tf.metrics import evaluator as evaluator_lib
from autogan_tf.metrics import streaming

# Keys that must match between a run and the --model_dir it resumes from.
STRUCTURAL_KEYS = ("arch", "gf_dim", "df_dim", "d_minibatch_std", "latent_dim",
                   "bottom_width", "conditional", "num_classes")


def check_model_dir_config(model_dir: str, config: TrainConfig, structural=STRUCTURAL_KEYS,
                           write: bool | None = None):
    """Write the run's configuration into ``model_dir``, or verify that the one saved there
    describes the same model (`rundir.check_config`).

    Args:
      model_dir: the run directory.
      config: the configuration of the run about to start or resume.
      structural: the keys that must match the saved ones.
      write: False only verifies (other workers of a multi-worker job never
        write into ``model_dir``); None writes on the chief.

    Raises:
      errors.RunUserError: the saved configuration is unreadable or differs.
    """
    rundir.check_config(model_dir, rundir.TRAIN_CONFIG, config, structural, "run",
                        write=distribute.is_chief() if write is None else write)


def build_models(config: TrainConfig, sync_bn: bool = False):
    """The derived generator of ``config.arch`` and its discriminator.

    Args:
      config: the `config.TrainConfig` giving the architecture and the widths.
      sync_bn: normalise the generator's batch norm over the global batch of all replicas.

    Returns:
      ``(g, d)``: a `models.DerivedGenerator` and a `models.Discriminator` with as many cells.
    """
    num_classes = conditional.model_classes(config)
    g = models.DerivedGenerator(config.arch, config.gf_dim, config.latent_dim,
                                config.bottom_width, sync_bn=sync_bn, num_classes=num_classes)
    d = models.Discriminator(config.df_dim, num_cells=g.num_cells,
                             minibatch_std=config.d_minibatch_std, num_classes=num_classes)
    return g, d


def make_trainer(config: TrainConfig, g, d, strategy=None):
    """The `gan_trainer.GANTrainer` of ``config`` for ``g`` and ``d``.

    Args:
      config: the `config.TrainConfig` giving the optimiser, augmentation, EMA, precision and
        seed settings; with ``lr_decay`` the learning rates decay linearly over ``max_iters``.
      g: the generator to train.
      d: the discriminator to train.
      strategy: the `tf.distribute` strategy the trainer builds its variables under
        (None: the current one).

    Returns:
      The trainer.
    """
    return gan_trainer.GANTrainer(
        g, d, g_lr=config.g_lr, d_lr=config.d_lr, beta1=config.beta1, beta2=config.beta2,
        n_critic=config.n_critic, g_batch_size=config.g_batch_size,
        lr_decay_iters=config.max_iters if config.lr_decay else None,
        ema_decay=config.ema_decay, ema_warmup=config.ema_warmup, seed=config.seed,
        jit_compile=config.jit_compile,
        precision=config.precision, strategy=strategy, augment=config.augment)


def make_evaluator(config: TrainConfig, model_dir: str, strategy=None):
    """The run's `metrics.evaluator.Evaluator`, or None when the run does not evaluate.

    Built before training, so an unusable classifier or statistics file fails at once.

    Args:
      config: the `config.TrainConfig`; evaluation is off when ``eval_every`` or
        ``eval_num_samples`` is 0.
      model_dir: the run directory, where reference statistics computed from the data set
        are cached.
      strategy: the `tf.distribute` strategy that generation and classification run under.
    """
    if not (config.eval_every and config.eval_num_samples):
        return None
    return evaluator_lib.Evaluator(
        config.classifier, config.feature_layer, config.inception_path, config.fid_stats,
        config.dataset, config.image_size, config.data_dir, model_dir, config.eval_batch_size,
        strategy=strategy)


def _real_batches(config: TrainConfig):
    """An iterator of [n_critic, batch, H, W, 3] batches; checkpoint it to resume its order."""
    return data.critic_batches(config, config.image_size,
                               seeds.integer(config.seed, seeds.TRAINING_DATA),
                               with_labels=config.conditional)


class TrainingRun(lifecycle.LongRun):
    """One training job: its parts and its steps (`lifecycle.LongRun` drives it).

    Builds the models, the trainer, the checkpoints (with the data iterator,
    the best FID and the step of the last evaluation), the log and the evaluator
    (so an unusable classifier fails before any training).

    Args:
      config: the run's `config.TrainConfig`.
      model_dir: the run directory.
      strategy: the `tf.distribute` strategy (None: the current one).
      sync_bn: normalise G's batch norm over the global batch; None does so whenever the
        strategy has several replicas.
      progress: print a progress line at each logging step.
    """

    def __init__(self, config: TrainConfig, model_dir: str, strategy=None, sync_bn=None,
                 progress: bool = True):
        self.config = config
        self.progress = progress
        strategy = strategy or tf.distribute.get_strategy()
        with seeds.python_random(config.seed, seeds.GAN_INIT), strategy.scope():
            if sync_bn is None:
                sync_bn = strategy.num_replicas_in_sync > 1
            g, d = build_models(config, sync_bn=sync_bn)
        self.trainer = make_trainer(config, g, d, strategy)
        self.best_fid = tf.Variable(np.inf, dtype=tf.float64, name="best_fid")
        self.evaluated = tf.Variable(0, dtype=tf.int64, name="evaluated_step")
        state = dict(self.trainer.checkpoint_items(), best_fid=self.best_fid,
                     evaluated_step=self.evaluated)
        self.batches = _real_batches(config)  # before the restore, which sets its position
        checkpoints = checkpointing.RunCheckpoints(state, {"data": self.batches}, model_dir,
                                                   max_to_keep=config.keep_checkpoints,
                                                   fresh_data=self._fresh_batches)
        super().__init__(model_dir, checkpoints, config.max_nan_restores,
                         runlog.RunLog(model_dir, name=rundir.TRAIN_LOG,
                                       is_chief=distribute.is_chief()), strategy)
        self.best = checkpoints.manager_for(rundir.BEST, max_to_keep=1)
        self.models_finite = lifecycle.make_finite_check(g, d)
        self.evaluator = make_evaluator(config, model_dir, strategy)
        self.grid_seed = seeds.integer(config.seed, seeds.SAMPLE_GRID)
        self.last = {}

    def _fresh_batches(self) -> dict:
        """New real batches from the start (a checkpoint's saved position did not fit)."""
        self.batches = _real_batches(self.config)
        return {"data": self.batches}

    @property
    def step(self) -> int:
        """Generator iterations done (the trainer's count, restored with its checkpoint)."""
        return self.trainer.iterations

    def position(self) -> dict:
        """``{"step": generator iterations done}``."""
        return {"step": self.step}

    def advance(self):
        """Train to ``max_iters``, finishing first an evaluation a previous run left undone.

        Raises:
          lifecycle.Diverged: a loss or a weight became NaN/Inf.
          lifecycle.Preempted: a signal stopped the run (after checkpointing).
        """
        step = self.step
        t0, step0 = time.time(), step
        if self.evaluation_due(step):  # a crash or a signal interrupted this evaluation
            logging.info("evaluating step %d, which the previous run did not finish", step)
            self.evaluate(step)
        while step < self.config.max_iters:
            reals, labels = data.split_labels(next(self.batches))
            out = self.trainer.train_iteration(reals, labels=labels)
            if not bool(out["finite"] & self.models_finite()):
                raise lifecycle.Diverged("the losses or weights are NaN/Inf")
            step += 1
            self.log_step(step, out, (step - step0) / max(time.time() - t0, 1e-9))
            self.checkpoint(step)
            if self.evaluation_due(step):
                self.evaluate(step)

    def finish(self) -> dict:
        """The last logged values with ``step``, ``model_dir`` and ``preempted`` (False)."""
        return {**self.last, "step": self.step, "model_dir": self.model_dir,
                "preempted": False}

    def _preempted(self, checkpoint, signal) -> dict:
        return {**self.last, "model_dir": self.model_dir,
                **super()._preempted(checkpoint, signal)}

    def log_step(self, step: int, out: dict, iters_per_sec: float):
        """Every ``log_every`` steps (and at the last): losses and rates to the log.

        Args:
          step: the generator iteration just finished.
          out: what `gan_trainer.GANTrainer.train_iteration` returned (``d_losses``, ``g_loss``).
          iters_per_sec: the rate since the run (re)started.
        """
        c = self.config
        if step % c.log_every and step != c.max_iters:
            return
        self.last = {"step": step, "d_loss": float(tf.reduce_mean(out["d_losses"])),
                     "g_loss": float(out["g_loss"]), **self.trainer.learning_rates(),
                     "iters_per_sec": iters_per_sec}
        self.log.log(self.last)
        self.log.scalars(step, {k: v for k, v in self.last.items() if k != "step"})
        if self.progress:
            self.log.progress(step, c.max_iters, d_loss=self.last["d_loss"],
                                  g_loss=self.last["g_loss"])

    def checkpoint(self, step: int):
        """Save when due, then stop here if a signal asked to (`lifecycle.LongRun.safe_point`).

        Args:
          step: the generator iteration just finished.
        """
        c = self.config
        saved = None
        if (c.save_every and step % c.save_every == 0) or step == c.max_iters:
            saved = self.save(step)
        self.safe_point(saved)  # before evaluating: a preemption notice is short

    def save(self, number=None) -> str:
        """Checkpoint everything, numbered by the step."""
        return super().save(self.step if number is None else number)

    def evaluation_due(self, step: int) -> bool:
        """At every ``eval_every``-th step and the last, unless already evaluated.

        Args:
          step: the generator iteration just finished.
        """
        c = self.config
        return (self.evaluator is not None and step > 0 and int(self.evaluated) < step
                and (step % c.eval_every == 0 or step == c.max_iters))

    def evaluate(self, step: int):
        """IS/FID of the EMA generator; keeps the best-FID checkpoint, then checkpoints
        (recording that this step is evaluated) and writes a sample grid.

        Args:
          step: the generator iteration being evaluated.
        """
        generator = self.trainer.ema_generator
        scores = self.evaluator(generator, self.config.eval_num_samples, seed=self.config.seed)
        record = {"step": step, **scores}
        self.log.log(record)
        self.log.scalars(step, {k: v for k, v in scores.items()
                                    if isinstance(v, (int, float)) and v is not None})
        self.evaluated.assign(step)
        fid = scores.get("fid")
        if fid is not None and fid < float(self.best_fid):
            self.best_fid.assign(fid)
            checkpointing.save_checkpoint(self.best, checkpoint_number=step)
        self.save(step)  # records the evaluation
        self.last.update(record)
        if self.chief:
            grid = make_grid(sampling.generate(generator, 64, self.grid_seed), 8)
            save_png(os.path.join(self.model_dir, rundir.SAMPLES, f"step_{step:07d}.png"), grid)
            self.log.image(step, "samples", grid)


def train(config: TrainConfig, model_dir: str, progress: bool = True,
          min_free_mb: float = 200.0, strategy=None, sync_bn: bool | None = None) -> dict:
    """Train ``config.arch`` in ``model_dir`` (resuming if it holds a checkpoint).

    Args:
      config: the `config.TrainConfig`.
      model_dir: checkpoints (latest and best FID), ``metrics.jsonl``,
        TensorBoard logs and sample grids go here (only the chief writes).
      progress: print a progress line.
      min_free_mb: refuse to start with less free disk space.
      strategy: a `tf.distribute` strategy (None: one device). Under a
        multi-worker strategy every worker calls this with the same arguments.
      sync_bn: normalise G's batch norm over the global batch (None: whenever
        there are several replicas), so the run computes what one device would
        (see `gan_trainer.GANTrainer`); False keeps per-replica statistics.

    Returns:
      The last logged values with ``step``, ``model_dir``, ``chief`` and
      ``preempted`` (True when a SIGTERM/SIGINT stopped the run after
      checkpointing: rerun to resume).

    Raises:
      errors.RunUserError: another configuration in ``model_dir``.
      errors.RunError: divergence beyond ``max_nan_restores``.
    """
    return lifecycle.start(lambda: TrainingRun(config, model_dir, strategy, sync_bn, progress),
                           config, model_dir, check_model_dir_config, min_free_mb)


def load_config(model_dir: str) -> TrainConfig:
    """The `TrainConfig` a training run saved in ``model_dir`` (older runs' files load too).

    Raises:
      errors.RunUserError: ``model_dir`` holds no ``config.json``.
    """
    path = os.path.join(model_dir, rundir.TRAIN_CONFIG)
    if not os.path.exists(path):
        raise errors.RunUserError(f"--model_dir={model_dir} has no {rundir.TRAIN_CONFIG}: not "
                                  "a training run")
    return TrainConfig.from_dict(rundir.read_config(model_dir, rundir.TRAIN_CONFIG,
                                                    "training run"))


def restore_generator(model_dir: str, which: str = "latest", ema: bool = True):
    """The trained generator of a run.

    Args:
      model_dir: a training run's directory.
      which: "latest" or "best" (the best-FID checkpoint).
      ema: the moving average of the weights (the paper's choice) or the raw weights.

    Returns:
      ``(generator, config, checkpoint_path)``.

    Raises:
      errors.RunUserError: not a training run, or no such checkpoint.
    """
    config = load_config(model_dir)
    g = models.DerivedGenerator(config.arch, config.gf_dim, config.latent_dim,
                                config.bottom_width, num_classes=conditional.model_classes(config))
    directory = os.path.join(model_dir, rundir.CHECKPOINTS if which == "latest" else rundir.BEST)
    items = {"ema_generator" if ema else "generator": g}
    ckpt = tf.train.Checkpoint(**items)
    manager = tf.train.CheckpointManager(ckpt, directory, max_to_keep=None)
    path = checkpointing.restore_latest(manager, ckpt, expect_partial=True)
    if path is None:
        raise errors.RunUserError(f"no {which} checkpoint in --model_dir={model_dir} ({directory})")
    return g, config, path


def evaluate_run(model_dir: str, which: str = "latest", ema: bool = True,
                 num_samples: int = 50_000, batch_size: int = 100, seed: int = 0,
                 classifier=None, feature_layer=None, inception_path=None, fid_stats=None,
                 output=None, strategy=None, intra_fid: bool = False) -> dict:
    """Inception Score and FID of a training run's generator (``autogan-evaluate``).

    Args:
      model_dir: the run directory (``autogan-train --model_dir``).
      which, ema: the checkpoint ("latest" or "best") and its weights (EMA or raw);
        see `restore_generator`.
      num_samples, batch_size, seed: images generated, per batch, from stateless noise
        of ``seed`` (the same images however many replicas share the work).
      classifier, feature_layer, inception_path, fid_stats: the scoring network and
        reference statistics; None takes the run's own. Without statistics of its own
        the run's cached ``fid_stats.npz`` is used when the classifier is the run's
        (else they are computed from the run's data set).
      output: where to write the result as JSON (default ``model_dir/eval_<which>.json``;
        only the chief of a multi-worker job writes).
      strategy: a `tf.distribute` strategy to split sampling and features over.
      intra_fid: also intra-FID (a conditional run only): ``num_samples / classes`` images
        asked for each class against that class's real training images
        (`metrics.evaluator.Evaluator.intra_fid`).

    Returns:
      The scores (``is_mean``, ``is_std``, ``fid``, ``num_samples``, ``classifier``, and for
      a conditional run ``class_accuracy`` when the classifier has its classes, ``intra_fid``
      and ``intra_fid_per_class`` when asked) with ``checkpoint``, ``generator``
      ("ema"/"raw"), ``seed``, ``arch`` and ``replicas``.

    Raises:
      errors.UserError: ``num_samples`` is below `IS_SPLITS`; ``intra_fid`` of an
        unconditional run.
      errors.RunUserError: not a training run, or no such checkpoint.
    """
    if num_samples < IS_SPLITS:
        raise errors.UserError(f"--num_samples must be at least {IS_SPLITS} "
                               f"({IS_SPLITS} IS splits)")
    generator, config, checkpoint = restore_generator(model_dir, which, ema=ema)
    if intra_fid and not generator.num_classes:
        raise errors.UserError(f"--intra_fid: --model_dir={model_dir} holds an unconditional "
                               "generator; intra-FID scores class-conditional ones")
    classifier = classifier or config.classifier
    fid_stats = fid_stats or config.fid_stats
    cached = os.path.join(model_dir, rundir.FID_STATS)
    if not fid_stats and os.path.exists(cached) and classifier == config.classifier:
        fid_stats = cached
    strategy = strategy or tf.distribute.get_strategy()
    evaluator = evaluator_lib.Evaluator(classifier, feature_layer or config.feature_layer,
                          inception_path or config.inception_path, fid_stats, config.dataset,
                          config.image_size, config.data_dir, model_dir, batch_size,
                          strategy=strategy)
    result = evaluator(generator, num_samples, seed=seed)
    if intra_fid:
        references = streaming.class_statistics(
            config.dataset, evaluator.split_extractor, generator.num_classes,
            batch_size=batch_size, image_size=config.image_size, data_dir=config.data_dir)
        result.update(evaluator.intra_fid(generator, num_samples // generator.num_classes,
                                          references, seed=seed))
    result.update({"checkpoint": checkpoint, "generator": "ema" if ema else "raw",
                   "seed": seed, "arch": config.arch,
                   "replicas": strategy.num_replicas_in_sync})
    if distribute.is_chief():  # the other workers computed the same numbers
        with open(output or os.path.join(model_dir, f"eval_{which}.json"), "w",
                  encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    return result
