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

import dataclasses
import json
import os
import time

import numpy as np
import tensorflow as tf
from absl import logging

from autogan_tf import distribute, errors, gan_trainer, models, runlog
from autogan_tf import search_space as ss
from autogan_tf.images import make_grid, save_png, to_uint8

CONFIG_FILE = "config.json"
IS_SPLITS = 10
# Keys that must match between a run and the --model_dir it resumes from.
STRUCTURAL_KEYS = ("arch", "gf_dim", "df_dim", "latent_dim", "bottom_width")


class TrainingError(errors.AutoganError, RuntimeError):
    """A training run that cannot go on.

    Raised as such when the run itself fails: losses or weights stayed NaN/Inf
    more often than ``--max_nan_restores`` allows. What the user can fix raises
    the subclass `TrainingUserError`.
    """


class TrainingUserError(TrainingError, errors.UserError):
    """A run that cannot start as asked: its ``--model_dir`` holds a run of another
    configuration, no run at all, or not the checkpoint asked for."""


@dataclasses.dataclass
class TrainConfig:
    arch: str = "autogan_cifar10_a"
    dataset: str = "cifar10"
    data_dir: str | None = None
    gf_dim: int = 256
    df_dim: int = 128
    latent_dim: int = 128
    bottom_width: int = 4
    g_batch_size: int = 128
    d_batch_size: int = 64
    n_critic: int = 5
    g_lr: float = 2e-4
    d_lr: float = 2e-4
    beta1: float = 0.0
    beta2: float = 0.9
    max_iters: int = 50_000
    lr_decay: bool = False
    ema_decay: float = 0.999
    ema_warmup: str = "bias_correction"
    log_every: int = 100
    save_every: int = 1000
    eval_every: int = 5000
    eval_num_samples: int = 50_000
    eval_batch_size: int = 100
    classifier: str = "inception"
    feature_layer: str | None = None
    inception_path: str | None = None
    fid_stats: str | None = None
    keep_checkpoints: int = 3
    max_nan_restores: int = 3
    seed: int = 0
    on_bad_image: str = "error"
    jit_compile: bool = False
    precision: str = "float32"

    def __post_init__(self):
        self.arch = str(ss.parse_arch(self.arch))
        models.check_precision(self.precision)
        if self.ema_warmup not in gan_trainer.EMA_WARMUPS:
            raise errors.UserError(f"--ema_warmup must be one of {gan_trainer.EMA_WARMUPS}, "
                                   f"got {self.ema_warmup!r}")
        positive = ("gf_dim", "df_dim", "latent_dim", "bottom_width", "g_batch_size",
                    "d_batch_size", "n_critic", "max_iters", "log_every", "keep_checkpoints",
                    "eval_batch_size")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise errors.UserError(f"--{name} must be a positive integer, got {value!r}")
        for name in ("save_every", "eval_every", "eval_num_samples", "max_nan_restores"):
            if getattr(self, name) < 0:
                raise errors.UserError(f"--{name} must be >= 0, got {getattr(self, name)}")
        for name in ("g_lr", "d_lr"):
            if not getattr(self, name) > 0:
                raise errors.UserError(f"--{name} must be > 0, got {getattr(self, name)}")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise errors.UserError(f"--{name} must be in [0, 1), got {getattr(self, name)}")
        if self.eval_every and self.eval_num_samples and self.eval_num_samples < IS_SPLITS:
            raise errors.UserError(f"--eval_num_samples={self.eval_num_samples} must be at least "
                                   f"{IS_SPLITS} (the Inception Score averages over {IS_SPLITS} "
                                   "splits), or 0 to skip evaluation")

    @property
    def image_size(self) -> int:
        return self.bottom_width * 2 ** ss.parse_arch(self.arch).num_cells

    def to_dict(self):
        return dataclasses.asdict(self)


def check_model_dir_config(model_dir: str, config: TrainConfig, structural=STRUCTURAL_KEYS,
                           write: bool | None = None):
    """Write config.json, or verify that an existing one describes the same model.

    ``write`` (default: on the chief) False only verifies: other workers of a
    multi-worker job never write into ``model_dir``.
    """
    path = os.path.join(model_dir, CONFIG_FILE)
    current = config.to_dict()
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as f:
                saved = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise TrainingUserError(f"{path} is unreadable ({e}); use a new --model_dir") from None
        diff = {k: (saved.get(k), current[k]) for k in structural if saved.get(k) != current[k]}
        if diff:
            pretty = ", ".join(f"{k}: saved {a!r} vs flag {b!r}" for k, (a, b) in diff.items())
            raise TrainingUserError(
                f"--model_dir={model_dir} holds a run of a different configuration ({pretty}); "
                "use a new --model_dir or the same flags")
    if distribute.is_chief() if write is None else write:
        runlog.write_json_atomic(path, current)


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
            grid = make_grid(
                to_uint8(trainer.ema_generator(fixed_z, training=False)).numpy(), 8)
            save_png(os.path.join(model_dir, "samples", f"step_{step:07d}.png"), grid)
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
        raise TrainingUserError(f"--model_dir={model_dir} has no {CONFIG_FILE}: not a training run")
    with open(path, encoding="utf-8") as f:
        saved = json.load(f)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in saved.items() if k in known})


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
        raise TrainingUserError(f"no {which} checkpoint in --model_dir={model_dir} ({directory})")
    return g, config, path


def evaluate_run(model_dir: str, which: str = "latest", ema: bool = True,
                 num_samples: int = 50_000, batch_size: int = 100, seed: int = 0,
                 classifier=None, feature_layer=None, inception_path=None, fid_stats=None,
                 output=None, strategy=None) -> dict:
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

    Returns:
      The scores (``is_mean``, ``is_std``, ``fid``, ``num_samples``, ``classifier``)
      with ``checkpoint``, ``generator`` ("ema"/"raw"), ``seed``, ``arch`` and ``replicas``.
    """
    if num_samples < IS_SPLITS:
        raise errors.UserError(f"--num_samples must be at least {IS_SPLITS} "
                               f"({IS_SPLITS} IS splits)")
    generator, config, checkpoint = restore_generator(model_dir, which, ema=ema)
    classifier = classifier or config.classifier
    fid_stats = fid_stats or config.fid_stats
    cached = os.path.join(model_dir, "fid_stats.npz")
    if not fid_stats and os.path.exists(cached) and classifier == config.classifier:
        fid_stats = cached
    strategy = strategy or tf.distribute.get_strategy()
    evaluator = Evaluator(classifier, feature_layer or config.feature_layer,
                          inception_path or config.inception_path, fid_stats, config.dataset,
                          config.image_size, config.data_dir, model_dir, batch_size,
                          strategy=strategy)
    result = evaluator(generator, num_samples, seed=seed)
    result.update({"checkpoint": checkpoint, "generator": "ema" if ema else "raw",
                   "seed": seed, "arch": config.arch,
                   "replicas": strategy.num_replicas_in_sync})
    if distribute.is_chief():  # the other workers computed the same numbers
        with open(output or os.path.join(model_dir, f"eval_{which}.json"), "w",
                  encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    return result
