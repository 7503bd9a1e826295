"""The analysis parts of the experiment scripts (their runs take hours and are not tested here)."""

import importlib.util
import json
import os

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(path):
    spec = importlib.util.spec_from_file_location(os.path.basename(os.path.dirname(path)), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def evidence():
    return load(os.path.join(ROOT, "experiments", "search_evidence", "run.py"))


def test_spearman_matches_ranks_by_hand(evidence):
    x = [0.1, 0.4, 0.2, 0.9, 0.5]
    y = [1.0, 3.0, 2.5, 5.0, 2.0]
    # Ranks 1 3 2 5 4 and 1 4 3 5 2: d^2 = 0+1+1+0+4 = 6, rho = 1 - 6*6/(5*24) = 0.7.
    out = evidence.spearman_with_interval(x, y, num_boot=500)
    assert out["rho"] == pytest.approx(0.7)
    assert out["n"] == 5
    assert -1 <= out["low"] <= out["rho"] <= out["high"] <= 1
    perfect = evidence.spearman_with_interval([1, 2, 3, 4], [10, 20, 30, 40], num_boot=200)
    assert perfect["rho"] == pytest.approx(1) and perfect["low"] == pytest.approx(1)
    reverse = evidence.spearman_with_interval([1, 2, 3, 4], [4, 3, 2, 1], num_boot=200)
    assert reverse["rho"] == pytest.approx(-1) and reverse["high"] == pytest.approx(-1)


def test_compare_seeds_by_hand(evidence):
    out = evidence.compare_seeds([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])
    assert out["difference"] == pytest.approx(1.0)
    # Both variances 1: Welch's t = 1 / sqrt(2/3), 4 degrees of freedom, whose CDF has the
    # closed form 1/2 + 3/8 u (1 - t^2 / (12 (1 + t^2/4))), u = t / sqrt(1 + t^2/4).
    t = 1 / np.sqrt(2 / 3)
    u = t / np.sqrt(1 + t * t / 4)
    cdf = 0.5 + 0.375 * u * (1 - t * t / (12 * (1 + t * t / 4)))
    assert out["welch_p"] == pytest.approx(2 * (1 - cdf), rel=1e-6)
    # 2 (1.95996 + 0.84162)^2 * 1 / 1 = 15.70 -> 16 seeds per side.
    assert out["seeds_needed"] == 16
    assert evidence.compare_seeds([2.0, 2.5], [2.0, 2.5])["seeds_needed"] is None
    with pytest.raises(ValueError, match="at least 2 seeds"):
        evidence.compare_seeds([1.0], [1.0, 2.0])


def test_spearman_interval_covers_the_truth_for_correlated_data(evidence):
    rng = np.random.default_rng(3)
    x = rng.normal(size=40)
    y = x + rng.normal(size=40)  # true Spearman correlation about 0.68
    out = evidence.spearman_with_interval(x, y, num_boot=2000, seed=1)
    assert out["low"] < 0.68 < out["high"]
    assert out["high"] - out["low"] < 0.6
    # Same seed, same interval.
    assert evidence.spearman_with_interval(x, y, num_boot=2000, seed=1) == out


def test_spearman_refuses_too_few_pairs(evidence):
    with pytest.raises(ValueError, match="at least 3 pairs"):
        evidence.spearman_with_interval([1, 2], [1, 2])
    with pytest.raises(ValueError, match="at least 3 pairs"):
        evidence.spearman_with_interval([1, 2, 3], [1, 2])


def test_controller_curves_average_each_iteration(evidence):
    records = [
        {"iteration": 0, "stage": 0, "d_loss": 1.0},  # shared-training records are ignored
        {"iteration": 0, "stage": 0, "ctrl_step": 1, "reward": 1.0, "baseline": 1.0,
         "entropy_mean": 0.9},
        {"iteration": 0, "stage": 0, "ctrl_step": 2, "reward": 3.0, "baseline": 1.2,
         "entropy_mean": 0.7},
        # A resumed search repeats step 2 of iteration 1: the last record counts.
        {"iteration": 1, "stage": 1, "ctrl_step": 1, "reward": 2.0, "baseline": 2.0,
         "entropy_mean": 0.5},
        {"iteration": 1, "stage": 1, "ctrl_step": 2, "reward": 9.0, "baseline": 9.0,
         "entropy_mean": 0.1},
        {"event": "resumed"},
        {"iteration": 1, "stage": 1, "ctrl_step": 2, "reward": 4.0, "baseline": 2.2,
         "entropy_mean": 0.3},
    ]
    curves = evidence.controller_curves(records)
    assert curves == [
        {"iteration": 0, "stage": 0, "reward": 2.0, "baseline": 1.2, "entropy": pytest.approx(0.8)},
        {"iteration": 1, "stage": 1, "reward": 3.0, "baseline": 2.2, "entropy": pytest.approx(0.4)},
    ]
    random_search = [{"iteration": 0, "stage": 0, "ctrl_step": 1, "reward": 1.5}]
    assert evidence.controller_curves(random_search) == [
        {"iteration": 0, "stage": 0, "reward": 1.5, "baseline": None, "entropy": None}]


def test_read_jsonl_skips_lines_that_are_not_json(evidence, tmp_path):
    path = tmp_path / "log"
    path.write_text("progress 10%\n" + json.dumps({"a": 1}) + "\n{\"cut by a kill\n")
    assert evidence.read_jsonl(str(path)) == [{"a": 1}]


def test_choose_archs_takes_both_top_k_then_uniform_ones(evidence, tmp_path):
    from autogan_tf import search_space as ss

    rl = ["1 0 1 1 1 0 0 1 1 1 0 1 0 3", "0 0 0 0 0 0 0 0 0 0 0 0 0 0"]
    rand = ["0 0 0 0 0 0 0 0 0 0 0 0 0 0", "0 2 2 0 1 2 1 0 1 0 1 2 1 2"]
    for kind, archs in (("rl", rl), ("random", rand)):
        os.makedirs(tmp_path / f"search_{kind}")
        with open(tmp_path / f"search_{kind}" / "search_result.json", "w") as f:
            json.dump({"top_archs": [{"arch_str": a} for a in archs]}, f)
    chosen = evidence.choose_archs(str(tmp_path), 7, seed=5)
    assert [c["arch"] for c in chosen[:3]] == [rl[0], rl[1], rand[1]]
    assert [c["source"] for c in chosen] == ["rl", "rl", "random_search"] + ["uniform"] * 4
    assert len({c["arch"] for c in chosen}) == 7
    for c in chosen:
        assert ss.parse_arch(c["arch"]).num_cells == 3
    assert evidence.choose_archs(str(tmp_path), 7, seed=5) == chosen


@pytest.fixture(scope="module")
def side_by_side():
    return load(os.path.join(ROOT, "experiments", "side_by_side", "run.py"))


def test_side_by_side_compares_within_seed_noise(side_by_side):
    def entry(is_mean, fid):
        return {"is_mean": is_mean, "is_std": 0.0, "fid": fid}

    scores = {"official/seed0/200/raw": entry(1.60, 12.0),
              "official/seed1/200/raw": entry(1.70, 11.0),
              "ours/seed0/200/raw": entry(1.55, 13.5), "ours/seed1/200/raw": entry(1.58, 13.1),
              "official/seed0/400/raw": entry(1.9, 9.0)}  # no "ours" at 400: not compared
    checks = side_by_side.compare(scores, [0, 1])
    assert [(c["iteration"], c["metric"]) for c in checks] == [(200, "is_mean"), (200, "fid")]
    is_check, fid_check = checks
    # IS: ours 1.565 vs official 1.65, noise 0.10 (official's seeds): within the noise.
    assert is_check["ours_minus_official"] == pytest.approx(-0.085)
    assert is_check["seed_noise"] == pytest.approx(0.10) and is_check["ok"]
    # FID (lower is better): ours 13.3 vs 11.5, noise 1.0: worse by more than the noise.
    assert fid_check["ours_minus_official"] == pytest.approx(1.8)
    assert fid_check["seed_noise"] == pytest.approx(1.0) and not fid_check["ok"]


def test_side_by_side_compares_bfloat16_with_float32_and_tabulates_it(side_by_side):
    def entry(is_mean, fid):
        return {"is_mean": is_mean, "is_std": 0.0, "fid": fid}

    scores = {"ours/seed0/600/ema": entry(3.0, 40.0), "ours/seed1/600/ema": entry(3.4, 42.0),
              "ours_bf16/seed0/600/ema": entry(2.5, 41.0),
              "ours_bf16/seed1/600/ema": entry(2.7, 43.0)}
    is_check, fid_check = side_by_side.compare(scores, [0, 1], "ours_bf16", "ours")
    # IS: bf16 2.6 vs float32 3.2, noise 0.4 (float32's seeds): worse beyond the noise.
    assert is_check["ours_bf16_minus_ours"] == pytest.approx(-0.6)
    assert is_check["ours"] == pytest.approx(3.2) and not is_check["ok"]
    # FID: 42.0 vs 41.0, noise 2.0: within it.
    assert fid_check["ours_bf16_minus_ours"] == pytest.approx(1.0) and fid_check["ok"]
    assert "not: is_mean ema at 600: ours bf16 2.600, ours 3.200" in side_by_side.verdict(
        [is_check, fid_check], "ours_bf16", "ours")
    table = side_by_side.table(scores, [0, 1], {"test_accuracy": 0.7})
    header = [line for line in table.splitlines() if line.startswith("| iteration")][0]
    assert header == "| iteration | G | ours IS | ours bf16 IS | ours FID | ours bf16 FID |"
    assert "| 600 | ema | 3.20 (3.00 / 3.40) | 2.60 (2.50 / 2.70) |" in table


def test_markdown_reports_every_figure(evidence):
    corr = {"rho": 0.7, "low": 0.2, "high": 0.93, "n": 14}
    results = {
        "classifier": {"test_accuracy": 0.755},
        "correlation": {k: corr for k in ("rl_supernet_vs_is", "rl_supernet_vs_neg_fid",
                                          "random_supernet_vs_is", "random_supernet_vs_neg_fid")},
        "rl_vs_random": {kind: {"arch": arch, "is": [2.8, 2.9], "fid": [9.0, 10.0],
                                "is_mean": 2.85, "is_sd": 0.07, "fid_mean": 9.5, "fid_sd": 0.7}
                         for kind, arch in (("rl", "0 1 1 1"), ("random", "1 1 1 0"))},
        "rl_minus_random": {"is": {"difference": 0.12, "welch_p": 0.21, "seeds_needed": 13},
                            "fid": {"difference": -1.56, "welch_p": 0.1, "seeds_needed": 7}}}
    text = evidence.markdown(results)
    assert "75.5% test accuracy" in text and "not Inception" in text
    assert text.count("| 0.700 | [0.20, 0.93] | 14 |") == 4
    assert "| rl | `0 1 1 1` | 2.85 +- 0.07 (2.80 / 2.90) | 9.50 +- 0.70 (9.00 / 10.00) |" in text
    assert "| IS | +0.12 | 0.21 | 13 |" in text and "| FID | -1.56 | 0.10 | 7 |" in text


@pytest.fixture(scope="module")
def quick_seeds():
    return load(os.path.join(ROOT, "experiments", "quick_start_seeds", "run.py"))


def test_quick_start_seeds_resume_and_skip_finished_seeds(quick_seeds, tmp_path, monkeypatch,
                                                           capsys):
    ran = []

    def fake_run(seed, work_dir, extra_args=()):
        assert extra_args == []
        ran.append(seed)
        if seed == 2:
            raise RuntimeError("killed")
        return {"seed": seed, "is_mean": 4.0 + seed / 10}

    monkeypatch.setattr(quick_seeds, "run_seed", fake_run)
    results = str(tmp_path / "results.json")
    argv = ["--work_dir", str(tmp_path / "w"), "--seeds", "0,1,2", "--results", results]
    with pytest.raises(RuntimeError):
        quick_seeds.main(argv)
    with open(results) as f:  # written after every seed: the finished ones are kept
        assert [r["seed"] for r in json.load(f)["runs"]] == [0, 1]
    monkeypatch.setattr(quick_seeds, "run_seed", lambda seed, work_dir, extra_args: (
        ran.append(seed) or {"seed": seed, "is_mean": 3.9}))
    quick_seeds.main(argv)
    assert ran == [0, 1, 2, 2]
    assert "IS over 3 seeds: min 3.90, mean 4.00; below 4: 1" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        quick_seeds.parse_args(["--work_dir", "w", "--results", "r", "--seeds", "0,x"])
    assert "--seeds must be comma-separated integers" in capsys.readouterr().err
    # Runs with other command arguments never land in the same file.
    with pytest.raises(SystemExit, match="holds runs with --quickstart_args '', not "
                                         "'--search_setting=reward_bn=batch'"):
        quick_seeds.main(argv + ["--quickstart_args=--search_setting=reward_bn=batch"])


def test_quick_start_seeds_pass_their_arguments_to_every_command(quick_seeds, tmp_path,
                                                                 monkeypatch):
    commands = []

    def fake_call(command, stdout, stderr):  # the command a user would type, then its output
        commands.append(command)
        out = command[1].split("=", 1)[1]
        os.makedirs(out)
        with open(os.path.join(out, "quickstart.json"), "w") as f:
            json.dump({"best_arch": "1 0 1 1", "is_mean": 4.5, "is_std": 0.1, "fid": 9.0,
                       "real_is_mean": 7.5, "classifier_accuracy": 0.999,
                       "search_reward_spread": 0.4, "run_time_s": 200.0}, f)
        return 0

    monkeypatch.setattr(quick_seeds.subprocess, "call", fake_call)
    results = tmp_path / "r.json"
    quick_seeds.main(["--work_dir", str(tmp_path / "w"), "--seeds", "3", "--results",
                      str(results),
                      "--quickstart_args=--search_setting=reward_bn=batch "
                      "--train_setting='max_iters=10'"])
    assert commands == [["autogan-quickstart", f"--output_dir={tmp_path / 'w' / 'seed_3'}",
                         "--seed=3", "--search_setting=reward_bn=batch",
                         "--train_setting=max_iters=10"]]
    saved = json.loads(results.read_text())
    assert saved["quickstart_args"] == commands[0][3:]
    assert saved["runs"][0]["seed"] == 3 and saved["runs"][0]["is_mean"] == 4.5


# -- issue 33's conditional experiments ----------------------------------------------------
@pytest.fixture(scope="module")
def conditional_search():
    return load(os.path.join(ROOT, "experiments", "conditional", "search.py"))


@pytest.fixture(scope="module")
def conditional_cifar():
    return load(os.path.join(ROOT, "experiments", "conditional", "cifar.py"))


def test_conditional_search_summarises_each_arm_and_skips_missing_metrics(conditional_search):
    runs = [{"is_mean": 2.0, "fid": 10.0, "class_accuracy": 0.5},
            {"is_mean": 3.0, "fid": 12.0, "class_accuracy": 0.7}]
    row = conditional_search.summarise("cond_is", "0 1", runs)
    assert row["is_mean"] == [2.0, 3.0] and row["is_mean_avg"] == pytest.approx(2.5)
    assert row["fid_sd"] == pytest.approx(np.std([10.0, 12.0], ddof=1))
    plain = conditional_search.summarise("uncond", "0 1", [{"is_mean": 2.0, "fid": 9.0}] * 2)
    assert "class_accuracy" not in plain  # an unconditional run has no requested class
    results = {"classifier": {"test_accuracy": 0.75},
               "arms": {"cond_is": row, "uncond": plain},
               "differences": {"cond_is - uncond": {"fid": {"difference": 2.0, "welch_p": 0.3,
                                                            "seeds_needed": 9}}}}
    text = conditional_search.markdown(results)
    assert "75.0% test accuracy" in text
    assert "| 2.50 +- 0.71 (2.00 / 3.00) |" in text and "| 60.0 +- 14.1 (50.0 / 70.0) |" in text
    assert "| unconditional search's architecture, trained unconditionally | `0 1` |" in text
    assert "| cond_is - uncond | fid | +2.00 | 0.30 | 9 |" in text


def test_conditional_cifar_table_averages_the_seeds_it_has(conditional_cifar):
    scores = {"conditional/seed0/600/raw": {"is_mean": 2.0, "fid": 6.0, "class_accuracy": 0.4,
                                            "intra_fid": 9.0},
              "conditional/seed1/600/raw": {"is_mean": 3.0, "fid": 4.0, "class_accuracy": 0.6,
                                            "intra_fid": 11.0},
              "unconditional/seed0/600/raw": {"is_mean": 1.5, "fid": 7.0}}
    text = conditional_cifar.table(scores, [0, 1], {"test_accuracy": 0.7268})
    assert "72.68% CIFAR-10 test accuracy" in text
    assert ("| 600 | raw | 2.500 (2.000 / 3.000) | 1.500 (1.500) | 5.00 (6.00 / 4.00) "
            "| 7.00 (7.00) | 50.0 (40.0 / 60.0) |") in text
    assert "| raw | 10.00 (9.00 / 11.00) | 5.00 (6.00 / 4.00) |" in text
    assert "| 200 | raw | - | - | - | - | - |" in text  # not measured yet


def test_label_free_cifar_correlates_every_reward_with_the_labelled_quality():
    lf = load(os.path.join(ROOT, "experiments", "label_free_reward", "cifar.py"))
    rows = [{"kid_a": r, "is_labelled": -r, "is": q, "fid": 10 - q}
            for r, q in ((1.0, 1.0), (2.0, 2.0), (3.0, 4.0), (4.0, 3.0), (5.0, 5.0))]
    got = lf.correlations(rows, ["kid_a", "is_labelled"])
    assert got["kid_a"]["is"]["rho"] == pytest.approx(0.9)  # one swapped pair of five
    assert got["kid_a"]["neg_fid"]["rho"] == pytest.approx(0.9)
    assert got["is_labelled"]["is"]["rho"] == pytest.approx(-0.9)
    settings = lf.reward_settings({k: {"path": f"{k}.keras"} for k in lf.KINDS}, "scorer.keras")
    assert settings["kid_contrastive"] == {"reward": "kid", "classifier": "contrastive.keras"}
    assert settings["is_labelled"] == {"reward": "is", "classifier": "scorer.keras"}


def test_experiment_state_carries_finished_steps_and_the_scorer_only(tmp_path):
    state = load(os.path.join(ROOT, "tools", "experiment_state.py"))
    work, dest, fresh = tmp_path / "work", tmp_path / "state", tmp_path / "fresh"

    def put(relative, data=b"{}"):
        path = work / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    put("classifier.keras", b"k" * 10)
    put("classifier.keras.json", b'{"test_accuracy": 0.7}')
    put("fid_stats_train.npz", b"n")
    put("label_free_contrastive.keras", b"l")
    put("proxy.json", b'{"kid/0 0": 1}')
    put("search_is/search_result.json")
    put("search_is/search_log.jsonl", b'{"iteration": 0}\n')
    put("search_is/search_config.json", b'{"reward": "kid"}')
    put("search_is/checkpoints/ckpt-3.index", b"c")          # cannot travel
    put("search_acc/search_log.jsonl", b'{"iteration": 0}\n')  # search still running
    put("train/a_s0/eval_final.json", b'{"fid": 3}')
    put("train/a_s0/config.json")                            # a step's own settings
    put("train/a_s1/config.json")                            # a step in flight
    put("train/big/eval_final.json", b"x" * 3_000_000)       # over --max_mb
    put("cifar10/train/0/a.jpg", b"j")                       # the data
    put("logs/train_a_s0.log", b"log")
    copied = state.save(str(work), str(dest), max_mb=1)
    assert sorted(copied) == ["classifier.keras", "classifier.keras.json",
                              "fid_stats_train.npz", "label_free_contrastive.keras",
                              "proxy.json", "search_is/search_config.json",
                              "search_is/search_log.jsonl", "search_is/search_result.json",
                              "train/a_s0/eval_final.json"]
    assert (dest / "train/a_s0/eval_final.json").read_bytes() == b'{"fid": 3}'

    (fresh / "train/a_s0").mkdir(parents=True)
    (fresh / "train/a_s0/eval_final.json").write_bytes(b'{"fid": 2}')  # never overwritten
    restored = state.restore(str(dest), str(fresh))
    assert "train/a_s0/eval_final.json" not in restored and len(restored) == 8
    assert (fresh / "train/a_s0/eval_final.json").read_bytes() == b'{"fid": 2}'
    assert (fresh / "classifier.keras").read_bytes() == b"k" * 10
    with pytest.raises(SystemExit, match="SOURCE="):
        state.restore(str(tmp_path / "missing"), str(fresh))
    with pytest.raises(SystemExit, match="WORK="):
        state.save(str(tmp_path / "missing"), str(dest))


def test_common_helpers_extract_once_run_commands_and_write_whole_files(tmp_path):
    import sys
    import tarfile

    common = load(os.path.join(ROOT, "experiments", "common.py"))
    archive = tmp_path / "cifar.tar.gz"
    for split in ("train", "test"):
        (tmp_path / "src" / split / "cat").mkdir(parents=True)
        (tmp_path / "src" / split / "cat" / "0.jpg").write_bytes(b"jpg")
    with tarfile.open(archive, "w:gz") as t:
        for split in ("train", "test"):
            t.add(tmp_path / "src" / split, arcname=split)
    root = common.extract_cifar(str(tmp_path / "work"), str(archive))
    assert (tmp_path / "work" / "cifar10" / "test" / "cat" / "0.jpg").read_bytes() == b"jpg"
    archive.unlink()  # extracted once: a second call does not need the archive
    assert common.extract_cifar(str(tmp_path / "work"), str(archive)) == root

    path = str(tmp_path / "deep" / "r.json")
    assert common.read_json(path, {"none": 1}) == {"none": 1} and common.read_json(None) is None
    common.write_json(path, {"a": [1, 2]})
    assert common.read_json(path) == {"a": [1, 2]} and not os.path.exists(path + ".tmp")

    work = str(tmp_path / "work")
    common.run_command("ok", [sys.executable, "-c", "print('hello')"], work)
    assert "hello" in open(os.path.join(work, "logs", "ok.log")).read()
    with pytest.raises(SystemExit, match=r"bad failed with exit status 3; see .*bad\.log"):
        common.run_command("bad", [sys.executable, "-c", "raise SystemExit(3)"], work)


def test_label_free_shapes_compares_each_search_by_the_labelled_scores(tmp_path):
    shapes = load(os.path.join(ROOT, "experiments", "label_free_reward", "shapes.py"))
    quality = {"label_free": ((3.0, 9.0), (3.4, 7.0)), "random": ((2.0, 12.0), (2.4, 14.0)),
               "labelled": ((4.0, 5.0), (4.4, 4.0))}
    for kind, runs in quality.items():
        for seed, (is_mean, fid) in enumerate(runs):
            search = tmp_path / f"search_{kind}_s{seed}"
            search.mkdir()
            (search / "search_result.json").write_text(json.dumps(
                {"top_archs": [{"arch_str": f"{seed} 1 0 0", "reward": 1.0}]}))
            (search / "search_config.json").write_text(json.dumps(
                {"reward": "is" if kind == "labelled" else "kid",
                 "classifier": "/w/classifier.keras" if kind == "labelled"
                 else "label_free:contrastive"}))
            run = tmp_path / "train" / f"{kind}_s{seed}"
            run.mkdir(parents=True)
            (run / "eval_final.json").write_text(json.dumps({"is_mean": is_mean, "fid": fid}))
    results = shapes.analyse(str(tmp_path), [0, 1], {"test_accuracy": 1.0})
    row = results["searches"]["label_free"]
    assert row["archs"] == ["0 1 0 0", "1 1 0 0"] and row["reward"] == "kid"
    assert row["is_mean"] == pytest.approx(3.2) and row["fid_mean"] == pytest.approx(8.0)
    against_random = results["differences"]["label_free - random"]
    assert against_random["IS"]["difference"] == pytest.approx(1.0)
    assert against_random["FID"]["difference"] == pytest.approx(-5.0)
    assert results["differences"]["label_free - labelled"]["FID"]["difference"] == \
        pytest.approx(3.5)
    table = shapes.markdown(results)
    assert "| RL, labelled IS (the quick start) | is (classifier.keras) |" in table
    assert "3.20 +- 0.28 (3.00 / 3.40)" in table and "| label_free - random | FID | -5.00 |" in table


def test_bf16_search_compares_decisions_and_found_architectures(tmp_path):
    bf = load(os.path.join(ROOT, "experiments", "bf16_search", "run.py"))
    specs = bf.searches(2)
    assert list(specs) == ["rl_s0", "rl_bf16_s0", "random_s0", "rl_s1", "random_s1"]
    assert specs["rl_bf16_s0"] == ("rl", 0, "bfloat16") and specs["random_s1"][2] == "float32"
    tops = {"rl_s0": ["1 0 1 1 1 0 0 1 1 1 0 1 0 3", "0 0 0 0 0 0 0 0 0 0 0 0 0 0"],
            "rl_bf16_s0": ["1 0 1 1 1 0 0 1 1 1 0 1 0 3", "0 2 2 0 1 2 1 0 1 0 1 2 1 2",
                           "0 2 2 0 1 2 1 0 1 0 1 2 1 2"],  # sampled twice: counted once
            "random_s0": ["1 1 1 1 1 1 1 1 1 1 1 1 1 1"], "rl_s1": ["2 2 2 2 2 2 2 2 2 2 2 2 2 2"],
            "random_s1": ["0 1 0 1 0 1 0 1 0 1 0 1 0 1"]}
    # (IS, FID) of each search's derived architecture trained with seeds 0, 1
    found = {"rl_s0": ((5.0, 20.0), (5.2, 18.0)), "rl_bf16_s0": ((4.8, 20.5), (5.0, 21.5)),
             "random_s0": ((4.0, 30.0), (4.4, 28.0)), "rl_s1": ((5.4, 17.0), (5.6, 15.0)),
             "random_s1": ((4.2, 26.0), (4.6, 24.0))}

    def write(path, value):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(value, f)

    for name, archs in tops.items():
        write(str(tmp_path / f"search_{name}" / "search_result.json"),
              {"top_archs": [{"arch_str": a} for a in archs]})
        if name in ("rl_s0", "rl_bf16_s0"):  # killed once and resumed: two parts
            seconds = (600, 300) if name == "rl_s0" else (300, 150)
            (tmp_path / f"search_{name}" / "search_log.jsonl").write_text("".join(
                json.dumps({"event": "wall_time", "seconds": t}) + "\n" for t in seconds))
        best = archs[-1]  # derive may keep another of the top-K than the search's first
        write(str(tmp_path / f"derive_{name}" / "derive_result.json"), {"best": {"arch": best}})
        for seed, (is_mean, fid) in enumerate(found[name]):
            write(str(tmp_path / "train" / (best.replace(" ", "") + f"_s{seed}")
                      / "eval_final.json"), {"is_mean": is_mean, "fid": fid})
    archs = bf.choose_archs(str(tmp_path), 5, seed=3)
    assert [a["source"] for a in archs] == ["both", "float32", "bfloat16", "uniform", "uniform"]
    names = [a["arch"] for a in archs]
    runs = bf.stand_alone_runs(str(tmp_path), specs, names, train_seeds=3, extra_train_seeds=2)
    assert ("0 2 2 0 1 2 1 0 1 0 1 2 1 2", 2) in runs  # a seed-0 search's: 3 seeds
    assert ("2 2 2 2 2 2 2 2 2 2 2 2 2 2", 1) in runs
    assert ("2 2 2 2 2 2 2 2 2 2 2 2 2 2", 2) not in runs  # another search's: 2 seeds
    assert {(a, 0) for a in names} <= set(runs)
    # Seed-0 stand-alone quality of the uniform ones; the proxies: bf16 ranks as float32 does.
    for i, arch in enumerate(names):
        path = tmp_path / "train" / (arch.replace(" ", "") + "_s0") / "eval_final.json"
        if not path.exists():
            write(str(path), {"is_mean": 3.0 + i, "fid": 40.0 - i})
    proxy = {}
    for i, arch in enumerate(names):
        proxy[f"rl_s0/{arch}"] = float(i)
        proxy[f"rl_bf16_s0/{arch}"] = 10.0 + 2 * i
    results = bf.analyse(str(tmp_path), specs, archs, proxy, {"test_accuracy": 0.5},
                         {"derive_iters": 1}, 2, 2)
    assert results["settings"]["derive_iters"] == 1 and len(results["architectures"]) == 5
    assert results["top_k"]["overlap"] == 1 and results["top_k"]["same_best"]
    assert results["correlation"]["bfloat16_vs_float32"]["rho"] == pytest.approx(1.0)
    bf16_minus = results["differences"]["rl_bf16_s0 - rl_s0"]
    assert bf16_minus["IS"]["difference"] == pytest.approx(-0.2)
    assert bf16_minus["FID"]["difference"] == pytest.approx(2.0)
    # Over searches: RL IS means 5.1, 5.5 against random 4.2, 4.4; FID 19, 16 against 29, 25.
    over = results["differences"]["RL - random, over searches"]
    assert over["IS"]["difference"] == pytest.approx(1.0)
    assert over["FID"]["difference"] == pytest.approx(-9.5)
    table = bf.markdown(results)
    assert results["found"]["rl_s0"]["search_seconds"] == 900
    assert results["found"]["rl_s1"]["search_seconds"] is None
    assert "15.0 min in float32, 7.5 min in bfloat16 (2.00x)" in table
    assert "(distinct architectures): 1 of 2 the same in bfloat16 and float32; the same " \
        "best: yes; the same derived architecture: no." in table
    assert ("| rl | 0 | bfloat16 | `0 2 2 0 1 2 1 0 1 0 1 2 1 2` | 4.90 +- 0.14 (4.80 / 5.00)"
            in table)


def test_side_by_side_restores_our_generator_exactly_or_refuses(side_by_side, tmp_path):
    import tensorflow as tf

    from autogan_tf import models

    sbs = side_by_side
    g = models.DerivedGenerator(sbs.ARCH, sbs.GF, sbs.LATENT, sbs.BOTTOM)
    z = tf.random.stateless_normal((2, sbs.LATENT), seed=(1, 2))
    want = g(z, training=False).numpy()
    saved = tf.train.Checkpoint(ema_generator=g).save(
        str(tmp_path / "ours_seed0" / "checkpoints" / "ckpt"))  # as training saves: ckpt-1
    assert saved.endswith("ckpt-1")
    restored = sbs._our_generator(str(tmp_path), 0, 1, ema=True)
    np.testing.assert_array_equal(restored(z, training=False).numpy(), want)
    with pytest.raises(AssertionError):  # no raw generator saved: not a random one instead
        sbs._our_generator(str(tmp_path), 0, 1, ema=False)
