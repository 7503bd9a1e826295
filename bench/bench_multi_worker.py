"""Cost of MultiWorkerMirroredStrategy over the default strategy for the same global batch.

    python bench/bench_multi_worker.py               # 2 worker processes on localhost, G/D 64
    python bench/bench_multi_worker.py --quick       # a seconds-long smoke run

The default strategy trains the derived ``--arch`` in one process with every
core; then ``--workers`` processes on localhost ports (``TF_CONFIG``) train
the same global batch under `MultiWorkerMirroredStrategy`, each with its
share of the cores (``--intra_op_threads`` = cores / workers), and the default
is timed once more. The ratio of the median iteration times is what the
strategy costs here: slicing, per-replica dispatch, the gradient all-reduce
and synchronised batch norm over gRPC on loopback. Between hosts each worker
has its own cores and the same code scales the global batch instead. Both
runs also time the peak kernels of bench/peak.py, so the figures are
fractions of this machine's peak as well.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import peak  # noqa: E402


def time_training(args) -> dict:
    """In this process: seconds per generator iteration under ``args.strategy``."""
    import tensorflow as tf

    from autogan_tf import distribute, gan_trainer, models

    strategy = distribute.make_strategy(args.strategy)
    replicas = strategy.num_replicas_in_sync
    with strategy.scope():
        g = models.DerivedGenerator(args.arch, args.gf_dim, args.latent_dim,
                                    sync_bn=replicas > 1)
        d = models.Discriminator(args.df_dim, num_cells=g.num_cells)
    trainer = gan_trainer.GANTrainer(g, d, n_critic=args.n_critic, g_batch_size=args.g_batch,
                                     seed=0, strategy=strategy)
    reals = tf.random.stateless_normal([args.n_critic, args.d_batch, 32, 32, 3], [0, 1])

    def step():
        return trainer.train_iteration(reals)["g_loss"].numpy()

    first = peak.time_calls(step, 0, warmup=0, min_calls=1)[0]
    # A fixed count, not a duration: every worker must run the same number of steps.
    times = peak.time_calls(step, 0, warmup=1, min_calls=args.iterations)
    result = {"replicas": replicas, "first_call_seconds": round(first, 2), **peak.summary(times)}
    if args.strategy == "default":  # the whole machine's peak, every core
        probe = peak.PeakProbe(args.peak_seconds)
        probe.round()
        result["peak"] = probe.result()
    return result


def _run(args, strategy, env_extra, threads) -> subprocess.Popen:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", f"--strategy={strategy}",
           f"--intra_op_threads={threads}", f"--inter_op_threads={args.inter_op_threads}"]
    for key in ("arch", "gf_dim", "df_dim", "latent_dim", "g_batch", "d_batch", "n_critic",
                "iterations", "peak_seconds"):
        cmd.append(f"--{key}={getattr(args, key)}")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env_extra}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _result(proc) -> dict:
    out, err = proc.communicate(timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark worker failed ({proc.returncode}):\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def measure(args) -> dict:
    cores = os.cpu_count() or 1
    threads = max(1, cores // args.workers)
    default_runs = [_result(_run(args, "default", {}, 0))]
    from autogan_tf.testing import cluster

    procs = [_run(args, "multi_worker", {"TF_CONFIG": tf_config}, threads)
             for tf_config in cluster.local_tf_configs(args.workers)]
    workers = [_result(p) for p in procs]
    default_runs.append(_result(_run(args, "default", {}, 0)))
    default_median = sorted(r["median_seconds"] for r in default_runs)[0]
    chief = workers[0]

    from autogan_tf import models

    import bench_train

    g_macs = models.generator_macs(args.arch, args.gf_dim, args.latent_dim)
    d_macs = models.discriminator_macs(args.df_dim, 32)
    flops = bench_train.iteration_flops(g_macs, d_macs, args.g_batch, args.d_batch,
                                        args.n_critic)
    figures = {}
    best_default = min(default_runs, key=lambda r: r["median_seconds"])
    machine_peak = best_default["peak"]
    for name, run in (("default", best_default), ("multi_worker", chief)):
        gflops = peak.sig(flops / run["median_seconds"] / 1e9)
        figures[name] = {**{k: v for k, v in run.items() if k != "peak"}, "gflops": gflops,
                         "fraction": peak.fraction(gflops, machine_peak, "float32")}
    return {"workers": args.workers, "threads_per_worker": threads,
            "gflop_per_iteration": peak.sig(flops / 1e9), "figures": figures,
            "default_medians_before_after": [r["median_seconds"] for r in default_runs],
            "worker_medians": [w["median_seconds"] for w in workers],
            "time_ratio_multi_worker_over_default": round(
                chief["median_seconds"] / default_median, 3),
            "peak": machine_peak}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    peak.add_derived_model_flags(p)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--iterations", type=int, default=8, help="Timed iterations per run.")
    p.add_argument("--peak_seconds", type=float, default=1.5)
    p.add_argument("--quick", action="store_true", help="Smoke mode: tiny, short timings.")
    p.add_argument("--output", default=None, help="Write the JSON here instead of stdout.")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--strategy", default="default", help=argparse.SUPPRESS)
    peak.add_thread_flags(p)
    args = p.parse_args(argv)
    if args.workers < 2:
        raise SystemExit(f"--workers must be >= 2, got {args.workers}")
    if args.quick:
        args.gf_dim = args.df_dim = args.latent_dim = 4
        args.g_batch, args.d_batch, args.n_critic = 4, 4, 1
        args.iterations, args.peak_seconds = 2, 0.1
    return args


def main(argv=None):
    args = parse_args(argv)
    peak.quiet_tensorflow()
    if args.worker:
        peak.configure_threads(args.inter_op_threads, args.intra_op_threads)
        print(json.dumps(time_training(args)))
        return None
    result = {"benchmark": "MultiWorkerMirroredStrategy (localhost workers) vs default, "
                           "seconds per generator iteration",
              "machine": peak.machine(),
              "config": {k: getattr(args, k) for k in ("arch", "workers", "gf_dim", "df_dim",
                                                       "g_batch", "d_batch", "n_critic",
                                                       "iterations", "quick")}}
    result.update(measure(args))
    peak.emit(result, args.output)
    return result


if __name__ == "__main__":
    main()
