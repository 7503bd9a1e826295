import json
import os
import time
import types

import numpy as np
import pytest
import tensorflow as tf

from autogan_tf import config as config_lib
from autogan_tf import errors
from autogan_tf import search_space as ss
from autogan_tf.search import dynamic_reset, rewards
from autogan_tf.search import log as search_log
from autogan_tf.search import loop as search

from conftest import TINY_GAN, brightness_reward, read_jsonl


def tiny_config(**overrides):
    """Two cells (8 and 16 px): compiling the 32 px supernet step costs tens of seconds."""
    base = dict(TINY_GAN, shared_iters=3, max_search_iters=3, grow_steps="2", num_cells=2,
                ctrl_steps=2, ctrl_sample_batch=2, num_candidates=3, topk=2,
                reward_num_images=8, eval_batch_size=8, reset_window=4, save_every=2,
                log_every=1, classifier="unused")
    base.update(overrides)
    return config_lib.SearchConfig(**base)


REWARD_SECONDS = 0.05


def slow_brightness_reward(search_obj, arch, stage, seed):
    """`brightness_reward` taking a known extra time, for the phase breakdown."""
    time.sleep(REWARD_SECONDS)
    return brightness_reward(search_obj, arch, stage, seed)


def test_search_end_to_end(tmp_path):
    model_dir = str(tmp_path / "s")
    result = search.run_search(tiny_config(), model_dir, reward_fn=slow_brightness_reward,
                               progress=False)
    with open(os.path.join(model_dir, "search_result.json")) as f:
        saved = json.load(f)
    assert saved["top_archs"] == result["top_archs"]
    assert len(saved["top_archs"]) == 2
    for entry in saved["top_archs"]:
        arch = ss.parse_arch(entry["arch"])
        assert arch.num_cells == 2 and isinstance(entry["reward"], float)
    rewards = [e["reward"] for e in saved["top_archs"]]
    assert rewards == sorted(rewards, reverse=True)
    # Beam search: the final architectures extend a stage-0 beam entry.
    stage0 = [r for r in saved["stage_results"] if r["stage"] == 0][0]["top_archs"]
    prefixes = {tuple(e["arch"]) for e in stage0}
    for entry in saved["top_archs"]:
        assert tuple(entry["arch"][:4]) in prefixes
    assert [c["stage"] for c in saved["stage_changes"]] == [1]
    log = read_jsonl(os.path.join(model_dir, "search_log.jsonl"))
    ctrl = [r for r in log if "ctrl_step" in r]
    assert len(ctrl) == 3 * 2
    assert {"reward", "baseline", "entropy_mean"} <= set(ctrl[0])
    # The baseline restarts every search iteration (official): the first
    # controller step of each iteration has zero advantage.
    firsts = [r for r in ctrl if r["ctrl_step"] == 1]
    assert len(firsts) == 3 and all(abs(r["advantage_mean"]) < 1e-6 for r in firsts)
    assert any("d_loss" in r for r in log)
    # Every iteration's wall time, by phase: the rewards' known sleep lands in
    # "reward_scoring" (4 controller rewards an iteration, and the 3 top-K candidates at the
    # grow step, 2), their images in "sample_images"; the top-K in "top_k".
    phases = [r for r in log if r.get("event") == "phases"]
    assert [r["iteration"] for r in phases] == [0, 1, 2]
    for r, rewards in zip(phases, (4, 4, 4 + 3)):
        seconds, calls = r["seconds"], r["calls"]
        assert sum(v for k, v in seconds.items() if k != "total") == pytest.approx(
            seconds["total"])
        assert calls["reward_scoring"] == rewards
        grid = r["iteration"] == 2  # the grown stage's best drawn once more, for its grid
        assert calls["sample_images"] == rewards + grid
        assert rewards * REWARD_SECONDS <= seconds["reward_scoring"] < (
            rewards * REWARD_SECONDS + 2.0)
        assert calls["shared_training"] == calls["arch_sampling"] == 3  # shared_iters
        assert calls["controller_update"] == calls["controller_sampling"] == 2  # ctrl_steps
        assert seconds["shared_training"] > 0 and calls["checkpoint"] >= 2
        assert sum(r["fraction"].values()) == pytest.approx(1.0)
    assert "top_k" in phases[2]["seconds"] and "top_k" not in phases[1]["seconds"]
    # The found architecture drawn as the paper's Figure 3, in the directory and TensorBoard.
    from PIL import Image

    from autogan_tf import arch_plot

    with Image.open(os.path.join(model_dir, "arch.png")) as drawn:
        expected = arch_plot.draw_architecture(saved["top_archs"][0]["arch_str"],
                                               bottom_width=tiny_config().bottom_width,
                                               gf_dim=TINY_GAN["gf_dim"],
                                               latent_dim=TINY_GAN["latent_dim"])
        np.testing.assert_array_equal(np.asarray(drawn.convert("RGB")), np.asarray(expected))


def fixed_noise_reward(search_obj, arch, stage, seed):
    """`brightness_reward` of the same noise every call: comparable across processes."""
    return brightness_reward(search_obj, arch, stage, 0)


@pytest.fixture(scope="module")
def finished_search(tmp_path_factory):
    """A tiny search run to the end with `fixed_noise_reward`: ``(model_dir, result)``."""
    model_dir = str(tmp_path_factory.mktemp("finished") / "s")
    result = search.run_search(tiny_config(), model_dir, reward_fn=fixed_noise_reward,
                               progress=False)
    return model_dir, result


def test_load_search_scores_any_architecture_on_the_final_supernet(finished_search, tmp_path):
    model_dir, result = finished_search
    loaded = search.load_search(model_dir, reward_fn=fixed_noise_reward)
    assert loaded.state.iteration == tiny_config().max_search_iters
    archs = [e["arch"] for e in result["top_archs"]]
    # The supernet's weights are the search's last: its final top-K get the same rewards.
    assert loaded.score(archs, 1) == [e["reward"] for e in result["top_archs"]]
    fresh = search.Search(tiny_config(), str(tmp_path / "fresh"), fixed_noise_reward)
    assert fresh.score(archs, 1) != [e["reward"] for e in result["top_archs"]]
    # Any architecture of the space, not only sampled ones, can be scored.
    other = ss.Arch.from_list([1, 2, 0, 1, 0, 1, 2, 1, 1]).to_list()
    assert np.isfinite(loaded.score([other], 1)[0])
    with pytest.raises(errors.RunUserError, match="cannot differ"):
        search.load_search(model_dir, reward_fn=fixed_noise_reward, gf_dim=64)
    with pytest.raises(errors.RunUserError, match="is it a search directory"):
        search.load_search(str(tmp_path), reward_fn=fixed_noise_reward)
    os.makedirs(tmp_path / "empty")
    with open(tmp_path / "empty" / "search_config.json", "w") as f:
        json.dump(tiny_config().to_dict(), f)
    with pytest.raises(errors.RunUserError, match="no search checkpoint"):
        search.load_search(str(tmp_path / "empty"), reward_fn=fixed_noise_reward)


def test_api_supernet_rewards_average_the_searchs_reward_over_seeds(finished_search,
                                                                    tiny_classifier):
    from autogan_tf import api, errors

    model_dir, result = finished_search
    archs = [e["arch_str"] for e in result["top_archs"]]
    settings = dict(classifier=tiny_classifier, reward_num_images=20, eval_batch_size=10)
    got = api.supernet_rewards(model_dir, archs, seeds=(3, 4), **settings)
    loaded = search.load_search(model_dir, reward_fn=fixed_noise_reward)
    reward = rewards.make_reward_fn(tiny_config(**settings), model_dir)
    for arch, value in zip(archs, got):
        vector = ss.parse_arch(arch).to_list()
        expected = [reward(loaded, vector, 1, seed) for seed in (3, 4)]
        assert expected[0] != expected[1]  # the seeds are different noise
        assert value == pytest.approx(np.mean(expected), rel=1e-5)
        assert 1.0 <= value <= 8.0  # an Inception Score of the tiny classifier's 8 classes
    with pytest.raises(errors.UserError, match="cells"):
        api.supernet_rewards(model_dir, ["1 0 1 1 1 0 0 1 1 1 0 1 0 3"], **settings)
    with pytest.raises(errors.UserError, match="seeds"):
        api.supernet_rewards(model_dir, archs, seeds=(), **settings)


def test_dynamic_reset_fires_and_is_logged(tmp_path):
    model_dir = str(tmp_path / "s")
    config = tiny_config(reset_threshold=1e9, max_search_iters=2, shared_iters=5,
                         mlas=False)
    result = search.run_search(config, model_dir, reward_fn=brightness_reward, progress=False)
    assert len(result["resets"]) == 2
    events = [r.get("event") for r in read_jsonl(os.path.join(model_dir, "search_log.jsonl"))]
    assert events.count("dynamic_reset") == 2
    assert events.count("reinitialised_shared_gan") == 2


@pytest.mark.parametrize("overrides", [dict(search="random"),
                                       dict(mlas=False, max_search_iters=2),
                                       dict(ctrl_baseline="persistent", ctrl_loss="independent",
                                            reset_statistic="std")])
def test_ablations_run(tmp_path, overrides):
    result = search.run_search(tiny_config(**overrides), str(tmp_path / "s"),
                               reward_fn=brightness_reward, progress=False)
    assert ss.parse_arch(result["top_archs"][0]["arch"]).num_cells == 2


@pytest.mark.parametrize("searcher", ["rl", "random"])
def test_excluded_choices_never_reach_training_or_the_beam(tmp_path, searcher):
    """With instance norm and deconv excluded, no architecture the search trains, scores
    or keeps has either (the search log lists every sampled one)."""
    result = search.run_search(
        tiny_config(search=searcher, excluded_choices="norm=in,up=deconv", num_candidates=6,
                    ctrl_sample_batch=4), str(tmp_path / "s"),
        reward_fn=brightness_reward, progress=False)
    seen = [a for r in read_jsonl(tmp_path / "s" / "search_log.jsonl") for a in r.get("archs", [])]
    seen += [a["arch_str"] for a in result["top_archs"]]
    assert len(seen) > 10
    allowed = ss.allowed_choices("norm=in,up=deconv")
    for text in seen:
        arch = ss.parse_arch(text)
        assert ss.arch_is_allowed(ss.Arch(arch.cells), allowed), text


@pytest.mark.parametrize("overrides,message", [
    (dict(topk=5, num_candidates=3), "--topk=5 must not exceed --num_candidates=3"),
    (dict(grow_steps="2,1", num_cells=3), "strictly increasing"),
    (dict(grow_steps="1", num_cells=3), "needs 2 values"),
    (dict(grow_steps="1,5", num_cells=3), "below --max_search_iters"),
    (dict(d_batch_size=-4), "--d_batch_size must be a positive"),
    (dict(n_critic=0), "--n_critic"),
    (dict(reward="ssim"), "--reward"),
])
def test_bad_search_flags(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**overrides)


def test_defaults_follow_the_official_search():
    config = config_lib.SearchConfig(epoch_images=50_000)  # as search_cifar10 sets it
    assert config.reset_statistic == "var" and config.reset_threshold == 1e-3
    assert config.ctrl_baseline == "iteration" and config.ctrl_loss == "official"
    # The official loop: 15 epochs of ceil(50000 / 64) D batches, a G step after
    # every fifth D step counted from 0.
    d_steps = 15 * len(range(0, 50000, 64))
    assert config.gen_iters_per_search_iter == sum(1 for s in range(d_steps) if s % 5 == 0)
    assert config.gen_iters_per_search_iter == 2346
    for field, value in (("ctrl_baseline", "never"), ("ctrl_loss", "ppo"),
                         ("reset_statistic", "mad")):
        with pytest.raises(ValueError, match=f"--{field}"):
            tiny_config(**{field: value})


def test_loss_window_statistics():
    window = dynamic_reset.LossWindow(4)
    window.push(tf.constant([1.0, 2.0, 3.0]))
    assert not window.full
    window.push(tf.constant([4.0, 5.0]))  # wraps: holds 5, 2, 3, 4
    assert window.full
    assert window.statistic("std") == pytest.approx(np.std([5, 2, 3, 4]))
    assert window.statistic("var") == pytest.approx(np.var([5, 2, 3, 4]))


def test_other_configuration_is_refused(tmp_path):
    model_dir = str(tmp_path / "s")
    search.check_config(model_dir, tiny_config())
    with pytest.raises(errors.RunError, match="gf_dim"):
        search.check_config(model_dir, tiny_config(gf_dim=8))
    with pytest.raises(errors.RunError, match="excluded_choices: saved '' vs flag 'norm=in'"):
        search.check_config(model_dir, tiny_config(excluded_choices="norm=in"))
    search.check_config(model_dir, tiny_config(reward_bn="batch"))  # scoring may change


def test_rewards_score_samples_at_native_resolution(monkeypatch, tmp_path):
    """As the official get_is: 8 px samples go to the scorer as they are (Inception resizes)."""
    from autogan_tf.metrics import evaluator

    seen = []
    classes = {"inception": 1008, "one.keras": 1}

    class FakeEvaluator:
        def __init__(self, classifier, *args, **kwargs):
            self.extractor = types.SimpleNamespace(num_classes=classes[classifier])

        def score_images(self, images):
            seen.append(tuple(images.shape))
            return {"is_mean": 1.5}

    class FakeSearch:
        def images(self, arch, num, stage, seed):
            return tf.zeros([num, 8, 8, 3], tf.uint8)

    monkeypatch.setattr(evaluator, "Evaluator", FakeEvaluator)
    reward = rewards.make_reward_fn(tiny_config(classifier="inception", reward_num_images=10),
                                   str(tmp_path))
    assert reward(FakeSearch(), [0, 0, 0, 0], 0, 1) == 1.5
    assert seen == [(10, 8, 8, 3)]
    # A scorer of one class is refused before any image is scored.
    with pytest.raises(errors.UserError, match="--reward=is: the scorer one.keras has 1 class"):
        rewards.make_reward_fn(tiny_config(classifier="one.keras", reward_num_images=10),
                               str(tmp_path))
    assert seen == [(10, 8, 8, 3)]


@pytest.mark.parametrize("bn_statistics", ["moving", "batch"])
def test_supernet_images_normalise_each_candidate_as_configured(bn_statistics):
    """'moving': the generator in inference mode; 'batch': training mode's batch statistics
    per batch of images, with every moving statistic left as it was."""
    from autogan_tf import models, sampling
    from autogan_tf.images import to_uint8
    from autogan_tf.search import rewards

    generator = models.SuperGenerator(gf_dim=4, latent_dim=4, bottom_width=2, num_cells=2)
    arch = ss.parse_arch("1 1 0 1 0 1 0 0 1")
    images = rewards.SupernetImages(generator, tf.distribute.get_strategy(), 2, 5,
                                    bn_statistics)
    moving = [v.numpy() for v in generator.non_trainable_variables]
    got = images(arch.padded(2), 10, 1, seed=3)
    assert all(np.array_equal(a, v.numpy())
               for a, v in zip(moving, generator.non_trainable_variables))
    expected = []
    for start in (0, 5):  # the seed's noise, per batch of 5
        z = sampling.latents(3, start, 5, 4)
        expected.append(to_uint8(generator(z, tf.constant(arch.padded(2)), stage=1,
                                           training=bn_statistics == "batch")))
        for a, v in zip(moving, generator.non_trainable_variables):
            v.assign(a)
    np.testing.assert_allclose(got.numpy().astype(int), tf.concat(expected, 0).numpy(),
                               atol=1)


def test_supernet_images_refuse_an_unknown_bn_mode():
    from autogan_tf import models
    from autogan_tf.search import rewards

    with pytest.raises(ValueError, match="bn_statistics"):
        rewards.SupernetImages(models.SuperGenerator(gf_dim=4, latent_dim=4),
                               tf.distribute.get_strategy(), 3, 5, "running")
    with pytest.raises(ValueError, match="--reward_bn"):
        tiny_config(reward_bn="running")


def test_an_epoch_is_the_data_sets_size_unless_set(tmp_path):
    """``--epoch_images=0`` (the default) counts the training images of --dataset."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    from PIL import Image

    for i in range(7):
        Image.new("RGB", (12, 10), (i * 30, 0, 0)).save(folder / f"{i}.png")
    base = dict(shared_iters=0, shared_epochs=2, d_batch_size=2, n_critic=1)
    on_folder = search.with_epoch_images(tiny_config(dataset=f"folder:{folder}", **base))
    assert on_folder.epoch_images == 7
    # 2 epochs of ceil(7 / 2) = 4 D batches, one G step per D step.
    assert on_folder.gen_iters_per_search_iter == 8
    assert search.with_epoch_images(tiny_config(**base)).epoch_images == 10_000  # shapes
    given = tiny_config(epoch_images=123, **base)
    assert search.with_epoch_images(given) is given
    with pytest.raises(ValueError, match="epoch_images=0"):
        tiny_config(**base).gen_iters_per_search_iter


def test_is_reward_refuses_a_one_class_scorer(tmp_path):
    rewards.check_is_scorer(2, "two.keras")  # two classes: an IS that can move
    with pytest.raises(errors.UserError, match=r"--reward=is: .* 1 class.*use --reward=auto "
                                               r"\(KID of a network learnt from the images"):
        rewards.check_is_scorer(1, "one.keras")
    with pytest.raises(errors.UserError, match=r"sub-folders, or use --reward=auto .* or "
                                               r"--reward=kid with --classifier=label_free"):
        rewards.check_is_scorer(1, "--classifier=auto of --dataset=x", auto=True)
    # An unlabelled folder (images, no sub-folders) read as one class: refused in seconds,
    # before a classifier is trained on it, and nothing is written.
    folder = tmp_path / "cats"
    folder.mkdir()
    for i in range(4):
        tf.io.write_file(str(folder / f"{i}.png"),
                         tf.io.encode_png(tf.fill([16, 16, 3], tf.constant(i * 40, tf.uint8))))
    config = tiny_config(dataset=f"folder:{folder}", classifier="auto", reward="is")
    model_dir = tmp_path / "s"
    with pytest.raises(errors.UserError, match="--reward=is: the scorer --classifier=auto of "
                                               f"--dataset=folder:{folder} has 1 class"):
        search.run_search(config, str(model_dir), progress=False)
    # FID in the features of a classifier that learned one class measures nothing either.
    with pytest.raises(errors.UserError, match=r"--classifier=auto: --dataset=folder:.* has "
                                               r"1 class, so a classifier trained on it"):
        search.run_search(tiny_config(dataset=f"folder:{folder}", classifier="auto",
                                      reward="fid"), str(model_dir), progress=False)
    assert not model_dir.exists()


def test_rewards_that_do_not_separate_architectures_are_reported(tmp_path):
    steps = [{"reward": 5.0, "reward_min": 4.9, "reward_max": 5.2, "archs": ["1 0 1 1"]},
             {"reward": 5.1, "reward_min": 5.0, "reward_max": 5.3, "archs": ["0 0 1 1"]}]
    assert search_log.rewards_spread(steps) == pytest.approx(0.4)
    assert search_log.separates(0.4, [5.0, 5.1])
    assert not search_log.separates(0.04, [5.0, 5.1])  # under 1 % of 5
    assert search_log.rewards_spread([{"reward": 1.0}]) is None  # logs from before the fields
    # One architecture scored again and again: its seed-to-seed noise is no verdict.
    same = [{**s, "archs": ["1 0 1 1"]} for s in steps]
    assert search_log.rewards_spread(same) is None
    model_dir = str(tmp_path / "s")
    search.run_search(tiny_config(), model_dir, reward_fn=lambda *args: 1.0, progress=False)
    log = read_jsonl(os.path.join(model_dir, "search_log.jsonl"))
    flagged = [r for r in log if r.get("event") == "rewards_do_not_separate"]
    controller_phases = {r["iteration"] for r in log if "ctrl_step" in r}
    assert {r["iteration"] for r in flagged} == controller_phases and flagged[0]["spread"] == 0
    ctrl = [r for r in log if "ctrl_step" in r]
    assert all(r["reward_min"] == r["reward_max"] == 1.0 for r in ctrl)
