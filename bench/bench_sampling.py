"""Images/s of a generator in-process (Keras) vs its exported SavedModel (serving_default).

    python bench/bench_sampling.py                              # TinyGenerator stand-in
    python bench/bench_sampling.py --arch=autogan_cifar10_a --gf_dim=256 --batch=64 --seconds=5

`bench(generator, batch, seconds)` is the reusable part: it exports the
generator to a temporary directory and times both paths on the same z. The
Keras side is measured both eagerly (``generator(z)``) and compiled
(``tf.function``), since a served model is always a compiled graph.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time


def _rate(fn, batch: int, seconds: float) -> float:
    """Images/s of ``fn()`` over about ``seconds`` after one warm-up call."""
    fn()
    calls, start = 0, time.perf_counter()
    while True:
        out = fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
    _ = getattr(out, "numpy", lambda: out)()  # make sure the last result is materialised
    return calls * batch / elapsed


def bench(generator, batch: int = 64, seconds: float = 3.0, latent_dim: int | None = None,
          rounds: int = 3) -> dict:
    """Measure ``generator`` (the generator contract of autogan_tf.export) three ways.

    The paths are timed in interleaved rounds of ``seconds / rounds`` each and
    the median round is reported, so a burst of load from another process on
    a shared machine hits every path alike instead of skewing one of them.
    """
    import statistics

    import numpy as np
    import tensorflow as tf

    from autogan_tf import export

    latent_dim = latent_dim or generator.latent_dim
    z = tf.constant(np.random.default_rng(0).standard_normal((batch, latent_dim)), tf.float32)
    compiled = tf.function(lambda z: export.to_uint8(generator(z, training=False)))
    with tempfile.TemporaryDirectory() as tmp:
        path = export.export_generator(generator, tmp, 1, latent_dim=latent_dim,
                                       max_batch=max(batch, 1), warmup_requests=0)
        serving_default = tf.saved_model.load(path).signatures["serving_default"]
        paths = {
            "keras_eager": lambda: export.to_uint8(generator(z, training=False)),
            "keras_tf_function": lambda: compiled(z),
            "saved_model": lambda: serving_default(z=z)["images"],
        }
        samples = {name: [] for name in paths}
        for _ in range(rounds):
            for name, fn in paths.items():
                samples[name].append(_rate(fn, batch, seconds / rounds))
    results = {"batch": batch, "rounds": rounds}
    results.update({name: statistics.median(v) for name, v in samples.items()})
    results["samples"] = samples
    return results


def _generator_from_args(args):
    if args.arch:
        from autogan_tf import models

        return models.DerivedGenerator(args.arch, gf_dim=args.gf_dim, latent_dim=args.latent_dim)
    from autogan_tf.testing import TinyGenerator

    return TinyGenerator(latent_dim=args.latent_dim)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default=None,
                        help="a DerivedGenerator architecture (alias or vector); "
                             "default: the tiny stand-in generator")
    parser.add_argument("--gf_dim", type=int, default=256)
    parser.add_argument("--latent_dim", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0, help="per path, over all rounds")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    result = bench(_generator_from_args(args), args.batch, args.seconds, rounds=args.rounds)
    result["generator"] = args.arch or "TinyGenerator"
    print(json.dumps(result))
    for key in ("keras_eager", "keras_tf_function", "saved_model"):
        print(f"{key:>18}: {result[key]:10.1f} images/s")


if __name__ == "__main__":
    main()
