"""Rewards of the search: how good the images of one architecture of the supernet are.

A reward function has the signature ``reward_fn(search, arch, stage, seed) ->
float``: ``search.images(arch, num, stage, seed)`` gives it uint8 images of
the architecture at the stage's native resolution (8, 16, 32 px), and it
returns a number the controller maximises. The built-in one (`make_reward_fn`)
is the paper's: the Inception Score of ``reward_num_images`` images, or the
reciprocal FID. A test or an experiment can pass any other.

`Rewards` draws each evaluation's noise seed from a checkpointed random
generator, so a resumed search scores the same images as an uninterrupted one.
"""

from __future__ import annotations

import tensorflow as tf

from autogan_tf import errors, sampling, seeds
from autogan_tf.config import REWARD_BN_STATISTICS
from autogan_tf.metrics import evaluator as evaluator_lib
from autogan_tf.search.beam import pad_archs
from autogan_tf.torch_layers import batch_statistics_only


class SupernetImages:
    """uint8 images of one architecture of the supernet.

    Generation is split across the replicas of ``strategy`` and gathered.

    Args:
      generator: the `models.SuperGenerator`.
      strategy: the `tf.distribute` strategy it was built under.
      num_cells: cells of a full architecture (architectures are padded to it).
      batch_size: images generated per call (``--eval_batch_size``).
      bn_statistics: ``'moving'``: batch norm in inference mode (the official code's
        ``eval()``), by moving statistics that every architecture trained since has moved;
        ``'batch'``: each batch of ``batch_size`` images normalised by its own statistics,
        the moving ones untouched (`torch_layers.batch_statistics_only`).
    """

    def __init__(self, generator, strategy, num_cells: int, batch_size: int,
                 bn_statistics: str = "moving"):
        if bn_statistics not in REWARD_BN_STATISTICS:
            raise ValueError(f"bn_statistics must be one of {REWARD_BN_STATISTICS}, "
                             f"got {bn_statistics!r}")
        self.generator = generator
        self.strategy = strategy
        self.num_cells = num_cells
        self.batch_size = batch_size
        self.bn_statistics = bn_statistics
        self._samplers = {}

    def _generate(self, z, arch, stage):
        if self.bn_statistics == "moving":
            return self.generator(z, arch, stage=stage, training=False)
        with batch_statistics_only(self.generator):  # active while the call is traced
            return self.generator(z, arch, stage=stage, training=True)

    def _sampler(self, stage):
        if stage not in self._samplers:
            self._samplers[stage] = sampling.ImageSampler(
                lambda z, arch: self._generate(z, arch, stage), self.generator.latent_dim,
                self.batch_size, self.strategy)
        return self._samplers[stage]

    def __call__(self, arch, num: int, stage: int, seed: int) -> tf.Tensor:
        """Images ``0 .. num - 1`` that ``seed`` names (`sampling`), of ``arch`` at ``stage``.

        The same seed gives the same images whatever the search did in between and
        whatever ``batch_size`` is (with ``bn_statistics="batch"`` each batch is
        normalised by its own statistics, so there the batch size is part of the result).

        Args:
          arch: an architecture vector (or prefix, zero-padded here).
          num: how many images.
          stage: the stage whose output resolution is generated.
          seed: the noise seed.

        Returns:
          A uint8 tensor ``[num, H, W, 3]``.
        """
        arch = pad_archs([arch], self.num_cells)[0]
        return self._sampler(stage)(num, seed, arch)


class Rewards:
    """A reward function with a checkpointed stream of evaluation seeds.

    Args:
      reward_fn: ``(search, arch, stage, seed) -> float``.
      seed: the search's ``--seed`` (the stream is derived from it).
    """

    def __init__(self, reward_fn, seed: int):
        self.reward_fn = reward_fn
        self.rng = seeds.generator(seed, seeds.REWARD_SEEDS)

    def checkpoint_items(self) -> dict:
        """Name -> trackable, for the run's `tf.train.Checkpoint` (names are the format)."""
        return {"reward_rng": self.rng}

    def __call__(self, search, arch, stage: int) -> float:
        """The reward of ``arch`` at ``stage`` (possibly NaN/Inf: the caller checks).

        Each call draws the next seed of the checkpointed stream and passes it to
        ``reward_fn``.

        Args:
          search: the object handed to ``reward_fn`` (it provides ``images``).
          arch: the architecture vector to score.
          stage: the search stage it belongs to.

        Returns:
          The reward as a Python float.
        """
        seed = int(self.rng.uniform_full_int([], tf.int64)) % (2 ** 31)
        return float(self.reward_fn(search, arch, stage, seed))


def check_is_scorer(num_classes: int, classifier: str, auto: bool = False) -> None:
    """Refuse the IS reward of a scorer with one class.

    The Inception Score is exp(E[KL(p(y|x) || p(y))]); with one class every p(y|x) is 1,
    so the score is 1.0 for any images and the controller learns from nothing (an
    unlabelled folder read as one class does this).

    Args:
      num_classes: the scorer's number of classes.
      classifier: the ``--classifier`` value, for the message.
      auto: the scorer is ``--classifier=auto``'s, trained on the run's own data set (then
        its features are no use for ``--reward=fid`` either).

    Raises:
      errors.UserError: ``num_classes`` is below 2.
    """
    if num_classes >= 2:
        return
    remedy = ("give the folder class sub-folders, or use --reward=fid with "
              "--classifier=inception or a .keras classifier trained on labelled images"
              if auto else "use --reward=fid (the distance of an architecture's images to "
              "the real ones), or a --classifier with several classes")
    raise errors.UserError(f"--reward=is: the scorer {classifier} has {num_classes} class, so "
                           f"every architecture's Inception Score is 1.0; {remedy}")


def check_auto_classifier(num_classes: int, dataset: str) -> None:
    """Refuse ``--classifier=auto`` on a data set of one class: a classifier trained to
    tell one class from nothing learns nothing (its loss is 0 from the start), so its
    features measure nothing either, for IS or for FID.

    Raises:
      errors.UserError: ``num_classes`` is below 2.
    """
    if num_classes < 2:
        raise errors.UserError(
            f"--classifier=auto: --dataset={dataset} has {num_classes} class, so a classifier "
            "trained on it learns nothing and scores nothing; give the folder class "
            "sub-folders, or a --classifier trained on labelled images (or 'inception')")


def make_reward_fn(config, model_dir: str, strategy=None):
    """The paper's reward: IS (or 1/FID) of an architecture's supernet samples.

    Args:
      config: the `config.SearchConfig` (reward, reward_num_images, classifier ...).
      model_dir: where FID reference statistics are cached.
      strategy: images are generated and classified split across its replicas.

    Returns:
      ``reward(search, arch, stage, seed) -> float``.

    Raises:
      ValueError: ``reward_num_images`` is below the Inception Score's splits.
      errors.UserError: the IS reward with a one-class scorer (`check_is_scorer`).
      Errors of `metrics.evaluator.Evaluator` for an unusable classifier or statistics.
    """
    config.check_reward()
    evaluator = evaluator_lib.Evaluator(
        config.classifier, config.feature_layer, config.inception_path,
        config.fid_stats if config.reward == "fid" else None,
        config.dataset if config.reward == "fid" else None,
        config.resolution(config.num_cells - 1), config.data_dir, model_dir,
        config.eval_batch_size, strategy=strategy, kid=False)
    if config.reward == "is":
        check_is_scorer(evaluator.extractor.num_classes, config.classifier,
                        auto=config.classifier == "auto")

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
