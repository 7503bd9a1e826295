"""The training benchmarks run end to end in --quick mode and report consistent figures."""

import json
import os
import subprocess
import sys

import pytest

from autogan_tf import models

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

import bench_supernet  # noqa: E402
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


def test_bench_train_times_conditional_models_beside(tmp_path):
    result = _run("bench_train.py", "--widths=4x4", "--precisions=float32", "--conditional=3",
                  tmp_path=tmp_path)
    (width,) = result["widths"]
    assert set(width["variants"]) == {"float32", "float32+conditional"}
    assert width["conditional_slowdown"]["float32+conditional"] == pytest.approx(
        width["variants"]["float32+conditional"]["median_seconds"]
        / width["variants"]["float32"]["median_seconds"], rel=0.01)


@pytest.mark.slow
def test_bench_supernet_quick(tmp_path):
    result = _run("bench_supernet.py", "--gf_dim=4", "--df_dim=4", "--stages=0",
                  "--num_archs=1", "--augment=translation,cutout", tmp_path=tmp_path)
    (stage,) = result["stages"]
    assert stage["stage"] == 0 and stage["image_size"] == 8
    assert stage["augment_slowdown"] == pytest.approx(
        stage["augment"]["median_seconds"] / stage["median_seconds"], rel=0.01)
    _check_rate(stage, result["peak"])
    overhead = result["overhead"]
    for side in ("supernet", "derived"):
        _check_rate(overhead[side], result["peak"])
    assert overhead["time_ratio_supernet_over_derived"] == pytest.approx(
        overhead["supernet"]["median_seconds"] / overhead["derived"]["median_seconds"],
        rel=0.01)


def test_official_figures_join_ours_by_stage():
    ours = [{"stage": 0, "median_seconds": 0.2, "gflop_per_iteration": 30.0},
            {"stage": 2, "median_seconds": 2.5, "gflop_per_iteration": 800.0}]
    official = [{"stage": s, "median_seconds": t, "min_seconds": t - 0.1, "max_seconds": t + 0.1,
                 "first_call_seconds": 1.0} for s, t in ((2, 5.0), (0, 0.3))]
    bench_supernet.attach_official(ours, official)
    assert [s["speedup_over_official"] for s in ours] == [1.5, 2.0]
    assert ours[0]["official"]["gflops"] == pytest.approx(100.0)  # 30 GFLOP in 0.3 s
    assert ours[1]["official"]["gflops"] == pytest.approx(160.0)
    assert ours[1]["official"]["min_seconds"] == 4.9


def test_official_flags_go_together_and_a_failing_official_run_is_named(tmp_path):
    with pytest.raises(SystemExit):
        bench_supernet.parse_args(["--official_repo=/nowhere"])
    with pytest.raises(SystemExit):
        bench_supernet.parse_args([f"--official_python={tmp_path}/python",
                                   "--official_repo=/nowhere"])
    args = bench_supernet.parse_args([f"--official_python={sys.executable}",
                                      f"--official_repo={tmp_path}", "--stages=0"])
    with pytest.raises(SystemExit, match="official_supernet.py failed(.|\n)*--official_repo"):
        bench_supernet.official_stages(args)  # not an AutoGAN checkout: the tool says so


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


# -- bench_search_phases: scaling a measured iteration to the paper's search -----------------
import bench_search_phases as phases_bench  # noqa: E402


def test_phase_scaling_by_hand():
    # Measured: 4 shared steps, 3 controller rewards, 2 saves. Paper: 2346, 30, 13.
    seconds = {"shared_training": 8.0, "arch_sampling": 0.4, "dynamic_reset": 0.2,
               "shared_logging": 0.1, "reward_scoring": 3.0, "sample_images": 1.5,
               "controller_sampling": 0.03, "controller_update": 0.06,
               "controller_logging": 0.03, "checkpoint": 1.0, "other": 0.5, "total": 14.82}
    calls = {"checkpoint": 2}
    got = phases_bench.scale_iteration(seconds, calls, {"shared_iters": 4, "ctrl_calls": 3},
                                       {"shared_iters": 2346, "ctrl_calls": 30, "saves": 13})
    shared = 2346 / 4
    assert got["shared_training"] == pytest.approx(8.0 * shared)
    assert got["dynamic_reset"] == pytest.approx(0.2 * shared)
    assert got["reward_scoring"] == pytest.approx(30.0)
    assert got["sample_images"] == pytest.approx(15.0)
    assert got["checkpoint"] == pytest.approx(6.5)
    assert got["other"] == 0.5
    assert got["total"] == pytest.approx(8.7 * shared + 10 * 4.62 + 6.5 + 0.5)


def test_phase_scaling_refuses_an_unknown_phase():
    with pytest.raises(ValueError, match="no scaling rule.*mystery"):
        phases_bench.scale_iteration({"mystery": 1.0, "total": 1.0}, {},
                                     {"shared_iters": 1, "ctrl_calls": 1},
                                     {"shared_iters": 1, "ctrl_calls": 1, "saves": 1})


def test_paper_search_counts():
    # 15 epochs of 50,000 images, D batch 64, n_critic 5: 2,346 G steps; a save every 200
    # plus the two at the phase ends.
    assert phases_bench.saves_per_iteration(2346, 200) == 13
    assert phases_bench.saves_per_iteration(4, 0) == 2
    assert [phases_bench.stage_of(i, [15, 35]) for i in (0, 14, 15, 34, 35, 64)] == [
        0, 0, 1, 1, 2, 2]
    full = phases_bench.full_search_seconds({0: 10.0, 1: 20.0, 2: 40.0}, [15, 35], 65,
                                            {0: 1.0, 1: 2.0, 2: 4.0}, 4.0, {0: 0.5, 2: 7.0})
    assert full["iterations_per_stage"] == {"0": 15, "1": 20, "2": 30}
    assert full["seconds"] == pytest.approx(150 + 400 + 1200 + 1 + 2 + 4 + 0.5 + 7)
    assert full["hours"] == pytest.approx(full["seconds"] / 3600)


@pytest.mark.slow
def test_bench_search_phases_quick(tmp_path):
    result = _run("bench_search_phases.py", tmp_path=tmp_path)
    assert [s["stage"] for s in result["stages"]] == [0, 1, 2]
    for stage in result["stages"]:
        paper = stage["paper_iteration"]
        assert sum(paper["fraction"].values()) == pytest.approx(1.0)
        assert paper["not_shared_training_fraction"] == pytest.approx(
            1.0 - paper["fraction"]["shared_training"])
        assert stage["measured_calls"]["shared_training"] == 4
    assert result["full_search"]["iterations_per_stage"] == {"0": 15, "1": 20, "2": 30}


# -- profile_step: op types from the profiler's host trace -----------------------------------
import profile_step  # noqa: E402


def test_profile_event_names_to_op_types():
    assert profile_step.op_type("d_adam/Identity_7/ReadVariableOp:ReadVariableOp") == (
        "ReadVariableOp")
    assert profile_step.op_type("while/body/_1/conv/Conv2D:_MklNativeFusedConv2D") == (
        "_MklNativeFusedConv2D")
    for other in ("ExecutorState::Process", "ThreadpoolListener::Record",
                  "EagerLocalExecute: __inference_f_12", "FunctionRun",
                  "while:StatelessWhile", "cell0/Case:Case"):  # containers: nested ops count
        assert profile_step.op_type(other) is None, other


@pytest.mark.slow
def test_profile_step_quick(tmp_path):
    result = _run("profile_step.py", "--stage=0", tmp_path=tmp_path)
    shares = [o["share"] for o in result["op_types"]]
    assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1.0 + 1e-6
    assert any("Conv2D" in o["op"] for o in result["op_types"])
    assert 0 < result["conv_and_matmul_share"] <= 1


def test_profile_conv_and_matmul_types():
    for kind in ("_MklNativeFusedConv2D", "_MklNativeConv2DBackpropFilterWithBias",
                 "Conv2DBackpropInput", "_MklMatMul", "BatchMatMulV2"):
        assert profile_step.is_conv_or_matmul(kind), kind
    for kind in ("Sum", "_MklNativeAvgPool", "FusedBatchNormV3", "ReadVariableOp"):
        assert not profile_step.is_conv_or_matmul(kind), kind


@pytest.mark.parametrize("script, flags, message", [
    (phases_bench, ["--shared_iters=0"], "--shared_iters must be at least 1"),
    (phases_bench, ["--iters_per_stage=1"], "--iters_per_stage must be at least 2"),
    (phases_bench, ["--classifier=/nonexistent.keras"], "/nonexistent.keras: no such file"),
    (profile_step, ["--steps=0"], "--steps must be at least 1"),
])
def test_bad_flags_of_the_new_benchmarks(script, flags, message, capsys):
    with pytest.raises(SystemExit):
        script.parse_args(flags)
    assert message in capsys.readouterr().err


def test_im2col_convolution_is_the_same_convolution():
    tf = pytest.importorskip("tensorflow")
    import bench_conv_forms

    # Ones through a ones kernel count each pixel's neighbours inside the 'same' padding.
    ones = bench_conv_forms.conv_im2col(tf.ones([1, 3, 3, 1]), tf.ones([3, 3, 1, 1]))
    assert ones.numpy()[0, :, :, 0].tolist() == [[4, 6, 4], [6, 9, 6], [4, 6, 4]]
    x = tf.random.stateless_normal([2, 5, 5, 3], [0, 1])
    kernel = tf.random.stateless_normal([3, 3, 3, 4], [0, 2])
    assert bench_conv_forms.conv_im2col(x, kernel).numpy() == pytest.approx(
        tf.nn.conv2d(x, kernel, 1, "SAME").numpy(), abs=1e-5)
