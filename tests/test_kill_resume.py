"""Reliability, slow part: ``kill -9`` at random moments and inside checkpoint writes, torn
checkpoints, and SIGTERM, all through the command lines; each interrupted run is rerun
until it finishes and compared with an uninterrupted run of the same seed.

    pytest -m slow tests/test_kill_resume.py -s
    AUTOGAN_KILLS=10 AUTOGAN_FAULT_SEED=3 pytest -m slow tests/test_kill_resume.py -s

``AUTOGAN_KILLS`` (default 5) faults are injected per command, cycling through
``random`` (SIGKILL from outside after a random number of progress records plus a random
fraction of a second), ``in_save`` (SIGKILL at a random moment of a checkpoint write,
`autogan_tf.testing.faults --kill_in_save`) and ``tear`` (a checkpoint cut in half right
after it was written, then SIGKILL: the rerun must detect it and use the previous one).
With ``-s`` a table of what each fault cost is printed.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from autogan_tf.testing import faults

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KILLS = int(os.environ.get("AUTOGAN_KILLS", "5"))
FAULT_SEED = int(os.environ.get("AUTOGAN_FAULT_SEED", "0"))
FAULT_CYCLE = ("random", "in_save", "random", "tear")
RUN_TIMEOUT = 900

SEARCH = dict(dataset="shapes", gf_dim=4, df_dim=4, latent_dim=4, g_batch_size=4,
              d_batch_size=4, n_critic=2, shared_iters=4, max_search_iters=3, grow_steps="1",
              num_cells=2, ctrl_steps=2, ctrl_sample_batch=2, num_candidates=3, topk=2,
              reward_num_images=20, eval_batch_size=10, reset_window=3, reset_threshold=0.05,
              save_every=1, log_every=1, hid_size=8, seed=3)
TRAIN = dict(arch="1 0 1 1 1 0 0 1 1", dataset="shapes", gf_dim=4, df_dim=4, latent_dim=4,
             g_batch_size=4, d_batch_size=4, n_critic=1, max_iters=16, log_every=1,
             save_every=2, eval_every=8, eval_num_samples=20, eval_batch_size=10, seed=3)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """A random 16 px classifier with sharpened logits, so rewards differ between archs."""
    from autogan_tf.metrics import classifiers

    model = classifiers.build_classifier(num_classes=5, image_size=16, width=4)
    logits = model.get_layer("logits")
    kernel, bias = logits.get_weights()
    logits.set_weights([kernel * 40.0, bias])
    path = str(tmp_path_factory.mktemp("clf") / "clf16.keras")
    model.save(path)
    return path


def command_args(flags, model_dir, classifier):
    return [f"--model_dir={model_dir}", f"--classifier={classifier}",
            *[f"--{k}={v}" for k, v in flags.items()]]


class Run:
    """One process of a command, its output in files (a pipe could fill up and block it)."""

    def __init__(self, module, args, workdir, fault_args=()):
        self.index = len([n for n in os.listdir(workdir) if n.endswith(".stderr")])
        self.stdout_path = os.path.join(workdir, f"run{self.index}.stdout")
        self.stderr_path = os.path.join(workdir, f"run{self.index}.stderr")
        prefix = ["-m", "autogan_tf.testing.faults", *fault_args, "--"] if fault_args else ["-m"]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
        with open(self.stdout_path, "w") as out, open(self.stderr_path, "w") as err:
            self.proc = subprocess.Popen([sys.executable, *prefix, f"autogan_tf.cli.{module}", *args],
                                         cwd=ROOT, env=env, stdout=out, stderr=err)

    def wait(self):
        return self.proc.wait(timeout=RUN_TIMEOUT)

    @property
    def stdout(self):
        return open(self.stdout_path).read()

    @property
    def stderr(self):
        return open(self.stderr_path).read()


def run_to_end(module, args, workdir):
    run = Run(module, args, workdir)
    assert run.wait() == 0, run.stderr[-3000:]
    return run


class Command:
    """What the fault loop needs to know about one command's log."""

    def __init__(self, module, log_name, progress, position, resumed_position, interval):
        self.module = module
        self.log_name = log_name
        self.progress = progress  # record -> is it a unit of progress
        self.position = position  # progress record -> comparable position
        self.resumed_position = resumed_position  # "resumed" record -> position
        self.interval = interval  # progress record -> how many such records one interval holds


SEARCH_COMMAND = Command(
    "search", "search_log.jsonl",
    progress=lambda r: "event" not in r and ("shared_step" in r or "ctrl_step" in r),
    position=lambda r: (r["iteration"], 0, r["shared_step"]) if "shared_step" in r
    else (r["iteration"], 1, r["ctrl_step"]),
    resumed_position=lambda r: (r["iteration"], r["phase"], r["phase_step"]),
    # Phase 0 checkpoints every save_every generator iterations; the controller phase is
    # one interval (checkpointed at its end).
    interval=lambda r: SEARCH["save_every"] if "shared_step" in r else SEARCH["ctrl_steps"])
TRAIN_COMMAND = Command(
    "train", "metrics.jsonl",
    progress=lambda r: "d_loss" in r,
    position=lambda r: r["step"],
    resumed_position=lambda r: r["step"],
    interval=lambda r: TRAIN["save_every"])


def fault_loop(command, args, workdir, model_dir, kills, rng):
    """Inject ``kills`` faults, then run to the end; return one report row per fault."""
    log_path = os.path.join(model_dir, command.log_name)
    rows, runs = [], []
    for i in range(kills):
        kind = FAULT_CYCLE[i % len(FAULT_CYCLE)]
        fault_args = []
        if kind == "in_save":
            fault_args = [f"--kill_in_save={rng.randint(1, 3)}",
                          f"--fault_seed={rng.randrange(2 ** 30)}"]
        elif kind == "tear":
            fault_args = [f"--tear_save={rng.randint(1, 3)}"]
        start = len(faults.read_jsonl(log_path))
        run = Run(command.module, args, workdir, fault_args)
        detail = ""
        if kind == "random":
            target = rng.randint(1, 4)
            pause = rng.uniform(0.0, 1.0)
            _wait_new_progress(log_path, start, target, run, command)
            time.sleep(pause)
            detail = f"after {target} progress records + {pause:.2f} s"
            if run.proc.poll() is None:
                run.proc.kill()
        code = run.wait()
        fault_lines = [ln for ln in run.stderr.splitlines() if ln.startswith("FAULT ")]
        if fault_lines:
            detail = fault_lines[-1][len("FAULT "):]
        runs.append((run, start, kind, detail, code))
        if code == 0:  # it finished before the fault fired
            break
    starts = [start for _, start, *_ in runs] + [len(faults.read_jsonl(log_path))]
    final = Run(command.module, args, workdir)
    assert final.wait() == 0, final.stderr[-3000:]
    records = faults.read_jsonl(log_path)
    for k, (run, start, kind, detail, code) in enumerate(runs):
        if code == 0:
            continue
        assert code == -signal.SIGKILL, (kind, code, run.stderr[-2000:])
        mine = records[start:starts[k + 1]]
        # The first record a rerun writes is its "resumed" event (if it found a checkpoint).
        resumed = [r for r in records[starts[k + 1]:starts[k + 1] + 1]
                   if r.get("event") == "resumed"]
        resumed_at = command.resumed_position(resumed[0]) if resumed else None
        redone = [r for r in mine if command.progress(r) and
                  (resumed_at is None or command.position(r) > resumed_at)]
        # A crash costs at most one checkpoint interval of progress.
        for kind_of in {"shared_step" in r for r in redone}:
            same = [r for r in redone if ("shared_step" in r) == kind_of]
            assert len(same) <= command.interval(same[0]), (kind, detail, redone, resumed)
        next_run = runs[k + 1][0] if k + 1 < len(runs) else final
        torn = detail.split("truncated=")[1].rsplit(".data", 1)[0] if kind == "tear" else None
        if torn and os.path.dirname(torn) == os.path.join(model_dir, "checkpoints"):
            # The torn newest checkpoint was detected, named, and the previous one used.
            assert f"checkpoint {torn} cannot be restored" in next_run.stderr
            assert resumed and resumed[0]["checkpoint"] != torn
        rows.append({"fault": kind, "detail": detail,
                     "resumed_from": resumed[0]["checkpoint"] if resumed else "(start)",
                     "progress_redone": len(redone)})
    return rows, runs, final


def _wait_new_progress(log_path, start, count, run, command):
    deadline = time.time() + RUN_TIMEOUT
    while run.proc.poll() is None and time.time() < deadline:
        new = [r for r in faults.read_jsonl(log_path)[start:] if command.progress(r)]
        if len(new) >= count:
            return
        time.sleep(0.05)


def print_rows(title, rows):
    print(f"\n{title}")
    for row in rows:
        print(f"  {row['fault']:8s} {row['detail']:60s} resumed from "
              f"{os.path.basename(row['resumed_from']):10s} redone: {row['progress_redone']}")


# ---------------------------------------------------------------------------
# autogan-search
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def search_reference(tmp_path_factory, classifier):
    work = tmp_path_factory.mktemp("search_ref")
    model_dir = str(work / "model")
    run_to_end("search", command_args(SEARCH, model_dir, classifier), str(work))
    with open(os.path.join(model_dir, "search_result.json")) as f:
        return json.load(f)


def test_search_survives_kill_9(tmp_path, classifier, search_reference):
    model_dir = str(tmp_path / "model")
    args = command_args(SEARCH, model_dir, classifier)
    rows, runs, final = fault_loop(SEARCH_COMMAND, args, str(tmp_path), model_dir, KILLS,
                                   random.Random(FAULT_SEED))
    print_rows(f"autogan-search, {len(rows)} faults (seed {FAULT_SEED})", rows)
    with open(os.path.join(model_dir, "search_result.json")) as f:
        result = json.load(f)
    # The same computation as the uninterrupted run: same architectures, same rewards.
    assert result == search_reference
    log = faults.read_jsonl(os.path.join(model_dir, "search_log.jsonl"))
    assert [r for r in log if r.get("event") == "finished"]
    assert len(rows) >= min(KILLS, 2)


def test_search_sigterm_checkpoints_and_resumes(tmp_path, classifier, search_reference):
    model_dir = str(tmp_path / "model")
    args = command_args(SEARCH, model_dir, classifier)
    log_path = os.path.join(model_dir, "search_log.jsonl")
    run = Run("search", args, str(tmp_path))
    _wait_new_progress(log_path, 0, 7, run, SEARCH_COMMAND)  # inside iteration 1
    run.proc.send_signal(signal.SIGTERM)
    assert run.wait() == 75, run.stderr[-3000:]  # EX_TEMPFAIL: schedulers requeue it
    reply = json.loads(run.stdout.strip().splitlines()[-1])
    assert reply["preempted"] is True and reply["resume"] == "rerun the same command"
    log = faults.read_jsonl(log_path)
    (stop,) = [r for r in log if r.get("event") == "preempted"]
    stopped_at = SEARCH_COMMAND.resumed_position(stop)
    done = [SEARCH_COMMAND.position(r) for r in log if SEARCH_COMMAND.progress(r)]
    assert stopped_at >= done[-1]  # checkpointed at the next safe point
    assert stop["checkpoint"] == reply["checkpoint"] and os.path.exists(
        stop["checkpoint"] + ".index")
    assert "rerun the same command to resume" in run.stderr  # cli.common.exit_if_preempted
    final = run_to_end("search", args, str(tmp_path))
    log = faults.read_jsonl(log_path)
    resumed = [r for r in log if r.get("event") == "resumed"]
    assert [SEARCH_COMMAND.resumed_position(r) for r in resumed] == [stopped_at]
    # Nothing done before the signal is done again.
    again = [SEARCH_COMMAND.position(r) for r in log[log.index(resumed[0]):]
             if SEARCH_COMMAND.progress(r)]
    assert again and min(again) > done[-1]
    assert json.loads(final.stdout.strip().splitlines()[-1])["best_arch"]
    with open(os.path.join(model_dir, "search_result.json")) as f:
        assert json.load(f) == search_reference


# ---------------------------------------------------------------------------
# autogan-train
# ---------------------------------------------------------------------------

def per_step(model_dir):
    """{step: (d_loss, g_loss)} from metrics.jsonl, and the evaluation records by step."""
    records = faults.read_jsonl(os.path.join(model_dir, "metrics.jsonl"))
    losses, evals = {}, {}
    for r in records:
        if "d_loss" in r:
            losses.setdefault(r["step"], []).append((r["d_loss"], r["g_loss"]))
        if "is_mean" in r:
            evals.setdefault(r["step"], []).append((r["is_mean"], r["fid"]))
    return losses, evals


def final_weights(model_dir):
    from autogan_tf import training

    g, _, path = training.restore_generator(model_dir)
    return g.get_weights(), path


@pytest.fixture(scope="module")
def train_reference(tmp_path_factory, classifier):
    work = tmp_path_factory.mktemp("train_ref")
    model_dir = str(work / "model")
    run_to_end("train", command_args(TRAIN, model_dir, classifier), str(work))
    return model_dir


def assert_same_training(model_dir, reference):
    losses, evals = per_step(model_dir)
    ref_losses, ref_evals = per_step(reference)
    assert sorted(losses) == list(range(1, TRAIN["max_iters"] + 1))
    # Every step, including the ones redone after a crash, matches the uninterrupted run.
    for step, values in losses.items():
        assert set(values) == set(ref_losses[step]), (step, values, ref_losses[step])
    assert sorted(evals) == [8, 16]
    for step, values in evals.items():
        assert set(values) == set(ref_evals[step]), (step, values, ref_evals[step])
    weights, path = final_weights(model_dir)
    ref_weights, ref_path = final_weights(reference)
    from autogan_tf import training

    best, _, best_path = training.restore_generator(model_dir, "best")  # a torn best repaired
    assert os.path.basename(best_path) == os.path.basename(
        training.restore_generator(reference, "best")[2])
    assert os.path.basename(path) == os.path.basename(ref_path) == f"ckpt-{TRAIN['max_iters']}"
    for a, b in zip(weights, ref_weights):
        np.testing.assert_array_equal(a, b)


def test_train_survives_kill_9(tmp_path, classifier, train_reference):
    model_dir = str(tmp_path / "model")
    args = command_args(TRAIN, model_dir, classifier)
    rows, runs, final = fault_loop(TRAIN_COMMAND, args, str(tmp_path), model_dir, KILLS,
                                   random.Random(FAULT_SEED + 1))
    print_rows(f"autogan-train, {len(rows)} faults (seed {FAULT_SEED + 1})", rows)
    assert json.loads(final.stdout.strip().splitlines()[-1])["step"] == TRAIN["max_iters"]
    resumed = [r for r in faults.read_jsonl(os.path.join(model_dir, "metrics.jsonl"))
               if r.get("event") == "resumed"]
    assert resumed, "no run resumed from a checkpoint"
    assert_same_training(model_dir, train_reference)
    assert len(rows) >= min(KILLS, 2)


def test_train_sigterm_checkpoints_and_resumes(tmp_path, classifier, train_reference):
    model_dir = str(tmp_path / "model")
    args = command_args(TRAIN, model_dir, classifier)
    log_path = os.path.join(model_dir, "metrics.jsonl")
    run = Run("train", args, str(tmp_path))
    _wait_new_progress(log_path, 0, 5, run, TRAIN_COMMAND)
    run.proc.send_signal(signal.SIGTERM)
    assert run.wait() == 75, run.stderr[-3000:]  # EX_TEMPFAIL: schedulers requeue it
    reply = json.loads(run.stdout.strip().splitlines()[-1])
    assert reply["preempted"] is True
    step = reply["step"]
    records = faults.read_jsonl(log_path)
    assert [r["step"] for r in records if r.get("event") == "preempted"] == [step]
    assert max(r["step"] for r in records if "d_loss" in r) == step  # nothing lost
    assert os.path.exists(os.path.join(model_dir, "checkpoints", f"ckpt-{step}.index"))
    final = run_to_end("train", args, str(tmp_path))
    assert json.loads(final.stdout.strip().splitlines()[-1])["step"] == TRAIN["max_iters"]
    resumed = [r for r in faults.read_jsonl(log_path) if r.get("event") == "resumed"]
    assert [r["step"] for r in resumed] == [step]
    assert_same_training(model_dir, train_reference)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_train_skips_a_damaged_latest_checkpoint(tmp_path, classifier, damage):
    """Bit flips (CRC mismatch) or truncation of the newest checkpoint, found by a rerun."""
    model_dir = str(tmp_path / "model")
    flags = dict(TRAIN, max_iters=4, save_every=2, eval_every=0)
    run_to_end("train", command_args(flags, model_dir, classifier), str(tmp_path))
    newest = os.path.join(model_dir, "checkpoints", "ckpt-4")
    if damage == "flip":
        faults.flip_bytes(newest, seed=FAULT_SEED)
    else:
        faults.truncate_checkpoint(newest, 0.9)
    flags["max_iters"] = 6
    rerun = run_to_end("train", command_args(flags, model_dir, classifier), str(tmp_path))
    assert f"checkpoint {newest} cannot be restored" in rerun.stderr
    assert json.loads(rerun.stdout.strip().splitlines()[-1])["step"] == 6
    records = faults.read_jsonl(os.path.join(model_dir, "metrics.jsonl"))
    (resumed,) = [r for r in records if r.get("event") == "resumed"]
    assert resumed["step"] == 2 and resumed["checkpoint"].endswith("ckpt-2")
    assert [r["step"] for r in records if "d_loss" in r] == [1, 2, 3, 4, 3, 4, 5, 6]
