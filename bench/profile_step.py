"""Where a training step's time goes, by TensorFlow op type (the profiler's host trace).

    python bench/profile_step.py --stage=2                  # supernet, paper widths
    python bench/profile_step.py --derived --gf_dim=64 --df_dim=64
    python bench/profile_step.py --quick --stage=0          # seconds-long smoke run

Traces ``--steps`` generator iterations (after two untimed ones) with
`tf.profiler.experimental`, reads the XPlane protobuf it writes, and sums the
duration of every op kernel executed on the host by op type (``Conv2D``,
``Conv2DBackpropFilter``, ``FusedBatchNormV3``, ...). Kernels running on oneDNN's
threads overlap, so the shares are of the summed kernel time, not of the wall
time; the wall time per step is reported beside them. This is what tells whether
convolutions or everything around them (layout, switches, the masked optimizer,
spectral norm) take the time.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import peak  # noqa: E402


def is_conv_or_matmul(kind: str) -> bool:
    """Whether an op type is a convolution (any direction, fused or oneDNN) or a matmul."""
    return "Conv2D" in kind or "MatMul" in kind


# Ops that run other ops (functions, control flow): their nested kernels are counted.
CONTAINERS = ("While", "StatelessWhile", "If", "StatelessIf", "Case", "StatelessCase",
              "PartitionedCall", "StatefulPartitionedCall")


def op_type(name: str) -> str | None:
    """The op type of a kernel event (``"scope/name:Type"``), or None for other events
    (the executor's and thread pool's own, ``"EagerLocalExecute: ..."``) and containers."""
    if ":" not in name or " " in name or name.startswith(("ThreadpoolListener",
                                                          "ExecutorState")):
        return None
    kind = name.rsplit(":", 1)[1]
    return None if not kind or kind in CONTAINERS else kind


def kernel_times(xplane_path: str) -> dict:
    """Summed kernel microseconds per op type, from the host plane of an XPlane file.

    Args:
      xplane_path: the ``*.xplane.pb`` the profiler wrote.

    Returns:
      ``{op_type: microseconds}`` over the op kernels of the executor threads
      (``tf_Compute/...`` lines of the ``/host:CPU`` plane).
    """
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(xplane_path, "rb") as f:
        space.ParseFromString(f.read())
    totals = collections.Counter()
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        names = {i: m.name for i, m in plane.event_metadata.items()}
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                kind = op_type(names.get(event.metadata_id, ""))
                if kind is not None:
                    totals[kind] += event.duration_ps / 1e6
    return dict(totals)


def build_step(args):
    """A zero-argument function running one generator iteration (compiled)."""
    import tensorflow as tf

    from autogan_tf import gan_trainer, models
    from autogan_tf import search_space as ss

    d = models.Discriminator(args.df_dim, num_cells=3)
    if args.derived:
        g = models.DerivedGenerator(args.arch, args.gf_dim, args.latent_dim)
        stage, side = None, 32
    else:
        g = models.SuperGenerator(args.gf_dim, args.latent_dim, num_cells=3)
        stage, side = args.stage, 4 * 2 ** (args.stage + 1)
    extra = {} if args.precision == "float32" else {"precision": args.precision}
    trainer = gan_trainer.GANTrainer(g, d, n_critic=args.n_critic, g_batch_size=args.g_batch,
                                     seed=0, **extra)
    reals = tf.random.normal([args.n_critic, args.d_batch, side, side, 3], seed=1)
    rng = random.Random(0)
    plans = [tf.constant([ss.sample_arch(3, rng).padded(3) for _ in range(args.n_critic)],
                         tf.int32) for _ in range(8)]
    counter = iter(range(10 ** 9))

    def step():
        archs = None if args.derived else plans[next(counter) % len(plans)]
        trainer.train_iteration(reals, archs, stage=stage)["g_loss"].numpy()

    return step


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--stage", type=int, default=2, choices=(0, 1, 2))
    p.add_argument("--derived", action="store_true", help="a derived model instead")
    p.add_argument("--arch", default="autogan_cifar10_a", help="with --derived")
    peak.add_search_model_flags(p)
    p.add_argument("--precision", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--steps", type=int, default=3, help="profiled generator iterations")
    p.add_argument("--top", type=int, default=25, help="op types listed")
    p.add_argument("--quick", action="store_true", help="widths 8, batches 8, 1 step")
    p.add_argument("--output", default=None, help="Write the JSON here instead of stdout.")
    peak.add_thread_flags(p)
    args = p.parse_args(argv)
    for flag in ("steps", "n_critic", "g_batch", "d_batch", "top"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag} must be at least 1, got {getattr(args, flag)}")
    if args.quick:
        args.gf_dim = args.df_dim = args.latent_dim = 8
        args.g_batch = args.d_batch = 8
        args.steps = 1
    return args


def main(argv=None):
    args = parse_args(argv)
    peak.quiet_tensorflow()
    peak.configure_threads(args.inter_op_threads, args.intra_op_threads)
    import tensorflow as tf

    step = build_step(args)
    step()
    step()
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        wall = (time.perf_counter() - start) / args.steps
        tf.profiler.experimental.stop()
        (path,) = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
        totals = kernel_times(path)
    kernel = sum(totals.values())
    conv = sum(v for k, v in totals.items() if is_conv_or_matmul(k))
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])
    result = {"benchmark": "op types of a training step (profiler host trace)",
              "machine": peak.machine(), "load_average": peak.load_average(),
              "config": {k: getattr(args, k) for k in (
                  "stage", "derived", "arch", "gf_dim", "df_dim", "g_batch", "d_batch",
                  "n_critic", "precision", "steps", "quick")},
              "wall_seconds_per_step_profiled": round(wall, 4),
              "kernel_seconds_per_step": round(kernel / 1e6 / args.steps, 4),
              "conv_and_matmul_share": round(conv / kernel, 4) if kernel else 0.0,
              "op_types": [{"op": k, "share": round(v / kernel, 4),
                            "ms_per_step": round(v / 1e3 / args.steps, 2)}
                           for k, v in ranked[:args.top]]}
    peak.emit(result, args.output)
    return result


if __name__ == "__main__":
    main()
