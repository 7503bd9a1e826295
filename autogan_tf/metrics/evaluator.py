"""`Evaluator`: IS, FID and KID of generators (or of images) with one classifier and fixed
statistics.

What the final training evaluates periodically, what ``autogan-evaluate`` and
the quick start report, and what the search's reward is computed with. Built
once per run: loading the classifier and the reference statistics, and checking
that they fit together, happens before any training, not at the first
evaluation hours later.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from absl import logging

from autogan_tf import distribute, rundir, sampling
from autogan_tf.metrics import classifiers, scores, streaming


class Evaluator:
    """IS/FID/KID of a generator with one feature extractor and fixed reference statistics.

    Args:
      classifier: "inception" or a ``.keras`` classifier file (see
        `classifiers.load_feature_extractor`).
      feature_layer: the feature layer of a ``.keras`` classifier (None: its default).
      inception_path: the Inception graph file (None: the cached download).
      fid_stats: a reference statistics ``.npz``; None: computed from ``dataset``
        (cached in ``model_dir``) when both are given, else FID is not computed.
      dataset, image_size, data_dir: the data set of the reference statistics.
      model_dir: where computed reference statistics are cached (``fid_stats.npz``).
      batch_size: images per generation and classification batch.
      strategy: generation and classification are split across its replicas
        and gathered (None: one device).
      kid: report KID beside FID when the reference statistics keep features (those
        computed here do; files written before KID do not); False: only IS and FID.

    Raises:
      ClassifierError, InceptionUnavailableError: the classifier cannot be loaded.
      StatsError: the reference statistics are unusable or come from another network.
    """

    def __init__(self, classifier="inception", feature_layer=None, inception_path=None,
                 fid_stats=None, dataset=None, image_size=None, data_dir=None,
                 model_dir=None, batch_size=100, strategy=None, kid=True):
        self.extractor = classifiers.load_feature_extractor(
            classifier, feature_layer=feature_layer, inception_path=inception_path,
            image_size=image_size)
        # Generated images: sampling and features split across the replicas, gathered.
        self.strategy = strategy
        self.split_extractor = distribute.split_extractor(self.extractor, strategy)
        self._samplers = {}
        self.batch_size = batch_size
        self.kid = kid
        self.stats = None
        if fid_stats:
            self.stats = scores.load_statistics(fid_stats)
            where = f"--fid_stats={fid_stats}"
        elif dataset is not None and model_dir is not None:
            self.stats = self._reference_stats(dataset, image_size, data_dir, model_dir)
            where = os.path.join(model_dir, rundir.FID_STATS)
        if self.stats is not None:
            # Now, not at the first evaluation hours later.
            streaming.check_compatible(self.stats, self.extractor, where=where)

    def _reference_stats(self, dataset, image_size, data_dir, model_dir):
        """Statistics of the training data with this classifier, cached in model_dir.

        The first network to score a run caches its statistics as ``fid_stats.npz``; another
        network (a search inspected with another ``classifier``, say) caches its own beside
        it (`rundir.fid_stats_file`), so neither is mistaken for the other.

        Computed with the unsplit extractor, so without collectives: in a
        multi-worker job one worker may find the chief's cache while another
        computes the same statistics. Only the chief writes the cache.
        """
        path = os.path.join(model_dir, rundir.FID_STATS)
        if os.path.exists(path):
            stats = scores.load_statistics(path)
            try:
                streaming.check_compatible(stats, self.extractor)
                return stats
            except scores.StatsError:  # another network's: this one's live beside them
                path = os.path.join(model_dir, rundir.fid_stats_file(self.extractor.name))
        if os.path.exists(path):
            return scores.load_statistics(path)
        logging.info("computing FID reference statistics of %s with %s into %s",
                     dataset, self.extractor.name, path)
        stats = streaming.dataset_statistics(dataset, self.extractor, image_size=image_size,
                                            data_dir=data_dir, batch_size=self.batch_size)
        if distribute.is_chief():
            scores.save_statistics(path, stats)
        return stats

    def score_images(self, images, requested=None) -> dict:
        """IS (and FID, KID when statistics are set) of uint8 images ``[N, H, W, 3]`` in memory.

        Returns:
          The dict of `streaming.generator_scores` (is_mean, is_std, fid, kid_mean, ...).

        Args:
          images: uint8 ``[N, H, W, 3]``, scored in batches of ``batch_size``.
          requested: the class each image was asked to show (adds ``class_accuracy``).
        """
        images = tf.convert_to_tensor(images)
        num = int(images.shape[0])
        return self.score_batches((images[start:start + self.batch_size]
                                   for start in range(0, num, self.batch_size)), num,
                                  requested)

    def features(self, images) -> np.ndarray:
        """The extractor's features of uint8 images ``[N, H, W, 3]`` in memory, in batches of
        ``batch_size`` (split across the replicas), as float32 ``[N, d]``."""
        images = tf.convert_to_tensor(images)
        return np.concatenate([
            np.asarray(self.split_extractor(images[start:start + self.batch_size])[1])
            for start in range(0, int(images.shape[0]), self.batch_size)])

    def __call__(self, generator, num_samples: int, seed: int = 0) -> dict:
        """IS/FID/KID of images ``0 .. num_samples - 1`` that ``seed`` names (`sampling`).

        The images do not depend on the batch size or on how many replicas share the
        work (up to float rounding of the convolutions).

        Returns:
          The dict of `streaming.generator_scores` (is_mean, is_std, fid, kid_mean, ...).

        Args:
          generator: a Keras generator with ``latent_dim``, mapping noise to images in [-1, 1].
          num_samples: how many images to score.
          seed: the noise seed.
        """
        key = id(generator)
        if key not in self._samplers:
            self._samplers[key] = sampling.generator_sampler(
                generator, self.batch_size, self.strategy or tf.distribute.get_strategy())
        requested = None
        if self.scores_requested_classes(generator):
            requested = sampling.balanced_labels(0, num_samples, generator.num_classes)
        return self.score_batches(self._samplers[key].batches(num_samples, seed), num_samples,
                                  requested)

    def intra_fid(self, generator, per_class: int, references, seed: int = 0) -> dict:
        """Intra-FID of a conditional generator: for each class, FID between ``per_class``
        images asked for that class and the class's real images; their mean.

        Class ``c``'s images are images ``0 .. per_class - 1`` of the seed with every label
        ``c``, so each class sees the same noise.

        Args:
          generator: a conditional generator (``num_classes``).
          per_class: generated images per class (at least 2).
          references: the real classes' `scores.Statistics`, in class order
            (`streaming.class_statistics`).
          seed: the noise seed.

        Returns:
          ``{"intra_fid": mean, "intra_fid_per_class": [FID of each class],
          "intra_fid_samples_per_class": per_class}``.

        Raises:
          errors.UserError: an unconditional generator, references for another number of
            classes, or ``per_class`` below 2.
        """
        from autogan_tf import errors

        classes = getattr(generator, "num_classes", 0)
        if not classes:
            raise errors.UserError("intra-FID needs a class-conditional generator "
                                   "(trained with --conditional)")
        if len(references) != classes:
            raise errors.UserError(f"intra-FID: {len(references)} classes of real statistics "
                                   f"for a generator of {classes} classes")
        if per_class < 2:
            raise errors.UserError(f"intra-FID needs at least 2 images per class, got "
                                   f"{per_class}")
        sampler = sampling.generator_sampler(generator, self.batch_size,
                                             self.strategy or tf.distribute.get_strategy())
        per = []
        for c, reference in enumerate(references):
            batches = sampler.batches(per_class, seed, labels=[c] * per_class)
            mu, sigma, _ = streaming.compute_statistics(self.split_extractor, batches)
            per.append(float(reference.fid(scores.Statistics(mu, sigma))))
        return {"intra_fid": float(np.mean(per)), "intra_fid_per_class": per,
                "intra_fid_samples_per_class": int(per_class)}

    def scores_requested_classes(self, generator) -> bool:
        """Whether the classifier can say if ``generator``'s images show the classes asked
        for: a conditional generator, and a classifier with as many classes (trained on the
        same labelled data; the Inception network's 1,008 ImageNet classes are not them).

        Args:
          generator: the generator being evaluated.
        """
        classes = getattr(generator, "num_classes", 0)
        return bool(classes) and getattr(self.extractor, "num_classes", None) == classes

    def score_batches(self, batches, num_images: int, requested=None) -> dict:
        """IS (and FID, KID when statistics are set) of ``num_images`` images given as uint8
        batches (e.g. `sampling.ImageSampler.batches`).

        Args:
          batches: an iterable of uint8 ``[n, H, W, 3]`` batches holding ``num_images``.
          num_images: how many images the batches hold.
          requested: the class each image was asked to show (adds ``class_accuracy``).

        Returns:
          The dict of `streaming.generator_scores` (is_mean, is_std, fid, kid_mean, ...).
        """
        iterator = iter(batches)
        return streaming.generator_scores(lambda n: next(iterator), num_images, self.batch_size,
                                         self.split_extractor, fid_stats=self.stats,
                                         kid=self.kid, requested=requested)
