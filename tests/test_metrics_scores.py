"""Inception Score, Frechet distance, streaming moments, statistics files."""

import numpy as np
import pytest

from autogan_tf.metrics import scores

from conftest import paper_mmd2


def _softmax_rows(rng, n, k, temperature=1.0):
    z = rng.normal(size=(n, k)) / temperature
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def original_inception_score(preds, splits=10):
    """Independent re-statement of improved-GAN's get_inception_score arithmetic."""
    out = []
    for i in range(splits):
        part = preds[(i * preds.shape[0] // splits):((i + 1) * preds.shape[0] // splits), :]
        kl = part * (np.log(part) - np.log(np.expand_dims(np.mean(part, 0), 0)))
        out.append(np.exp(np.mean(np.sum(kl, 1))))
    return np.mean(out), np.std(out)


# --------------------------------------------------------------------------- IS


def test_identical_predictions_score_one():
    row = _softmax_rows(np.random.default_rng(0), 1, 7)
    mean, std = scores.inception_score(np.repeat(row, 50, axis=0), splits=10)
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("k", [2, 5, 10])
def test_balanced_one_hot_scores_k(k):
    labels = np.arange(k * 10) % k  # every split of 10 holds each class equally often
    probs = np.eye(k)[labels]
    mean, std = scores.inception_score(probs, splits=10 if k in (2, 5, 10) else 1)
    assert mean == pytest.approx(k) and std == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("n,k,splits", [(1000, 10, 10), (997, 50, 10), (300, 1008, 3)])
def test_matches_original_code(n, k, splits):
    probs = _softmax_rows(np.random.default_rng(n), n, k, temperature=0.3)
    expected = original_inception_score(probs, splits)
    assert scores.inception_score(probs, splits) == pytest.approx(expected, rel=1e-10)


def test_from_logits_is_softmax_first():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(200, 12)) * 4 + 1000.0  # large offsets: needs a stable softmax
    expected = original_inception_score(_stable_softmax(logits), 10)
    assert scores.inception_score_from_logits(logits, 10) == pytest.approx(expected, rel=1e-10)


def _stable_softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_inception_score_rejects_bad_input():
    with pytest.raises(ValueError, match="splits"):
        scores.inception_score(np.full((5, 2), 0.5), splits=10)
    with pytest.raises(ValueError, match="logits"):
        scores.inception_score(np.random.default_rng(0).normal(size=(20, 3)), splits=2)
    with pytest.raises(ValueError, match="shape"):
        scores.inception_score(np.ones(10), splits=1)


# --------------------------------------------------------------------------- FID


def _random_spd(rng, d, rank=None):
    a = rng.normal(size=(d, rank or d))
    return a @ a.T / d


def _reference_fid(mu1, s1, mu2, s2):
    """Closed form via a symmetric square root: Tr sqrt(S1 S2) = Tr sqrt(S1^1/2 S2 S1^1/2)."""
    def psd_sqrt(m):
        w, v = np.linalg.eigh(m)
        return (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    r = psd_sqrt(s1)
    inner = np.linalg.eigvalsh(r @ s2 @ r)
    return np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sum(np.sqrt(np.clip(inner, 0, None)))


def test_fid_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(0).normal(size=(400, 32)) * 3 + 1
    mu, sigma = scores.feature_statistics(x)
    assert scores.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-6 * np.trace(sigma))


def test_fid_one_dimensional_closed_form():
    # N(m1, s1^2) vs N(m2, s2^2): (m1 - m2)^2 + (s1 - s2)^2
    assert scores.frechet_distance([1.0], [[4.0]], [-2.0], [[9.0]]) == pytest.approx(9.0 + 1.0)


def test_fid_commuting_covariances_closed_form():
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    a, b = rng.uniform(0.1, 5, 16), rng.uniform(0.1, 5, 16)
    mu1, mu2 = rng.normal(size=16), rng.normal(size=16)
    s1, s2 = (q * a) @ q.T, (q * b) @ q.T
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert scores.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_fid_general_gaussians_match_symmetric_formula():
    rng = np.random.default_rng(2)
    s1, s2 = _random_spd(rng, 24), _random_spd(rng, 24)
    mu1, mu2 = rng.normal(size=24), rng.normal(size=24)
    assert scores.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(
        _reference_fid(mu1, s1, mu2, s2), rel=1e-7)


def test_fid_rank_deficient_covariances_stay_finite():
    rng = np.random.default_rng(4)
    s1, s2 = _random_spd(rng, 20, rank=5), _random_spd(rng, 20, rank=5)
    mu = np.zeros(20)
    with np.errstate(all="ignore"):
        value = scores.frechet_distance(mu, s1, mu, s2)
    assert np.isfinite(value)
    assert value == pytest.approx(_reference_fid(mu, s1, mu, s2), rel=1e-2, abs=1e-2)


def test_fid_shape_mismatch_errors():
    with pytest.raises(scores.StatsError, match="lengths"):
        scores.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(scores.StatsError, match="covariance"):
        scores.frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(2))


# --------------------------------------------------------------------------- moments


def test_running_moments_equal_numpy_over_uneven_batches():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(103, 9)) * rng.uniform(0.1, 100, 9) + rng.normal(size=9) * 1e3
    moments = scores.RunningMoments()
    for lo, hi in [(0, 1), (1, 40), (40, 40), (40, 97), (97, 103)]:
        moments.update(x[lo:hi])
    assert moments.count == 103
    np.testing.assert_allclose(moments.mean, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(moments.covariance, np.cov(x, rowvar=False), rtol=1e-9, atol=1e-9)


def test_running_moments_errors():
    moments = scores.RunningMoments()
    with pytest.raises(ValueError, match="no features"):
        moments.mean
    moments.update(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="at least 2"):
        moments.covariance
    with pytest.raises(ValueError, match="dimension"):
        moments.update(np.zeros((2, 4)))


# --------------------------------------------------------------------------- files


def test_statistics_round_trip_with_extra_keys(tmp_path):
    rng = np.random.default_rng(6)
    stats = scores.Statistics(rng.normal(size=8), _random_spd(rng, 8), classifier="keras:c.keras",
                              num_samples=1234, resolution=48)
    path = str(tmp_path / "sub" / "stats.npz")
    scores.save_statistics(path, stats)
    back = scores.load_statistics(path)
    np.testing.assert_array_equal(back.mu, stats.mu)
    np.testing.assert_array_equal(back.sigma, stats.sigma)
    assert (back.classifier, back.num_samples, back.resolution) == ("keras:c.keras", 1234, 48)
    # TTUR's loader: plain np.load and the two keys, extra keys ignored.
    f = np.load(path)
    np.testing.assert_array_equal(f["mu"][:], stats.mu)
    np.testing.assert_array_equal(f["sigma"][:], stats.sigma)
    f.close()


def test_loads_ttur_format_file(tmp_path):
    rng = np.random.default_rng(7)
    mu, sigma = rng.normal(size=2048).astype(np.float32), np.eye(2048, dtype=np.float32)
    path = tmp_path / "fid_stats_cifar10_train.npz"
    np.savez_compressed(path, mu=mu, sigma=sigma)  # exactly the two keys, as TTUR ships them
    stats = scores.load_statistics(str(path))
    assert stats.classifier is None and stats.num_samples is None
    assert stats.mu.shape == (2048,) and stats.sigma.shape == (2048, 2048)
    np.testing.assert_array_equal(stats.mu, mu)


def test_bad_statistics_files_name_the_file(tmp_path):
    wrong = tmp_path / "wrong_shape.npz"
    np.savez(wrong, mu=np.zeros(4), sigma=np.eye(3))
    with pytest.raises(scores.StatsError, match="wrong_shape.npz.*wrong shape"):
        scores.load_statistics(str(wrong))
    missing = tmp_path / "no_sigma.npz"
    np.savez(missing, mu=np.zeros(4), cov=np.eye(4))
    with pytest.raises(scores.StatsError, match=r"no_sigma.npz lacks key\(s\) \['sigma'\]"):
        scores.load_statistics(str(missing))
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(scores.StatsError, match="junk.npz"):
        scores.load_statistics(str(junk))
    with pytest.raises(scores.StatsError, match="not found: .*absent.npz"):
        scores.load_statistics(str(tmp_path / "absent.npz"))
    with pytest.raises(scores.StatsError, match="out.npz"):
        scores.save_statistics(str(tmp_path / "out.npz"), scores.Statistics(np.zeros(3), np.eye(2)))


# --------------------------------------------------------------------------- KID


def test_mmd_matches_the_pairwise_formula():
    rng = np.random.default_rng(10)
    x, y = rng.normal(size=(12, 5)), rng.normal(0.3, 1.2, size=(9, 5))
    assert scores.mmd2_unbiased(x, y) == pytest.approx(paper_mmd2(x, y), rel=1e-10)


def test_kid_matches_the_formula_on_the_same_subsets():
    """Mean and (ddof 0) spread of the formula over the subsets the seed draws."""
    rng = np.random.default_rng(11)
    a, b = rng.normal(size=(30, 4)), rng.normal(0.5, 1.0, size=(25, 4))
    draw = np.random.default_rng(7)
    reference = [paper_mmd2(a[draw.choice(30, 10, replace=False)],
                            b[draw.choice(25, 10, replace=False)]) for _ in range(6)]
    mean, std = scores.kernel_inception_distance(a, b, subsets=6, subset_size=10, seed=7)
    assert mean == pytest.approx(np.mean(reference), rel=1e-10)
    assert std == pytest.approx(np.std(reference), rel=1e-10)


def test_kid_closed_forms_and_negative_estimates():
    # x = y = {1, -1} in one dimension: k(1, -1) = 0, k(1, 1) = k(-1, -1) = 8, so the
    # within-set terms (off the diagonal) are 0 and the estimate is -2 * 16 / 4 = -8.
    pair = np.array([[1.0], [-1.0]])
    assert scores.mmd2_unbiased(pair, pair) == pytest.approx(-8.0)
    # {a, a} against {b, b}: (a^2+1)^3 + (b^2+1)^3 - 2 (ab+1)^3; a = 1, b = 0: 8 + 1 - 2.
    assert scores.mmd2_unbiased(np.ones((2, 1)), np.zeros((2, 1))) == pytest.approx(7.0)
    # A set with itself: (2/m) (mean off-diagonal kernel - mean diagonal kernel) <= 0, -> 0.
    x = np.random.default_rng(12).normal(size=(400, 16))
    k = (x @ x.T / 16 + 1) ** 3
    off = (k.sum() - np.trace(k)) / (400 * 399)
    mean, std = scores.kernel_inception_distance(x, x, subsets=3, subset_size=400)
    assert mean == pytest.approx(2 / 400 * (off - np.trace(k) / 400), rel=1e-9)
    assert mean < 0 and abs(mean) < 0.05 * off and std == pytest.approx(0.0, abs=1e-9)


def test_kid_is_about_zero_for_one_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(13)
    a, same = rng.normal(size=(2000, 8)), rng.normal(size=(2000, 8))
    shifted = rng.normal(0.5, 1.0, size=(2000, 8))
    kid_same, spread = scores.kernel_inception_distance(a, same, subsets=20, subset_size=500)
    kid_shifted, _ = scores.kernel_inception_distance(a, shifted, subsets=20, subset_size=500)
    assert abs(kid_same) < 3 * spread and kid_shifted > 20 * spread
    estimates = [scores.mmd2_unbiased(a[i:i + 50], same[i:i + 50]) for i in range(0, 2000, 50)]
    assert min(estimates) < 0 < max(estimates)  # unbiased: negative estimates happen


def test_kid_refuses_mismatched_or_tiny_sets():
    with pytest.raises(scores.StatsError, match="one d"):
        scores.kernel_inception_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(scores.StatsError, match="at least 2"):
        scores.kernel_inception_distance(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="subset_size"):
        scores.kernel_inception_distance(np.zeros((5, 3)), np.zeros((5, 3)), subset_size=1)


def test_a_feature_sample_is_uniform_and_bounded():
    sample = scores.FeatureSample(capacity=50, seed=0)
    assert sample.features is None
    rows = np.arange(1000, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    for start in range(0, 1000, 70):
        sample.update(rows[start:start + 70])
    kept = sample.features
    assert kept.shape == (50, 3) and len(np.unique(kept[:, 0])) == 50
    # Drawn from the whole stream, not its start: across seeds every tenth is reached.
    seen = set()
    for seed in range(10):
        other = scores.FeatureSample(capacity=50, seed=seed)
        other.update(rows)
        seen.update((other.features[:, 0] // 100).astype(int))
    assert seen == set(range(10))
    small = scores.FeatureSample(capacity=50)
    small.update(rows[:20])
    np.testing.assert_array_equal(np.sort(small.features[:, 0]), rows[:20, 0])


def test_statistics_keep_features_for_kid_and_older_files_give_none(tmp_path):
    rng = np.random.default_rng(14)
    features = rng.normal(size=(30, 6)).astype(np.float32)
    stats = scores.Statistics(*scores.feature_statistics(features), classifier="linear",
                              features=features)
    path = str(tmp_path / "stats.npz")
    scores.save_statistics(path, stats)
    back = scores.load_statistics(path)
    np.testing.assert_array_equal(back.features, features)
    other = scores.Statistics(back.mu, back.sigma, features=features[::-1] + 1.0)
    assert back.kid(other) == scores.kernel_inception_distance(features, features[::-1] + 1.0)
    old = str(tmp_path / "old.npz")
    np.savez(old, mu=stats.mu, sigma=stats.sigma)
    assert scores.load_statistics(old).features is None
    assert scores.load_statistics(old).kid(back) == (None, None)
    with pytest.raises(scores.StatsError, match="features of shape"):
        scores.save_statistics(str(tmp_path / "bad.npz"),
                               scores.Statistics(stats.mu, stats.sigma, features=features[:, :4]))
