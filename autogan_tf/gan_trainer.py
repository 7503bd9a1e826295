"""Adversarial training steps shared by the search (supernet) and final training.

One *generator iteration* is ``n_critic`` discriminator steps followed by one
generator step, compiled as one `tf.function` per stage. In the search the
architecture is an int tensor input (one per discriminator step), so the
compiled step serves every architecture without retracing.

Unused ops in the supernet. `tf.switch_case` gives the ops a step did not
select zero gradients, not None, and Adam would still move such weights by its
first moment and decay their second moment. ``unused_ops`` decides:

* ``"freeze"`` (default): a variable whose op the step did not use keeps its
  value, its Adam moments and its own Adam step count (`TorchAdam`), exactly
  as if it were not in the model for that step (what PyTorch >= 2 does with
  ``grad=None``).
* ``"momentum"``: plain Adam on the zero gradients (what the official code did
  under PyTorch 1.x, whose ``zero_grad`` zeroed gradients). With the paper's
  betas (0, 0.9) the weights then do not move (the first moment is the zero
  gradient) but their second moment decays, enlarging the next real update.

Differentiable augmentation (``augment``, `autogan_tf.augment`): with a policy, every
image D sees passes through its random transformations first, the real and the generated
halves of a D step with independent draws of the same family, and G's images in the G
step too, so G's gradient flows through the transformations. The variates of each D call
are drawn in cross-replica context from the trainer's `seeds.GAN_AUGMENT` stream, for
the global batch, as the noise is. With an empty policy nothing of this is in the graph.

Class-conditional models (both with ``num_classes``, `autogan_tf.conditional`): a D step
scores the real images with their own labels and the generated ones with the labels G was
asked for, drawn uniformly from the trainer's `seeds.GAN_LABELS` stream in cross-replica
context, for the global batch, as the noise is; the G step likewise.

The order of steps differs from the official loop only in phase: it runs a
generator step after discriminator steps 0, 5, 10, ...; we run it after steps
4, 9, 14, ... so that one compiled call is one whole generator iteration.
"""

from __future__ import annotations

import tensorflow as tf
from absl import logging

from autogan_tf import augment as augment_lib
from autogan_tf import config as config_lib
from autogan_tf import errors, losses, models, optimizers, seeds
from autogan_tf import search_space as ss
from autogan_tf.config import EMA_WARMUPS


def ema_decay_at(decay, step, warmup: str = "bias_correction"):
    """The decay the EMA applies at its ``step``-th update (``step`` >= 1).

    Args:
      decay: the configured decay ``d`` (``--ema_decay``, the paper's 0.999).
      step: how many updates have been made, this one included (a tensor or
        number; the generator's optimizer step count).
      warmup: ``"none"``: always ``d``, the official code's average, which
        starts at the initial weights: after ``t`` updates the initialisation
        still weighs ``d**t`` (0.74 after 300 updates at 0.999), so a short run
        exports a generator that is mostly random. ``"bias_correction"``: the
        average of the weights seen so far with Adam's bias correction,
        ``sum_i (1 - d) d**(t-i) w_i / (1 - d**t)``, computed in place as an
        update with the decay ``d (1 - d**(t-1)) / (1 - d**t)``: 0 at the first
        update (the average is the current weights), rising towards ``d``. The
        initial weights never count; the paper's average differs from it by the
        initial weights' share ``d**t``: 0.7 % after 5,000 updates at 0.999,
        below float32 rounding after about 17,000.

    Returns:
      The effective decay, a float64 tensor.
    """
    if warmup not in EMA_WARMUPS:
        raise errors.UserError(f"--ema_warmup must be one of {EMA_WARMUPS}, got {warmup!r}")
    decay = tf.constant(decay, tf.float64)
    if warmup == "none":
        return decay
    step = tf.cast(step, tf.float64)
    return decay * (1.0 - decay ** (step - 1.0)) / (1.0 - decay ** step)


def clone_generator(generator: models.DerivedGenerator) -> models.DerivedGenerator:
    """A generator of the same architecture and widths holding a copy of the weights.

    Args:
      generator: the generator to copy (its weights are read, not shared).

    Returns:
      A new `models.DerivedGenerator` (float32), e.g. the EMA copy.
    """
    copy = models.DerivedGenerator(generator.arch, generator.gf_dim, generator.latent_dim,
                                   generator.bottom_width, num_classes=generator.num_classes)
    copy.set_weights(generator.get_weights())
    return copy


def check_variable_ownership(generator, discriminator):
    """The G step and the D step train every trainable variable of G and D, each once.

    The supernet's G step trains the variables `models.SuperGenerator.variable_usage`
    lists by hand (to mask the ops a step did not use); a sublayer added to the supernet
    but not to that list would silently never train. The derived generator's G step and
    every D step train the models' own ``trainable_variables``. Checked when a trainer is
    built, as compare_gan checks its steps' variable lists.

    Args:
      generator: a `models.DerivedGenerator` or `models.SuperGenerator`.
      discriminator: the `models.Discriminator`.

    Raises:
      RuntimeError: a variable is missing from a step, trained twice, or trained by both.
    """
    if isinstance(generator, models.SuperGenerator):
        any_arch = tf.zeros([ss.vector_length(generator.num_cells)], tf.int32)
        g_step = [v for v, _ in generator.variable_usage(any_arch)]
    else:
        g_step = list(generator.trainable_variables)
    d_step = list(discriminator.trainable_variables)
    for name, step, model in (("G", g_step, generator), ("D", d_step, discriminator)):
        trained = [v.path for v in step]
        owned = {v.path for v in model.trainable_variables}
        missing, extra = sorted(owned - set(trained)), sorted(set(trained) - owned)
        twice = sorted({p for p in trained if trained.count(p) > 1})
        if missing or extra or twice:
            raise RuntimeError(f"the {name} step does not train {name}'s variables exactly "
                               f"once: missing {missing}, not {name}'s {extra}, twice {twice}")
    shared = {v.path for v in g_step} & {v.path for v in d_step}
    if shared:
        raise RuntimeError(f"G and D steps both train {sorted(shared)}")


class GANTrainer(tf.Module):
    """Owns the optimizers, the noise generator, the EMA copy and the compiled steps.

    ``precision``: None keeps the models' own; "float32" or "bfloat16" sets
    both models (`models.set_precision`: bfloat16 compute, float32 variables,
    gradients, optimizer state, losses and spectral-norm estimates).

    ``strategy``: a `tf.distribute.Strategy` whose scope the models were built
    in (None: the default strategy, one device). Batch sizes stay global: the
    noise (and the augmentation's variates) of the whole batch is drawn once in
    cross-replica context and every replica takes its slice of it and of the real
    batch, so a multi-replica step sees exactly the data, noise and augmentation of
    a one-device step. Each replica's
    loss is its local mean divided by the number of replicas; the optimizers
    sum the replicas' gradients, which gives the gradient of the global mean.
    Build the generator with ``sync_bn=True`` for batch norm over the global
    batch. Spectral norm needs nothing: every replica holds the same kernel
    and ``u`` and computes the same power iteration.

    Args:
      generator: a `models.DerivedGenerator`, or a `models.SuperGenerator` for the search
        (then every step takes architectures).
      discriminator: the `models.Discriminator`.
      g_lr: the generator's learning rate.
      d_lr: the discriminator's learning rate.
      beta1: Adam's beta_1 for both.
      beta2: Adam's beta_2 for both.
      n_critic: discriminator steps per generator iteration.
      g_batch_size: the generator step's global batch size.
      lr_decay_iters: generator iterations of linear decay to 0 (D decays over
        ``n_critic`` times as many steps); None keeps the rates constant.
      ema_decay: keep an EMA copy of the generator with this decay; None for none.
      ema_warmup: ``"bias_correction"`` or ``"none"`` (`ema_decay_at`).
      unused_ops: ``"freeze"`` or ``"momentum"`` (see the module docstring).
      seed: the run's seed; the noise is its `seeds.GAN_NOISE` stream, the augmentation's
        variates its `seeds.GAN_AUGMENT` stream.
      jit_compile: compile the steps with XLA.
      precision: None, ``"float32"`` or ``"bfloat16"`` (above).
      strategy: the `tf.distribute.Strategy` (above).
      augment: the differentiable augmentation of D's inputs, a ``--augment`` policy
        (``"translation,color,cutout"``; see the module docstring); empty: none.

    Raises:
      errors.UserError: ``g_batch_size`` not a multiple of the replicas.
      ValueError: a setting failing its `config` check, ``ema_decay`` given with a
        supernet generator, or G and D with different class counts.
    """

    def __init__(self, generator, discriminator, *, g_lr=2e-4, d_lr=2e-4, beta1=0.0,
                 beta2=0.9, n_critic=5, g_batch_size=128, lr_decay_iters=None,
                 ema_decay=None, ema_warmup="bias_correction", unused_ops="freeze", seed=0,
                 jit_compile=False, precision=None, strategy=None, augment=""):
        super().__init__(name="gan_trainer")
        self.strategy = strategy or tf.distribute.get_strategy()
        self.replicas = self.strategy.num_replicas_in_sync
        if g_batch_size % self.replicas:
            raise errors.UserError(f"--g_batch_size={g_batch_size} must be a multiple of the "
                                   f"{self.replicas} replicas")
        # The settings' own checks (`autogan_tf.config`), as when they come in a configuration.
        config_lib.check_values(n_critic=n_critic, g_batch_size=g_batch_size, unused_ops=unused_ops,
                            ema_warmup=ema_warmup, augment=augment)
        if ema_decay is not None:
            config_lib.check_values(ema_decay=ema_decay)
        if precision is not None:
            # Same variables, other compute dtype: see models.set_precision. The
            # EMA copy below stays float32: it is only read for evaluation.
            models.set_precision(generator, precision)
            models.set_precision(discriminator, precision)
        self.precision = getattr(generator, "precision", "float32")
        self.generator = generator
        self.discriminator = discriminator
        self.num_classes = generator.num_classes
        if discriminator.num_classes != self.num_classes:
            raise ValueError(f"the generator has {self.num_classes} classes, the discriminator "
                             f"{discriminator.num_classes}: a conditional GAN needs both")
        self.search = isinstance(generator, models.SuperGenerator)
        self.n_critic = n_critic
        self.g_batch_size = g_batch_size
        self.unused_ops = unused_ops
        self.augment = config_lib.augment_policy(augment)
        self.ema_decay = ema_decay
        self.ema_warmup = ema_warmup
        # XLA is off by default: on CPU its convolutions bypass oneDNN and the
        # derived 64/64 iteration ran at 0.76x the default's speed
        # (bench/bench_train.py --jit=false,true); worth trying on GPUs.
        self.jit_compile = jit_compile
        # Linear decay as the official LinearLrDecay: G over max_iters G steps,
        # D over max_iters * n_critic D steps.
        check_variable_ownership(generator, discriminator)
        with self.strategy.scope():
            self.g_opt = optimizers.make_adam(g_lr, beta1, beta2, lr_decay_iters,
                                              masked=self.search and unused_ops == "freeze",
                                              name="g_adam")
            self.d_opt = optimizers.make_adam(d_lr, beta1, beta2,
                                              lr_decay_iters and lr_decay_iters * n_critic,
                                              name="d_adam")
            # Build now, so a checkpoint restore finds every slot variable.
            self.g_opt.build(generator.trainable_variables)
            self.d_opt.build(discriminator.trainable_variables)
            self.noise = seeds.generator(seed, seeds.GAN_NOISE)
            self.augment_noise = (seeds.generator(seed, seeds.GAN_AUGMENT) if self.augment
                                  else None)
            self.label_noise = (seeds.generator(seed, seeds.GAN_LABELS) if self.num_classes
                                else None)
            self.ema_generator = None
            if ema_decay is not None:
                if self.search:
                    raise ValueError("an EMA of the supernet is not supported")
                self.ema_generator = clone_generator(generator)
        self._compiled = {}

    # -- pieces ---------------------------------------------------------------
    def generate(self, z, arch=None, stage=None, training=False, labels=None):
        """The generator's images for noise ``z`` (the supernet's for ``arch`` at ``stage``).

        Args:
          z: noise ``[batch, latent_dim]``.
          arch: an int architecture vector (search only; ignored otherwise).
          stage: the stage whose output is wanted (search only).
          training: batch norm in training mode.
          labels: int ``[batch]`` classes for a conditional generator; None otherwise.

        Returns:
          Images ``[batch, H, W, 3]`` in [-1, 1].
        """
        if self.search:
            return self.generator(z, arch, stage=stage, training=training, labels=labels)
        return self.generator(z, training=training, labels=labels)

    def _z(self, batch):
        return self.noise.normal([batch, self.generator.latent_dim])

    def _fake_labels(self, batch):
        """Classes asked of G for a global batch: uniform, from `seeds.GAN_LABELS` (None for
        an unconditional GAN)."""
        if not self.num_classes:
            return None
        return self.label_noise.uniform([batch], 0, self.num_classes, dtype=tf.int32)

    def _shard_labels(self, labels):
        return None if labels is None else self._shard(labels)

    def _shard(self, x):
        """This replica's slice of a global batch (all of it on one replica)."""
        if self.replicas == 1:
            return x
        size = tf.shape(x)[0] // self.replicas
        start = tf.distribute.get_replica_context().replica_id_in_sync_group * size
        return x[start:start + size]

    def _replica_loss(self, loss):
        """Local mean -> this replica's share of the global mean (see the class docstring)."""
        return loss if self.replicas == 1 else loss / self.replicas

    def _run(self, step, *args):
        """``step(*args)`` on every replica; the sum of their losses."""
        if self.replicas == 1:
            return step(*args)
        per_replica = self.strategy.run(lambda: step(*args))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    def _augment_variates(self, batch):
        """The augmentation's uniform variates of one D call of ``batch`` images (the global
        batch, drawn in cross-replica context; `augment.draw`)."""
        return augment_lib.draw(self.augment, batch, self.augment_noise.make_seeds(1)[:, 0])

    def _augmented(self, images, variates):
        """``images`` through the augmentation with this replica's rows of ``variates``
        (``images`` themselves when ``variates`` is None: augmentation off)."""
        if variates is None:
            return images
        return augment_lib.apply(images, self.augment,
                                 tf.nest.map_structure(self._shard, variates))

    def _d_step(self, real, z, arch, stage, real_labels=None, fake_labels=None,
                real_variates=None, fake_variates=None):
        real, z = self._shard(real), self._shard(z)
        real_labels, fake_labels = self._shard_labels(real_labels), self._shard_labels(fake_labels)
        fake = tf.stop_gradient(self.generate(z, arch, stage, training=True, labels=fake_labels))
        real = self._augmented(real, real_variates)
        fake = self._augmented(fake, fake_variates)
        variables = self.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            # Two training-mode passes, real then fake, as the official step: each
            # runs one spectral-norm power iteration (layers.SpectralNorm).
            real_logits = self.discriminator(real, stage=stage, training=True, labels=real_labels)
            fake_logits = self.discriminator(fake, stage=stage, training=True, labels=fake_labels)
            loss = self._replica_loss(
                losses.discriminator_hinge_loss(real_logits, fake_logits))
        grads = tape.gradient(loss, variables)
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        self.d_opt.apply_gradients(pairs)
        return loss

    def _g_step(self, z, arch, stage, labels=None, variates=None):
        labels = self._shard_labels(labels)
        if self.search:
            usage = self.generator.variable_usage(arch, stage)
            variables, masks = [v for v, _ in usage], [m for _, m in usage]
        else:
            variables, masks = self.generator.trainable_variables, None
        with tf.GradientTape() as tape:
            fake = self._augmented(self.generate(self._shard(z), arch, stage, training=True,
                                                 labels=labels), variates)
            # D in training mode, as the official G step: one more power iteration.
            loss = self._replica_loss(losses.generator_hinge_loss(
                self.discriminator(fake, stage=stage, training=True, labels=labels)))
        grads = tape.gradient(loss, variables)
        keep = [i for i, g in enumerate(grads) if g is not None]
        grads, variables = [grads[i] for i in keep], [variables[i] for i in keep]
        if isinstance(self.g_opt, optimizers.MaskedAdam):
            self.g_opt.apply_masked(grads, variables, [masks[i] for i in keep])
        else:
            self.g_opt.apply_gradients(zip(grads, variables))
        return loss

    def _update_ema(self):
        # Right after the G step, so the optimizer's step count is this update's number
        # (checkpointed with it: resuming and NaN roll-backs keep the schedule).
        decay = tf.cast(ema_decay_at(self.ema_decay, self.g_opt.iterations, self.ema_warmup),
                        tf.float32)
        for ema, live in zip(self.ema_generator.trainable_variables,
                             self.generator.trainable_variables):
            ema.assign(decay * ema + (1.0 - decay) * live)
        # BN statistics are not averaged (the official EMA covers parameters only).
        for ema, live in zip(self.ema_generator.non_trainable_variables,
                             self.generator.non_trainable_variables):
            ema.assign(live)

    def _critic_steps(self, reals, archs, stage, labels=None):
        """The ``n_critic`` D steps as one `tf.while_loop`: one copy of the step in the graph.

        An unrolled Python loop put ``n_critic`` copies of the D step (with its supernet
        forward) into the traced graph: tracing, graph optimisation and instantiation
        grow with its size (stage 2 of a width-8 supernet: 22,000 nodes, 44 s to the
        first result; as a loop 7,500 nodes, 22 s). ``parallel_iterations=1``: each
        step reads the weights and noise state the previous one wrote.

        Returns:
          The D losses ``[n_critic]``.
        """
        def body(i, losses):
            arch = None if archs is None else archs[i]
            batch = tf.shape(reals[i])[0]
            z = self._z(batch)  # global batch, cross-replica
            real_labels = None if labels is None else labels[i]
            fake_labels = self._fake_labels(batch)
            # Real and fake: independent draws of one family (`augment`).
            views = ((self._augment_variates(batch), self._augment_variates(batch))
                     if self.augment else ())
            loss = self._run(self._d_step, reals[i], z, arch, stage, real_labels, fake_labels,
                             *views)
            return i + 1, losses.write(i, tf.cast(loss, tf.float32))

        losses = tf.TensorArray(tf.float32, size=self.n_critic)
        _, losses = tf.while_loop(lambda i, _: i < self.n_critic, body, (0, losses),
                                  parallel_iterations=1)
        return losses.stack()

    def _iteration(self, reals, archs, stage, labels=None):
        d_losses = self._critic_steps(reals, archs, stage, labels)
        z = self._z(self.g_batch_size)
        fake_labels = self._fake_labels(self.g_batch_size)
        views = (self._augment_variates(self.g_batch_size),) if self.augment else ()
        g_loss = self._run(self._g_step, z, None if archs is None else archs[-1], stage,
                           fake_labels, *views)
        if self.ema_generator is not None:
            self._update_ema()
        finite = tf.reduce_all(tf.math.is_finite(d_losses)) & tf.math.is_finite(g_loss)
        return {"d_losses": d_losses, "g_loss": g_loss, "finite": finite}

    # -- public ---------------------------------------------------------------
    def train_iteration(self, reals, archs=None, stage=None, labels=None):
        """One generator iteration on ``reals`` ``[n_critic, batch, H, W, 3]``.

        ``archs``: int ``[n_critic, L]`` (search only): one architecture per D
        step; the G step uses the last. Returns tensors ``d_losses [n_critic]``,
        ``g_loss`` and ``finite`` (False if any loss was NaN/Inf).

        The compiled step is cached per ``(stage, archs is None)``: the first call of each
        traces it, later calls with other architectures reuse it.

        Args:
          reals: real images ``[n_critic, batch, H, W, 3]`` in [-1, 1] (global batches).
          archs: int ``[n_critic, L]`` architectures, required with a supernet; None otherwise.
          stage: the stage to train (search); None for a derived generator.
          labels: int ``[n_critic, batch]``, the real images' classes: required by a
            conditional GAN, refused otherwise.

        Returns:
          A dict with ``d_losses``, ``g_loss`` and ``finite``.

        Raises:
          ValueError: a supernet without ``archs``; labels missing or not wanted.
          errors.UserError: a real batch that is not a multiple of the replicas.
        """
        if self.search and archs is None:
            raise ValueError("the supernet needs an architecture per discriminator step")
        if (labels is None) == bool(self.num_classes):
            raise ValueError("a conditional GAN trains on labelled real images (labels "
                             "[n_critic, batch]); an unconditional one takes no labels")
        batch = reals.shape[1]
        if batch is not None and batch % self.replicas:
            raise errors.UserError(f"the discriminator batch ({batch}, --d_batch_size) must be a "
                                   f"multiple of the {self.replicas} replicas")
        key = (stage, archs is None)
        if key not in self._compiled:
            logging.info("compiling the training step%s (once; the first iteration is slow)",
                         "" if stage is None else f" of stage {stage}")
            # No AutoGraph: the step's control flow is explicit (`_critic_steps`), and
            # converting the code cost a quarter of the tracing time.
            self._compiled[key] = tf.function(
                lambda r, a, y: self._iteration(r, a, stage, y), jit_compile=self.jit_compile,
                autograph=False)
        if archs is not None:
            archs = tf.convert_to_tensor(archs, tf.int32)
        if labels is not None:
            labels = tf.convert_to_tensor(labels, tf.int32)
        return self._compiled[key](reals, archs, labels)

    @property
    def iterations(self):
        """Generator steps taken so far (checkpointed with the optimizer)."""
        return int(tf.convert_to_tensor(self.g_opt.iterations))

    def checkpoint_items(self):
        """Name -> trackable: G, D, both optimizers, the noise generator, the EMA copy, and the
        augmentation's and the asked classes' streams (if any), for the run's
        `tf.train.Checkpoint` (the names are the checkpoint format)."""
        items = {"generator": self.generator, "discriminator": self.discriminator,
                 "g_opt": self.g_opt, "d_opt": self.d_opt, "noise": self.noise}
        if self.augment_noise is not None:
            items["augment_noise"] = self.augment_noise
        if self.label_noise is not None:
            items["label_noise"] = self.label_noise
        if self.ema_generator is not None:
            items["ema_generator"] = self.ema_generator
        return items

    def learning_rates(self):
        """The current rates, ``{"g_lr": ..., "d_lr": ...}`` as floats (after the decay)."""
        return {name: float(tf.convert_to_tensor(opt.learning_rate))
                for name, opt in (("g_lr", self.g_opt), ("d_lr", self.d_opt))}
