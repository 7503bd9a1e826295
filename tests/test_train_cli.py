"""autogan-train / -evaluate / -export / -derive as a user runs them, on tiny settings."""

import functools
import json
import os

import pytest

from conftest import TINY_GAN, flag_args, last_json, run_cli

TINY = flag_args(**TINY_GAN, log_every=1, eval_num_samples=20, eval_batch_size=10)
run = functools.partial(run_cli, timeout=600)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_classifier):
    model_dir = str(tmp_path_factory.mktemp("run"))
    out = run("train", f"--model_dir={model_dir}", "--arch=autogan_cifar10_a", "--max_iters=3",
              "--eval_every=3", f"--classifier={tiny_classifier}", *TINY)
    assert out.returncode == 0, out.stderr[-3000:]
    return model_dir


def test_train_then_evaluate(trained):
    out = run("evaluate", f"--model_dir={trained}", "--num_samples=20", "--batch_size=10")
    assert out.returncode == 0, out.stderr[-3000:]
    result = last_json(out.stdout)
    assert result["num_samples"] == 20 and result["is_mean"] >= 1.0 and result["fid"] >= 0
    assert result["classifier"].startswith("keras:") and result["seed"] == 0
    with open(os.path.join(trained, "eval_latest.json")) as f:
        assert json.load(f)["fid"] == pytest.approx(result["fid"])
    raw = run("evaluate", f"--model_dir={trained}", "--num_samples=20", "--batch_size=10",
              "--generator=raw", f"--output={trained}/eval_raw.json")
    assert raw.returncode == 0, raw.stderr[-3000:]
    raw_result = last_json(raw.stdout)
    assert raw_result["generator"] == "raw" and result["generator"] == "ema"
    assert raw_result["fid"] != pytest.approx(result["fid"])  # other weights, other images
    bad = run("evaluate", f"--model_dir={trained}_missing")
    assert bad.returncode != 0 and "--model_dir" in bad.stderr


def test_export_then_sample_locally(trained, tmp_path):
    export_dir = str(tmp_path / "export" / "autogan")
    out = run("export", f"--model_dir={trained}", f"--export_dir={export_dir}", "--version=3")
    assert out.returncode == 0, out.stderr[-3000:]
    assert os.path.exists(os.path.join(export_dir, "3", "saved_model.pb"))
    again = run("export", f"--model_dir={trained}", f"--export_dir={export_dir}", "--version=3")
    assert again.returncode != 0 and "already exists" in again.stderr
    bf16 = run("export", f"--model_dir={trained}", f"--export_dir={export_dir}", "--version=4",
               "--precision=bfloat16", "--warmup_requests=0")
    assert bf16.returncode == 0 and "bfloat16" in bf16.stdout, bf16.stderr[-3000:]
    assert os.path.exists(os.path.join(export_dir, "4", "saved_model.pb"))
    raw = run("export", f"--model_dir={trained}", f"--export_dir={export_dir}", "--version=5",
              "--generator=raw", "--warmup_requests=0")
    assert raw.returncode == 0 and "raw weights" in raw.stdout, raw.stderr[-3000:]
    samples = str(tmp_path / "samples")
    out = run("sample", f"--saved_model={export_dir}", "--num_samples=4", f"--output_dir={samples}")
    assert out.returncode == 0, out.stderr[-3000:]
    assert len([f for f in os.listdir(samples) if f.endswith(".png")]) == 5  # 4 + grid


def test_derive_trains_each_distinct_top_arch(tmp_path, tiny_classifier):
    """...class-conditionally when the search was (its ``config`` says so), and
    ``autogan-train`` on derive's ranking keeps that too."""
    result = tmp_path / "search_result.json"
    result.write_text(json.dumps({"top_archs": [
        {"arch": [1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0, 1, 0, 3], "reward": 2.0},
        {"arch": "1 0 1 1 1 0 0 1 1 1 0 1 0 3", "reward": 1.9},  # the first one again
        {"arch": [0, 1, 2, 1, 1, 2, 0, 0, 1, 0, 0, 0, 1, 2], "reward": 1.5}],
        "config": {"conditional": True}}))
    model_dir = str(tmp_path / "derive")
    out = run("derive", f"--search_result={result}", f"--model_dir={model_dir}", "--max_iters=2",
              f"--classifier={tiny_classifier}", *TINY)
    assert out.returncode == 0, out.stderr[-3000:]
    with open(os.path.join(model_dir, "derive_result.json")) as f:
        derived = json.load(f)
    assert sorted(row["rank"] for row in derived["archs"]) == [0, 2]  # the repeat is skipped
    assert {"rank_0", "rank_2"} <= set(os.listdir(model_dir))
    assert "rank_1" not in os.listdir(model_dir)
    scores = [row["is_mean"] for row in derived["archs"]]  # the paper's choice: highest IS
    assert scores == sorted(scores, reverse=True) and derived["best"]["is_mean"] == scores[0]
    assert "IS" in out.stdout and "FID" in out.stdout
    assert "comes from a class-conditional search: training with --conditional" in out.stderr
    assert derived["conditional"] is True
    for rank in (0, 2):
        with open(os.path.join(model_dir, f"rank_{rank}", "config.json")) as f:
            assert json.load(f)["conditional"] is True
    # The pick, trained on: conditional as derive's ranking records.
    final = str(tmp_path / "final")
    out = run("train", f"--search_result={model_dir}/derive_result.json", f"--model_dir={final}",
              "--max_iters=1", "--eval_every=0", f"--classifier={tiny_classifier}", *TINY)
    assert out.returncode == 0, out.stderr[-3000:]
    with open(os.path.join(final, "config.json")) as f:
        assert json.load(f)["conditional"] is True
    bad = run("derive", f"--search_result={tmp_path / 'nope.json'}", f"--model_dir={model_dir}")
    assert bad.returncode != 0 and "--search_result" in bad.stderr
