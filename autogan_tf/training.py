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

from autogan_tf import config as config_lib
from autogan_tf import distribute, gan_trainer, models, runlog
from autogan_tf.config import TrainConfig  # noqa: F401 - importable from here, as before

CONFIG_FILE = "config.json"
# Keys that must match between a run and the --model_dir it resumes from.
STRUCTURAL_KEYS = ("arch", "gf_dim", "df_dim", "latent_dim", "bottom_width")


class TrainingError(RuntimeError):
    """A run that cannot continue (diverged, bad model_dir, ...)."""


def check_model_dir_config(model_dir: str, config: TrainConfig, structural=STRUCTURAL_KEYS,
                           write: bool | None = None):
    """Write config.json, or verify that an existing one describes the same model.

    Args:
      model_dir: the run directory.
      config: the configuration of the run about to start or resume.
      structural: the keys that must match the saved ones.
      write: False only verifies (other workers of a multi-worker job never
        write into ``model_dir``); None writes on the chief.

    Raises:
      TrainingError: the saved configuration is unreadable or differs.
    """
    config_lib.check_run_dir_config(
        model_dir, CONFIG_FILE, config, structural, TrainingError, "run",
        "use a new --model_dir or the same flags",
        write=distribute.is_chief() if write is None else write)


def build_models(config: TrainConfig, sync_bn: bool = False):
    g = models.DerivedGenerator(config.arch, config.gf_dim, config.latent_dim,
                                config.bottom_width, sync_bn=sync_bn)
    d = models.Discriminator(config.df_dim, num_cells=g.num_cells)
    return g, d


def make_trainer(config: TrainConfig, g, d, strategy=None):
    return gan_trainer.GANTrainer(
        g, d, g_lr=config.g_lr, d_lr=config.d_lr, beta1=config.beta1, beta2=config.beta2,
        n_critic=config.n_critic, g_batch_size=config.g_batch_size,
        lr_decay_iters=config.max_iters if config.lr_decay else None,
        ema_decay=config.ema_decay, ema_warmup=config.ema_warmup, seed=config.seed,
        jit_compile=config.jit_compile,
        precision=config.precision, strategy=strategy)


def make_finite_check(*models):
    """A compiled ``() -> bool tensor``: every float variable of ``models`` is finite.

    Finite losses do not prove a finite model: in a compiled step a NaN that
    reaches a ReLU can come out as 0, so a generator whose output is NaN (and a
    discriminator poisoned by its gradients) can leave the hinge losses at
    d_loss = 2, g_loss = 0 (seen on CPU with oneDNN). Checked after every
    iteration, this catches such a divergence in the step it happens.
    """
    variables = [v for model in models for v in model.variables
                 if tf.as_dtype(v.dtype).is_floating]

    @tf.function
    def all_finite():
        return tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(v)) for v in variables]))

    return all_finite


def generate_uint8(generator, num, latent_dim, seed=None, batch_size=100):
    """Images as uint8 from a generator, batch by batch (stateless noise for a seed)."""
    outputs = []
    for start in range(0, num, batch_size):
        n = min(batch_size, num - start)
        if seed is None:
            z = tf.random.normal([n, latent_dim])
        else:
            z = tf.random.stateless_normal([n, latent_dim], [seed, start])
        outputs.append(to_uint8(generator(z, training=False)).numpy())
    return np.concatenate(outputs)


def to_uint8(images):
    """[-1, 1] floats to uint8 as the official code does (see `metrics.evaluate.to_uint8`)."""
    from autogan_tf.metrics import evaluate

    return evaluate.to_uint8(images)


class Evaluator:
    """IS/FID of a generator with one feature extractor and fixed reference statistics."""

    def __init__(self, classifier="inception", feature_layer=None, inception_path=None,
                 fid_stats=None, dataset=None, image_size=None, data_dir=None,
                 model_dir=None, batch_size=100, strategy=None):
        from autogan_tf.metrics import classifiers, scores

        self.extractor = classifiers.load_feature_extractor(
            classifier, feature_layer=feature_layer, inception_path=inception_path,
            image_size=image_size)
        # Generated images: sampling and features split across the replicas, gathered.
        self.strategy = strategy
        self.split_extractor = distribute.split_extractor(self.extractor, strategy)
        self._split_generators = {}
        self.batch_size = batch_size
        self.stats = None
        if fid_stats:
            self.stats = scores.load_statistics(fid_stats)
            where = f"--fid_stats={fid_stats}"
        elif dataset is not None and model_dir is not None:
            self.stats = self._reference_stats(dataset, image_size, data_dir, model_dir)
            where = os.path.join(model_dir, "fid_stats.npz")
        if self.stats is not None:
            from autogan_tf.metrics import evaluate

            # Now, not at the first evaluation hours later.
            evaluate.check_compatible(self.stats, self.extractor, where=where)

    def _reference_stats(self, dataset, image_size, data_dir, model_dir):
        """Statistics of the training data with this classifier, cached in model_dir.

        Computed with the unsplit extractor, so without collectives: in a
        multi-worker job one worker may find the chief's cache while another
        computes the same statistics. Only the chief writes the cache.
        """
        from autogan_tf.metrics import evaluate, scores

        path = os.path.join(model_dir, "fid_stats.npz")
        if os.path.exists(path):
            return scores.load_statistics(path)
        logging.info("computing FID reference statistics of %s with %s into %s",
                     dataset, self.extractor.name, path)
        stats = evaluate.dataset_statistics(dataset, self.extractor, image_size=image_size,
                                            data_dir=data_dir, batch_size=self.batch_size)
        if distribute.is_chief():
            scores.save_statistics(path, stats)
        return stats

    def score_images(self, images):
        """IS (and FID when statistics are set) of uint8 images already in memory."""
        from autogan_tf.metrics import evaluate

        images = tf.convert_to_tensor(images)
        position = {"start": 0}

        def take(n):
            start = position["start"]
            position["start"] += n
            return images[start:start + n]

        return evaluate.generator_scores(take, int(images.shape[0]), self.batch_size,
                                         self.split_extractor, fid_stats=self.stats)

    def __call__(self, generator, num_samples, seed=None):
        """IS/FID of ``num_samples`` images of ``generator``.

        With a seed the noise is stateless, so the scores do not depend on how
        many replicas share the work (up to float rounding of the convolutions).
        """
        from autogan_tf.metrics import evaluate

        key = id(generator)
        if key not in self._split_generators:
            self._split_generators[key] = distribute.ReplicaSplit(
                self.strategy or tf.distribute.get_strategy(),
                lambda z: to_uint8(generator(z, training=False)))
        sample = self._split_generators[key]
        counter = {"start": 0}

        def generate(n):
            start = counter["start"]
            counter["start"] += n
            if seed is None:
                z = tf.random.normal([n, generator.latent_dim])
            else:
                z = tf.random.stateless_normal([n, generator.latent_dim], [seed, start])
            return sample(z)

        return evaluate.generator_scores(generate, num_samples, self.batch_size,
                                         self.split_extractor, fid_stats=self.stats)


def _real_batches(config: TrainConfig):
    """An iterator of [n_critic, batch, H, W, 3] batches; checkpoint it to resume its order."""
    from autogan_tf import data

    ds = data.make_dataset(config.dataset, config.d_batch_size, config.image_size,
                           split="train", seed=config.seed,
                           on_bad_image=config.on_bad_image, data_dir=config.data_dir)
    return iter(ds.batch(config.n_critic, drop_remainder=True).prefetch(2))


def train(config: TrainConfig, model_dir: str, progress: bool = True,
          min_free_mb: float = 200.0, strategy=None, sync_bn: bool | None = None) -> dict:
    """Train ``config.arch`` in ``model_dir`` (resuming if it holds a checkpoint).

    ``strategy``: a `tf.distribute` strategy (None: one device). ``sync_bn``
    (None: whenever there are several replicas) normalises G's batch norm over
    the global batch, so the run computes what one device would (see
    `gan_trainer.GANTrainer`); False keeps per-replica statistics. Under a multi-worker
    strategy every worker calls this with the same arguments; only the chief
    writes into ``model_dir`` (see `distribute`).

    Returns the last logged values with ``step``; ``preempted`` is True when a
    SIGTERM/SIGINT stopped the run after checkpointing (rerun to resume).
    """
    chief = distribute.is_chief()
    runlog.check_writable(model_dir if chief else distribute.worker_dir(model_dir),
                          min_free_mb=min_free_mb)
    check_model_dir_config(model_dir, config)
    strategy = strategy or tf.distribute.get_strategy()
    with runlog.python_random_seed(config.seed), strategy.scope():
        if sync_bn is None:
            sync_bn = strategy.num_replicas_in_sync > 1
        g, d = build_models(config, sync_bn=sync_bn)
    trainer = make_trainer(config, g, d, strategy)
    best_fid = tf.Variable(np.inf, dtype=tf.float64, name="best_fid")
    evaluated = tf.Variable(0, dtype=tf.int64, name="evaluated_step")
    state = dict(trainer.checkpoint_items(), best_fid=best_fid, evaluated_step=evaluated)
    batches = _real_batches(config)  # before the restore, which sets its position
    ckpt = tf.train.Checkpoint(**state, data=batches)
    # What a NaN restore rolls back: everything but the data, so the retry sees new batches.
    state_ckpt = tf.train.Checkpoint(**state)
    manager = distribute.ChiefCheckpoints(ckpt, model_dir, "checkpoints",
                                          max_to_keep=config.keep_checkpoints)
    best_manager = distribute.ChiefCheckpoints(ckpt, model_dir, "best", max_to_keep=1)
    log = runlog.RunLog(model_dir, name="metrics", is_chief=chief)
    restored = runlog.restore_latest(manager, ckpt)
    start = int(trainer.iterations)
    if restored:
        logging.info("resumed from %s at step %d", restored, start)
        log.log({"event": "resumed", "step": start, "checkpoint": restored})

    evaluator = None
    if config.eval_every and config.eval_num_samples:
        # Fail before training if the classifier or statistics are unusable.
        evaluator = Evaluator(config.classifier, config.feature_layer, config.inception_path,
                              config.fid_stats, config.dataset, config.image_size,
                              config.data_dir, model_dir, config.eval_batch_size,
                              strategy=strategy)

    fixed_z = tf.random.stateless_normal([64, config.latent_dim], [config.seed, 7])
    models_finite = make_finite_check(g, d)
    nan_restores = 0
    step = start
    last = {}
    t0, step0 = time.time(), step

    def evaluation_due(step):
        return (evaluator is not None and step > 0 and int(evaluated) < step
                and (step % config.eval_every == 0 or step == config.max_iters))

    def evaluate(step):
        scores_ = evaluator(trainer.ema_generator, config.eval_num_samples, seed=config.seed)
        record = {"step": step, **scores_}
        log.log(record)
        log.scalars(step, {k: v for k, v in scores_.items()
                           if isinstance(v, (int, float)) and v is not None})
        evaluated.assign(step)
        fid = scores_.get("fid")
        if fid is not None and fid < float(best_fid):
            best_fid.assign(fid)
            runlog.save_checkpoint(best_manager, checkpoint_number=step)
        runlog.save_checkpoint(manager, checkpoint_number=step)  # records the evaluation
        last.update(record)
        if chief:
            grid = runlog.make_grid(
                to_uint8(trainer.ema_generator(fixed_z, training=False)).numpy(), 8)
            runlog.save_png(os.path.join(model_dir, "samples", f"step_{step:07d}.png"), grid)
            log.image(step, "samples", grid)

    preempted = False
    with runlog.Preemption() as preemption:
        if evaluation_due(step):  # a crash or a signal interrupted this evaluation
            logging.info("evaluating step %d, which the previous run did not finish", step)
            evaluate(step)
        while step < config.max_iters:
            out = trainer.train_iteration(next(batches))
            if not bool(out["finite"] & models_finite()):
                nan_restores += 1
                log.log({"event": "nonfinite_loss", "step": step + 1,
                         "restores_so_far": nan_restores})
                restored = None
                if nan_restores <= config.max_nan_restores:
                    restored = runlog.restore_latest(manager, state_ckpt, expect_partial=True)
                if restored is None:
                    raise TrainingError(
                        f"losses or weights became NaN/Inf at step {step + 1} ({nan_restores} "
                        f"time(s), "
                        f"--max_nan_restores={config.max_nan_restores}); the last good "
                        f"checkpoint is kept in {manager.directory}. Lower --g_lr/--d_lr or "
                        "check the data")
                step = int(trainer.iterations)
                log.log({"event": "restored_after_nonfinite", "step": step,
                         "checkpoint": restored, "restores_so_far": nan_restores,
                         "max_nan_restores": config.max_nan_restores})
                logging.warning("non-finite loss: restored %s (step %d, retry %d of "
                                "--max_nan_restores=%d) with the next batches of data; nothing "
                                "else is changed", restored, step, nan_restores,
                                config.max_nan_restores)
                continue
            step += 1
            if step % config.log_every == 0 or step == config.max_iters:
                last = {"step": step, "d_loss": float(tf.reduce_mean(out["d_losses"])),
                        "g_loss": float(out["g_loss"]), **trainer.learning_rates()}
                last["iters_per_sec"] = (step - step0) / max(time.time() - t0, 1e-9)
                log.log(last)
                log.scalars(step, {k: v for k, v in last.items() if k != "step"})
                if progress:
                    log.progress(step, config.max_iters, d_loss=last["d_loss"],
                                 g_loss=last["g_loss"])
            save_now = config.save_every and step % config.save_every == 0
            if save_now or step == config.max_iters or preemption.requested:
                runlog.save_checkpoint(manager, checkpoint_number=step)
            if preemption.requested:  # before evaluating: a preemption notice is short
                log.log({"event": "preempted", "step": step, "signal": preemption.signal})
                logging.warning("stopped at step %d after signal %s; checkpoint saved, rerun "
                                "the same command to resume", step, preemption.signal)
                preempted = True
                break
            if evaluation_due(step):
                evaluate(step)
    log.close()
    distribute.cleanup_worker_dir(model_dir)
    return {**last, "step": step, "model_dir": model_dir, "preempted": preempted,
            "chief": chief}


def load_config(model_dir: str) -> TrainConfig:
    path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.exists(path):
        raise TrainingError(f"--model_dir={model_dir} has no {CONFIG_FILE}: not a training run")
    with open(path, encoding="utf-8") as f:
        return TrainConfig.from_dict(json.load(f))


def restore_generator(model_dir: str, which: str = "latest", ema: bool = True):
    """The trained (EMA by default) generator of a run, and its config.

    ``which``: "latest" or "best" (the best-FID checkpoint).
    """
    config = load_config(model_dir)
    g = models.DerivedGenerator(config.arch, config.gf_dim, config.latent_dim,
                                config.bottom_width)
    directory = os.path.join(model_dir, "checkpoints" if which == "latest" else which)
    items = {"ema_generator" if ema else "generator": g}
    ckpt = tf.train.Checkpoint(**items)
    manager = tf.train.CheckpointManager(ckpt, directory, max_to_keep=None)
    path = runlog.restore_latest(manager, ckpt, expect_partial=True)
    if path is None:
        raise TrainingError(f"no {which} checkpoint in --model_dir={model_dir} ({directory})")
    return g, config, path
