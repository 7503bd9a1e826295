import json
import os

import pytest
import tensorflow as tf

from autogan_tf import config as config_lib
from autogan_tf import errors, gan_trainer, training
from autogan_tf.metrics import evaluator

from conftest import TINY_GAN, read_jsonl


def tiny_config(classifier, **overrides):
    base = dict(arch="1 0 1 1 1 0 0 1 1 1 0 1 0 3", **TINY_GAN, max_iters=4, log_every=2,
                save_every=2, eval_every=4, eval_num_samples=20, eval_batch_size=10,
                classifier=classifier, ema_decay=0.9)
    base.update(overrides)
    return config_lib.TrainConfig(**base)


def test_train_logs_evaluates_and_resumes(tmp_path, tiny_classifier):
    model_dir = str(tmp_path / "run")
    result = training.train(tiny_config(tiny_classifier), model_dir, progress=False)
    assert result["step"] == 4
    records = read_jsonl(os.path.join(model_dir, "metrics.jsonl"))
    logs = [r for r in records if "d_loss" in r]
    assert [r["step"] for r in logs] == [2, 4]
    assert {"g_loss", "g_lr", "d_lr"} <= set(logs[0])
    evals = [r for r in records if "is_mean" in r]
    assert len(evals) == 1 and evals[0]["step"] == 4
    assert evals[0]["is_mean"] >= 1.0 and evals[0]["fid"] >= 0
    assert os.path.exists(os.path.join(model_dir, "fid_stats.npz"))
    assert os.path.exists(os.path.join(model_dir, "samples", "step_0000004.png"))
    assert tf.train.latest_checkpoint(os.path.join(model_dir, "best"))

    # Rerunning with a larger budget resumes from step 4 and logs it.
    result = training.train(tiny_config(tiny_classifier, max_iters=6, eval_every=0), model_dir,
                            progress=False)
    assert result["step"] == 6
    resumed = [r for r in read_jsonl(os.path.join(model_dir, "metrics.jsonl"))
               if r.get("event") == "resumed"]
    assert resumed and resumed[0]["step"] == 4

    # The best checkpoint (step 4) restores the very generator that was evaluated.
    best, config, _ = training.restore_generator(model_dir, "best")
    scorer = evaluator.Evaluator(tiny_classifier, fid_stats=os.path.join(model_dir,
                                                                           "fid_stats.npz"),
                                   image_size=32, batch_size=10)
    again = scorer(best, 20, seed=config.seed)
    assert again["is_mean"] == pytest.approx(evals[0]["is_mean"], rel=1e-5)
    assert again["fid"] == pytest.approx(evals[0]["fid"], rel=1e-4)

    g, config, path = training.restore_generator(model_dir)
    assert config.arch == "1 0 1 1 1 0 0 1 1 1 0 1 0 3" and path.endswith("-6")
    assert g(tf.zeros([1, 4])).shape == (1, 32, 32, 3)


def test_model_dir_of_another_configuration_is_refused(tmp_path, tiny_classifier):
    model_dir = str(tmp_path / "run")
    training.train(tiny_config(tiny_classifier, max_iters=1, eval_every=0), model_dir,
                   progress=False)
    with pytest.raises(errors.RunError, match="different configuration.*gf_dim"):
        training.train(tiny_config(tiny_classifier, gf_dim=8, eval_every=0), model_dir,
                       progress=False)
    with pytest.raises(errors.RunError,
                       match="different configuration.*d_minibatch_std: saved 0 vs flag 2"):
        training.train(tiny_config(tiny_classifier, d_minibatch_std=2, eval_every=0),
                       model_dir, progress=False)
    # A run written before a setting existed had its default: it still resumes.
    path = os.path.join(model_dir, "config.json")
    with open(path) as f:
        saved = json.load(f)
    del saved["d_minibatch_std"]
    with open(path, "w") as f:
        json.dump(saved, f)
    out = training.train(tiny_config(tiny_classifier, max_iters=2, eval_every=0), model_dir,
                         progress=False)
    assert out["step"] == 2


def test_nonfinite_loss_restores_then_stops(tmp_path, tiny_classifier, monkeypatch):
    original = gan_trainer.GANTrainer.train_iteration
    calls = {"n": 0}

    def flaky(self, reals, archs=None, stage=None, labels=None):
        out = original(self, reals, archs, stage, labels)
        calls["n"] += 1
        if calls["n"] >= 3:  # diverges for good after two good iterations
            out = dict(out, finite=tf.constant(False))
        return out

    monkeypatch.setattr(gan_trainer.GANTrainer, "train_iteration", flaky)
    model_dir = str(tmp_path / "run")
    config = tiny_config(tiny_classifier, max_iters=10, save_every=2, eval_every=0,
                         max_nan_restores=2)
    with pytest.raises(errors.RunError, match="NaN/Inf"):
        training.train(config, model_dir, progress=False)
    events = [r for r in read_jsonl(os.path.join(model_dir, "metrics.jsonl"))
              if r.get("event") == "nonfinite"]
    assert len(events) == 3
    # The good checkpoint survived.
    assert tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")).endswith("-2")


def test_bad_flags_are_named():
    with pytest.raises(ValueError, match="--d_batch_size"):
        config_lib.TrainConfig(d_batch_size=-1)
    with pytest.raises(ValueError, match="--n_critic"):
        config_lib.TrainConfig(n_critic=0)
    with pytest.raises(ValueError, match="field 'up'"):
        config_lib.TrainConfig(arch="1 0 5 1")


