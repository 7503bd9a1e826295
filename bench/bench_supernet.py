"""Seconds per generator iteration of the search supernet, and its overhead over derived models.

    python bench/bench_supernet.py                      # the paper's search config, stages 0-2
    python bench/bench_supernet.py --stages=2 --num_archs=2 --seconds=10
    python bench/bench_supernet.py --quick --gf_dim=8 --df_dim=8   # a few-second smoke run
    python bench/bench_supernet.py --output=bench_supernet.json
    python bench/bench_supernet.py --stages=2 --num_archs=0 --augment=translation,color,cutout
    python bench/bench_supernet.py --num_archs=0 --official_python=/work/torchvenv/bin/python \
        --official_repo=/work/official          # and the official code, same settings

Figures:

* ``stages``: `GANTrainer.train_iteration` of the `SuperGenerator` (paper:
  G width 128, D width 64, G batch 128, D batch 64, n_critic 5) with a freshly
  sampled architecture for every discriminator step, at stage 0, 1, 2 (8, 16,
  32 px): seconds per generator iteration (n_critic D steps + 1 G step);
* ``overhead``: at the last stage, the supernet against `DerivedGenerator`
  models of the same ``--num_archs`` architectures (no EMA, as the search has
  none). One timed call runs one iteration per architecture on each side --
  the supernet rotating through the architectures, one derived trainer per
  architecture -- so both sides do the same FLOPs; the ratio of their times
  is the supernet's overhead, measured in alternating rounds.

FLOPs (1 MAC = 2 FLOPs; MACs from `models.generator_macs` of each step's
architecture prefix and `models.discriminator_macs` at the stage): D step =
G forward on the D batch (1x) + D forward and backward on 2 x D batch (3x);
G step = G forward and backward (3x) + D forward and input gradient (2x).
The peak kernels (bench/peak.py) are timed in every round under the same load.

With ``--augment=POLICY`` every stage is timed a second time with D's differentiable
augmentation on (`autogan_tf.augment`), in the same alternating rounds; each stage gains
``augment`` (its timing) and ``augment_slowdown`` (median with over median without).

With ``--official_python``, the official PyTorch code's supernet is timed after ours at
the same settings (`official_supernet.py`, in that environment): each stage gains
``official`` (seconds, GFLOP/s, fractions of the peak measured here) and
``speedup_over_official``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import peak  # noqa: E402


def _prefix(arch, stage):
    from autogan_tf import search_space as ss

    return ss.Arch(arch.cells[:stage + 1])


def iteration_flops(archs, stage, args) -> int:
    """FLOPs of one iteration whose D steps use ``archs`` (the G step the last one)."""
    from autogan_tf import models

    side = 4 * 2 ** (stage + 1)
    d_macs = models.discriminator_macs(args.df_dim, side, num_cells=3, stage=stage)

    def g_macs(arch):
        return models.generator_macs(_prefix(arch, stage), args.gf_dim, args.latent_dim)

    total = sum(2 * g_macs(a) * args.d_batch + 6 * d_macs * 2 * args.d_batch for a in archs)
    return total + 6 * g_macs(archs[-1]) * args.g_batch + 4 * d_macs * args.g_batch


def _reals(stage, args):
    import tensorflow as tf

    side = 4 * 2 ** (stage + 1)
    return tf.random.normal([args.n_critic, args.d_batch, side, side, 3], seed=stage)


def _trainer(generator, args, augment=""):
    from autogan_tf import gan_trainer, models

    d = models.Discriminator(args.df_dim, num_cells=3)
    extra = {} if args.precision == "float32" else {"precision": args.precision}
    if augment:
        extra["augment"] = augment
    return gan_trainer.GANTrainer(generator, d, n_critic=args.n_critic, g_batch_size=args.g_batch,
                                  jit_compile=args.jit, seed=0, **extra)


def _supernet_trainer(args, augment=""):
    from autogan_tf import models

    return _trainer(models.SuperGenerator(args.gf_dim, args.latent_dim, num_cells=3), args,
                    augment)


def measure_stages(args, rng, probe) -> list[dict]:
    """Figure 1: a fresh architecture per D step, per stage."""
    import tensorflow as tf

    from autogan_tf import search_space as ss

    trainers = {"": _supernet_trainer(args)}
    if args.augment:
        trainers["+augment"] = _supernet_trainer(args, args.augment)
    plans = [[ss.sample_arch(3, rng) for _ in range(args.n_critic)] for _ in range(64)]
    tensors = [tf.constant([a.padded(3) for a in plan], tf.int32) for plan in plans]
    fns, flops, first = {}, {}, {}
    for stage in args.stages:
        reals = _reals(stage, args)
        for variant, trainer in trainers.items():
            counter = iter(range(10 ** 9))

            def step(stage=stage, reals=reals, counter=counter, trainer=trainer):
                i = next(counter) % len(tensors)
                trainer.train_iteration(reals, tensors[i], stage=stage)["g_loss"].numpy()

            start = time.perf_counter()
            step()
            first[f"{stage}{variant}"] = round(time.perf_counter() - start, 2)
            step()
            fns[f"{stage}{variant}"] = step
        # Every plan is used equally often over a long run: use the mean FLOPs.
        flops[stage] = sum(iteration_flops(p, stage, args) for p in plans) / len(plans)
    samples = peak.interleaved(fns, args.seconds * len(fns), rounds=args.rounds, probe=probe)
    out = []
    for stage in args.stages:
        s = {"stage": stage, "image_size": 4 * 2 ** (stage + 1),
             **peak.summary(samples[str(stage)]), "first_call_seconds": first[str(stage)],
             "gflop_per_iteration": peak.sig(flops[stage] / 1e9)}
        s["gflops"] = peak.sig(flops[stage] / s["median_seconds"] / 1e9)
        if args.augment:
            # The FLOP count leaves the augmentation out: it does not multiply.
            s["augment"] = {**peak.summary(samples[f"{stage}+augment"]),
                            "first_call_seconds": first[f"{stage}+augment"]}
            s["augment_slowdown"] = round(s["augment"]["median_seconds"]
                                          / s["median_seconds"], 3)
        out.append(s)
    return out


def measure_overhead(args, rng, probe) -> dict:
    """Figure 6: supernet vs derived models of the same architectures at the last stage."""
    import tensorflow as tf

    from autogan_tf import models
    from autogan_tf import search_space as ss

    stage = max(args.stages)
    reals = _reals(stage, args)
    archs = [_prefix(ss.sample_arch(3, rng), stage) for _ in range(args.num_archs)]
    vectors = [a.padded(3) for a in archs]
    k = len(archs)
    # Iteration j: D step i uses architecture (i + j) mod k; its G step the last of those.
    plans = [[vectors[(i + j) % k] for i in range(args.n_critic)] for j in range(k)]
    plan_tensors = [tf.constant(p, tf.int32) for p in plans]
    supernet = _supernet_trainer(args)
    derived = [_trainer(models.DerivedGenerator(a, args.gf_dim, args.latent_dim), args)
               for a in archs]

    def run_supernet():
        for t in plan_tensors:
            supernet.train_iteration(reals, t, stage=stage)["g_loss"].numpy()

    def run_derived():
        for t in derived:
            t.train_iteration(reals)["g_loss"].numpy()

    first = {}
    for name, fn in (("supernet", run_supernet), ("derived", run_derived)):
        start = time.perf_counter()
        fn()
        first[name] = round(time.perf_counter() - start, 2)
        fn()
    samples = peak.interleaved({"supernet": run_supernet, "derived": run_derived},
                               2 * args.seconds, rounds=args.rounds, probe=probe)
    # Both sides: k iterations over the same architectures; per-iteration figures.
    supernet_flops = sum(iteration_flops([archs[(i + j) % k] for i in range(args.n_critic)],
                                         stage, args) for j in range(k)) / k
    derived_flops = sum(iteration_flops([a] * args.n_critic, stage, args) for a in archs) / k
    out = {"stage": stage, "architectures": [str(a) for a in archs], "load_average":
           peak.load_average()}
    for name, times, flops in (("supernet", samples["supernet"], supernet_flops),
                               ("derived", samples["derived"], derived_flops)):
        s = peak.summary([t / k for t in times])
        s["first_call_seconds_all_archs"] = first[name]
        s["gflop_per_iteration"] = peak.sig(flops / 1e9)
        s["gflops"] = peak.sig(flops / s["median_seconds"] / 1e9)
        out[name] = s
    out["time_ratio_supernet_over_derived"] = round(
        out["supernet"]["median_seconds"] / out["derived"]["median_seconds"], 3)
    return out


def official_stages(args) -> list[dict]:
    """The official code's figures at the same settings: `official_supernet.py` run by
    ``--official_python`` (the PyTorch environment) after ours, with the same stages,
    seconds, rounds, seed and widths."""
    import json
    import subprocess

    tool = os.path.join(os.path.dirname(os.path.abspath(__file__)), "official_supernet.py")
    flags = [f"--{k}={getattr(args, k)}" for k in (
        "gf_dim", "df_dim", "latent_dim", "g_batch", "d_batch", "n_critic", "seconds",
        "rounds", "seed")]
    done = subprocess.run([args.official_python, tool, f"--official_repo={args.official_repo}",
                           "--stages=" + ",".join(map(str, args.stages)), *flags],
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"--official_python: {tool} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)["stages"]


def attach_official(stages: list[dict], official: list[dict]) -> None:
    """Add the official code's seconds, GFLOP/s and our speed-up over it to each stage.

    Both sides do the same work per iteration (same models, batches and n_critic), so the
    official GFLOP/s are our FLOPs over its time and ``speedup_over_official`` is its
    median time over ours.
    """
    by_stage = {o["stage"]: o for o in official}
    for s in stages:
        o = by_stage[s["stage"]]
        s["official"] = {k: o[k] for k in ("median_seconds", "min_seconds", "max_seconds",
                                            "first_call_seconds")}
        s["official"]["gflops"] = peak.sig(s["gflop_per_iteration"] / o["median_seconds"])
        s["speedup_over_official"] = round(o["median_seconds"] / s["median_seconds"], 3)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    peak.add_search_model_flags(p)
    p.add_argument("--stages", default="0,1,2", help="Comma list of stages (0..2).")
    p.add_argument("--num_archs", type=int, default=3,
                   help="Architectures compared in the overhead figure (0: skip it).")
    p.add_argument("--precision", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--jit", action="store_true", help="XLA-compile the iteration.")
    p.add_argument("--augment", default="",
                   help="Also time every stage with this augmentation policy, e.g. "
                        "translation,color,cutout.")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seconds", type=float, default=20.0, help="Timed seconds per figure.")
    p.add_argument("--rounds", type=int, default=3, help="Alternating rounds.")
    p.add_argument("--peak_seconds", type=float, default=1.5,
                   help="Timed seconds of each peak kernel in every round.")
    p.add_argument("--quick", action="store_true",
                   help="Smoke mode: a few seconds in all (batch 4, 1 critic step, 2 archs).")
    p.add_argument("--output", default=None, help="Write the JSON here instead of stdout.")
    p.add_argument("--official_python", default=None,
                   help="Also time the official code: the Python of an environment with "
                        "PyTorch (see bench/official_supernet.py); needs --official_repo.")
    p.add_argument("--official_repo", default=None, help="A checkout of TAMU-VITA/AutoGAN.")
    peak.add_thread_flags(p)
    args = p.parse_args(argv)
    if bool(args.official_python) != bool(args.official_repo):
        p.error("--official_python and --official_repo go together")
    if args.official_python and not os.path.exists(args.official_python):
        p.error(f"--official_python={args.official_python}: no such file")
    args.stages = sorted({int(s) for s in args.stages.split(",")})
    if not args.stages or not set(args.stages) <= {0, 1, 2}:
        raise SystemExit(f"--stages: expected values in 0..2, got {args.stages}")
    if args.quick:
        args.g_batch, args.d_batch, args.n_critic = 4, 4, 1
        args.num_archs = min(args.num_archs, 2)
        args.seconds, args.rounds, args.peak_seconds = 0.3, 1, 0.1
    return args


def main(argv=None):
    args = parse_args(argv)
    peak.quiet_tensorflow()
    peak.configure_threads(args.inter_op_threads, args.intra_op_threads)
    import keras

    keras.utils.set_random_seed(args.seed)
    rng = random.Random(args.seed)
    result = {"benchmark": "search supernet, seconds per generator iteration",
              "machine": peak.machine(),
              "config": {k: getattr(args, k) for k in (
                  "gf_dim", "df_dim", "latent_dim", "g_batch", "d_batch", "n_critic", "stages",
                  "num_archs", "precision", "jit", "augment", "quick", "seconds")}}
    result["config"]["flop_convention"] = ("2 FLOPs per MAC; D step = 1x G fwd + 3x D on "
                                           "2*d_batch; G step = 3x G + 2x D")
    probe = peak.PeakProbe(args.peak_seconds)
    result["stages"] = measure_stages(args, rng, probe)
    if args.num_archs > 0:
        result["overhead"] = measure_overhead(args, rng, probe)
    peaks = probe.result()
    result["peak"] = peaks
    if args.official_python:
        attach_official(result["stages"], official_stages(args))
    dtypes = ["float32"] + (["bfloat16"] if args.precision == "bfloat16" else [])
    figures = list(result["stages"])
    figures += [s["official"] for s in result["stages"] if "official" in s]
    if "overhead" in result:
        figures += [result["overhead"]["supernet"], result["overhead"]["derived"]]
    for s in figures:
        s["fraction"] = {}
        for dtype in dtypes:
            s["fraction"].update(peak.fraction(s["gflops"], peaks, dtype))
    peak.emit(result, args.output)
    return result


if __name__ == "__main__":
    main()
