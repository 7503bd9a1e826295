"""Sampling throughput (uint8 images/s) in-process and from the exported SavedModel.

    python bench/bench_sampling.py                     # autogan_cifar10_a at 256, fp32 + bf16
    python bench/bench_sampling.py --precisions=float32 --batch=128 --seconds=10
    python bench/bench_sampling.py --quick --gf_dim=8  # a few-second smoke run
    python bench/bench_sampling.py --output=bench_sampling.json

For every precision the same weights are timed two ways on the same ``z``:

* ``in_process``: ``tf.function(to_uint8(generator(z)))`` -- what
  `autogan-evaluate`, `autogan-sample --model_dir` and the training loop's
  evaluation do;
* ``saved_model``: the ``serving_default`` signature of the SavedModel
  `autogan-export` writes (``--precision`` of the export), loaded back.

FLOPs: 2 x `models.generator_macs` per image (1 MAC = 2 FLOPs). All paths
are timed in alternating rounds together with the peak kernels of
bench/peak.py, so each rate is also a fraction of the peak under the same load.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import peak  # noqa: E402


def sampling_paths(arch, gf_dim, latent_dim, batch, precisions, tmp) -> dict:
    """``{"<precision>/<path>": fn}``: each call makes one uint8 batch and waits for it."""
    import numpy as np
    import tensorflow as tf

    from autogan_tf import models
    from autogan_tf.serving import export

    z = tf.constant(np.random.default_rng(0).standard_normal((batch, latent_dim)), tf.float32)
    weights = None
    fns = {}
    for precision in precisions:
        g = models.DerivedGenerator(arch, gf_dim=gf_dim, latent_dim=latent_dim,
                                    precision=precision)
        g(z[:1], training=False)
        if weights is None:
            weights = g.get_weights()
        g.set_weights(weights)  # every precision samples the same generator
        compiled = tf.function(lambda z, g=g: export.to_uint8(g(z, training=False)))
        path = export.export_generator(g, os.path.join(tmp, precision), 1, max_batch=batch,
                                       warmup_requests=0)
        serving = tf.saved_model.load(path).signatures["serving_default"]
        fns[f"{precision}/in_process"] = lambda f=compiled: f(z).numpy()
        fns[f"{precision}/saved_model"] = lambda s=serving: s(z=z)["images"].numpy()
    for fn in fns.values():
        fn()  # warm-up: trace, oneDNN primitives
        fn()
    return fns


def measure(args) -> dict:
    from autogan_tf import models

    flops = 2 * models.generator_macs(args.arch, args.gf_dim, args.latent_dim) * args.batch
    probe = peak.PeakProbe(args.peak_seconds)
    with tempfile.TemporaryDirectory() as tmp:
        fns = sampling_paths(args.arch, args.gf_dim, args.latent_dim, args.batch,
                             args.precisions, tmp)
        samples = peak.interleaved(fns, args.seconds * len(fns), rounds=args.rounds,
                                   probe=probe)
    peaks = probe.result()
    figures = {}
    for name, times in samples.items():
        precision = name.split("/")[0]
        s = peak.summary(times)
        s["images_per_second"] = peak.sig(args.batch / s["median_seconds"])
        s["gflops"] = peak.sig(flops / s["median_seconds"] / 1e9)
        s["fraction"] = peak.fraction(s["gflops"], peaks, "float32")
        if precision != "float32":
            s["fraction"].update(peak.fraction(s["gflops"], peaks, precision))
        figures[name] = s
    ratios = {}
    for precision in args.precisions:
        ratios[f"{precision}/saved_model_over_in_process_speed"] = round(
            figures[f"{precision}/in_process"]["median_seconds"]
            / figures[f"{precision}/saved_model"]["median_seconds"], 3)
        if precision != "float32" and "float32" in args.precisions:
            ratios[f"{precision}_over_float32_speed/in_process"] = round(
                figures["float32/in_process"]["median_seconds"]
                / figures[f"{precision}/in_process"]["median_seconds"], 3)
    return {"gflop_per_batch": peak.sig(flops / 1e9), "figures": figures, "ratios": ratios,
            "peak": peaks}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--arch", default="autogan_cifar10_a")
    p.add_argument("--gf_dim", type=int, default=256)
    p.add_argument("--latent_dim", type=int, default=128)
    p.add_argument("--batch", type=int, default=100, help="Images per call (eval batch: 100).")
    p.add_argument("--precisions", default="float32,bfloat16")
    p.add_argument("--seconds", type=float, default=20.0, help="Timed seconds per path.")
    p.add_argument("--rounds", type=int, default=3, help="Alternating rounds over the paths.")
    p.add_argument("--peak_seconds", type=float, default=1.5,
                   help="Timed seconds of each peak kernel in every round.")
    p.add_argument("--quick", action="store_true", help="Smoke mode: batch 4, short timings.")
    p.add_argument("--output", default=None, help="Write the JSON here instead of stdout.")
    peak.add_thread_flags(p)
    args = p.parse_args(argv)
    args.precisions = [v.strip() for v in args.precisions.split(",") if v.strip()]
    if args.quick:
        args.batch, args.seconds, args.rounds, args.peak_seconds = 4, 0.3, 1, 0.1
    return args


def main(argv=None):
    args = parse_args(argv)
    peak.quiet_tensorflow()
    peak.configure_threads(args.inter_op_threads, args.intra_op_threads)
    result = {"benchmark": "sampling, uint8 images per second", "machine": peak.machine(),
              "config": {"arch": args.arch, "gf_dim": args.gf_dim, "batch": args.batch,
                         "precisions": args.precisions, "quick": args.quick,
                         "flop_convention": "2 FLOPs per MAC of the generator's convs/dense"}}
    result.update(measure(args))
    peak.emit(result, args.output)
    return result


if __name__ == "__main__":
    main()
