"""A run directory belongs to one run: the writer's lock, and what it lets through."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from autogan_tf import rundir

from conftest import ROOT, TINY_GAN, cli_env, flag_args, read_jsonl

HOLD = """
import sys, time
from autogan_tf import rundir
with rundir.locked(sys.argv[1]):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _try_lock(directory):
    """Take the lock in another process; its exit status and last stderr line."""
    code = "import sys\nfrom autogan_tf import rundir\nwith rundir.locked(sys.argv[1]): pass"
    out = subprocess.run([sys.executable, "-c", code, directory], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    return out.returncode, (out.stderr.strip().splitlines() or [""])[-1]


def test_a_second_process_is_refused_naming_the_holder(tmp_path):
    directory = str(tmp_path / "run")
    with rundir.locked(directory):
        holder = json.loads(open(os.path.join(directory, ".lock")).read())
        assert holder["pid"] == os.getpid() and holder["host"]
        code, line = _try_lock(directory)
        assert code != 0 and "RunDirLocked" in line and f"process {os.getpid()}" in line
        assert directory in line
        with rundir.locked(directory):  # the same process: re-entrant
            pass
        assert _try_lock(directory)[0] != 0  # still held after the inner block
    assert _try_lock(directory) == (0, "")  # released


def test_a_killed_holder_leaves_nothing_to_clean_up(tmp_path):
    directory = str(tmp_path / "run")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, directory, "60"], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    assert _try_lock(directory)[0] != 0
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    assert _try_lock(directory) == (0, "")


def test_a_directory_that_cannot_be_created_is_a_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(rundir.ModelDirError, match="--model_dir=.*cannot be created"):
        with rundir.locked(str(blocker / "run")):
            pass


def _train(model_dir, max_iters, **extra):
    return [sys.executable, "-m", "autogan_tf.cli.train", f"--model_dir={model_dir}",
            "--arch=1 0 1 1", *flag_args(**TINY_GAN, max_iters=max_iters, log_every=1,
                                          save_every=50, eval_every=0, **extra)]


def _wait_for_steps(model_dir, steps, process, timeout=240):
    """Until the run has logged ``steps`` iterations (it is past its start-up)."""
    path = os.path.join(model_dir, "metrics.jsonl")
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert process.poll() is None, process.stderr.read()[-2000:]
        if os.path.exists(path) and sum("d_loss" in r for r in read_jsonl(path)) >= steps:
            return
        time.sleep(0.5)
    raise AssertionError(f"no {steps} steps logged in {timeout} s")


def test_two_runs_on_one_directory_one_refuses_and_a_killed_one_resumes(tmp_path,
                                                                          tiny_classifier):
    model_dir = str(tmp_path / "run")
    first = subprocess.Popen(_train(model_dir, 100_000), cwd=ROOT, env=cli_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_steps(model_dir, 2, first)
        # The same command again (a double submit): refused at once, one line, status 73.
        second = subprocess.run(_train(model_dir, 100_000), cwd=ROOT, env=cli_env(),
                                capture_output=True, text=True, timeout=300)
        assert second.returncode == rundir.EX_LOCKED
        lines = second.stderr.strip().splitlines()
        assert lines[-1].startswith(f"autogan-train: error: --model_dir={model_dir} is in use "
                                    f"by process {first.pid} on ")
        assert "Traceback" not in second.stderr
        # A read-only command beside the running one.
        evaluated = subprocess.run(
            [sys.executable, "-m", "autogan_tf.cli.evaluate", f"--model_dir={model_dir}",
             f"--classifier={tiny_classifier}", "--num_samples=10", "--batch_size=10",
             f"--output={tmp_path / 'eval.json'}"],
            cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=300)
        assert evaluated.returncode == 0, evaluated.stderr[-2000:]
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    # kill -9 left the lock file but not the lock: the same command resumes and finishes.
    saved = max(int(name.split("-")[1].split(".")[0])
                for name in os.listdir(os.path.join(model_dir, "checkpoints"))
                if name.startswith("ckpt-") and name.endswith(".index"))
    done = subprocess.run(_train(model_dir, saved + 2), cwd=ROOT, env=cli_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["step"] == saved + 2
    events = [r["event"] for r in read_jsonl(os.path.join(model_dir, "metrics.jsonl"))
              if "event" in r]
    assert "resumed" in events
