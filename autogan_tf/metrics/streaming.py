"""IS/FID/KID statistics computed batch by batch, of generators, data sets and statistics files.

Images are produced and consumed batch by batch: only the running feature
mean/covariance and the logits are kept (for CIFAR-10 with Inception, about
32 MB of covariance plus 50,000 x 1008 logits), never the 50,000 images. KID
needs features themselves: a uniform sample of at most `scores.KID_FEATURES` of
them (`scores.FeatureSample`, 80 MB of Inception features) is kept of a data set
(stored in its statistics file) and of the generated images.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable

import numpy as np

from autogan_tf import errors
from autogan_tf.metrics import label_free
from autogan_tf.config import IS_SPLITS
from autogan_tf.metrics.scores import (FeatureSample, RunningMoments, Statistics, StatsError,
                                       inception_score_from_logits, load_statistics)


class _Progress:
    """One rewritten stderr line every few seconds (silent when ``total`` is 0).

    Args:
      label: the text before the counts.
      total: the number of images expected (None: unknown, shown without a total; 0: silent).
      every: seconds between two lines.
    """

    def __init__(self, label: str, total: int | None, every: float = 5.0):
        self.label, self.total, self.every = label, total, every
        self.start = self.last = time.time()

    def update(self, done: int, final: bool = False) -> None:
        """Rewrite the line if ``every`` seconds have passed since the last one (or ``final``).

        Args:
          done: images processed so far.
          final: print now and end the line.
        """
        now = time.time()
        if self.total == 0 or (not final and now - self.last < self.every):
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        of = f"/{self.total}" if self.total else ""
        print(f"\r{self.label}: {done}{of} images, {rate:.0f} images/s", end="\n" if final else "",
              file=sys.stderr, flush=True)


def compute_statistics(extractor, uint8_batches: Iterable, max_images: int | None = None,
                       progress: str | None = None, sample: FeatureSample | None = None):
    """Stream batches through ``extractor``; return ``(mu, sigma, logits)``.

    ``mu``/``sigma`` are the mean and (N-1) covariance of the features,
    ``logits`` the stacked class logits (softmax them for IS). Stops after
    ``max_images`` images if given (the last batch is cut to fit).

    Args:
      extractor: a feature extractor: ``extractor(uint8 batch) -> (logits, features)``.
      uint8_batches: an iterable of uint8 ``[B, H, W, 3]`` batches.
      max_images: stop after this many images (None: the whole iterable).
      progress: a label for a progress line on stderr (None: silent).
      sample: a `scores.FeatureSample` that is offered every batch's features (for KID);
        None: none are kept.

    Returns:
      ``(mu, sigma, logits)``: float64 ``[D]`` and ``[D, D]``, float32 ``[N, K]``.

    Raises:
      StatsError: fewer than 2 images came.
    """
    moments = RunningMoments()
    logits_parts = []
    meter = _Progress(progress or "", max_images if progress else 0)
    for batch in uint8_batches:
        if max_images is not None and moments.count >= max_images:
            break
        if max_images is not None and moments.count + len(batch) > max_images:
            batch = batch[:max_images - moments.count]
        logits, features = extractor(batch)
        moments.update(np.asarray(features))
        if sample is not None:
            sample.update(features)
        logits_parts.append(np.asarray(logits, dtype=np.float32))
        meter.update(moments.count)
    if moments.count < 2:
        raise StatsError(f"need at least 2 images for statistics, got {moments.count}")
    meter.update(moments.count, final=True)
    return moments.mean, moments.covariance, np.concatenate(logits_parts)


def _as_statistics(fid_stats, extractor) -> Statistics:
    if isinstance(fid_stats, Statistics):
        return fid_stats
    if isinstance(fid_stats, str):
        return load_statistics(fid_stats)
    mu, sigma = fid_stats  # bare arrays: the caller vouches they match the extractor
    return Statistics(np.asarray(mu), np.asarray(sigma), classifier=extractor.name)


def check_compatible(stats: Statistics, extractor, where: str = "reference statistics") -> None:
    """Refuse to compare features from different networks (names or sizes differ).

    Statistics files carry the name of the network that made them; TTUR's files carry none
    and are taken to be Inception's.

    Args:
      stats: the reference `Statistics`.
      extractor: the feature extractor the other side is embedded with.
      where: what ``stats`` are, for the message (a flag or a path).

    Raises:
      StatsError: the feature sizes or the network names differ.
    """
    if stats.mu.shape[0] != extractor.feature_dim:
        raise StatsError(f"{where} have {stats.mu.shape[0]}-d features but {extractor.name} "
                         f"gives {extractor.feature_dim}-d ones")
    made_by = stats.classifier or "inception"  # TTUR's files carry no name and are Inception
    if made_by != extractor.name:
        raise StatsError(f"{where} were computed with classifier '{made_by}', not "
                         f"'{extractor.name}'; pass the matching --classifier")


def generator_scores(generate_fn: Callable, num_samples: int, batch_size: int, extractor,
                     fid_stats=None, splits: int = IS_SPLITS, progress: str | None = None,
                     kid: bool = True, requested=None) -> dict:
    """IS, FID and KID of ``num_samples`` images from ``generate_fn(n) -> uint8 [n, H, W, 3]``.

    KID compares a uniform sample of at most `scores.KID_FEATURES` generated images'
    features with the reference's kept features (`scores.kernel_inception_distance`).

    Args:
      generate_fn: called with a batch size, returns that many uint8 images.
      num_samples: how many images to score.
      batch_size: images per ``generate_fn`` call (the last call may ask for fewer).
      extractor: the feature extractor (``name``, ``feature_dim``, called on a batch).
      fid_stats: a statistics file, a `Statistics`, or ``(mu, sigma)`` (taken to come from
        ``extractor``); None: ``fid`` is None.
      splits: the Inception Score's splits.
      progress: a label for a progress line on stderr (None: silent).
      kid: compute KID when the reference statistics keep features (False: never, e.g.
        for the search's rewards, which need only IS or FID).
      requested: a conditional generator's requested class of each image (int
        ``[num_samples]``, in the classifier's class order): adds ``class_accuracy``, the
        fraction of images the classifier assigns to the class asked for.

    Returns:
      ``dict(is_mean, is_std, fid, kid_mean, kid_std, num_samples, classifier)`` (and
      ``class_accuracy`` with ``requested``); ``is_mean`` and ``is_std`` are None for a
      network learnt without labels (`label_free`), ``fid`` None without reference statistics,
      ``kid_mean`` and ``kid_std`` without reference features (statistics files written
      before KID) or with ``kid=False``.

    Raises:
      errors.UserError: ``num_samples`` is below ``max(2, splits)``.
      StatsError: ``fid_stats`` is unusable or comes from another network.
    """
    if num_samples < max(2, splits):
        raise errors.UserError(f"num_samples={num_samples} must be at least max(2, splits={splits})")
    reference = _as_statistics(fid_stats, extractor) if fid_stats is not None else None
    if reference is not None:
        check_compatible(reference, extractor)

    def batches():
        made = 0
        while made < num_samples:
            n = min(batch_size, num_samples - made)
            yield generate_fn(n)
            made += n

    keep = kid and reference is not None and reference.features is not None
    sample = FeatureSample() if keep else None
    mu, sigma, logits = compute_statistics(extractor, batches(), progress=progress,
                                           sample=sample)
    is_mean, is_std = inception_score_from_logits(logits, splits)
    if label_free.is_label_free(extractor):  # its outputs are no classes: IS means nothing
        is_mean = is_std = None
    generated = Statistics(mu, sigma, features=sample.features if keep else None)
    fid = reference.fid(generated) if reference is not None else None
    kid_mean, kid_std = reference.kid(generated) if reference is not None else (None, None)
    result = dict(is_mean=is_mean, is_std=is_std, fid=fid, kid_mean=kid_mean, kid_std=kid_std,
                  num_samples=int(logits.shape[0]), classifier=extractor.name)
    if requested is not None:
        result["class_accuracy"] = requested_class_accuracy(logits, requested)
    return result


def requested_class_accuracy(logits, requested) -> float:
    """The fraction of images whose most likely class is the one their generator was asked for.

    Args:
      logits: float ``[N, K]`` class logits (or probabilities) of the generated images.
      requested: int ``[N]``, the class each image was asked to show.

    Raises:
      ValueError: the two differ in length.
    """
    logits, requested = np.asarray(logits), np.asarray(requested)
    if len(logits) != len(requested):
        raise ValueError(f"{len(requested)} requested classes for {len(logits)} images")
    return float(np.mean(np.argmax(logits, axis=-1) == requested))


def dataset_statistics(dataset: str, extractor, *, split: str = "train", batch_size: int = 100,
                       num_samples: int | None = None, image_size: int | None = None,
                       data_dir: str | None = None, progress: str | None = None) -> Statistics:
    """Reference statistics of a data set's real images (uint8, no shuffling).

    Every image is seen exactly once, in a fixed order, so the statistics do not depend on a
    seed; a uniform sample of at most `scores.KID_FEATURES` of their features is kept for
    KID (`scores.FeatureSample`, with a fixed seed).

    Args:
      dataset: a ``--dataset`` value.
      extractor: the feature extractor; its name is recorded in the result.
      split: "train" or "test".
      batch_size: images per batch.
      num_samples: use at most this many images (None: every image of ``split``).
      image_size: the images' side (None: the data set's native resolution, e.g. CIFAR-10
        32, STL-10 48).
      data_dir: the TensorFlow Datasets directory.
      progress: a label for a progress line on stderr (None: silent).

    Returns:
      The `Statistics` with ``classifier``, ``num_samples``, ``resolution`` and ``features``
      filled in.

    Raises:
      data.DataError: the data set cannot be loaded.
      StatsError: it holds fewer than 2 images.
    """
    from autogan_tf import data

    image_size = image_size or data.native_resolution(dataset)
    ds = data.make_uint8_dataset(dataset, batch_size, image_size, split=split, data_dir=data_dir,
                                 max_images=num_samples)
    sample = FeatureSample()
    mu, sigma, logits = compute_statistics(extractor, ds.as_numpy_iterator(), max_images=num_samples,
                                           progress=progress, sample=sample)
    return Statistics(mu=mu, sigma=sigma, classifier=extractor.name, num_samples=int(logits.shape[0]),
                      resolution=int(image_size), features=sample.features)


def class_statistics(dataset: str, extractor, num_classes: int, *, split: str = "train",
                     batch_size: int = 100, image_size: int | None = None,
                     data_dir: str | None = None) -> list:
    """Reference statistics of each class of a labelled data set (for intra-FID): one pass
    over its images, every image once, its features added to its own class's moments.

    Args:
      dataset: a labelled ``--dataset`` value.
      extractor: the feature extractor.
      num_classes: the data set's classes.
      split, batch_size, image_size, data_dir: which images, as `dataset_statistics`.

    Returns:
      A `Statistics` (mean and covariance) per class, in class order.

    Raises:
      StatsError: a class with fewer than 2 images.
    """
    from autogan_tf import data

    image_size = image_size or data.native_resolution(dataset)
    ds = data.make_uint8_dataset(dataset, batch_size, image_size, split=split,
                                 data_dir=data_dir, with_labels=True)
    moments = [RunningMoments() for _ in range(num_classes)]
    for images, labels in ds.as_numpy_iterator():
        features = np.asarray(extractor(images)[1])
        for c in np.unique(labels):
            moments[c].update(features[labels == c])
    thin = [c for c, m in enumerate(moments) if m.count < 2]
    if thin:
        raise StatsError(f"{dataset}: class {thin[0]} has fewer than 2 images in its {split} "
                         "split; intra-FID needs statistics of every class")
    return [Statistics(mu=m.mean, sigma=m.covariance, classifier=extractor.name,
                       num_samples=m.count, resolution=int(image_size)) for m in moments]


def _is_statistics_file(source: str) -> bool:
    return source.endswith(".npz")


def check_source(source: str) -> None:
    """Refuse, before any work, what is neither a statistics file nor a data set.

    Args:
      source: a statistics ``.npz`` path (it must exist) or a ``--dataset`` value.

    Raises:
      StatsError: a ``.npz`` path that does not exist.
      data.DataError: anything else that is not a data set name.
    """
    from autogan_tf import data

    if _is_statistics_file(source):
        if not os.path.isfile(source):
            raise StatsError(f"statistics file not found: {source}")
        return
    try:
        data.parse_dataset(source)
    except data.DataError as e:
        raise data.DataError(f"{source}: not a .npz statistics file and {e}") from None


def fid_between(first: str, second: str, *, classifier: str = "inception",
                     feature_layer: str | None = None, inception_path: str | None = None,
                     image_size: int | None = None, split: str = "train",
                     batch_size: int = 100, num_samples: int | None = None,
                     data_dir: str | None = None, kid: bool = True) -> dict:
    """FID and KID between two image sources, each a statistics file or a data set
    (``autogan-fid``).

    As TTUR's ``fid.py path1 path2``: a statistics ``.npz`` (TTUR's keys ``mu`` and
    ``sigma``) is read as it is; a data set (``cifar10``, ``shapes``, ``folder:PATH``...)
    is embedded on the fly.

    Args:
      first, second: the two sources (see `check_source`).
      classifier, feature_layer, inception_path, image_size: the network that embeds
        data sets (see `classifiers.load_feature_extractor`); loaded only if needed.
      split, batch_size, num_samples, data_dir: which images of a data set are embedded
        (num_samples None: the whole split).
      kid: compute KID too (about half a minute with Inception's 2048-d features on two
        CPU cores); False: ``kid_mean`` and ``kid_std`` are None.

    Returns:
      ``{"fid", "kid_mean", "kid_std", "a", "b", "classifier", "num_samples": [n_a, n_b]}``;
      ``kid_mean`` and ``kid_std`` are None when a statistics file keeps no features
      (TTUR's files, ours before KID).

    Raises:
      StatsError: the two sides come from different networks (a distance between
        them would mean nothing), or a file is unusable.
      errors.UserError: any other bad source, classifier or setting.
    """
    from autogan_tf.metrics import classifiers

    sources = (first, second)
    for source in sources:
        check_source(source)
    extractor = None
    both = []
    for source in sources:
        if _is_statistics_file(source):
            both.append(load_statistics(source))
            continue
        if extractor is None:
            extractor = classifiers.load_feature_extractor(classifier, feature_layer,
                                                           inception_path, image_size)
        both.append(dataset_statistics(source, extractor, split=split, batch_size=batch_size,
                                       num_samples=num_samples, image_size=image_size,
                                       data_dir=data_dir, progress=source))
    if extractor is not None:  # a data set was embedded: files must come from the same network
        for source, stats in zip(sources, both):
            check_compatible(stats, extractor, where=source)
    else:
        names = [s.classifier or "inception" for s in both]
        if names[0] != names[1]:
            raise StatsError(f"{first} was computed with '{names[0]}' but {second} with "
                             f"'{names[1]}'; FID needs features of the same network")
    kid_mean, kid_std = both[0].kid(both[1]) if kid else (None, None)
    return {"fid": both[0].fid(both[1]), "kid_mean": kid_mean, "kid_std": kid_std,
            "a": first, "b": second,
            "classifier": both[0].classifier or "inception",
            "num_samples": [s.num_samples for s in both]}
