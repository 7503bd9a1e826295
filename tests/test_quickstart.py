"""The quick start's parts: the classifier it trusts, the reward spread it reports, the run."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from autogan_tf import quickstart
from autogan_tf.metrics import classifiers, scorer

from conftest import ROOT, TINY_GAN, flag_args


def test_reward_spread_reads_the_last_iteration(tmp_path):
    records = [{"iteration": 1, "ctrl_step": 0, "reward": 9.0},
               {"iteration": 2, "ctrl_step": 0, "reward": 1.5},
               {"iteration": 2, "event": "grow", "stage": 1},
               {"iteration": 2, "ctrl_step": 1, "reward": 2.25},
               {"iteration": 2, "ctrl_step": 2, "reward": 1.75}]
    (tmp_path / "search_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert quickstart.reward_spread(str(tmp_path)) == pytest.approx(0.75)


def test_quick_search_scores_every_candidate_at_the_final_resolution():
    # With multi-level search the quick start's first stage scored 4x4 images, in which the
    # classifier sees no shape; the shipped settings search all cells at 16 px.
    from autogan_tf.search.loop import SearchConfig

    config = SearchConfig(**quickstart.quick_settings()[0])
    assert config.grow_steps_list() == []
    assert {config.stage_at(i) for i in range(config.max_search_iters)} == {config.num_cells - 1}
    assert config.resolution(config.stage_at(0)) == 16
    # Instance norm in the 4 and 8 px cells trained to IS 3.4-3.96 (README, Quick start).
    assert quickstart._search_layout(config) == "all 3 cells at once, at 16 px, without norm=in"
    grown = SearchConfig(**{**quickstart.quick_settings()[0], "mlas": True, "grow_steps": "2,4",
                            "excluded_choices": ""})
    assert [grown.resolution(grown.stage_at(i)) for i in (0, 2, 4)] == [4, 8, 16]
    assert quickstart._search_layout(grown) == "3 stages, one more cell each"


def test_small_classifier_is_repeatable_for_a_seed_and_cached(tmp_path):
    kwargs = dict(epochs=1, max_train_images=256, width=4, seed=3)
    weights = []
    for name in ("a", "b"):
        path, accuracy = classifiers.train_small_classifier("shapes", str(tmp_path / f"{name}.keras"),
                                                         **kwargs)
        import keras

        weights.append(keras.models.load_model(path).get_weights())
        assert 0.0 <= accuracy <= 1.0
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)
    # Reused, with the accuracy it had, without training again.
    first_accuracy = json.load(open(str(tmp_path / "a.keras") + ".json"))["test_accuracy"]
    before = os.path.getmtime(tmp_path / "a.keras")
    again = classifiers.train_small_classifier("shapes", str(tmp_path / "a.keras"), **kwargs)
    assert again == (str(tmp_path / "a.keras"), first_accuracy)
    assert os.path.getmtime(tmp_path / "a.keras") == before


def test_auto_classifier_resolves_to_the_path_of_the_trained_one(tmp_path, monkeypatch):
    trained = []

    def fake_training(dataset, path, data_dir=None, **kwargs):
        trained.append((dataset, path, data_dir))
        return path, 0.9  # (path, test accuracy), as train_small_classifier returns

    monkeypatch.setattr(classifiers, "train_small_classifier", fake_training)
    assert scorer.resolve_classifier("inception", "shapes", str(tmp_path)) == "inception"
    assert trained == []
    cached = str(tmp_path / "classifier.keras")
    assert scorer.resolve_classifier("auto", "shapes", str(tmp_path), "/data") == cached
    assert trained == [("shapes", cached, "/data")]


def test_quick_configs_replace_settings_and_check_them_first():
    from autogan_tf import errors

    shipped_search, shipped_train = quickstart.quick_settings()
    search, train = quickstart.quick_configs(
        3, {"reward_bn": "batch", "seed": 9}, {"max_iters": 6000})
    assert search == {**shipped_search, "reward_bn": "batch", "seed": 3}  # the seed wins
    assert train == {**shipped_train, "max_iters": 6000, "seed": 3}
    assert quickstart.quick_configs() == ({**shipped_search, "seed": 0},
                                        {**shipped_train, "seed": 0})
    with pytest.raises(errors.UserError, match=r"^--search_setting: --reward_bn must be one"):
        quickstart.quick_configs(0, {"reward_bn": "running"})
    with pytest.raises(errors.UserError, match=r"^--train_setting: --max_iters must be"):
        quickstart.quick_configs(0, None, {"max_iters": 0})
    assert quickstart.describe_overrides() == ""
    assert quickstart.describe_overrides({"reward_bn": "batch"}, {"max_iters": 6000, "g_lr": 1e-3}) \
        == "search: reward_bn=batch; train: max_iters=6000, g_lr=0.001"


def test_quickstart_refuses_a_bad_setting_at_once_without_touching_the_output(tmp_path):
    from conftest import run_cli

    out_dir = tmp_path / "q"
    for flag, text in (("--search_setting=reward_bn=running", "--reward_bn must be one of"),
                       ("--train_setting=arch=1 0 1 1", "arch is set by the command itself"),
                       ("--search_setting=dataset=cifar10", "dataset is set by the command")):
        out = run_cli("quickstart", f"--output_dir={out_dir}", flag, timeout=120)
        assert out.returncode == 1
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("autogan-quickstart: error: --")
        assert text in lines[0] and flag.split("=")[0] in lines[0]
        assert "[1/5]" not in out.stdout and not out_dir.exists()


def test_sigterm_stops_training_with_exit_status_75_and_resumes(tmp_path):
    model_dir = tmp_path / "run"
    args = [sys.executable, "-m", "autogan_tf.cli.train", f"--model_dir={model_dir}",
            "--arch=1 1 1 1", *flag_args(**TINY_GAN, max_iters=100000, log_every=1,
                                         save_every=0, eval_every=0)]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    metrics = model_dir / "metrics.jsonl"
    deadline = time.time() + 300
    while not (metrics.exists() and metrics.read_text().count("d_loss") >= 2):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-2000:]
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 75, err[-2000:]
    reply = json.loads(out.strip().splitlines()[-1])
    assert reply["preempted"] is True
    assert "rerun the same command to resume" in err
    assert os.path.exists(model_dir / "checkpoints" / f"ckpt-{reply['step']}.index")


@pytest.mark.slow
def test_quickstart_end_to_end_at_toy_size(tmp_path):
    search = dict(gf_dim=4, df_dim=4, shared_iters=2, max_search_iters=3, grow_steps="1,2",
                  ctrl_steps=1, reward_num_images=20, reset_window=4)
    train = dict(gf_dim=4, df_dim=4, max_iters=4, save_every=2)
    lines = []
    out = quickstart.quickstart(str(tmp_path), search_overrides=search, train_overrides=train,
                              echo=lines.append)
    assert lines[0] == "      settings replaced: search: " + ", ".join(
        f"{k}={v}" for k, v in search.items()) + "; train: gf_dim=4, df_dim=4, max_iters=4, " \
        "save_every=2"
    for key in ("search_result", "evaluation", "samples", "classifier"):
        assert os.path.exists(out[key]), key
    assert os.path.exists(os.path.join(out["saved_model"], "saved_model.pb"))
    assert out["is_mean"] >= 1.0 and out["fid"] >= 0 and 0 <= out["classifier_accuracy"] <= 1
    # Held-out real images against the training images' statistics, same classifier.
    assert out["real_is_mean"] >= 1.0 and 0 <= out["real_fid"] < out["fid"]
    with open(tmp_path / "quickstart.json") as f:
        saved = json.load(f)
    assert saved["best_arch"] == out["best_arch"]
    assert saved["search_overrides"] == search and saved["train_overrides"] == train


@pytest.mark.slow
def test_conditional_quickstart_reports_the_requested_class_and_a_row_per_class(tmp_path):
    from PIL import Image

    search = dict(gf_dim=4, df_dim=4, shared_iters=2, max_search_iters=2, grow_steps="1",
                  ctrl_steps=1, reward_num_images=20, reset_window=4)
    train = dict(gf_dim=4, df_dim=4, max_iters=2, save_every=2)
    lines = []
    out = quickstart.quickstart(str(tmp_path), search_overrides=search, train_overrides=train,
                                echo=lines.append, conditional=True)
    assert out["conditional"] and 0 <= out["class_accuracy"] <= 1
    assert len(out["grid_row_accuracy"]) == 8
    assert any("the classifier sees the class asked for in" in line for line in lines)
    assert any("one row per class" in line for line in lines)
    with open(tmp_path / "train" / "config.json") as f:
        assert json.load(f)["num_classes"] == 8
    side = Image.open(out["samples"]).size[1]
    assert side > 7 * 16  # eight rows of 16 px images (and their borders)
