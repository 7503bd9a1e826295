"""Conditional against unconditional on CIFAR-10 at the side-by-side scale (issue 33's second
piece of evidence).

``autogan_cifar10_a`` at G 64 / D 64, batch 128 (G) / 64 (D), n_critic 5, Adam 2e-4 with
betas (0, 0.9), no learning-rate decay, 600 generator iterations, seeds 0 and 1 (the
settings of ``experiments/side_by_side``), trained on the 50,000 CIFAR-10 training JPEGs
with and without ``--conditional``. The EMA keeps the project's default warm-up, so the
averaged generator means something after 600 iterations.

Every saved generator (200 / 400 / 600 iterations, raw and EMA) is scored by the CIFAR-10
classifier committed with the side-by-side experiment (its test accuracy is recorded; these
are not Inception numbers): IS, FID and KID of ``--num_samples`` images against the 50,000
training images, and for a conditional generator the fraction of images the classifier
assigns to the class asked for (sample ``i`` asks for class ``i mod 10``). The final
conditional generators also get intra-FID: ``--intra_per_class`` images asked for each class
against that class's 5,000 training images, averaged over the classes.

    python experiments/conditional/cifar.py --work_dir=/tmp/cond_cifar

Resumable: rerun the same command after a kill (a training checkpoints every 200
iterations; scores already in ``WORK/scores.json`` or in ``--results`` are kept).
``--lanes=2`` trains two runs at a time with one thread each. Writes ``--results``
(``cifar.json`` beside this script), the plot (``--plot``) and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import time

import autogan_tf.cli  # noqa: F401 - TensorFlow's native log lines hidden, as in the commands

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))  # experiments/: the scripts' shared helpers
from common import DATA, extract_cifar, log, write_json  # noqa: E402
SCORER = os.path.join(ROOT, "experiments", "side_by_side", "scorer")
ARCH, GF, DF = "autogan_cifar10_a", 64, 64
ITERS = (200, 400, 600)
MODES = ("conditional", "unconditional")


def run_name(mode, seed):
    return f"{mode}_seed{seed}"


def train_command(work, root, mode, seed, threads):
    cmd = ["autogan-train", f"--model_dir={work}/{run_name(mode, seed)}",
           f"--dataset=folder:{root}", f"--arch={ARCH}", f"--gf_dim={GF}", f"--df_dim={DF}",
           "--g_batch_size=128", "--d_batch_size=64", "--n_critic=5", "--g_lr=2e-4",
           "--d_lr=2e-4", "--beta1=0.0", "--beta2=0.9", "--nolr_decay", "--ema_decay=0.999",
           f"--max_iters={ITERS[-1]}", f"--save_every={ITERS[0]}", "--keep_checkpoints=10",
           "--eval_every=0", "--log_every=20", f"--seed={seed}"]
    if mode == "conditional":
        cmd.append("--conditional")
    if threads:
        cmd.append(f"--intra_op_threads={threads}")
    return cmd


def checkpoint(work, mode, seed, it):
    return os.path.join(work, run_name(mode, seed), "checkpoints", f"ckpt-{it}")


def train_all(args, work, root, scores):
    threads = 1 if args.lanes > 1 else 0
    jobs = [(run_name(m, s), train_command(work, root, m, s, threads))
            for s in args.seeds for m in args.modes
            if not os.path.exists(checkpoint(work, m, s, ITERS[-1]) + ".index")
            and not all(f"{m}/seed{s}/{it}/{g}" in scores for it in ITERS for g in ("raw", "ema"))]

    def run(job):
        name, cmd = job
        path = os.path.join(work, f"{name}.log")
        log(f"{name}: training (log {path})")
        start = time.time()
        with open(path, "a", encoding="utf-8") as f:
            code = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)
        log(f"{name}: exit {code} after {time.time() - start:.0f} s")
        return name, code

    with concurrent.futures.ThreadPoolExecutor(args.lanes) as pool:
        failed = [name for name, code in pool.map(run, jobs) if code != 0]
    if failed:
        raise SystemExit(f"training failed: {failed} (see WORK/<name>.log); rerun to resume")


def generator(work, mode, seed, it, ema):
    import tensorflow as tf

    from autogan_tf import models

    g = models.DerivedGenerator(ARCH, GF, 128, 4, num_classes=10 if mode == "conditional" else 0)
    item = "ema_generator" if ema else "generator"
    tf.train.Checkpoint(**{item: g}).restore(checkpoint(work, mode, seed, it)).expect_partial()
    return g


def score_all(args, work, root, scores):
    """IS / FID / KID (and class accuracy, intra-FID) of every saved generator not scored yet."""
    from autogan_tf.metrics import evaluator, streaming

    path = os.path.join(work, "scores.json")
    ev = evaluator.Evaluator(os.path.join(args.scorer, "classifier.keras"),
                             fid_stats=args.fid_stats, batch_size=250)
    references = None
    for mode in args.modes:
        for seed in args.seeds:
            for it in ITERS:
                if not os.path.exists(checkpoint(work, mode, seed, it) + ".index"):
                    continue
                for gen in ("raw", "ema"):
                    key = f"{mode}/seed{seed}/{it}/{gen}"
                    if key in scores:
                        continue
                    g = generator(work, mode, seed, it, gen == "ema")
                    result = ev(g, args.num_samples, seed=1234)
                    kept = {k: result[k] for k in ("is_mean", "is_std", "fid", "kid_mean",
                                                   "kid_std", "class_accuracy") if k in result}
                    if mode == "conditional" and it == ITERS[-1]:
                        if references is None:
                            log("per-class statistics of the 50,000 training images")
                            references = streaming.class_statistics(
                                f"folder:{root}", ev.split_extractor, 10, batch_size=250)
                        kept.update(ev.intra_fid(g, args.intra_per_class, references, seed=1234))
                    scores[key] = kept
                    log(f"{key}: " + "  ".join(f"{k} {v:.3f}" for k, v in kept.items()
                                                if isinstance(v, float)))
                    write_json(path, scores)
    return scores


def mean_and_seeds(scores, mode, seeds, it, gen, metric):
    values = [scores.get(f"{mode}/seed{s}/{it}/{gen}", {}).get(metric) for s in seeds]
    values = [v for v in values if v is not None]
    return (sum(values) / len(values), values) if values else (None, [])


def table(scores, seeds, info) -> str:
    def cell(mode, it, gen, metric, fmt, scale=1.0):
        mean, values = mean_and_seeds(scores, mode, seeds, it, gen, metric)
        if mean is None:
            return "-"
        return (f"{mean * scale:{fmt}} (" + " / ".join(f"{v * scale:{fmt}}" for v in values)
                + ")")

    lines = [f"Scorer: {info['test_accuracy']:.2%} CIFAR-10 test accuracy. Mean over seeds "
             f"{', '.join(map(str, seeds))}, each seed in brackets.", "",
             "| iterations | G | IS conditional | IS unconditional | FID conditional "
             "| FID unconditional | class asked for, recognised (%) |",
             "|---|---|---|---|---|---|---|"]
    for gen in ("raw", "ema"):
        for it in ITERS:
            lines.append(
                f"| {it} | {gen} | {cell('conditional', it, gen, 'is_mean', '.3f')} "
                f"| {cell('unconditional', it, gen, 'is_mean', '.3f')} "
                f"| {cell('conditional', it, gen, 'fid', '.2f')} "
                f"| {cell('unconditional', it, gen, 'fid', '.2f')} "
                f"| {cell('conditional', it, gen, 'class_accuracy', '.1f', 100)} |")
    lines += ["", f"| G at {ITERS[-1]} | intra-FID conditional | FID conditional |", "|---|---|---|"]
    for gen in ("raw", "ema"):
        lines.append(f"| {gen} | {cell('conditional', ITERS[-1], gen, 'intra_fid', '.2f')} "
                     f"| {cell('conditional', ITERS[-1], gen, 'fid', '.2f')} |")
    return "\n".join(lines)


def plot(scores, seeds, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    panels = (("is_mean", "IS (higher is better)", 1), ("fid", "FID (lower is better)", 1),
              ("class_accuracy", "class asked for, recognised (%)", 100))
    for ax, (metric, title, scale) in zip(axes, panels):
        for mode, colour in zip(MODES, ("tab:red", "tab:blue")):
            for gen, style in (("raw", "-"), ("ema", "--")):
                points = [(it, mean_and_seeds(scores, mode, seeds, it, gen, metric)[0])
                          for it in ITERS]
                points = [(it, v * scale) for it, v in points if v is not None]
                if points:
                    ax.plot(*zip(*points), style, marker="o", color=colour,
                            label=f"{mode}, {gen} G")
        ax.set_title(title)
        ax.set_xlabel("generator iterations")
        ax.set_xticks(ITERS)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"CIFAR-10, {ARCH} at G 64 / D 64, mean of seeds "
                 f"{', '.join(map(str, seeds))} (scored by a small CIFAR-10 classifier)")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work_dir", required=True)
    p.add_argument("--data", default=DATA, help="the CIFAR-10 JPEG tarball")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--lanes", type=int, default=2)
    p.add_argument("--num_samples", type=int, default=5000)
    p.add_argument("--intra_per_class", type=int, default=1000)
    p.add_argument("--scorer", default=SCORER, help="the side-by-side experiment's classifier")
    p.add_argument("--skip_training", action="store_true", help="only score what is saved")
    p.add_argument("--results", default=os.path.join(HERE, "cifar.json"))
    p.add_argument("--plot", default=os.path.join(ROOT, "docs", "conditional_cifar.png"))
    args = p.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.modes = args.modes.split(",")
    args.fid_stats = os.path.join(args.scorer, "fid_stats_train.npz")
    with open(os.path.join(args.scorer, "classifier.keras.json"), encoding="utf-8") as f:
        info = json.load(f)
    work = os.path.abspath(args.work_dir)
    os.makedirs(work, exist_ok=True)
    if not os.path.exists(args.data):
        raise SystemExit(f"--data={args.data}: no such file (the CIFAR-10 JPEG tarball)")
    root = extract_cifar(work, args.data)
    path = os.path.join(work, "scores.json")
    scores = {}
    if args.results and os.path.exists(args.results):
        scores.update(json.load(open(args.results, encoding="utf-8")).get("scores", {}))
    if os.path.exists(path):
        scores.update(json.load(open(path, encoding="utf-8")))
    if not args.skip_training:
        train_all(args, work, root, scores)
    scores = score_all(args, work, root, scores)
    seeds = sorted({int(key.split("/")[1][len("seed"):]) for key in scores})
    result = {"settings": {"arch": ARCH, "gf_dim": GF, "df_dim": DF, "g_batch": 128,
                           "d_batch": 64, "n_critic": 5, "lr": 2e-4, "betas": [0.0, 0.9],
                           "ema": 0.999, "iters": list(ITERS), "num_samples": args.num_samples,
                           "intra_fid_per_class": args.intra_per_class, "seeds": seeds},
              "classifier": info, "scores": scores}
    write_json(args.results, result)
    if args.plot:
        plot(scores, seeds, args.plot)
    print(table(scores, seeds, info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
