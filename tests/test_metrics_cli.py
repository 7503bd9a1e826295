"""Smoke tests of autogan-train-classifier, autogan-fid-stats and autogan-fid on `shapes`.

Each command runs in its own process, as a user would run it. A tiny
classifier (width 4, a couple of epochs on 512 images) stands in for
Inception so no download is needed.
"""

import functools
import os

import numpy as np
import pytest

from conftest import last_json, run_cli

_run = functools.partial(run_cli, check=True)  # each command must succeed


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    work = tmp_path_factory.mktemp("cli")
    model = str(work / "clf.keras")
    proc = _run("train_classifier", "--dataset=shapes", f"--output={model}", "--epochs=2", "--width=4",
                "--batch_size=64", "--max_train_images=512", "--max_test_images=256",
                f"--model_dir={work / 'md'}")
    report = last_json(proc.stdout)
    assert os.path.isfile(model) and report["image_size"] == 32
    assert 0.0 <= report["test_accuracy"] <= 1.0
    return work, model


def test_train_classifier_writes_model_and_logs(trained):
    work, model = trained
    import keras

    loaded = keras.models.load_model(model, safe_mode=True)
    assert loaded.get_layer("features") is not None and loaded.output.shape[-1] == 8  # 8 shapes
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(work / "md" / "logs"))
    with open(work / "md" / "epochs.csv") as f:
        assert len(f.read().strip().splitlines()) == 3  # header + 2 epochs


def test_fid_stats_then_fid(trained):
    work, model = trained
    train_stats, test_stats = str(work / "train.npz"), str(work / "test.npz")
    report = last_json(_run("fid_stats", "--dataset=shapes", f"--output={train_stats}",
                             f"--classifier={model}", "--num_samples=300", "--batch_size=64").stdout)
    assert report["num_samples"] == 300 and report["resolution"] == 32
    with np.load(train_stats) as f:  # TTUR's keys plus the description
        assert {"mu", "sigma", "classifier", "num_samples", "resolution"} <= set(f.files)
        assert str(f["classifier"]) == "keras:clf.keras" and f["mu"].shape == (f["sigma"].shape[0],)

    from autogan_tf.metrics import classifiers, scores, streaming

    extractor = classifiers.load_feature_extractor(model)
    scores.save_statistics(test_stats, streaming.dataset_statistics(
        "shapes", extractor, split="test", num_samples=300))
    expected = scores.load_statistics(train_stats).fid(scores.load_statistics(test_stats))
    assert expected > 0
    text = _run("fid", train_stats, test_stats).stdout
    assert f"FID: {expected:.4f}" in text
    # A data set argument is computed on the fly; the same 300 images give ~0.
    mixed = last_json(_run("fid", train_stats, "shapes", f"--classifier={model}", "--num_samples=300",
                            "--batch_size=64", "--json").stdout)
    assert mixed["classifier"] == "keras:clf.keras"
    assert abs(mixed["fid"]) < 1e-3 * expected


def test_cli_errors_are_clear(trained, tmp_path):
    work, model = trained
    bad = tmp_path / "bad.npz"
    np.savez(bad, mu=np.zeros(3), sigma=np.eye(4))
    proc = run_cli("fid", str(bad), str(bad))
    assert proc.returncode != 0 and "bad.npz" in proc.stderr and "wrong shape" in proc.stderr
    other = tmp_path / "inception_like.npz"
    np.savez(other, mu=np.zeros(16), sigma=np.eye(16))  # TTUR-style: no classifier name
    proc = run_cli("fid", str(other), "shapes", f"--classifier={model}", "--num_samples=20")
    assert proc.returncode != 0 and "'inception'" in proc.stderr and "--classifier" in proc.stderr
    proc = run_cli("fid_stats", "--dataset=nope", f"--output={tmp_path / 'x.npz'}")
    assert proc.returncode != 0 and "--dataset='nope'" in proc.stderr
