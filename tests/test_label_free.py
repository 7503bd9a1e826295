"""Label-free feature networks and the search's distance reward (issue 36).

References: NumPy's rot90, the NT-Xent and unbiased-MMD formulas written out here from their
papers, and images of known order of quality (real, blurred, noise).
"""

import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from autogan_tf import config as config_lib
from autogan_tf import errors
from autogan_tf.metrics import classifiers, label_free
from autogan_tf.search import loop as search
from autogan_tf.search import rewards

from conftest import paper_mmd2


@pytest.fixture(scope="module")
def unlabelled_folder(tmp_path_factory):
    """96 images of 16 px in one folder, no sub-folders: one class. Each a scene with an up
    and a down, as photographs have (a light sky fading to dark ground), and a coloured disc
    or bar standing on the ground, placed and coloured at random."""
    folder = tmp_path_factory.mktemp("unlabelled")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:16, :16]
    sky = np.linspace(230, 30, 16)[:, None, None] * np.ones([16, 16, 3])
    for i in range(96):
        cy, cx = rng.integers(9, 13), rng.integers(4, 12)
        shape = ((yy - cy) ** 2 + (xx - cx) ** 2 < 8) if i % 2 else \
            ((abs(yy - cy) < 4) & (abs(xx - cx) < 2))
        colour = rng.integers(0, 255, 3)
        pixels = np.where(shape[..., None], colour, sky).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:02d}.png")
    return str(folder)


# -- the pieces, against their definitions ----------------------------------------------------
def test_all_rotations_match_numpy_and_label_each_turn():
    images = np.arange(2 * 3 * 3 * 1, dtype=np.float32).reshape(2, 3, 3, 1)
    rotated, labels = label_free.all_rotations(tf.constant(images))
    expected = np.concatenate([np.rot90(images, k, axes=(1, 2)) for k in range(4)])
    np.testing.assert_array_equal(rotated.numpy(), expected)
    np.testing.assert_array_equal(labels.numpy(), [0, 0, 1, 1, 2, 2, 3, 3])


def nt_xent_numpy(a, b, temperature):
    """SimCLR's loss (Chen et al. 2020, eq. 1) by its definition: for each view i with
    partner j, -log(exp(sim(i, j) / t) / sum_{k != i} exp(sim(i, k) / t))."""
    z = np.concatenate([a, b])
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    n = len(a)
    losses = []
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        others = [k for k in range(2 * n) if k != i]
        logits = np.array([z[i] @ z[k] / temperature for k in others])
        losses.append(-(z[i] @ z[j] / temperature - np.log(np.sum(np.exp(logits)))))
    return np.mean(losses)


def test_nt_xent_matches_its_definition():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(5, 7)), rng.normal(size=(5, 7))
    got = label_free.nt_xent(tf.constant(a, tf.float32), tf.constant(b, tf.float32), 0.5)
    assert float(got) == pytest.approx(nt_xent_numpy(a, b, 0.5), rel=1e-5)
    # Each view its own partner's twin: a lower loss than unrelated views.
    assert float(label_free.nt_xent(tf.constant(a, tf.float32), tf.constant(a, tf.float32))) \
        < float(got)


def test_distance_reward_is_minus_log_of_the_unbiased_mmd():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(30, 4))
    to_real = rewards.DistanceToReal(real, num_images=12, seed=5)
    assert to_real.real.shape == (12, 4)
    fake = rng.normal(1.0, 1.0, size=(9, 4))
    expected = paper_mmd2(fake, to_real.real)
    assert to_real.kid(fake) == pytest.approx(expected, rel=1e-9)
    assert rewards.DistanceToReal.reward(to_real.kid(fake)) == pytest.approx(-np.log(expected))
    # The same seed draws the same real sample; at or below zero, the reward is capped.
    np.testing.assert_array_equal(rewards.DistanceToReal(real, 12, seed=5).real, to_real.real)
    assert rewards.DistanceToReal.reward(-0.01) == pytest.approx(-np.log(rewards.KID_FLOOR))
    with pytest.raises(errors.UserError, match="--reward=kid needs reference statistics .* "
                                               "and old.npz keeps none"):
        rewards.DistanceToReal(None, 10, where="old.npz")


# -- the networks ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", label_free.KINDS)
def test_each_network_learns_without_labels_and_repeats_for_a_seed(kind, unlabelled_folder,
                                                                   tmp_path):
    dataset = f"folder:{unlabelled_folder}"
    path, info = label_free.network(kind, dataset, str(tmp_path / "a.keras"), steps=4,
                                    width=4, batch_size=8)
    again, _ = label_free.network(kind, dataset, str(tmp_path / "b.keras"), steps=4,
                                  width=4, batch_size=8)
    other_seed, _ = label_free.network(kind, dataset, str(tmp_path / "c.keras"), steps=4,
                                       width=4, batch_size=8, seed=1)
    images = np.stack([np.asarray(Image.open(os.path.join(unlabelled_folder, name)))
                       for name in sorted(os.listdir(unlabelled_folder))[:6]])
    features = [classifiers.load_keras_classifier(p)(images)[1].numpy()
                for p in (path, again, other_seed)]
    np.testing.assert_array_equal(features[0], features[1])
    assert not np.allclose(features[0], features[2])
    assert info["kind"] == kind and info["dataset"] == dataset
    assert info["steps"] == (0 if kind == "random" else 4)
    if kind == "rotation":
        assert 0.0 <= info["rotation_accuracy"] <= 1.0
    extractor = classifiers.load_keras_classifier(path)
    assert label_free.is_label_free(extractor)
    # A cached network is reused as it is, with what its training reached.
    assert label_free.network(kind, dataset, path, steps=99) == (path, info)


def test_a_better_generator_gets_a_higher_reward(unlabelled_folder, tmp_path):
    """Real images (held apart from the reference) beat blurred copies of them, which beat
    noise, in every network's features: the ordering a search needs."""
    dataset = f"folder:{unlabelled_folder}"
    names = sorted(os.listdir(unlabelled_folder))
    images = np.stack([np.asarray(Image.open(os.path.join(unlabelled_folder, n)))
                       for n in names]).astype(np.float32)
    reference, held_out = images[:48], images[48:]  # discs and bars on both sides
    blurred = tf.nn.avg_pool2d(tf.constant(held_out), 5, 1, "SAME").numpy()
    noise = np.random.default_rng(3).uniform(0, 255, held_out.shape).astype(np.float32)
    for kind in label_free.KINDS:
        path, _ = label_free.network(kind, dataset, str(tmp_path / f"{kind}.keras"), steps=30,
                                     width=8, batch_size=16)
        extract = classifiers.load_keras_classifier(path)
        to_real = rewards.DistanceToReal(extract(reference)[1].numpy(), len(reference))
        got = [rewards.DistanceToReal.reward(to_real.kid(extract(x)[1].numpy()))
               for x in (held_out, blurred, noise)]
        assert got[0] > got[1] > got[2], (kind, got)


# -- choosing the reward --------------------------------------------------------------------
def test_auto_picks_is_with_enough_classes_and_kid_of_a_label_free_network_otherwise():
    many = rewards.choose("auto", "clf.keras", rewards.MIN_IS_CLASSES)
    assert (many.reward, many.classifier) == ("is", "clf.keras")
    assert f"has {rewards.MIN_IS_CLASSES} classes (IS needs" in many.reason
    few = rewards.choose("auto", "auto", 2)
    assert (few.reward, few.classifier) == ("kid", "label_free:" + rewards.DEFAULT_LABEL_FREE)
    assert "too few for IS" in few.reason
    given = rewards.choose("auto", "label_free:random", 0)
    assert (given.reward, given.classifier) == ("kid", "label_free:random")
    # Anything but auto is left as the user set it.
    assert rewards.choose("fid", "auto", 1) == rewards.Choice("fid", "auto", "--reward=fid")
    assert rewards.scorer_classes("inception", "shapes") == 1008
    assert rewards.scorer_classes("auto", "shapes") == 8
    assert rewards.scorer_classes("label_free:rotation", "shapes") == 0


def said_by_the_search(monkeypatch) -> list:
    """What the search module logs at INFO (absl's verbosity is not the test's to rely on:
    other tests and the command lines set it)."""
    said = []
    monkeypatch.setattr(search.logging, "info", lambda msg, *args: said.append(msg % args))
    return said


def test_search_on_an_unlabelled_folder_chooses_kid_before_training_anything(
        unlabelled_folder, tmp_path, monkeypatch):
    config = config_lib.SearchConfig(dataset=f"folder:{unlabelled_folder}", classifier="auto",
                                     reward="auto")
    said = said_by_the_search(monkeypatch)
    chosen = search.choose_reward(config)
    assert (chosen.reward, chosen.classifier) == ("kid", "label_free:contrastive")
    assert said == ["reward: kid with --classifier=label_free:contrastive (--reward=auto: the "
                    "scorer auto has 1 class, too few for IS (at least 5): KID of a contrastive "
                    "network learnt from the images without labels)"]
    assert config.reward == "auto"  # the caller's settings are not changed
    labelled = search.choose_reward(config.replace(dataset="shapes"))
    assert (labelled.reward, labelled.classifier) == ("is", "auto")


def test_is_of_a_label_free_network_and_unknown_kinds_are_refused(tmp_path):
    with pytest.raises(errors.UserError, match="--reward=is: the scorer x.keras is a label-free"):
        rewards.check_is_scorer(4, "x.keras", label_free_network=True)
    with pytest.raises(errors.UserError, match="--classifier=label_free:jigsaw: the label-free "
                                               "networks are label_free:rotation"):
        config_lib.SearchConfig(classifier="label_free:jigsaw")
    with pytest.raises(errors.UserError, match="--classifier=label_free:nope"):
        label_free.kind_of("label_free:nope")
    with pytest.raises(errors.UserError, match="--reward=auto: make_reward_fn needs the reward"):
        rewards.make_reward_fn(config_lib.SearchConfig(reward="auto"), str(tmp_path))


def test_the_searchs_kid_reward_scores_a_candidate_against_the_real_features(
        unlabelled_folder, tmp_path):
    """`make_reward_fn` with --reward=kid: the candidate's images in the network's features,
    against reward_num_images real features of the data set, as the formula says."""
    dataset = f"folder:{unlabelled_folder}"
    path, _ = label_free.network("random", dataset, str(tmp_path / "net.keras"), width=4,
                                 batch_size=8)
    config = config_lib.SearchConfig(dataset=dataset, classifier=path, reward="kid",
                                     reward_num_images=10, eval_batch_size=4, num_cells=2,
                                     grow_steps="15")
    reward = rewards.make_reward_fn(config, str(tmp_path))
    candidate = np.random.default_rng(4).integers(0, 255, [10, 8, 8, 3]).astype(np.uint8)

    class FakeSearch:
        def images(self, arch, num, stage, seed):
            return tf.constant(candidate[:num])

    got = reward(FakeSearch(), [0, 0, 0, 0], 0, 1)
    extract = classifiers.load_keras_classifier(path, image_size=16)
    stats = np.load(tmp_path / "fid_stats.npz")  # the data set's, computed by the reward
    real = rewards.DistanceToReal(stats["features"], 10, seed=config.seed).real
    expected = paper_mmd2(extract(candidate)[1].numpy().astype(np.float64), real)
    assert got == pytest.approx(-np.log(max(expected, rewards.KID_FLOOR)), rel=1e-4)


def test_a_second_network_caches_its_own_statistics_beside_the_first(
        unlabelled_folder, tmp_path):
    """A search asked about its architectures in another network's features (as
    `api.supernet_rewards(classifier=...)` does) gets that network's statistics, not the
    cached ones of the network that scored it first, and the first still finds its own."""
    from autogan_tf import rundir
    from autogan_tf.metrics import evaluator, streaming

    dataset = f"folder:{unlabelled_folder}"
    nets = [label_free.network("random", dataset, str(tmp_path / f"net{i}.keras"), width=4,
                               batch_size=8, seed=i)[0] for i in (1, 2)]
    run = str(tmp_path / "run")
    os.makedirs(run)
    first = evaluator.Evaluator(nets[0], dataset=dataset, image_size=16, model_dir=run)
    second = evaluator.Evaluator(nets[1], dataset=dataset, image_size=16, model_dir=run)
    name = classifiers.load_keras_classifier(nets[1], image_size=16).name
    assert sorted(os.listdir(run)) == sorted([rundir.FID_STATS, rundir.fid_stats_file(name)])
    for ev, path in zip((first, second), nets):
        fresh = streaming.dataset_statistics(
            dataset, classifiers.load_keras_classifier(path, image_size=16), image_size=16)
        np.testing.assert_allclose(ev.stats.mu, fresh.mu, rtol=1e-5, atol=1e-6)
    again = evaluator.Evaluator(nets[0], dataset=dataset, image_size=16, model_dir=run)
    np.testing.assert_array_equal(again.stats.mu, first.stats.mu)  # its cache, reused


def test_a_label_free_network_scores_fid_and_kid_but_no_inception_score(
        unlabelled_folder, tmp_path):
    """Its outputs are no classes of images: an IS of them (1.0 for any generator) would
    be logged and plotted as if it measured something."""
    from autogan_tf.metrics import evaluator

    dataset = f"folder:{unlabelled_folder}"
    net, _ = label_free.network("random", dataset, str(tmp_path / "net.keras"), width=4,
                                batch_size=8, seed=1)
    run = str(tmp_path / "run")
    os.makedirs(run)
    scorer = evaluator.Evaluator(net, dataset=dataset, image_size=16, model_dir=run,
                                 batch_size=10)
    noise = np.random.default_rng(0).integers(0, 256, (20, 16, 16, 3), dtype=np.uint8)
    scores = scorer.score_images(noise)
    assert scores["is_mean"] is None and scores["is_std"] is None
    assert scores["fid"] > 0 and scores["kid_mean"] is not None


def test_a_resumed_search_keeps_the_reward_it_chose(unlabelled_folder, tmp_path, monkeypatch):
    """The folder may gain class sub-folders between a kill and the resume: the search goes
    on with the reward and scorer it started with."""
    import json

    model_dir = tmp_path / "s"
    model_dir.mkdir()
    started = config_lib.SearchConfig(dataset="shapes", reward="kid",
                                      classifier=str(model_dir / "label_free_random.keras"))
    (model_dir / "search_config.json").write_text(json.dumps(started.to_dict()))
    flags = config_lib.SearchConfig(dataset="shapes", classifier="auto", reward="auto")
    said = said_by_the_search(monkeypatch)
    resumed = search.choose_reward(flags, str(model_dir))
    assert (resumed.reward, resumed.classifier) == ("kid", started.classifier)
    assert said == [f"reward: kid with --classifier={started.classifier} (--reward=auto: as "
                    "when this search started)"]
    assert search.choose_reward(flags, str(tmp_path / "new")).reward == "is"  # 8 classes


def test_label_free_scorers_are_refused_where_their_is_would_be_used(unlabelled_folder,
                                                                     tmp_path):
    from autogan_tf.metrics import scorer
    from autogan_tf.search import derive

    # IS of a label-free network: refused before it is trained (nothing written).
    with pytest.raises(errors.UserError, match="is a label-free network"):
        search.run_search(config_lib.SearchConfig(
            dataset=f"folder:{unlabelled_folder}", classifier="label_free:random", reward="is"),
            str(tmp_path / "s"), progress=False)
    assert not (tmp_path / "s").exists()
    with pytest.raises(errors.UserError, match="--select_by=is: --classifier=label_free:random"):
        derive.derive("unused.json", str(tmp_path / "d"), {"classifier": "label_free:random"})
    # --classifier=auto on one class, in any command that trains it.
    with pytest.raises(errors.UserError, match="--classifier=auto: --dataset=folder:.* 1 class"):
        scorer.resolve_classifier("auto", f"folder:{unlabelled_folder}", str(tmp_path))
    # Commands that only load a scorer ask for its file.
    with pytest.raises(classifiers.ClassifierError, match="give the file they cached"):
        classifiers.load_feature_extractor("label_free:contrastive")


def test_the_network_sees_the_runs_resolution(unlabelled_folder, tmp_path):
    """Not the folder's own size (photographs can be thousands of pixels across)."""
    from autogan_tf import lifecycle
    from autogan_tf.metrics import scorer

    path = scorer.resolve_classifier("label_free:random", f"folder:{unlabelled_folder}",
                                     str(tmp_path), image_size=8)
    assert path == str(tmp_path / "label_free_random.keras")
    assert tuple(classifiers.load_keras_classifier(path).image_size) == (8, 8)
    search_config = config_lib.SearchConfig(bottom_width=2, num_cells=3)
    assert lifecycle.run_resolution(search_config) == 16
    train_config = config_lib.TrainConfig(bottom_width=2, arch="1 0 1 1 1 0 0 1 1 1 0 1 0 3")
    assert lifecycle.run_resolution(train_config) == 16
