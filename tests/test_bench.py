"""The training benchmarks run end to end in --quick mode and report consistent figures."""

import json
import os
import subprocess
import sys

import pytest

from autogan_tf import models

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

import bench_train  # noqa: E402


def _run(script, *flags, tmp_path):
    out = tmp_path / "out.json"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    subprocess.run([sys.executable, os.path.join(ROOT, "bench", script), "--quick",
                    f"--output={out}", *flags], check=True, env=env, timeout=600,
                   capture_output=True)
    return json.loads(out.read_text())


def _check_rate(figure, peak):
    assert figure["median_seconds"] > 0 and figure["calls"] >= 1
    gflop = figure["gflop_per_iteration"] if "gflop_per_iteration" in figure else None
    if gflop is not None:
        assert figure["gflops"] == pytest.approx(gflop / figure["median_seconds"], rel=0.02)
    assert figure["fraction"]["of_float32_conv3x3_peak"] == pytest.approx(
        figure["gflops"] / peak["float32"]["conv3x3"], rel=2e-3)


def test_iteration_flops_by_hand():
    # 1 critic step, G batch 3, D batch 2: D step = G fwd on 2 + 3x D on 4 images;
    # G step = 3x G on 3 + 2x D on 3 (2 FLOPs per MAC).
    assert bench_train.iteration_flops(10, 7, 3, 2, 1) == 2 * (10 * 2 + 3 * 7 * 4 + 3 * 10 * 3
                                                               + 2 * 7 * 3)


def test_bench_train_quick(tmp_path):
    result = _run("bench_train.py", "--widths=4x4", tmp_path=tmp_path)
    peak = result["peak"]
    for dtype in ("float32", "bfloat16"):
        assert peak[dtype]["conv3x3"] > 0 and peak[dtype]["matmul"] > 0
    (width,) = result["widths"]
    flops = bench_train.iteration_flops(models.generator_macs("autogan_cifar10_a", 4),
                                        models.discriminator_macs(4, 32), 4, 4, 1)
    assert width["gflop_per_iteration"] == pytest.approx(flops / 1e9, rel=1e-3)
    assert set(width["variants"]) == {"float32", "bfloat16"}
    for figure in width["variants"].values():
        _check_rate({**figure, "gflop_per_iteration": flops / 1e9}, peak)
    assert width["speedup_vs_float32"]["bfloat16"] > 0


@pytest.mark.slow
def test_bench_supernet_quick(tmp_path):
    result = _run("bench_supernet.py", "--gf_dim=4", "--df_dim=4", "--stages=0",
                  "--num_archs=1", tmp_path=tmp_path)
    (stage,) = result["stages"]
    assert stage["stage"] == 0 and stage["image_size"] == 8
    _check_rate(stage, result["peak"])
    overhead = result["overhead"]
    for side in ("supernet", "derived"):
        _check_rate(overhead[side], result["peak"])
    assert overhead["time_ratio_supernet_over_derived"] == pytest.approx(
        overhead["supernet"]["median_seconds"] / overhead["derived"]["median_seconds"],
        rel=0.01)


def test_bad_widths_flag():
    with pytest.raises(SystemExit, match="--widths"):
        bench_train.parse_args(["--widths=256"])


def test_bench_sampling_quick(tmp_path):
    result = _run("bench_sampling.py", "--gf_dim=4", tmp_path=tmp_path)
    flops = 2 * models.generator_macs("autogan_cifar10_a", 4, 128) * 4
    assert result["gflop_per_batch"] == pytest.approx(flops / 1e9, rel=1e-3)
    assert set(result["figures"]) == {f"{p}/{k}" for p in ("float32", "bfloat16")
                                      for k in ("in_process", "saved_model")}
    for figure in result["figures"].values():
        assert figure["images_per_second"] == pytest.approx(4 / figure["median_seconds"],
                                                            rel=2e-3)
        _check_rate({**figure, "gflop_per_iteration": flops / 1e9}, result["peak"])
    assert result["ratios"]["float32/saved_model_over_in_process_speed"] > 0


def test_bench_distribute_quick(tmp_path):
    result = _run("bench_distribute.py", tmp_path=tmp_path)
    assert result["replicas"] == 2
    default, mirrored = result["figures"]["default"], result["figures"]["mirrored"]
    assert result["time_ratio_mirrored_over_default"] == pytest.approx(
        mirrored["median_seconds"] / default["median_seconds"], abs=1e-3)
    for figure in (default, mirrored):
        _check_rate({**figure, "gflop_per_iteration": result["gflop_per_iteration"]},
                    result["peak"])


@pytest.mark.slow
def test_bench_multi_worker_quick(tmp_path):
    result = _run("bench_multi_worker.py", tmp_path=tmp_path)
    assert result["workers"] == 2 and len(result["worker_medians"]) == 2
    default, multi = result["figures"]["default"], result["figures"]["multi_worker"]
    assert multi["replicas"] == 2 and default["replicas"] == 1
    assert result["time_ratio_multi_worker_over_default"] == pytest.approx(
        multi["median_seconds"] / min(result["default_medians_before_after"]), abs=1e-3)
    for figure in (default, multi):
        _check_rate({**figure, "gflop_per_iteration": result["gflop_per_iteration"]},
                    result["peak"])
