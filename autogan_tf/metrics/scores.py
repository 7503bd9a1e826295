"""Inception Score, Frechet distance, kernel inception distance and the statistics files.

Pure NumPy/SciPy, so the numbers do not depend on TensorFlow. The formulas
follow the two reference implementations the paper's numbers come from:
improved-GAN's Inception Score (10 splits, KL per split, exp of the mean) and
TTUR's FID (``scipy.linalg.sqrtm`` with an ``eps * I`` fallback). KID is
Bińkowski et al. 2018's: the unbiased estimate of the squared MMD with the cubic
polynomial kernel, averaged over random subsets. Statistics files use TTUR's
``.npz`` layout (keys ``mu`` and ``sigma``) so its published
``fid_stats_cifar10_train.npz`` loads unchanged; extra keys describe how a
file was made, or keep a sample of the features for KID (``features``), and are
ignored by TTUR's loader.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
import zipfile

import numpy as np

from autogan_tf import errors
from autogan_tf.config import IS_SPLITS

# An imaginary part of sqrtm larger than this means the product of the two
# covariances is badly conditioned and the distance cannot be trusted.
_IMAGINARY_TOLERANCE = 1e-3

# KID: random subsets of this many features from each side, this many times (Bińkowski et
# al.'s code and torch-fidelity's defaults); statistics files keep a sample of at most
# KID_FEATURES real features for it (80 MB of Inception features), and the evaluation as
# many generated ones.
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
KID_FEATURES = 10_000


class StatsError(errors.UserError):
    """A statistics file or array that cannot be used for a Frechet distance."""


# --------------------------------------------------------------------------
# Inception Score
# --------------------------------------------------------------------------


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (stable: subtracts the row maximum).

    Args:
      logits: ``[N, K]`` class logits.

    Returns:
      float64 ``[N, K]`` probabilities, each row summing to 1.
    """
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def inception_score(probs: np.ndarray, splits: int = IS_SPLITS) -> tuple[float, float]:
    """Mean and standard deviation of exp(E[KL(p(y|x) || p(y))]) over splits.

    Split ``i`` holds rows ``[i*N//splits, (i+1)*N//splits)``, as in the
    original improved-GAN code, so the figures are directly comparable. Zero
    probabilities contribute 0 (the limit of p log p) instead of NaN, which
    only matters for hard one-hot inputs; softmax outputs are never zero.

    Args:
      probs: ``[N, K]`` class probabilities of the N images.
      splits: how many splits to average over (improved-GAN's 10).

    Returns:
      ``(mean, std)`` of the per-split scores.

    Raises:
      ValueError: ``probs`` is not a non-empty ``[N, K]`` matrix of probability rows, or
        ``splits`` is not in [1, N].
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"inception_score needs probabilities of shape [N, K], got {p.shape}")
    if not 1 <= splits <= p.shape[0]:
        raise ValueError(f"splits must be in [1, {p.shape[0]}] (number of samples), got {splits}")
    if np.any(p < 0) or not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("inception_score needs rows of probabilities (non-negative, summing to 1); "
                         "pass logits through inception_score_from_logits instead")
    n = p.shape[0]
    scores = []
    for i in range(splits):
        part = p[i * n // splits:(i + 1) * n // splits]
        marginal = part.mean(axis=0, keepdims=True)
        kl = _xlogy(part, part) - _xlogy(part, np.broadcast_to(marginal, part.shape))
        scores.append(np.exp(kl.sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))


def inception_score_from_logits(logits: np.ndarray, splits: int = IS_SPLITS) -> tuple[float, float]:
    """Inception Score of class logits (softmax first).

    Args:
      logits: ``[N, K]`` class logits of the N images.
      splits: how many splits to average over.

    Returns:
      ``(mean, std)``, as `inception_score`.

    Raises:
      ValueError: as `inception_score`.
    """
    return inception_score(softmax(logits), splits)


def _xlogy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x * log(y) with 0 where x == 0 (so 0 log 0 = 0)."""
    out = np.zeros_like(x)
    mask = x > 0
    out[mask] = x[mask] * np.log(y[mask])
    return out


# --------------------------------------------------------------------------
# Frechet distance
# --------------------------------------------------------------------------


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 sqrt(sigma1 sigma2)), TTUR's way.

    When the matrix square root is not finite, ``eps`` is added to both
    diagonals and the root recomputed; a small imaginary part from numerical
    error is dropped, a large one is an error.

    Args:
      mu1: the mean feature vector ``[D]`` of the first distribution.
      sigma1: its covariance ``[D, D]``.
      mu2: the mean feature vector ``[D]`` of the second distribution.
      sigma2: its covariance ``[D, D]``.
      eps: the diagonal offset of the fallback.

    Returns:
      The Frechet distance (FID when the features are Inception's pool features).

    Raises:
      StatsError: the shapes do not match, or the square root has a large imaginary part.
    """
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape:
        raise StatsError(f"mean vectors have different lengths: {mu1.shape} vs {mu2.shape} "
                         "(statistics from different feature extractors?)")
    if sigma1.shape != sigma2.shape or sigma1.shape != (mu1.shape[0],) * 2:
        raise StatsError(f"covariance shapes {sigma1.shape} and {sigma2.shape} do not match "
                         f"mean length {mu1.shape[0]}")

    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        warnings.warn(f"FID: sigma1 @ sigma2 is singular; adding {eps} to the diagonals")
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        largest = np.max(np.abs(covmean.imag))
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=_IMAGINARY_TOLERANCE):
            raise StatsError(f"FID: matrix square root has an imaginary component of {largest:.3g}")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


# --------------------------------------------------------------------------
# Kernel inception distance
# --------------------------------------------------------------------------


def polynomial_kernel(x, y) -> np.ndarray:
    """KID's kernel ``k(x, y) = (x . y / d + 1) ** 3`` between every row of ``x`` and of ``y``.

    Args:
      x: ``[m, d]`` features.
      y: ``[n, d]`` features.

    Returns:
      float64 ``[m, n]``.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x, y) -> float:
    """The unbiased estimate of the squared MMD between the sets ``x`` and ``y`` under
    `polynomial_kernel`:

        sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (n (n - 1))
        - 2 sum_{i, j} k(x_i, y_j) / (m n)

    Unbiased, so it can be negative when the two distributions are close (even for two
    identical sets: the diagonal ``k(x_i, x_i)`` is left out of the first sums, not of
    the last).

    Args:
      x: ``[m, d]`` features, ``m >= 2``.
      y: ``[n, d]`` features, ``n >= 2``.

    Returns:
      The estimate.
    """
    m, n = len(x), len(y)
    k_xx, k_yy = polynomial_kernel(x, x), polynomial_kernel(y, y)
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * polynomial_kernel(x, y).mean())


def kernel_inception_distance(features_a, features_b, subsets: int = KID_SUBSETS,
                              subset_size: int = KID_SUBSET_SIZE,
                              seed: int = 0) -> tuple[float, float]:
    """KID (Bińkowski et al. 2018): `mmd2_unbiased` of random subsets, its mean and spread.

    Each of ``subsets`` times, ``subset_size`` rows are drawn without replacement from
    each side (all rows of a side that has fewer) and their `mmd2_unbiased` is taken. On
    any features (Inception's pool features: the KID of the literature; a Keras
    classifier's: comparable only with itself).

    Args:
      features_a: ``[N_a, d]`` features of one set.
      features_b: ``[N_b, d]`` features of the other.
      subsets: how many subsets.
      subset_size: rows per subset from each side.
      seed: the seed of the subsets.

    Returns:
      ``(mean, std)`` over the subsets (``std``: NumPy's, with ``ddof=0``).

    Raises:
      StatsError: the feature sizes differ, or a side has fewer than 2 rows.
      ValueError: ``subsets`` below 1 or ``subset_size`` below 2.
    """
    a, b = np.asarray(features_a), np.asarray(features_b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise StatsError(f"KID needs two [N, d] feature sets of one d, got {a.shape} and "
                         f"{b.shape} (features from different extractors?)")
    if min(len(a), len(b)) < 2:
        raise StatsError(f"KID needs at least 2 features on each side, got {len(a)} and "
                         f"{len(b)}")
    if subsets < 1 or subset_size < 2:
        raise ValueError(f"need subsets >= 1 and subset_size >= 2, got {subsets}, {subset_size}")
    rng = np.random.default_rng(seed)
    size_a, size_b = min(subset_size, len(a)), min(subset_size, len(b))
    estimates = [mmd2_unbiased(a[rng.choice(len(a), size_a, replace=False)],
                               b[rng.choice(len(b), size_b, replace=False)])
                 for _ in range(subsets)]
    return float(np.mean(estimates)), float(np.std(estimates))


class FeatureSample:
    """A uniform random sample of at most ``capacity`` feature vectors fed batch by batch.

    Every row gets a random key and the ``capacity`` rows with the smallest keys are kept
    (each subset of that size is equally likely), in a buffer allocated once: memory stays
    ``capacity x D`` however many rows pass. For KID, whose subsets need the features
    themselves, not their moments; a data set's images come in a fixed order (a folder:
    class by class), so its first rows would not do.

    Args:
      capacity: the most rows kept.
      seed: the seed of the keys (the same rows give the same sample).
    """

    def __init__(self, capacity: int = KID_FEATURES, seed: int = 0):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._rng = np.random.default_rng(seed)
        self._rows = None
        self._keys = np.full([capacity], np.inf)  # inf: a free slot

    def update(self, features) -> None:
        """Offer a batch of rows to the sample.

        Args:
          features: ``[B, D]`` features.

        Raises:
          ValueError: ``features`` is not 2-D, or D differs from earlier batches.
        """
        x = np.asarray(features, np.float32)
        if x.ndim != 2:
            raise ValueError(f"features must be [B, D], got shape {x.shape}")
        if self._rows is None:
            self._rows = np.zeros([self.capacity, x.shape[1]], np.float32)
        if x.shape[1] != self._rows.shape[1]:
            raise ValueError(f"feature dimension changed from {self._rows.shape[1]} to "
                             f"{x.shape[1]}")
        keys = self._rng.random(len(x))
        every_key = np.concatenate([self._keys, keys])
        smallest = np.argpartition(every_key, self.capacity - 1)[:self.capacity]
        incoming = smallest[smallest >= self.capacity] - self.capacity
        kept = np.zeros([self.capacity], bool)
        kept[smallest[smallest < self.capacity]] = True
        slots = np.flatnonzero(~kept)  # as many as incoming rows
        self._rows[slots], self._keys[slots] = x[incoming], keys[incoming]

    @property
    def features(self) -> np.ndarray | None:
        """The sampled rows, float32 ``[min(capacity, rows offered), D]`` (None: none yet)."""
        if self._rows is None:
            return None
        return self._rows[np.isfinite(self._keys)]


# --------------------------------------------------------------------------
# Streaming mean / covariance
# --------------------------------------------------------------------------


class RunningMoments:
    """Mean and covariance of feature vectors fed batch by batch.

    Batches are merged with Chan et al.'s pairwise update in float64, so the
    result equals ``np.mean``/``np.cov`` of all rows at once while memory stays
    O(D^2) whatever the number of samples.

    Args:
      dim: the feature dimension D; None takes it from the first batch.
    """

    def __init__(self, dim: int | None = None):
        self.count = 0
        self.dim = dim
        self._mean = None
        self._m2 = None

    def update(self, features) -> None:
        """Add a batch of feature vectors.

        Args:
          features: ``[B, D]`` features; an empty batch changes nothing.

        Raises:
          ValueError: ``features`` is not 2-D, or D differs from earlier batches.
        """
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"features must be [B, D], got shape {x.shape}")
        if self.dim is None:
            self.dim = x.shape[1]
        if x.shape[1] != self.dim:
            raise ValueError(f"feature dimension changed from {self.dim} to {x.shape[1]}")
        nb = x.shape[0]
        if nb == 0:
            return
        mb = x.mean(axis=0)
        centered = x - mb
        m2b = centered.T @ centered
        if self.count == 0:
            self._mean, self._m2, self.count = mb, m2b, nb
            return
        n = self.count + nb
        delta = mb - self._mean
        self._mean = self._mean + delta * (nb / n)
        self._m2 = self._m2 + m2b + np.outer(delta, delta) * (self.count * nb / n)
        self.count = n

    @property
    def mean(self) -> np.ndarray:
        """The mean ``[D]`` of every row added so far.

        Raises:
          ValueError: nothing was added yet.
        """
        if self.count == 0:
            raise ValueError("no features were added")
        return self._mean

    @property
    def covariance(self) -> np.ndarray:
        """Unbiased (N-1) sample covariance, as ``np.cov(rowvar=False)``.

        Raises:
          ValueError: fewer than 2 rows were added.
        """
        if self.count < 2:
            raise ValueError(f"a covariance needs at least 2 samples, got {self.count}")
        return self._m2 / (self.count - 1)


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) of a [N, D] feature matrix, as TTUR computes them.

    Args:
      features: ``[N, D]`` features.

    Returns:
      ``(mu, sigma)``: the mean ``[D]`` and the unbiased covariance ``[D, D]``, float64.
    """
    x = np.asarray(features, dtype=np.float64)
    return x.mean(axis=0), np.cov(x, rowvar=False)


# --------------------------------------------------------------------------
# Statistics files
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Statistics:
    """Reference statistics of a feature distribution plus how they were made.

    Attributes:
      mu: the mean feature vector ``[D]``.
      sigma: the covariance ``[D, D]``.
      classifier: the feature extractor's name (None: unknown, e.g. TTUR's own files).
      num_samples: how many images the statistics came from (None: unknown).
      resolution: the images' side in pixels (None: unknown).
      features: a uniform random sample ``[n, D]`` of the feature vectors (`FeatureSample`),
        for KID (None: not kept, as in TTUR's files and ours before KID).
    """

    mu: np.ndarray
    sigma: np.ndarray
    classifier: str | None = None  # None: unknown (e.g. TTUR's files, which are Inception)
    num_samples: int | None = None
    resolution: int | None = None
    features: np.ndarray | None = None

    def fid(self, other: "Statistics", eps: float = 1e-6) -> float:
        """The Frechet distance between these statistics and ``other`` (`frechet_distance`).

        Args:
          other: the statistics to compare with.
          eps: the diagonal offset used if the covariance product is singular.

        Returns:
          The distance.

        Raises:
          StatsError: mismatched shapes (statistics from different extractors) or an unreliable
            square root.
        """
        return frechet_distance(self.mu, self.sigma, other.mu, other.sigma, eps=eps)

    def kid(self, other: "Statistics") -> tuple[float | None, float | None]:
        """KID's ``(mean, std)`` between the kept features of these statistics and ``other``'s
        (`kernel_inception_distance`), or ``(None, None)`` when either kept none.

        Args:
          other: the statistics to compare with.

        Raises:
          StatsError: the feature sizes differ.
        """
        if self.features is None or other.features is None:
            return None, None
        return kernel_inception_distance(self.features, other.features)


def save_statistics(path: str, stats: Statistics) -> None:
    """Write ``stats`` as an .npz TTUR can read (plus descriptive extra keys).

    Args:
      path: the file to write (the name is kept as given: no ``.npz`` is appended).
      stats: the statistics; the known descriptive fields are written when not None.

    Raises:
      StatsError: wrong shapes or non-finite values (nothing is written).
    """
    _check_shapes(stats.mu, stats.sigma, path, stats.features)
    extra = {}
    if stats.classifier is not None:
        extra["classifier"] = np.array(stats.classifier)
    if stats.num_samples is not None:
        extra["num_samples"] = np.array(stats.num_samples, dtype=np.int64)
    if stats.resolution is not None:
        extra["resolution"] = np.array(stats.resolution, dtype=np.int64)
    if stats.features is not None:
        extra["features"] = np.asarray(stats.features, np.float32)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with open(path, "wb") as f:  # a file object keeps np.savez from appending ".npz"
        np.savez(f, mu=np.asarray(stats.mu, np.float64), sigma=np.asarray(stats.sigma, np.float64),
                 **extra)


def load_statistics(path: str) -> Statistics:
    """Read an .npz with ``mu`` [D] and ``sigma`` [D, D] (and ``features`` [n, D] for KID,
    when it has them); errors name the file.

    Args:
      path: the ``.npz`` file (TTUR's or one `save_statistics` wrote).

    Returns:
      The `Statistics`, with the descriptive fields the file has (else None).

    Raises:
      StatsError: the file is missing, unreadable, lacks ``mu`` or ``sigma``, or has wrong
        shapes or non-finite values.
    """
    if not os.path.isfile(path):
        raise StatsError(f"statistics file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            keys = set(f.files)
            missing = {"mu", "sigma"} - keys
            if missing:
                raise StatsError(f"statistics file {path} lacks key(s) {sorted(missing)} "
                                 f"(has {sorted(keys)}); expected TTUR's format with 'mu' and 'sigma'")
            mu, sigma = f["mu"][:], f["sigma"][:]
            classifier = str(f["classifier"]) if "classifier" in keys else None
            num_samples = int(f["num_samples"]) if "num_samples" in keys else None
            resolution = int(f["resolution"]) if "resolution" in keys else None
            features = f["features"][:] if "features" in keys else None
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        if isinstance(e, StatsError):
            raise
        raise StatsError(f"cannot read statistics file {path}: {e}") from e
    _check_shapes(mu, sigma, path, features)
    return Statistics(mu=mu, sigma=sigma, classifier=classifier, num_samples=num_samples,
                      resolution=resolution, features=features)


def _check_shapes(mu, sigma, where, features=None) -> None:
    mu, sigma = np.asarray(mu), np.asarray(sigma)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise StatsError(f"statistics in {where} have the wrong shape: mu {mu.shape}, sigma "
                         f"{sigma.shape}; expected mu [D] and sigma [D, D]")
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma))):
        raise StatsError(f"statistics in {where} contain NaN or infinite values")
    if features is not None:
        features = np.asarray(features)
        if features.ndim != 2 or features.shape[1] != mu.shape[0]:
            raise StatsError(f"statistics in {where} keep features of shape {features.shape}; "
                             f"expected [n, {mu.shape[0]}] (the mean's length)")
        if not np.all(np.isfinite(features)):
            raise StatsError(f"statistics in {where} keep NaN or infinite features")
