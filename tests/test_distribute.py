"""Host configuration and strategies (autogan_tf.distribute)."""

import os
import subprocess
import sys

import pytest

from conftest import ROOT, TINY_GAN, cli_env, flag_args, last_json, run_cli, run_fresh


def test_automatic_inter_op_threads_is_one_op_at_a_time_without_gpus():
    got = run_fresh("""
        import tensorflow as tf
        from autogan_tf import distribute
        distribute.configure_threads(-1)
        gpus = bool(tf.config.list_physical_devices("GPU"))
        print(tf.config.threading.get_inter_op_parallelism_threads(), gpus)
    """)
    threads, gpus = got.split()
    assert threads == ("0" if gpus == "True" else "1")


def test_explicit_threads_after_tensorflow_started_is_an_error_naming_the_flag():
    got = run_fresh("""
        import tensorflow as tf
        from autogan_tf import distribute
        tf.constant(1.0) + 1.0  # starts the runtime
        distribute.configure_threads(-1)  # automatic: silently keeps what is there
        try:
            distribute.configure_threads(3, 2)
        except distribute.DistributeError as e:
            print("error", "--inter_op_threads" in str(e))
    """)
    assert got == "error True"


def test_explicit_threads_are_applied():
    got = run_fresh("""
        import tensorflow as tf
        from autogan_tf import distribute
        distribute.configure_threads(2, 1)
        print(tf.config.threading.get_inter_op_parallelism_threads(),
              tf.config.threading.get_intra_op_parallelism_threads())
    """)
    assert got == "2 1"


MIRRORED_VS_DEFAULT = """
    import json
    import numpy as np
    import tensorflow as tf
    from autogan_tf import distribute, gan_trainer, models

    strategy = distribute.make_strategy("mirrored", cpu_devices=2)
    SEARCH = {search}
    ARCH = "1 1 0 1 0 2 1 1 1 1 1 1 0 3"  # BN in every cell, bilinear/nearest/deconv, skips

    def build(scope_strategy, sync_bn):
        with scope_strategy.scope():
            if SEARCH:
                g = models.SuperGenerator(8, 8, 4, 3, sync_bn=sync_bn)
            else:
                g = models.DerivedGenerator(ARCH, gf_dim=8, latent_dim=8, sync_bn=sync_bn)
            d = models.Discriminator(8, num_cells=3)
            if SEARCH:  # variables are created on the first call: inside the scope
                g(tf.zeros([1, 8]), tf.zeros([14], tf.int32), stage=0)
                d(tf.zeros([1, 8, 8, 3]), stage=0)
            else:
                g(tf.zeros([1, 8]))
                d(tf.zeros([1, 32, 32, 3]))
        return g, d

    def run(g, d, s):
        t = gan_trainer.GANTrainer(g, d, n_critic=2, g_batch_size=4, seed=3, strategy=s,
                                   ema_decay=None if SEARCH else 0.9)
        reals = tf.random.stateless_normal([2, 4, {side}, {side}, 3], [1, 2])
        # Cell 0 (all of stage 0) without BN: supernet cells keep per-replica BN.
        archs = tf.constant([[1, 2, 0, 1, 0, 2, 1, 1, 1, 1, 1, 1, 0, 3],
                             [0, 0, 2, 1, 1, 1, 1, 0, 2, 0, 1, 0, 1, 1]]) if SEARCH else None
        out = [t.train_iteration(reals, archs, stage=0 if SEARCH else None) for _ in range(2)]
        return [o["d_losses"].numpy().tolist() + [float(o["g_loss"])] for o in out], t

    g0, d0 = build(tf.distribute.get_strategy(), False)
    g1, d1 = build(strategy, True)
    g1.set_weights(g0.get_weights()); d1.set_weights(d0.get_weights())
    losses0, t0 = run(g0, d0, None)
    losses1, t1 = run(g1, d1, strategy)
    diffs = np.concatenate([np.abs(a - b).ravel() for a, b in zip(
        g0.get_weights() + d0.get_weights(), g1.get_weights() + d1.get_weights())])
    weight_diff = float(diffs.max())
    weights_off = float(np.mean(diffs > 1e-5))
    # Every replica's copy of every variable is identical (SN's u, BN statistics, EMA).
    spread = 0.0
    for v in g1.variables + d1.variables + (t1.ema_generator.variables if t1.ema_generator else []):
        parts = strategy.experimental_local_results(v.value)
        assert len(parts) == 2, v.path
        spread = max([spread] + [float(np.max(np.abs(p.numpy() - parts[0].numpy()))) for p in parts])
    print(json.dumps({{"losses0": losses0, "losses1": losses1, "weight_diff": weight_diff, "weights_off": weights_off,
                      "replicas": t1.replicas, "replica_spread": spread}}))
"""


@pytest.mark.parametrize("search,side", [
    (False, 32), pytest.param(True, 8, marks=pytest.mark.slow)], ids=["derived", "supernet"])
def test_two_cpu_replicas_match_the_default_strategy(search, side):
    import json

    got = json.loads(run_fresh(MIRRORED_VS_DEFAULT.format(search=search, side=side)))
    assert got["replicas"] == 2
    np = pytest.importorskip("numpy")
    np.testing.assert_allclose(got["losses1"], got["losses0"], rtol=1e-4, atol=1e-5)
    # Adam moves a weight by up to about lr (2e-4) per step whatever the gradient's size
    # (PyTorch's epsilon, optimizers.TorchAdam: a noise-level gradient takes nearly a full
    # step), so float rounding can flip the few near-zero gradients: over D's 4 steps two runs
    # can end up to ~8 lr apart there (measured 3.6-3.8 lr); bound those, and require almost
    # every weight to agree to 1e-5.
    assert got["weight_diff"] < 8 * 2e-4 and got["weights_off"] < 0.01
    assert got["replica_spread"] == 0.0


def _train_cli(model_dir, *flags):
    return run_cli("train", f"--model_dir={model_dir}", "--arch=1 1 0 1 0 2 1 1 1 1 1 1 0 3",
                   *flag_args(**TINY_GAN, log_every=1, eval_every=0, max_iters=2), *flags)


def test_autogan_train_mirrored_on_two_cpu_devices_matches_one_device(tmp_path):
    import json

    def losses(model_dir):
        with open(model_dir / "metrics.jsonl") as f:
            rows = [json.loads(line) for line in f]
        return [(r["d_loss"], r["g_loss"]) for r in rows if "d_loss" in r]

    one = _train_cli(tmp_path / "one")
    two = _train_cli(tmp_path / "two", "--strategy=mirrored", "--cpu_devices=2")
    assert one.returncode == 0, one.stderr[-3000:]
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(a) == len(b) == 2
    np = pytest.importorskip("numpy")
    np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-4)
    assert (tmp_path / "two" / "checkpoints" / "checkpoint").exists()


def test_strategy_flag_errors_name_the_flag(tmp_path):
    bad = _train_cli(tmp_path / "bad", "--strategy=mirrored", "--cpu_devices=-1")
    assert bad.returncode != 0 and "--cpu_devices" in bad.stderr
    # Export runs on one device: it refuses a strategy by name rather than ignoring it.
    other = run_cli("export", f"--model_dir={tmp_path}", f"--export_dir={tmp_path / 'export'}",
                    "--strategy=mirrored", timeout=600)
    assert other.returncode != 0 and "--strategy=mirrored is not supported" in other.stderr
    # multi_worker without TF_CONFIG names the variable.
    bad = run_cli("evaluate", f"--model_dir={tmp_path}", "--strategy=multi_worker", timeout=600,
                  env=cli_env(TF_CONFIG=None))
    assert bad.returncode != 0 and "TF_CONFIG" in bad.stderr


# -- several workers: MultiWorkerMirroredStrategy over localhost ports -----------------------
def run_workers(module, args, num_workers=2, timeout=600):
    """``python -m module args`` as ``num_workers`` workers of one cluster (TF_CONFIG on
    localhost ports); the CompletedProcess of each, worker 0 (the chief) first."""
    from autogan_tf.testing import cluster

    procs = []
    for tf_config in cluster.local_tf_configs(num_workers):
        procs.append(subprocess.Popen([sys.executable, "-m", module, *args,
                                       "--strategy=multi_worker"], cwd=ROOT,
                                      env=cli_env(TF_CONFIG=tf_config),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    return results


def test_two_workers_train_like_one_device_and_only_the_chief_writes(tmp_path, tiny_classifier):
    import json

    common = ["--dataset=shapes", "--arch=1 1 0 1 0 2 1 1 1 1 1 1 0 3", "--gf_dim=4",
              "--df_dim=4", "--latent_dim=4", "--g_batch_size=4", "--d_batch_size=4",
              "--n_critic=1", "--log_every=1", "--eval_every=2", "--eval_num_samples=20",
              f"--classifier={tiny_classifier}"]
    one = _train_cli(tmp_path / "one", *common[9:])
    assert one.returncode == 0, one.stderr[-3000:]
    model_dir = tmp_path / "multi"
    chief, worker = run_workers("autogan_tf.cli.train", [f"--model_dir={model_dir}", *common,
                                              "--max_iters=2"])
    assert chief.returncode == 0, chief.stderr[-3000:]
    assert worker.returncode == 0, worker.stderr[-3000:]
    a, b = last_json(chief.stdout), last_json(worker.stdout)
    assert a["chief"] and not b["chief"]
    # The workers agree with each other exactly, and with one device to float rounding.
    for key in ("d_loss", "g_loss", "is_mean", "fid"):
        assert a[key] == b[key], key
    ref = last_json(one.stdout)
    np = pytest.importorskip("numpy")
    np.testing.assert_allclose([a["d_loss"], a["g_loss"]], [ref["d_loss"], ref["g_loss"]],
                               rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(a["fid"], ref["fid"], rtol=1e-2)
    # Only the chief wrote into model_dir; the worker's scratch is gone.
    assert not (model_dir / ".workers" / "worker_1").exists()
    assert (model_dir / "checkpoints" / "ckpt-2.index").exists()
    assert (model_dir / "best" / "checkpoint").exists()
    rows = [json.loads(line) for line in open(model_dir / "metrics.jsonl")]
    assert [r["step"] for r in rows if "d_loss" in r] == [1, 2]
    # A restarted job resumes from the chief's checkpoint on every worker.
    chief, worker = run_workers("autogan_tf.cli.train", [f"--model_dir={model_dir}", *common,
                                              "--max_iters=3"])
    assert chief.returncode == 0 and worker.returncode == 0, (chief.stderr + worker.stderr)[-3000:]
    for proc in (chief, worker):
        assert "resumed from" in proc.stderr and "ckpt-2" in proc.stderr
        assert last_json(proc.stdout)["step"] == 3
    rows = [json.loads(line) for line in open(model_dir / "metrics.jsonl")]
    assert [r["step"] for r in rows if "d_loss" in r] == [1, 2, 3]


SEARCH_FLAGS = flag_args(**TINY_GAN, shared_iters=2, max_search_iters=3, grow_steps=2,
                         num_cells=2, ctrl_steps=2, ctrl_sample_batch=2, num_candidates=3,
                         topk=2, reward_num_images=10, eval_batch_size=10, reset_window=4,
                         save_every=1, log_every=1)


@pytest.mark.slow
def test_two_workers_search_agree_and_only_the_chief_writes(tmp_path, tiny_classifier):
    model_dir = tmp_path / "search"
    chief, worker = run_workers("autogan_tf.cli.search", [f"--model_dir={model_dir}", *SEARCH_FLAGS,
                                               f"--classifier={tiny_classifier}"])
    assert chief.returncode == 0, chief.stderr[-3000:]
    assert worker.returncode == 0, worker.stderr[-3000:]
    a, b = last_json(chief.stdout), last_json(worker.stdout)
    # Same controller samples, same gathered rewards: the same result on both workers.
    assert a == b
    import json

    result = json.load(open(model_dir / "search_result.json"))
    assert result["top_archs"][0]["arch_str"] == a["best_arch"]
    assert result["top_archs"][0]["reward"] == a["reward"]
    assert not (model_dir / ".workers").exists() or not any((model_dir / ".workers").iterdir())
    assert (model_dir / "checkpoints" / "checkpoint").exists()
    events = [json.loads(line) for line in open(model_dir / "search_log.jsonl")]
    assert events[-1]["event"] == "wall_time"


def test_evaluate_and_fid_stats_split_over_two_cpu_replicas_match_one_device(tmp_path,
                                                                             tiny_classifier):
    import json

    trained = _train_cli(tmp_path / "run", f"--classifier={tiny_classifier}")
    assert trained.returncode == 0, trained.stderr[-3000:]
    stats = {}
    for name, extra in (("one", []), ("two", ["--strategy=mirrored", "--cpu_devices=2"])):
        out = run_cli("fid_stats", "--dataset=shapes", f"--classifier={tiny_classifier}",
                      "--num_samples=37", "--batch_size=10", f"--output={tmp_path / name}.npz",
                      *extra)  # 37: a last batch of 7 that does not divide by 2 replicas
        assert out.returncode == 0, out.stderr[-3000:]
        assert last_json(out.stdout)["replicas"] == (2 if extra else 1)
        stats[name] = __import__("numpy").load(tmp_path / f"{name}.npz")
    np = pytest.importorskip("numpy")
    np.testing.assert_allclose(stats["two"]["mu"], stats["one"]["mu"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(stats["two"]["sigma"], stats["one"]["sigma"], rtol=1e-3,
                               atol=1e-5)
    scores = {}
    for name, extra in (("one", []), ("two", ["--strategy=mirrored", "--cpu_devices=2"])):
        out = run_cli("evaluate", f"--model_dir={tmp_path / 'run'}", "--num_samples=25",
                      "--batch_size=10", f"--classifier={tiny_classifier}",
                      f"--fid_stats={tmp_path / 'one'}.npz", f"--output={tmp_path / name}.json",
                      *extra)
        assert out.returncode == 0, out.stderr[-3000:]
        scores[name] = json.load(open(tmp_path / f"{name}.json"))
    assert scores["two"]["replicas"] == 2 and scores["two"]["num_samples"] == 25
    for key in ("is_mean", "fid"):
        np.testing.assert_allclose(scores["two"][key], scores["one"][key], rtol=1e-3)


def test_replica_split_gathers_slices_in_order_with_padding_and_uint8():
    got = run_fresh("""
        import json
        import numpy as np
        import tensorflow as tf
        from autogan_tf import distribute

        strategy = distribute.make_strategy("mirrored", cpu_devices=2)
        w = tf.constant(np.arange(15, dtype=np.float32).reshape(5, 3))

        def fn(x, offset):
            ctx = tf.distribute.get_replica_context()
            y = tf.matmul(x, w) + offset
            replica = tf.fill([tf.shape(x)[0]], ctx.replica_id_in_sync_group)
            return y, tf.cast(tf.clip_by_value(y, 0, 255), tf.uint8), replica

        split = distribute.ReplicaSplit(strategy, fn)
        out = {}
        for n in (8, 7, 1):
            x = tf.constant(np.random.default_rng(n).normal(size=(n, 5)), tf.float32)
            y, pixels, replica = split(x, tf.constant(2.0))
            ref = (x @ w + 2.0).numpy()
            out[n] = [float(np.abs(y.numpy() - ref).max()), pixels.dtype.name,
                      bool((pixels.numpy() == np.clip(ref, 0, 255).astype(np.uint8)).all()),
                      replica.numpy().tolist()]
        print(json.dumps(out))
    """)
    import json

    out = json.loads(got)
    for n, (err, dtype, pixels_equal, replicas) in out.items():
        assert err < 1e-5 and dtype == "uint8" and pixels_equal
        half = (int(n) + 1) // 2  # each replica computes one half, the padding is dropped
        assert replicas == ([0] * half + [1] * half)[:int(n)]


def test_non_chief_saves_into_scratch_deletes_it_and_restores_from_the_chief(tmp_path,
                                                                             monkeypatch):
    import json

    import tensorflow as tf

    from autogan_tf import checkpointing, distribute

    cluster = {"worker": ["localhost:1", "localhost:2"]}
    model_dir = str(tmp_path)
    value = tf.Variable(1.0)
    ckpt = tf.train.Checkpoint(value=value)
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster,
                                                "task": {"type": "worker", "index": 0}}))
    chief = checkpointing.ChiefCheckpoints(ckpt, model_dir, "checkpoints", max_to_keep=2)
    assert chief.save(checkpoint_number=5).endswith("checkpoints/ckpt-5")
    value.assign(2.0)
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster,
                                                "task": {"type": "worker", "index": 1}}))
    assert not distribute.is_chief()
    worker = checkpointing.ChiefCheckpoints(ckpt, model_dir, "checkpoints", max_to_keep=2)
    path = worker.save(checkpoint_number=6)
    assert path == str(tmp_path / "checkpoints" / "ckpt-6")  # the chief's name for it
    assert not (tmp_path / "checkpoints" / "ckpt-6.index").exists()  # not written there
    assert not (tmp_path / ".workers" / "worker_1" / "checkpoints").exists()  # cleaned up
    assert worker.latest_checkpoint.endswith("ckpt-5")
    assert checkpointing.restore_latest(worker, ckpt).endswith("ckpt-5") and float(value) == 1.0
    assert distribute.worker_dir(model_dir) == str(tmp_path / ".workers" / "worker_1")
    monkeypatch.setenv("TF_CONFIG", "not json")
    with pytest.raises(distribute.DistributeError, match="TF_CONFIG"):
        distribute.make_strategy("multi_worker")


@pytest.mark.slow
def test_autogan_search_mirrored_on_two_cpu_devices(tmp_path, tiny_classifier):
    import json

    out = run_cli("search", f"--model_dir={tmp_path}", *SEARCH_FLAGS,
                  f"--classifier={tiny_classifier}", "--strategy=mirrored", "--cpu_devices=2")
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.load(open(tmp_path / "search_result.json"))
    assert result["top_archs"][0]["arch_str"] == last_json(out.stdout)["best_arch"]
    assert len(result["top_archs"]) == 2 and len(result["stage_results"]) == 2


# -- a cluster that loses a worker, or hears a SIGTERM on one host --------------------------
def _start_workers(module, args):
    """``num_workers=2`` processes of one localhost cluster, not waited for."""
    from autogan_tf.testing import cluster

    return [subprocess.Popen([sys.executable, "-m", module, *args, "--strategy=multi_worker"],
                             cwd=ROOT, env=cli_env(TF_CONFIG=tf_config), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
            for tf_config in cluster.local_tf_configs(2)]


def _after_a_checkpoint(procs, model_dir, signum, victim, timeout=400):
    """Wait for the chief's first checkpoint, signal ``victim``; every (code, out, err)."""
    import signal as signals
    import time

    folder = os.path.join(model_dir, "checkpoints")
    deadline = time.time() + timeout
    try:
        while not (os.path.isdir(folder) and any(n.endswith(".index")
                                                 for n in os.listdir(folder))):
            assert all(p.poll() is None for p in procs), procs[0].stderr.read()[-3000:]
            assert time.time() < deadline, "no checkpoint"
            time.sleep(0.3)
        time.sleep(2)  # well inside the training loop
        procs[victim].send_signal(getattr(signals, signum))
        started = time.time()
        results = [(p,) + p.communicate(timeout=240) for p in procs]
        return [(p.returncode, out, err) for p, out, err in results], time.time() - started
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


LONG_TRAIN = ["--arch=1 0 1 1", "--max_iters=100000", "--eval_every=0", "--save_every=20",
              *flag_args(**TINY_GAN, log_every=1)]


def _long_search(classifier):
    return [f"--classifier={classifier}", *flag_args(
        **TINY_GAN, num_cells=2, shared_iters=100000, max_search_iters=2, grow_steps=1,
        ctrl_steps=1, ctrl_sample_batch=2, num_candidates=2, topk=2, reward_num_images=10,
        eval_batch_size=10, reset_window=4, save_every=20, log_every=5, hid_size=8)]


def _error_lines(err):
    return [line for line in err.splitlines() if ": error: " in line]


@pytest.mark.slow
@pytest.mark.parametrize("job,victim", [("train", 1), ("search", 0)])
def test_a_lost_worker_stops_the_survivor_in_one_line_with_exit_75(tmp_path, tiny_classifier,
                                                                    job, victim):
    model_dir = str(tmp_path / job)
    args = LONG_TRAIN if job == "train" else _long_search(tiny_classifier)
    procs = _start_workers(f"autogan_tf.cli.{job}", [f"--model_dir={model_dir}", *args])
    results, seconds = _after_a_checkpoint(procs, model_dir, "SIGKILL", victim)
    code, _, err = results[1 - victim]
    assert code == 75 and "Traceback" not in err, err[-3000:]
    (line,) = _error_lines(err)
    assert line.startswith(f"autogan-{job}: error: worker {victim} of the cluster went away (")
    assert "Rerun every worker to resume from " in line and "/checkpoints/ckpt-" in line
    assert seconds < 120  # stopped within a bound, not hung


@pytest.mark.slow
@pytest.mark.parametrize("job,victim", [("train", 1), ("search", 0)])
def test_sigterm_on_one_worker_checkpoints_every_worker_and_the_rerun_resumes(
        tmp_path, tiny_classifier, job, victim):
    model_dir = str(tmp_path / job)
    args = LONG_TRAIN if job == "train" else _long_search(tiny_classifier)
    module = f"autogan_tf.cli.{job}"
    procs = _start_workers(module, [f"--model_dir={model_dir}", *args])
    results, _ = _after_a_checkpoint(procs, model_dir, "SIGTERM", victim)
    assert [code for code, _, _ in results] == [75, 75], [err[-2000:] for _, _, err in results]
    stops = [last_json(out) for _, out, _ in results]
    assert all(s["preempted"] for s in stops)
    where = "step" if job == "train" else "phase_step"
    assert stops[0][where] == stops[1][where] and stops[0]["checkpoint"] == stops[1]["checkpoint"]
    # Rerun every worker: they resume from that checkpoint (a few more steps of training, or
    # the search from its saved phase step).
    budget = ([a for a in args if not a.startswith("--max_iters=")]
              + [f"--max_iters={stops[0]['step'] + 2}"] if job == "train" else
              [a for a in args if not a.startswith("--shared_iters=")]
              + [f"--shared_iters={stops[0]['phase_step'] + 2}"])
    again = run_workers(module, [f"--model_dir={model_dir}", *budget])
    for proc in again:
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "resumed from" in proc.stderr and os.path.basename(stops[0]["checkpoint"]) in \
            proc.stderr
