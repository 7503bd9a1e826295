"""The command lines as a user runs them (subprocesses of this interpreter)."""

import json

import pytest

from conftest import run_cli


def test_summary_json_matches_official_counts():
    out = run_cli("summary", "--arch=autogan_cifar10_a", "--gf_dim=256", "--df_dim=128", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["g_params"] == 4_405_251
    assert result["d_params"] == 1_053_824
    assert result["g_gflops"] == pytest.approx(2 * result["g_gmacs"])
    assert round(result["g_gmacs"], 2) == 1.77
    assert set(result) >= {"g_params", "d_params", "g_gflops", "d_gflops"}


def test_summary_table_and_bad_arch():
    out = run_cli("summary", "--arch=1 0 1 1", "--gf_dim=8", "--df_dim=8")
    assert out.returncode == 0, out.stderr
    assert "G" in out.stdout and "GFLOPs/img" in out.stdout
    bad = run_cli("summary", "--arch=1 0 1 1 1 0 0 1 7")
    assert bad.returncode != 0
    assert "--arch: cell 2: field 'skip_mask' is 7; allowed 0..1" in bad.stderr


def test_train_rejects_bad_flags_naming_them(tmp_path):
    bad = run_cli("train", f"--model_dir={tmp_path}", "--n_critic=0")
    assert bad.returncode != 0 and "--n_critic" in bad.stderr
    bad = run_cli("train", f"--model_dir={tmp_path}", "--arch=autogan_cifar10_q")
    assert bad.returncode != 0 and "--arch" in bad.stderr and "alias" in bad.stderr


def test_search_rejects_bad_flags_naming_them(tmp_path):
    bad = run_cli("search", f"--model_dir={tmp_path}", "--topk=11")
    assert bad.returncode != 0 and "--topk=11 must not exceed --num_candidates=10" in bad.stderr
    bad = run_cli("search", f"--model_dir={tmp_path}", "--grow_steps=35,15")
    assert bad.returncode != 0 and "--grow_steps" in bad.stderr


@pytest.mark.parametrize("command,own_flags", [
    ("search", ["--model_dir", "--min_free_mb", "--reset_threshold", "--gf_dim", "--topk"]),
    ("train", ["--model_dir", "--search_result", "--ema_warmup", "--gf_dim", "--max_iters"]),
])
def test_help_lists_the_commands_settings_as_a_console_script_and_with_python_m(
        command, own_flags):
    # An installed console script is a wrapper: its argv[0] is not the command's module.
    wrapper = ("import sys; sys.argv[0] = '/opt/venv/bin/autogan-%s'; "
               "from autogan_tf.cli.%s import run; run()" % (command, command))
    for out in (run_cli("-c", wrapper, "--help"), run_cli(command, "--help")):
        assert "--helpfull" in out.stdout, out.stderr[-2000:]  # absl's --help exits with 1
        listed = [line.split(":")[0].strip() for line in out.stdout.splitlines()
                  if line.startswith("  --")]
        assert set(own_flags) <= set(listed), listed
        assert "--test_tmpdir" not in listed  # other libraries' flags stay in --helpfull


@pytest.mark.parametrize("command,expected", [
    ("quickstart", "2 {half}"),  # small models: two ops at once on half the cores each
    ("train", "-1 0"),  # one op on every core (the automatic policy)
])
def test_thread_defaults_follow_the_model_size(command, expected):
    from autogan_tf.cli.common import host_cores

    code = ("from absl import flags; from autogan_tf.cli import %s; "
            "print(flags.FLAGS['inter_op_threads'].default, "
            "flags.FLAGS['intra_op_threads'].default)" % command)
    out = run_cli("-c", code)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[-2] == expected.format(half=max(1, host_cores() // 2))
