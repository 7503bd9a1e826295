"""Statistics computed batch by batch (compute_statistics, generator_scores), and to_uint8."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from autogan_tf.images import to_uint8
from autogan_tf.metrics import classifiers, scores, streaming


class LinearExtractor:
    """A transparent extractor: features = flattened pixels @ A, logits = features @ B."""

    name = "linear"

    def __init__(self, hw=4, feature_dim=6, num_classes=3, seed=0):
        rng = np.random.default_rng(seed)
        self.a = rng.normal(size=(hw * hw * 3, feature_dim)) / 100
        self.b = rng.normal(size=(feature_dim, num_classes))
        self.feature_dim, self.num_classes = feature_dim, num_classes
        self.calls = []

    def __call__(self, images):
        x = np.asarray(images, np.float64).reshape(len(images), -1)
        self.calls.append(len(images))
        feats = x @ self.a
        return feats @ self.b, feats


def test_to_uint8_matches_the_official_conversion():
    x = np.array([-1.0, -3.0, 0.0, 1.0, 2.0, 0.5, -0.999, 0.99999], np.float32)
    # 0.0 -> 127.5 truncates to 127; 0.5 -> 191.25 -> 191; -0.999 -> 0.1275 -> 0
    np.testing.assert_array_equal(to_uint8(x), [0, 0, 127, 255, 255, 191, 0, 254])
    assert to_uint8(x).dtype == np.uint8
    rand = np.random.default_rng(0).uniform(-1.2, 1.2, (4, 8, 8, 3)).astype(np.float32)
    out = to_uint8(tf.constant(rand))
    assert out.dtype == tf.uint8
    np.testing.assert_array_equal(out.numpy(), to_uint8(rand))
    np.testing.assert_array_equal(out.numpy(), np.clip(rand * 127.5 + 127.5, 0, 255).astype(np.uint8))


def test_streamed_statistics_equal_all_at_once():
    images = np.random.default_rng(1).integers(0, 256, (53, 4, 4, 3), dtype=np.uint8)
    extractor = LinearExtractor()
    batches = (images[i:i + 10] for i in range(0, 53, 10))
    mu, sigma, logits = streaming.compute_statistics(extractor, batches)
    assert extractor.calls == [10, 10, 10, 10, 10, 3]
    all_logits, all_feats = LinearExtractor()(images)
    np.testing.assert_allclose(mu, all_feats.mean(0), rtol=1e-10)
    np.testing.assert_allclose(sigma, np.cov(all_feats, rowvar=False), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(logits, all_logits, rtol=1e-6)


def test_streamed_keras_features_equal_one_big_batch():
    keras.utils.set_random_seed(2)
    model = classifiers.build_classifier(5, image_size=8, width=2)
    extractor = classifiers.KerasClassifierExtractor(model)
    images = np.random.default_rng(2).integers(0, 256, (40, 8, 8, 3), dtype=np.uint8)
    mu, sigma, logits = streaming.compute_statistics(extractor, (images[i:i + 7] for i in range(0, 40, 7)))
    all_logits, all_feats = extractor(images)
    ref_mu, ref_sigma = scores.feature_statistics(all_feats.numpy())
    np.testing.assert_allclose(mu, ref_mu, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sigma, ref_sigma, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(logits, all_logits.numpy(), rtol=1e-5, atol=1e-5)


def test_max_images_cuts_the_stream():
    images = np.random.default_rng(3).integers(0, 256, (30, 4, 4, 3), dtype=np.uint8)
    extractor = LinearExtractor()
    _, _, logits = streaming.compute_statistics(extractor, (images[i:i + 8] for i in range(0, 30, 8)),
                                               max_images=20)
    assert logits.shape[0] == 20 and extractor.calls == [8, 8, 4]


def test_generator_scores_stream_batches_and_match_direct_computation():
    rng = np.random.default_rng(4)
    pool = rng.integers(0, 256, (45, 4, 4, 3), dtype=np.uint8)
    served = []

    def generate(n):
        start = sum(served)
        served.append(n)
        return tf.constant(pool[start:start + n])

    extractor = LinearExtractor()
    logits, feats = LinearExtractor()(pool)
    mu, sigma = scores.feature_statistics(feats)
    result = streaming.generator_scores(generate, 45, 16, extractor,
                                       fid_stats=scores.Statistics(mu, sigma, classifier="linear"),
                                       splits=5)
    assert served == [16, 16, 13]
    assert result["num_samples"] == 45 and result["classifier"] == "linear"
    is_mean, is_std = scores.inception_score_from_logits(logits, 5)
    assert result["is_mean"] == pytest.approx(is_mean) and result["is_std"] == pytest.approx(is_std)
    assert result["fid"] == pytest.approx(0.0, abs=1e-6)

    other = streaming.generator_scores(lambda n: pool[:n] // 2, 20, 20, LinearExtractor(),
                                      fid_stats=(mu, sigma), splits=2)
    half_mu, half_sigma = scores.feature_statistics(LinearExtractor()(pool[:20] // 2)[1])
    assert other["fid"] == pytest.approx(scores.frechet_distance(half_mu, half_sigma, mu, sigma))
    assert streaming.generator_scores(lambda n: pool[:n], 20, 10, LinearExtractor(), splits=2)["fid"] is None


def test_generator_scores_refuse_statistics_of_another_network(tmp_path):
    extractor = LinearExtractor()
    path = str(tmp_path / "inception_stats.npz")
    scores.save_statistics(path, scores.Statistics(np.zeros(6), np.eye(6)))  # no name: Inception
    with pytest.raises(scores.StatsError, match="classifier 'inception', not 'linear'"):
        streaming.generator_scores(lambda n: np.zeros((n, 4, 4, 3), np.uint8), 10, 5, extractor,
                                  fid_stats=path, splits=2)
    with pytest.raises(scores.StatsError, match="8-d features"):
        streaming.generator_scores(lambda n: np.zeros((n, 4, 4, 3), np.uint8), 10, 5, extractor,
                                  fid_stats=(np.zeros(8), np.eye(8)), splits=2)
    with pytest.raises(ValueError, match="num_samples"):
        streaming.generator_scores(lambda n: None, 5, 5, extractor, splits=10)


def test_kid_beside_fid_when_the_reference_keeps_features(tmp_path):
    rng = np.random.default_rng(5)
    pool = rng.integers(0, 256, (60, 4, 4, 3), dtype=np.uint8)
    _, feats = LinearExtractor()(pool)
    stats = scores.Statistics(*scores.feature_statistics(feats), classifier="linear",
                              features=feats.astype(np.float32))
    served = []

    def generate(n):  # the pool's first 40 images, halved, in batches
        start = sum(served)
        served.append(n)
        return pool[start:start + n] // 2

    result = streaming.generator_scores(generate, 40, 16, LinearExtractor(), fid_stats=stats,
                                        splits=2)
    half = LinearExtractor()(pool[:40] // 2)[1].astype(np.float32)
    expected = scores.kernel_inception_distance(half, feats.astype(np.float32))
    assert result["kid_mean"] == pytest.approx(expected[0], rel=1e-6)
    # Subsets of at most 1,000 rows take all 40 and 60: every subset is the whole sets.
    assert result["kid_std"] == pytest.approx(0.0, abs=1e-9 * result["kid_mean"])
    assert result["kid_mean"] > 0
    off = streaming.generator_scores(lambda n: pool[:n], 20, 10, LinearExtractor(),
                                     fid_stats=stats, splits=2, kid=False)
    assert off["kid_mean"] is None and off["fid"] is not None
    old = streaming.generator_scores(lambda n: pool[:n], 20, 10, LinearExtractor(),
                                     fid_stats=(stats.mu, stats.sigma), splits=2)
    assert old["kid_mean"] is None and old["kid_std"] is None


def test_data_set_statistics_keep_a_sample_of_features_for_kid(tmp_path):
    extractor = LinearExtractor(hw=8)
    stats = streaming.dataset_statistics("shapes", extractor, num_samples=300, image_size=8,
                                         batch_size=64)
    assert stats.features.shape == (300, 6)
    path = str(tmp_path / "shapes.npz")
    scores.save_statistics(path, stats)
    result = streaming.fid_between(path, path)
    assert result["fid"] == pytest.approx(0.0, abs=1e-6)
    assert result["kid_mean"] < 0  # a set with itself: unbiased, slightly below 0
    assert streaming.fid_between(path, path, kid=False)["kid_mean"] is None
