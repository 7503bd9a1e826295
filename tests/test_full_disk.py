"""A disk that fills up mid-run, on a real small file system: the training and the search
stop with one line naming the newest complete checkpoint, and the same command resumes
from it once there is room again.

The tests mount a tmpfs of their own (root on Linux); where the machine does not allow it
they are skipped with the reason.
"""

import os
import subprocess
import sys
import time

import pytest

from conftest import ROOT, TINY_GAN, cli_env, flag_args, last_json, read_jsonl

SIZE_MB = 64


@pytest.fixture
def small_disk(tmp_path):
    """A fresh tmpfs of `SIZE_MB` MB, unmounted afterwards."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m", "tmpfs",
                          str(mount_point)], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({out.stderr.strip() or 'not root'}): the "
                    "full-disk tests need one")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def _fill(directory):
    """Write a ballast file until the file system is full; returns its path."""
    path = os.path.join(directory, "ballast")
    block = b"\0" * (1 << 20)
    with open(path, "wb") as f:
        try:
            while True:
                f.write(block)
                f.flush()
        except OSError:
            pass
    return path


def _checkpoints(model_dir):
    folder = os.path.join(model_dir, "checkpoints")
    if not os.path.isdir(folder):
        return []
    return sorted(int(n.split("-")[1].split(".")[0]) for n in os.listdir(folder)
                  if n.startswith("ckpt-") and n.endswith(".index"))


def _run_until_full(command, model_dir, disk, checkpoints_before_filling=2):
    """Start ``command``; once it has written checkpoints, fill the disk; its outcome."""
    process = subprocess.Popen(command, cwd=ROOT, env=cli_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while len(_checkpoints(model_dir)) < checkpoints_before_filling:
        assert process.poll() is None, process.stderr.read()[-3000:]
        assert time.time() < deadline, "no checkpoint written"
        time.sleep(0.2)
    ballast = _fill(str(disk))
    out, err = process.communicate(timeout=300)
    return process.returncode, out, err, ballast


def _one_error_line(err, command):
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("[")]
    assert "Traceback" not in err, err[-3000:]
    errors = [line for line in lines if line.startswith(f"{command}: error:")]
    assert len(errors) == 1, err[-3000:]
    return errors[0]


def _names_the_checkpoint(line, model_dir, newest):
    assert "No space left on device" in line, line
    assert f"the newest complete checkpoint is {model_dir}/checkpoints/ckpt-{newest}." in line
    assert line.endswith("rerun the same command to resume from it")


def test_training_stops_in_one_line_on_a_full_disk_and_resumes(small_disk):
    model_dir = str(small_disk / "run")
    command = [sys.executable, "-m", "autogan_tf.cli.train", f"--model_dir={model_dir}",
               "--arch=1 0 1 1", "--min_free_mb=0", *flag_args(
                   **TINY_GAN, max_iters=100_000, save_every=5, keep_checkpoints=2,
                   log_every=5, eval_every=0)]
    code, _, err, ballast = _run_until_full(command, model_dir, small_disk)
    assert code == 1
    line = _one_error_line(err, "autogan-train")
    newest = _checkpoints(model_dir)[-1]
    _names_the_checkpoint(line, model_dir, newest)
    os.remove(ballast)
    again = [c if not c.startswith("--max_iters=") else f"--max_iters={newest + 5}"
             for c in command]
    resumed = subprocess.run(again, cwd=ROOT, env=cli_env(), capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert last_json(resumed.stdout)["step"] == newest + 5
    events = [r.get("event") for r in read_jsonl(os.path.join(model_dir, "metrics.jsonl"))]
    assert "resumed" in events


@pytest.mark.slow
def test_the_search_stops_in_one_line_on_a_full_disk_and_resumes(small_disk, tiny_classifier):
    model_dir = str(small_disk / "search")
    command = [sys.executable, "-m", "autogan_tf.cli.search", f"--model_dir={model_dir}",
               "--min_free_mb=0", f"--classifier={tiny_classifier}", *flag_args(
                   **TINY_GAN, num_cells=2, bottom_width=4, shared_iters=40, max_search_iters=2,
                   grow_steps="1", ctrl_steps=1, ctrl_sample_batch=2, num_candidates=2, topk=2,
                   reward_num_images=10, eval_batch_size=10, reset_window=4, save_every=2,
                   keep_checkpoints=2, log_every=5, hid_size=8)]
    code, _, err, ballast = _run_until_full(command, model_dir, small_disk)
    assert code == 1
    line = _one_error_line(err, "autogan-search")
    newest = _checkpoints(model_dir)[-1]
    _names_the_checkpoint(line, model_dir, newest)
    os.remove(ballast)
    resumed = subprocess.run(command, cwd=ROOT, env=cli_env(), capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "best_arch" in last_json(resumed.stdout)
    events = [r.get("event") for r in read_jsonl(os.path.join(model_dir, "search_log.jsonl"))]
    assert "resumed" in events
