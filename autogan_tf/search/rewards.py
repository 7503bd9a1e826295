"""Rewards of the search: how good the images of one architecture of the supernet are.

A reward function has the signature ``reward_fn(search, arch, stage, seed) ->
float``: ``search.images(arch, num, stage, seed)`` gives it uint8 images of
the architecture at the stage's native resolution (8, 16, 32 px), and it
returns a number the controller maximises. The built-in ones (`make_reward_fn`):
the paper's Inception Score of ``reward_num_images`` images, or the reciprocal
FID; or ``-ln KID`` to the real images (`DistanceToReal`), which needs no labels
when the features come from a label-free network (`metrics.label_free`).
``--reward=auto`` picks between IS and KID by the scorer's classes (`choose`).
A test or an experiment can pass any other reward function.

`Rewards` draws each evaluation's noise seed from a checkpointed random
generator, so a resumed search scores the same images as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np
import tensorflow as tf

from autogan_tf import errors, rundir, sampling, seeds
from autogan_tf.config import REWARD_BN_STATISTICS
from autogan_tf.metrics import evaluator as evaluator_lib
from autogan_tf.metrics import label_free, scores
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

    def _generate(self, z, arch, stage, labels=None):
        if self.bn_statistics == "moving":
            return self.generator(z, arch, stage=stage, training=False, labels=labels)
        with batch_statistics_only(self.generator):  # active while the call is traced
            return self.generator(z, arch, stage=stage, training=True, labels=labels)

    def _sampler(self, stage):
        if stage not in self._samplers:
            num_classes = self.generator.num_classes
            if num_classes:  # class-balanced samples (`sampling.balanced_labels`)
                def generate(z, labels, arch):
                    return self._generate(z, arch, stage, labels)
            else:
                def generate(z, arch):
                    return self._generate(z, arch, stage)
            self._samplers[stage] = sampling.ImageSampler(
                generate, self.generator.latent_dim, self.batch_size, self.strategy,
                num_classes)
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


# The Inception Score is at most the scorer's class count K (it is exp of the mutual
# information between class and image, at most ln K). With 2 classes an unlabelled-looking
# folder of airplanes and cats gave supernet rewards of 1.01-1.06 for every architecture: a
# signal within the noise of a 1,000-image reward. 5 classes leave IS a range of 1-5; the
# number is a judgement, not a measurement (see the docs' guide for your own images).
MIN_IS_CLASSES = 5
DEFAULT_LABEL_FREE = "contrastive"  # --reward=auto without classes: the best-ranking network (docs)
KID_FLOOR = 1e-6                  # -ln KID is capped at -ln 1e-6 = 13.8 (KID can be <= 0)


@dataclasses.dataclass(frozen=True)
class Choice:
    """What ``--reward=auto`` settled on: the reward, the ``--classifier`` and why."""

    reward: str
    classifier: str
    reason: str


def scorer_classes(classifier: str, dataset: str, data_dir=None) -> int:
    """How many classes of images a ``--classifier`` tells apart (0: a label-free network).

    ``auto`` counts ``dataset``'s classes (the small classifier learns those), without
    training anything; ``inception`` has 1,008; a ``.keras`` file is loaded and its logits
    counted.

    Raises:
      metrics.classifiers.ClassifierError: an unusable ``.keras`` file.
    """
    from autogan_tf import data
    from autogan_tf.metrics import classifiers

    if classifier == "auto":
        return data.num_classes(dataset, data_dir)
    if label_free.kind_of(classifier) is not None:
        return 0
    if not classifier or classifier == classifiers.INCEPTION:
        return 1008  # the 2015 graph's logits (1,000 ImageNet classes and 8 unused)
    extractor = classifiers.load_keras_classifier(classifier)
    return 0 if label_free.is_label_free(extractor) else extractor.num_classes


def choose(reward: str, classifier: str, classes: int) -> Choice:
    """The reward and scorer of a search: ``--reward=auto`` made concrete, others as given.

    Args:
      reward: the ``--reward`` value.
      classifier: the ``--classifier`` value.
      classes: what `scorer_classes` says of ``classifier``.

    Returns:
      A `Choice`. ``auto`` is IS when the scorer tells at least `MIN_IS_CLASSES` classes
      apart, else KID of the label-free network the classifier names (or of
      `DEFAULT_LABEL_FREE`'s, learnt from the data set's images).
    """
    if reward != "auto":
        return Choice(reward, classifier, f"--reward={reward}")
    if classes >= MIN_IS_CLASSES:
        return Choice("is", classifier, f"the scorer {classifier} has {classes} classes "
                                        f"(IS needs at least {MIN_IS_CLASSES})")
    if label_free.kind_of(classifier) is None and classes > 0:
        network = label_free.CLASSIFIER_PREFIX + DEFAULT_LABEL_FREE
        why = (f"the scorer {classifier} has {classes} class{'es' if classes != 1 else ''}, "
               f"too few for IS (at least {MIN_IS_CLASSES}): KID of a "
               f"{DEFAULT_LABEL_FREE} network learnt from the images without labels")
        return Choice("kid", network, why)
    return Choice("kid", classifier, f"the scorer {classifier} is a label-free network: KID")


class DistanceToReal:
    """``-ln KID`` between a candidate's images and a fixed sample of the real images.

    KID is the unbiased estimate of the squared MMD under the cubic polynomial kernel
    (`metrics.scores.mmd2_unbiased`), here between all ``m`` candidate features and ``n``
    real features drawn once (so the real side's kernel sum is computed once). The log
    makes the reward scale-free: an architecture half as far from the real images scores
    ``ln 2 = 0.69`` more, whatever the feature network. KID can be zero or negative when
    the sets are as close as the estimate can tell; it is floored at `KID_FLOOR`.

    Args:
      reference_features: ``[N, d]`` features of real images (the reference statistics'
        kept features).
      num_images: how many of them to compare with (at most N).
      seed: which ones.

    Raises:
      errors.UserError: fewer than 2 reference features.
    """

    def __init__(self, reference_features, num_images: int, seed: int = 0,
                 where: str = "the reference statistics"):
        real = np.asarray(reference_features, np.float64)
        if real.ndim != 2 or len(real) < 2:
            raise errors.UserError(f"--reward=kid needs reference statistics that keep at least "
                                   f"2 features, and {where} keeps none (files written before "
                                   f"KID do not): remove it, or leave --fid_stats out, to "
                                   f"compute them from --dataset")
        n = min(int(num_images), len(real))
        rng = np.random.default_rng(seed)
        self.real = real[np.sort(rng.choice(len(real), n, replace=False))]
        k_real = scores.polynomial_kernel(self.real, self.real)
        self._within_real = (k_real.sum() - np.trace(k_real)) / (n * (n - 1))

    def kid(self, features) -> float:
        """The unbiased squared MMD between ``features`` ``[m, d]`` (m >= 2) and the sample."""
        x = np.asarray(features, np.float64)
        m = len(x)
        if m < 2 or x.shape[1:] != self.real.shape[1:]:
            raise ValueError(f"need [m >= 2, {self.real.shape[1]}] features, got {x.shape}")
        k_x = scores.polynomial_kernel(x, x)
        within_x = (k_x.sum() - np.trace(k_x)) / (m * (m - 1))
        return float(within_x + self._within_real
                     - 2.0 * scores.polynomial_kernel(x, self.real).mean())

    @staticmethod
    def reward(kid: float) -> float:
        """``-ln max(kid, KID_FLOOR)``: higher for a smaller distance."""
        return -math.log(max(kid, KID_FLOOR))


def check_is_scorer(num_classes: int, classifier: str, auto: bool = False,
                    label_free_network: bool = False) -> None:
    """Refuse the IS reward of a scorer with one class, or of a label-free network.

    The Inception Score is exp(E[KL(p(y|x) || p(y))]); with one class every p(y|x) is 1,
    so the score is 1.0 for any images and the controller learns from nothing (an
    unlabelled folder read as one class does this). A label-free network's outputs are
    rotations or projections, not classes of images.

    Args:
      num_classes: the scorer's number of classes.
      classifier: the ``--classifier`` value, for the message.
      auto: the scorer is ``--classifier=auto``'s, trained on the run's own data set.
      label_free_network: the scorer is a `metrics.label_free` network.

    Raises:
      errors.UserError: ``num_classes`` is below 2, or a label-free network.
    """
    remedy = ("use --reward=auto (KID of a network learnt from the images without labels), "
              "or --reward=kid with --classifier=label_free:contrastive")
    if label_free_network:
        raise errors.UserError(f"--reward=is: the scorer {classifier} is a label-free network, "
                               f"whose outputs are not classes of images; use --reward=kid "
                               f"(or fid) with it")
    if num_classes >= 2:
        return
    if auto:
        remedy = "give the folder class sub-folders, or " + remedy
    raise errors.UserError(f"--reward=is: the scorer {classifier} has {num_classes} class, so "
                           f"every architecture's Inception Score is 1.0; {remedy}")


def check_accuracy_scorer(extractor, config) -> None:
    """The class-accuracy reward's scorer must tell the model's classes apart.

    Args:
      extractor: the scorer (`metrics.classifiers.load_feature_extractor`).
      config: the `config.SearchConfig` (``num_classes`` recorded at start).

    Raises:
      errors.UserError: the scorer has another number of classes (the Inception network's
        1,008 ImageNet classes, a label-free network, a classifier of other data).
    """
    classes = getattr(extractor, "num_classes", 0)
    if label_free.is_label_free(extractor) or classes != config.num_classes:
        raise errors.UserError(
            f"--reward=class_accuracy: the scorer {config.classifier} has {classes} classes, "
            f"the model {config.num_classes}: give --classifier a classifier of "
            f"--dataset={config.dataset}'s classes (--classifier=auto trains one)")


def make_reward_fn(config, model_dir: str, strategy=None):
    """The search's reward: IS, 1/FID, -ln KID or the requested-class accuracy of an
    architecture's supernet samples.

    Args:
      config: the `config.SearchConfig` (reward, reward_num_images, classifier ...), its
        ``reward`` made concrete (`choose`) and its classifier a path or ``inception``.
      model_dir: where FID reference statistics are cached.
      strategy: images are generated and classified split across its replicas.

    Returns:
      ``reward(search, arch, stage, seed) -> float``.

    Raises:
      ValueError: ``reward_num_images`` is below the Inception Score's splits.
      errors.UserError: ``reward`` still ``auto``; the IS reward with a one-class or label-free scorer
        (`check_is_scorer`); KID without reference features.
      Errors of `metrics.evaluator.Evaluator` for an unusable classifier or statistics.
    """
    config.check_reward()
    if config.reward == "auto":
        raise errors.UserError("--reward=auto: make_reward_fn needs the reward chosen first "
                               "(search.loop.choose_reward)")
    distance = config.reward in ("fid", "kid")
    evaluator = evaluator_lib.Evaluator(
        config.classifier, config.feature_layer, config.inception_path,
        config.fid_stats if distance else None, config.dataset if distance else None,
        config.resolution(config.num_cells - 1), config.data_dir, model_dir,
        config.eval_batch_size, strategy=strategy, kid=False)
    if config.reward == "is":
        check_is_scorer(evaluator.extractor.num_classes, config.classifier,
                        auto=config.classifier == "auto",
                        label_free_network=label_free.is_label_free(evaluator.extractor))
    if config.reward == "class_accuracy":
        check_accuracy_scorer(evaluator.extractor, config)
    if config.reward == "kid":
        to_real = DistanceToReal(
            evaluator.stats.features, config.reward_num_images, seed=config.seed,
            where=f"--fid_stats={config.fid_stats}" if config.fid_stats else
            os.path.join(model_dir, rundir.FID_STATS))

    def reward(search, arch, stage, seed):
        # Native resolution (8 / 16 / 32 px), as the official get_is: the
        # Inception graph resizes to 299 itself; a Keras classifier's extractor
        # resizes to the data set's resolution (its image_size) only.
        images = search.images(arch, config.reward_num_images, stage, seed)
        if config.reward == "kid":
            return DistanceToReal.reward(to_real.kid(evaluator.features(images)))
        if config.reward == "class_accuracy":  # the samples ask for class i mod K (sampling)
            requested = sampling.balanced_labels(0, len(images), config.num_classes)
            return evaluator.score_images(images, requested)["class_accuracy"]
        result = evaluator.score_images(images)
        if config.reward == "fid":
            return 1.0 / max(result["fid"], 1e-6)
        return result["is_mean"]

    return reward
