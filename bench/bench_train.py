"""Seconds per generator iteration of the final training, as a fraction of this machine's peak.

    python bench/bench_train.py                       # 256/128 and 64/64, float32 and bfloat16
    python bench/bench_train.py --widths=64x64 --precisions=float32 --seconds=10
    python bench/bench_train.py --quick --widths=8x8  # a few-second smoke run
    python bench/bench_train.py --widths=256x128 --augment=translation,color,cutout
    python bench/bench_train.py --widths=64x64 --precisions=float32 --conditional=10
    python bench/bench_train.py --output=bench_train.json

One generator iteration is what `GANTrainer.train_iteration` compiles:
``n_critic`` discriminator steps and one generator step of the derived
``--arch`` (paper: G batch 128, D batch 64, n_critic 5), including the EMA
update of the generator, on random 32x32 "real" batches already in memory
(the input pipeline is measured by bench_input.py).

FLOPs of one iteration (1 MAC = 2 FLOPs; MACs from `models.generator_macs` /
`models.discriminator_macs`, i.e. the convolutions and dense layers):

* D step: G forward on the D batch (1x) + D forward and backward on the real
  and fake halves (3x: forward, input gradient, weight gradient);
* G step: G forward and backward (3x) + D forward and input gradient only
  (2x: D's weights are not differentiated in the G step).

For every width the precisions (and XLA variants) are timed in alternating
rounds after two warm-up iterations each, and the median iteration time is
reported with GFLOP/s and the fraction of the conv and matmul peaks, whose
kernels (`bench/peak.py`) are timed in every round under the same load.

``--augment=POLICY`` times every variant a second time with D's differentiable
augmentation on (``+augment`` variants, `autogan_tf.augment`), in the same alternating
rounds, and reports ``augment_slowdown``: each variant's median time with augmentation
over its time without. The FLOP count leaves the augmentation out (it does not multiply).

``--conditional=K`` likewise times every variant with class-conditional models of K classes
(``+conditional``: class embedding, per-class norm scales, projection discriminator, labelled
real batches) and reports ``conditional_slowdown``. The FLOP count is the unconditional one.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import peak  # noqa: E402


def iteration_flops(g_macs: int, d_macs: int, g_batch: int, d_batch: int, n_critic: int) -> int:
    """FLOPs of one generator iteration (see the module docstring for the convention)."""
    d_step = 2 * g_macs * d_batch + 3 * 2 * d_macs * (2 * d_batch)
    g_step = 3 * 2 * g_macs * g_batch + 2 * 2 * d_macs * g_batch
    return n_critic * d_step + g_step


def _parse_widths(text: str) -> list[tuple[int, int]]:
    widths = []
    for item in text.split(","):
        try:
            g, d = (int(v) for v in item.lower().split("x"))
        except ValueError:
            raise SystemExit(f"--widths: {item!r} is not GxD, e.g. 256x128") from None
        widths.append((g, d))
    return widths


def build_trainer(arch, gf_dim, df_dim, precision, jit_compile, args, ema=True, augment="",
                  num_classes=0):
    from autogan_tf import gan_trainer, models

    g = models.DerivedGenerator(arch, gf_dim=gf_dim, latent_dim=args.latent_dim,
                                num_classes=num_classes)
    d = models.Discriminator(df_dim, num_cells=g.num_cells, num_classes=num_classes)
    extra = {} if precision == "float32" else {"precision": precision}
    if augment:
        extra["augment"] = augment
    return gan_trainer.GANTrainer(
        g, d, n_critic=args.n_critic, g_batch_size=args.g_batch,
        ema_decay=0.999 if ema else None, jit_compile=jit_compile, seed=0, **extra)


def _variant_name(precision, jit, augment="", num_classes=0):
    return (precision + ("+xla" if jit else "") + ("+augment" if augment else "")
            + ("+conditional" if num_classes else ""))


def measure_width(gf_dim, df_dim, args, probe) -> dict:
    import tensorflow as tf

    from autogan_tf import models

    side = 4 * 2 ** 3
    reals = tf.random.normal([args.n_critic, args.d_batch, side, side, 3], seed=0)
    labels = tf.random.stateless_uniform([args.n_critic, args.d_batch], (0, 1), 0,
                                         max(args.conditional, 1), tf.int32)
    variants, compile_seconds = {}, {}
    for precision in args.precisions:
        for jit in args.jit:
            for augment in [""] + ([args.augment] if args.augment else []):
                for classes in [0] + ([args.conditional] if args.conditional else []):
                    name = _variant_name(precision, jit, augment, classes)
                    trainer = build_trainer(args.arch, gf_dim, df_dim, precision, jit, args,
                                            augment=augment, num_classes=classes)
                    kwargs = {"labels": labels} if classes else {}

                    def step(t=trainer, kw=kwargs):
                        return t.train_iteration(reals, **kw)["g_loss"].numpy()

                    start = time.perf_counter()
                    step()
                    compile_seconds[name] = round(time.perf_counter() - start, 2)
                    step()  # second warm-up
                    variants[name] = step
    samples = peak.interleaved(variants, args.seconds * len(variants), rounds=args.rounds,
                               probe=probe)
    flops = iteration_flops(models.generator_macs(args.arch, gf_dim, args.latent_dim),
                            models.discriminator_macs(df_dim, side), args.g_batch, args.d_batch,
                            args.n_critic)
    out = {"gf_dim": gf_dim, "df_dim": df_dim, "gflop_per_iteration": peak.sig(flops / 1e9),
           "load_average": peak.load_average(), "variants": {}}
    for name, times in samples.items():
        s = peak.summary(times)
        s["first_call_seconds"] = compile_seconds[name]
        s["gflops"] = peak.sig(flops / s["median_seconds"] / 1e9)
        out["variants"][name] = s
    return out


def add_fractions(result, peaks):
    for width in result["widths"]:
        variants = width["variants"]
        for name, s in variants.items():
            dtype = "bfloat16" if name.startswith("bfloat16") else "float32"
            s["fraction"] = peak.fraction(s["gflops"], peaks, "float32")
            if dtype == "bfloat16":
                s["fraction"].update(peak.fraction(s["gflops"], peaks, "bfloat16"))
        base = variants.get("float32")
        if base:
            width["speedup_vs_float32"] = {
                name: round(base["median_seconds"] / s["median_seconds"], 3)
                for name, s in variants.items() if name != "float32"}
        for suffix in ("+augment", "+conditional"):
            changed = {name: s for name, s in variants.items() if name.endswith(suffix)}
            if changed:
                width[f"{suffix[1:]}_slowdown"] = {
                    name: round(s["median_seconds"]
                                / variants[name[:-len(suffix)]]["median_seconds"], 3)
                    for name, s in changed.items()}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--arch", default="autogan_cifar10_a")
    p.add_argument("--widths", default="256x128,64x64", help="Comma list of GxD channel widths.")
    p.add_argument("--precisions", default="float32,bfloat16")
    p.add_argument("--jit", default="false", help="Comma list of XLA settings: false, true.")
    p.add_argument("--g_batch", type=int, default=128)
    p.add_argument("--d_batch", type=int, default=64)
    p.add_argument("--n_critic", type=int, default=5)
    p.add_argument("--augment", default="",
                   help="Also time every variant with this differentiable-augmentation policy "
                        "(e.g. translation,color,cutout); empty: without only.")
    p.add_argument("--conditional", type=int, default=0,
                   help="Also time every variant with class-conditional models of this many "
                        "classes; 0: unconditional only.")
    p.add_argument("--latent_dim", type=int, default=128)
    p.add_argument("--seconds", type=float, default=20.0, help="Timed seconds per variant.")
    p.add_argument("--rounds", type=int, default=3, help="Alternating rounds over the variants.")
    p.add_argument("--peak_seconds", type=float, default=1.5,
                   help="Timed seconds of each peak kernel in every round.")
    p.add_argument("--quick", action="store_true",
                   help="Smoke mode: a few seconds in all (batch 4, 1 critic step, short timings).")
    p.add_argument("--output", default=None, help="Write the JSON here instead of stdout.")
    peak.add_thread_flags(p)
    args = p.parse_args(argv)
    args.widths = _parse_widths(args.widths)
    args.precisions = [v.strip() for v in args.precisions.split(",") if v.strip()]
    args.jit = [{"false": False, "true": True}[v.strip().lower()] for v in args.jit.split(",")]
    if args.quick:
        args.g_batch, args.d_batch, args.n_critic = 4, 4, 1
        args.seconds, args.rounds, args.peak_seconds = 0.3, 1, 0.1
    return args


def main(argv=None):
    args = parse_args(argv)
    peak.quiet_tensorflow()
    peak.configure_threads(args.inter_op_threads, args.intra_op_threads)
    import keras

    keras.utils.set_random_seed(0)
    result = {"benchmark": "derived training, seconds per generator iteration",
              "machine": peak.machine(),
              "config": {"arch": args.arch, "g_batch": args.g_batch, "d_batch": args.d_batch,
                         "n_critic": args.n_critic, "ema": True, "image_size": 32,
                         "augment": args.augment, "conditional": args.conditional,
                         "quick": args.quick, "seconds_per_variant": args.seconds,
                         "flop_convention": "2 FLOPs per MAC; D step = 1x G fwd + 3x D on "
                                            "2*d_batch; G step = 3x G + 2x D"}}
    probe = peak.PeakProbe(args.peak_seconds)
    result["widths"] = [measure_width(g, d, args, probe) for g, d in args.widths]
    result["peak"] = probe.result()
    add_fractions(result, result["peak"])
    peak.emit(result, args.output)
    return result


if __name__ == "__main__":
    main()
