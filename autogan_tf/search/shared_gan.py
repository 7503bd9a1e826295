"""The shared GAN of the search: the supernet generator, the discriminator, their training.

Every architecture the controllers sample is a path through one supernet
(`models.SuperGenerator`) whose weights all architectures share. One
generator iteration trains it with a freshly sampled architecture per
discriminator step (`gan_trainer.GANTrainer` with an architecture tensor) on
real images at the resolution of the current stage. A dynamic reset gives G
and D fresh weights and optimizer state (`SharedGAN.reinitialise`).
"""

from __future__ import annotations

import tensorflow as tf

from autogan_tf import conditional, data, gan_trainer, lifecycle, models, seeds
from autogan_tf.search.beam import pad_archs
from autogan_tf.search.rewards import SupernetImages


def build_supernet(config, sync_bn: bool = False):
    """The supernet generator and the discriminator of a `config.SearchConfig`, ``(g, d)``.

    Their initial weights come from Python's `random`: build them inside
    `seeds.python_random` for repeatable weights.

    Args:
      config: the `config.SearchConfig` (widths, latent size, bottom width, cells).
      sync_bn: synchronise the generator's output batch norm across replicas.

    Returns:
      ``(models.SuperGenerator, models.Discriminator)``, built (their variables exist).
    """
    c = config
    num_classes = conditional.model_classes(c)
    return (models.SuperGenerator(c.gf_dim, c.latent_dim, c.bottom_width, c.num_cells,
                                  sync_bn=sync_bn, num_classes=num_classes),
            models.Discriminator(c.df_dim, c.num_cells, minibatch_std=c.d_minibatch_std,
                                 num_classes=num_classes))


def _reset_weights(model, fresh, optimizer):
    """Give ``model`` the freshly initialised weights of ``fresh``; zero its optimizer's state
    (moments and step counts; the learning rate is kept)."""
    model.set_weights(fresh.get_weights())
    for v in optimizer.variables:
        if "learning_rate" not in v.path:
            v.assign(tf.zeros_like(v))


class SharedGAN:
    """The supernet G and D with their trainer and the real data of every stage.

    Args:
      config: the `config.SearchConfig`.
      strategy: the `tf.distribute` strategy G and D train under (batches are global).
      sync_bn: synchronise the supernet's output batch norm across replicas.
    """

    def __init__(self, config, strategy, sync_bn: bool):
        c = self.config = config
        with seeds.python_random(c.seed, seeds.GAN_INIT), strategy.scope():
            self.generator, self.discriminator = build_supernet(c, sync_bn)
        self.trainer = gan_trainer.GANTrainer(
            self.generator, self.discriminator, g_lr=c.g_lr, d_lr=c.d_lr, beta1=c.beta1,
            beta2=c.beta2, n_critic=c.n_critic, g_batch_size=c.g_batch_size,
            unused_ops=c.unused_ops, seed=c.seed, precision=c.precision, strategy=strategy,
            augment=c.augment)
        # One iterator per stage, created now so that a checkpoint restores their positions
        # (and a missing data set fails here, before any training).
        self.fresh_data()
        self.images = SupernetImages(self.generator, strategy, c.num_cells, c.eval_batch_size,
                                     c.reward_bn)
        self._models_finite = lifecycle.make_finite_check(self.generator, self.discriminator)

    def checkpoint_items(self) -> dict:
        """G, D, their optimizers and noise generator (names are the checkpoint format)."""
        return self.trainer.checkpoint_items()

    def data_items(self) -> dict:
        """The data iterators, ``data<stage>``: checkpointed, but not rolled back."""
        return {f"data{stage}": batches for stage, batches in self._batches.items()}

    def fresh_data(self) -> dict:
        """Replace the data iterators by new ones at the start; returns `data_items`."""
        c = self.config
        stages = range(c.num_cells) if c.mlas else [c.num_cells - 1]
        self._batches = {stage: data.critic_batches(c, c.resolution(stage),
                                                    seeds.integer(c.seed, seeds.data(stage)),
                                                    with_labels=c.conditional)
                         for stage in stages}
        return self.data_items()

    def train_iteration(self, archs, stage: int) -> dict:
        """One generator iteration at ``stage``: n_critic D steps, one per row of ``archs``
        (architecture prefixes), then a G step with the last.

        Args:
          archs: ``n_critic`` architecture vectors (prefixes of the stage's length), one per
            discriminator step.
          stage: the current stage; selects the real-data resolution and the supernet's depth.

        Returns:
          ``d_losses``, ``g_loss`` and ``finite``: False when a loss or a weight of G
          or D is NaN/Inf.
        """
        reals, labels = data.split_labels(next(self._batches[stage]))
        out = self.trainer.train_iteration(reals, pad_archs(archs, self.config.num_cells), stage,
                                           labels)
        return dict(out, finite=out["finite"] & self._models_finite())

    def reinitialise(self, iteration: int):
        """Fresh weights and optimizer state for G and D, after search iteration ``iteration``.

        Fresh models are built from the config and their weights copied in, so the variables
        (and checkpoint) stay the same objects; the optimizers keep their learning rates.

        Args:
          iteration: names the new weights' stream (`seeds.reinit`), so a resumed search
            re-initialises to the same weights as an uninterrupted one.
        """
        with seeds.python_random(self.config.seed, seeds.reinit(iteration)):
            fresh_g, fresh_d = build_supernet(self.config)
        _reset_weights(self.generator, fresh_g, self.trainer.g_opt)
        _reset_weights(self.discriminator, fresh_d, self.trainer.d_opt)
