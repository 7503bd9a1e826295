"""The Python API: the same jobs as the command lines, driven from a notebook or script."""

import json
import os

import numpy as np
import pytest

from autogan_tf import api, training
from autogan_tf.images import to_uint8
from autogan_tf.metrics import classifiers

TINY = dict(arch="1 0 1 1 1 0 0 1 1 1 0 1 0 3", dataset="shapes", gf_dim=4, df_dim=4,
            latent_dim=4, g_batch_size=4, d_batch_size=4, n_critic=1, max_iters=2,
            log_every=1, save_every=2, eval_every=0, ema_decay=0.9)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A two-iteration run trained through the API: settings as a dict plus keywords."""
    clf = str(tmp_path_factory.mktemp("clf") / "clf.keras")
    classifiers.build_classifier(num_classes=8, image_size=32, width=4).save(clf)
    directory = str(tmp_path_factory.mktemp("api") / "run")
    result = api.train(directory, {**TINY, "max_iters": 99}, max_iters=2, classifier=clf,
                       progress=False)
    assert result["step"] == 2
    return directory


def test_train_takes_dict_and_keywords_keywords_win(run_dir):
    with open(os.path.join(run_dir, "config.json"), encoding="utf-8") as f:
        saved = json.load(f)
    assert saved["max_iters"] == 2 and saved["gf_dim"] == 4 and saved["dataset"] == "shapes"


def test_load_generator_is_the_runs_ema_or_raw_generator(run_dir):
    ema = api.load_generator(run_dir)
    raw = api.load_generator(run_dir, generator="raw")
    expected_ema, _, _ = training.restore_generator(run_dir, ema=True)
    expected_raw, _, _ = training.restore_generator(run_dir, ema=False)
    for got, want in ((ema, expected_ema), (raw, expected_raw)):
        for a, b in zip(got.weights, want.weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    # After two iterations with decay 0.9 the average differs from the raw weights.
    assert any(not np.array_equal(a.numpy(), b.numpy()) for a, b in zip(ema.weights, raw.weights))


def test_generate_is_seeded_uint8(run_dir):
    g = api.load_generator(run_dir)
    a, b = api.generate(g, 5, seed=3, batch_size=2), api.generate(g, 5, seed=3)
    assert a.shape == (5, 32, 32, 3) and a.dtype == np.uint8
    # The batch size does not change the noise of a seed (the images agree up to a unit of
    # rounding where another batch size picks another convolution algorithm).
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    assert not np.array_equal(a, api.generate(g, 5, seed=4))
    # The SavedModel's noise for a seed: the served images are these images.
    from autogan_tf import sampling

    z = sampling.latents(3, 0, 5, g.latent_dim)
    assert np.abs(a.astype(int) - to_uint8(g(z, training=False)).numpy().astype(int)).max() <= 1


def test_evaluate_and_export(run_dir, tmp_path):
    scores = api.evaluate(run_dir, num_samples=20, batch_size=10)
    assert scores["num_samples"] == 20 and 1.0 <= scores["is_mean"] <= 8.0
    assert scores["fid"] >= 0 and scores["generator"] == "ema"
    assert os.path.exists(os.path.join(run_dir, "fid_stats.npz"))
    again = api.evaluate(run_dir, num_samples=20, batch_size=10)  # cached statistics, same noise
    assert again["fid"] == pytest.approx(scores["fid"], rel=1e-5)
    path = api.export(run_dir, str(tmp_path / "export" / "autogan"), version=3)
    assert path.endswith(os.path.join("autogan", "3"))
    assert os.path.exists(os.path.join(path, "saved_model.pb"))
    from autogan_tf.serving import client as serving

    served = np.asarray(serving.LocalGenerator(path).generate(6, 11), np.int16)
    local = api.generate(api.load_generator(run_dir), 6, seed=11).astype(np.int16)
    assert np.abs(served - local).max() <= 1  # the same noise; graph vs eager rounding


def test_bad_settings_name_the_problem(run_dir):
    with pytest.raises(ValueError, match=r"unknown TrainConfig setting\(s\) \['gf_dimm'\]"):
        api.train(run_dir, gf_dimm=3)
    with pytest.raises(ValueError, match="n_critic"):
        api.train(run_dir, TINY, n_critic=0)
    with pytest.raises(TypeError, match="config must be"):
        api.train(run_dir, config=[1, 2])
    with pytest.raises(ValueError, match="generator must be one of"):
        api.load_generator(run_dir, generator="average")
    with pytest.raises(ValueError, match="num_samples must be at least 10"):
        api.evaluate(run_dir, num_samples=5)
    with pytest.raises(ValueError, match="num_images must be positive"):
        api.generate(api.load_generator(run_dir), 0)


def test_train_with_classifier_auto_trains_one_as_the_command_does(tmp_path, monkeypatch):
    """``classifier="auto"`` is resolved before the run (it used to reach the run as a file
    name and fail at the first evaluation)."""
    made = []

    def small_classifier(dataset, path, **kwargs):
        classifiers.build_classifier(num_classes=8, image_size=32, width=4).save(path)
        made.append((dataset, path))
        return path, None

    monkeypatch.setattr(classifiers, "train_small_classifier", small_classifier)
    directory = str(tmp_path / "run")
    result = api.train(directory, TINY, classifier="auto", eval_every=2, eval_num_samples=10,
                       progress=False)
    assert made == [("shapes", os.path.join(directory, "classifier.keras"))]
    assert result["step"] == 2 and result["is_mean"] >= 1.0
    with open(os.path.join(directory, "config.json"), encoding="utf-8") as f:
        assert json.load(f)["classifier"] == made[0][1]
