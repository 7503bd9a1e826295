"""Seconds per generator iteration of the official code's search supernet (PyTorch, CPU).

The official side of ``bench/bench_supernet.py --official_python=...``; runs in the
separate PyTorch environment (never imported by the package or CI)::

    /work/torchvenv/bin/python bench/official_supernet.py --official_repo=/work/official \\
        --stages=0,1,2 --seconds=20 --rounds=3

It times the official ``functions.train_shared`` (imported as ``tools/official_golden.py``
imports it: CUDA calls on the CPU, unused modules stubbed) on the official
``models_search.shared_gan`` Generator and Discriminator at the paper's search settings
(G width 128, D width 64, latent 128, bottom width 4, G batch 128, D batch 64, n_critic 5,
Adam 2e-4 (0, 0.9)), with a uniformly random architecture for every discriminator step, as
the search's controller samples one. One timed call is ``--iterations`` generator iterations
(n_critic D steps + 1 G step each); after one untimed call per stage, calls are timed for
``--seconds`` per stage in each of ``--rounds`` rounds that go through the stages in turn.
Prints one JSON object: per stage the median, min and max seconds per iteration.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools"))
sys.path.insert(0, os.path.dirname(HERE))  # autogan_tf.search_space: pure Python, no TensorFlow

from autogan_tf import search_space  # noqa: E402

PAPER = dict(gf_dim=128, df_dim=64, latent_dim=128, bottom_width=4, g_batch=128, d_batch=64,
             n_critic=5, lr=2e-4, betas=(0.0, 0.9))


def random_arch(stage: int, rng: random.Random) -> list[int]:
    """A uniform architecture prefix of ``stage + 1`` cells, as the official vectors are."""
    return [rng.randrange(n) for cell in range(stage + 1)
            for n in search_space.decision_sizes(cell)]


def build(off, args):
    """The official supernet G and D with the official init, and their Adam optimisers."""
    import official_golden

    torch = off.torch
    ns = official_golden._args(gf_dim=args.gf_dim, df_dim=args.df_dim, latent_dim=args.latent_dim,
                               bottom_width=args.bottom_width, n_critic=args.n_critic,
                               gen_batch_size=args.g_batch, dis_batch_size=args.d_batch)
    g = off.models_search.shared_gan.Generator(ns)
    d = off.models_search.shared_gan.Discriminator(ns)
    official_golden.init_weights(torch, g)
    official_golden.init_weights(torch, d)
    g_opt = torch.optim.Adam(g.parameters(), PAPER["lr"], PAPER["betas"])
    d_opt = torch.optim.Adam(d.parameters(), PAPER["lr"], PAPER["betas"])
    return ns, g, d, g_opt, d_opt


def stage_call(off, args, ns, nets, stage, rng):
    """A function running ``args.iterations`` official generator iterations at ``stage``."""
    import official_golden

    torch = off.torch
    g, d, g_opt, d_opt = nets
    side = args.bottom_width * 2 ** (stage + 1)
    reals = torch.rand(args.d_batch, 3, side, side) * 2 - 1
    labels = torch.zeros(args.d_batch)
    d_steps = args.n_critic * args.iterations
    archs = [random_arch(stage, rng) for _ in range(64)]

    def call():
        controller = official_golden._FixedController(
            torch, [archs[rng.randrange(len(archs))] for _ in range(d_steps)], stage)
        off.functions.train_shared(ns, g, d, official_golden._History(),
                                   official_golden._History(), controller, g_opt, d_opt,
                                   [(reals, labels)] * d_steps)
    return call


def measure(off, args) -> list[dict]:
    rng = random.Random(args.seed)
    off.torch.manual_seed(args.seed)
    ns, g, d, g_opt, d_opt = build(off, args)
    calls, first = {}, {}
    for stage in args.stages:
        calls[stage] = stage_call(off, args, ns, (g, d, g_opt, d_opt), stage, rng)
        start = time.perf_counter()
        calls[stage]()
        first[stage] = round(time.perf_counter() - start, 2)
    times = {stage: [] for stage in args.stages}
    for _ in range(args.rounds):
        for stage in args.stages:
            end = time.perf_counter() + args.seconds
            while True:
                start = time.perf_counter()
                calls[stage]()
                now = time.perf_counter()
                times[stage].append((now - start) / args.iterations)
                if now >= end:
                    break
    return [{"stage": s, "image_size": args.bottom_width * 2 ** (s + 1),
             "median_seconds": round(statistics.median(t), 4), "min_seconds": round(min(t), 4),
             "max_seconds": round(max(t), 4), "samples": len(t),
             "first_call_seconds": first[s]} for s, t in times.items()]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--official_repo", required=True, help="a checkout of TAMU-VITA/AutoGAN")
    p.add_argument("--stages", default="0,1,2", help="comma list of stages (0..2)")
    p.add_argument("--seconds", type=float, default=20.0, help="timed seconds per stage and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--iterations", type=int, default=1, help="generator iterations per call")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    p.add_argument("--seed", type=int, default=0)
    for name in ("gf_dim", "df_dim", "latent_dim", "bottom_width", "g_batch", "d_batch",
                 "n_critic"):
        p.add_argument(f"--{name}", type=int, default=PAPER[name])
    args = p.parse_args(argv)
    try:
        args.stages = sorted({int(s) for s in args.stages.split(",")})
    except ValueError:
        p.error(f"--stages={args.stages}: expected a comma list of 0, 1, 2")
    if not args.stages or not set(args.stages) <= {0, 1, 2}:
        p.error(f"--stages: expected values in 0..2, got {args.stages}")
    for name in ("rounds", "iterations", "gf_dim", "df_dim", "latent_dim", "bottom_width",
                 "g_batch", "d_batch", "n_critic"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    if args.seconds < 0:
        p.error("--seconds must not be negative")
    if not os.path.exists(os.path.join(args.official_repo, "functions.py")):
        p.error(f"--official_repo={args.official_repo}: no functions.py (not an AutoGAN checkout)")
    return args


def main(argv=None):
    args = parse_args(argv)
    import official_golden

    off = official_golden.import_official(args.official_repo)
    if args.threads:
        off.torch.set_num_threads(args.threads)
    result = {"benchmark": "official search supernet (PyTorch), seconds per generator iteration",
              "torch": off.torch.__version__, "torch_threads": off.torch.get_num_threads(),
              "config": {k: getattr(args, k) for k in (
                  "gf_dim", "df_dim", "latent_dim", "bottom_width", "g_batch", "d_batch",
                  "n_critic", "iterations", "seconds", "rounds")},
              "stages": measure(off, args)}
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
