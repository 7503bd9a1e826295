"""Cost of MirroredStrategy over the default strategy for the same global batch.

    python bench/bench_distribute.py                  # 2 logical CPU devices, G/D 64
    python bench/bench_distribute.py --devices=2 --gf_dim=128 --seconds=30
    python bench/bench_distribute.py --quick          # a few-second smoke run

Both trainers train the derived ``--arch`` on the same global batch in one
process: ``default`` on one device, ``mirrored`` on ``--devices`` logical CPU
devices carved out of the same cores. On a CPU the replicas share the cores,
so the ratio of their iteration times is the strategy's own overhead
(slicing, per-replica dispatch, gradient all-reduce, synchronised batch
norm): 1.0 means free. On GPUs each replica gets its own device and the same
code scales the global batch instead. Both are timed in alternating rounds
with the peak kernels of bench/peak.py.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import peak  # noqa: E402


def build(strategy, args, sync_bn):
    import tensorflow as tf

    from autogan_tf import gan_trainer, models

    with strategy.scope():
        g = models.DerivedGenerator(args.arch, args.gf_dim, args.latent_dim, sync_bn=sync_bn)
        d = models.Discriminator(args.df_dim, num_cells=g.num_cells)
        g(tf.zeros([1, args.latent_dim]))
        d(tf.zeros([1, 32, 32, 3]))
    return gan_trainer.GANTrainer(g, d, n_critic=args.n_critic, g_batch_size=args.g_batch,
                                  seed=0, strategy=strategy)


def measure(args) -> dict:
    import tensorflow as tf

    from autogan_tf import distribute, models

    mirrored = distribute.make_strategy("mirrored", cpu_devices=args.devices)
    trainers = {"default": build(tf.distribute.get_strategy(), args, False),
                "mirrored": build(mirrored, args, True)}
    reals = tf.random.normal([args.n_critic, args.d_batch, 32, 32, 3], seed=0)
    fns, first = {}, {}
    for name, trainer in trainers.items():
        fn = (lambda t=trainer: t.train_iteration(reals)["g_loss"].numpy())
        first[name] = peak.time_calls(fn, 0, warmup=0, min_calls=1)[0]
        fn()
        fns[name] = fn
    probe = peak.PeakProbe(args.peak_seconds)
    samples = peak.interleaved(fns, args.seconds * len(fns), rounds=args.rounds, probe=probe)
    g_macs = models.generator_macs(args.arch, args.gf_dim, args.latent_dim)
    d_macs = models.discriminator_macs(args.df_dim, 32)
    import bench_train

    flops = bench_train.iteration_flops(g_macs, d_macs, args.g_batch, args.d_batch, args.n_critic)
    peaks = probe.result()
    out = {"replicas": mirrored.num_replicas_in_sync, "gflop_per_iteration": peak.sig(flops / 1e9),
           "figures": {}, "peak": peaks}
    for name, times in samples.items():
        s = peak.summary(times)
        s["first_call_seconds"] = round(first[name], 2)
        s["gflops"] = peak.sig(flops / s["median_seconds"] / 1e9)
        s["fraction"] = peak.fraction(s["gflops"], peaks, "float32")
        out["figures"][name] = s
    out["time_ratio_mirrored_over_default"] = round(
        out["figures"]["mirrored"]["median_seconds"]
        / out["figures"]["default"]["median_seconds"], 3)
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    peak.add_derived_model_flags(p)
    p.add_argument("--devices", type=int, default=2, help="Logical CPU devices (replicas).")
    p.add_argument("--seconds", type=float, default=20.0, help="Timed seconds per strategy.")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--peak_seconds", type=float, default=1.5)
    p.add_argument("--quick", action="store_true", help="Smoke mode: tiny, short timings.")
    p.add_argument("--output", default=None, help="Write the JSON here instead of stdout.")
    peak.add_thread_flags(p)
    args = p.parse_args(argv)
    if args.devices < 2:
        raise SystemExit(f"--devices must be >= 2, got {args.devices}")
    if args.quick:
        args.gf_dim = args.df_dim = 4
        args.g_batch, args.d_batch, args.n_critic = 4, 4, 1
        args.seconds, args.rounds, args.peak_seconds = 0.3, 1, 0.1
    return args


def main(argv=None):
    args = parse_args(argv)
    peak.quiet_tensorflow()
    peak.configure_threads(args.inter_op_threads, args.intra_op_threads)
    result = {"benchmark": "MirroredStrategy vs default, seconds per generator iteration",
              "machine": peak.machine(),
              "config": {k: getattr(args, k) for k in ("arch", "devices", "gf_dim", "df_dim",
                                                       "g_batch", "d_batch", "n_critic",
                                                       "quick")}}
    result.update(measure(args))
    peak.emit(result, args.output)
    return result


if __name__ == "__main__":
    main()
