"""The official AutoGAN code and autogan-tf trained side by side on CIFAR-10, scored alike.

Issue #14's measure of training dynamics at reduced scale: ``autogan_cifar10_a``
at G 64 / D 64, batch 128 (G) / 64 (D), n_critic 5, Adam 2e-4 (0.0, 0.9), no
LR decay, EMA 0.999 started at the initial weights (the official average:
``--ema_warmup=none``), 600 generator iterations, seeds 0 and 1, on the
CIFAR-10 JPEGs. Both are scored at 200/400/600 iterations, raw and EMA
generator, by the same small CIFAR-10 classifier (committed in ``scorer/``; its
test accuracy is in the results): IS and FID of ``--num_samples`` samples against
the statistics of the 50,000 training images.

Issue #34 adds a third implementation, ``ours_bf16``: ours with ``--precision=bfloat16``
(bfloat16 compute; variables, losses, spectral-norm sigma, batch-norm statistics,
optimiser moments and EMA weights in float32), the same settings and seeds, scored the
same way (its saved float32 weights generate in float32, as an export does by default)
and compared with ours in float32 and with the official code by the same rule.
``--impls=ours_bf16`` runs it alone.

    python experiments/side_by_side/run.py --work_dir=/work/sbs \
        --official_repo=/work/official --torch_python=/work/torchvenv/bin/python

Every step is resumable: rerun the same command after a kill and finished runs,
checkpoints and scores are reused. ``--lanes=2`` trains two runs at a time with
one thread each. Runs are independent: ``--seeds``/``--impls`` pick some, and
later invocations (other sessions, other machines) add theirs to the same results,
scored by the same committed classifier (``scorer/``). Results: ``results.json`` beside
this script (``--results``; also ``WORK/results.json``) and a Markdown table on stdout.
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
sys.path.insert(0, os.path.dirname(HERE))  # experiments/: the scripts' shared helpers
from common import DATA, extract_cifar, log  # noqa: E402
ARCH = "autogan_cifar10_a"
GF, DF, LATENT, BOTTOM = 64, 64, 128, 4
ITERS = (200, 400, 600)
IMPLS = ("official", "ours", "ours_bf16")
OUR_FLAGS = {"ours": [], "ours_bf16": ["--precision=bfloat16"]}  # what our implementations add
CLF_EPOCHS, CLF_WIDTH = 6, 16  # ~3 min an epoch on 2 busy cores


def prepare_data(work, tarball):
    root = extract_cifar(work, tarball)
    npy = os.path.join(work, "cifar10_train_uint8.npy")
    if not os.path.exists(npy):
        import numpy as np

        from autogan_tf import data

        log("decoding the training JPEGs for the official code")
        ds = data.make_uint8_dataset(f"folder:{root}", 1000, 32, split="train")
        images = np.concatenate(list(ds.as_numpy_iterator()))
        assert images.shape == (50_000, 32, 32, 3), images.shape
        np.save(npy + ".tmp.npy", images)
        os.replace(npy + ".tmp.npy", npy)
    return root, npy


def prepare_classifier(scorer, root):
    """The scoring classifier, its test accuracy and the reference statistics, in ``scorer``.

    Trained once and committed beside this script (``scorer/``): a classifier trained
    again on another machine differs in its float arithmetic (72.0 % vs 72.7 % test
    accuracy from the same seed), so runs made in different sessions are only
    comparable when one file scores them all.
    """
    path = os.path.join(scorer, "classifier.keras")
    info_path = path + ".json"
    if not os.path.exists(info_path):
        from autogan_tf.metrics import classifiers

        log(f"training the CIFAR-10 scoring classifier into {scorer} (commit it)")
        os.makedirs(scorer, exist_ok=True)
        start = time.time()
        model, accuracy = classifiers.train_classifier(f"folder:{root}", epochs=CLF_EPOCHS,
                                                       width=CLF_WIDTH, seed=0, verbose=2)
        model.save(path)
        with open(info_path, "w", encoding="utf-8") as f:
            json.dump({"test_accuracy": accuracy, "seconds": time.time() - start}, f)
    with open(info_path, encoding="utf-8") as f:
        info = json.load(f)
    log(f"scoring classifier: {info['test_accuracy']:.1%} CIFAR-10 test accuracy ({path})")
    stats = os.path.join(scorer, "fid_stats_train.npz")
    if not os.path.exists(stats):
        from autogan_tf.metrics import classifiers, scores, streaming

        log("reference statistics of the 50,000 training images")
        extractor = classifiers.load_feature_extractor(path)
        scores.save_statistics(stats, streaming.dataset_statistics(f"folder:{root}", extractor))
    return path, info, stats


def recorded_scores(results_path, info):
    """The scores of an earlier results JSON made with the same scoring classifier, else {}."""
    if not results_path or not os.path.exists(results_path):
        return {}
    with open(results_path, encoding="utf-8") as f:
        earlier = json.load(f)
    if earlier.get("classifier") != info:
        log(f"{results_path}: scored by another classifier; its scores are not reused")
        return {}
    return earlier["scores"]


def fully_scored(scores, impl, seed):
    """Whether every score of ``impl``/``seed`` is recorded (then it need not train again)."""
    return all(f"{impl}/seed{seed}/{it}/{gen}" in scores for it in ITERS for gen in ("raw", "ema"))


def ours_command(work, root, seed, threads, impl="ours"):
    cmd = ["autogan-train", f"--model_dir={work}/{impl}_seed{seed}", f"--dataset=folder:{root}",
           f"--arch={ARCH}", f"--gf_dim={GF}", f"--df_dim={DF}", "--g_batch_size=128",
           "--d_batch_size=64", "--n_critic=5", "--g_lr=2e-4", "--d_lr=2e-4", "--beta1=0.0",
           "--beta2=0.9", "--nolr_decay", "--ema_decay=0.999", "--ema_warmup=none",
           f"--max_iters={ITERS[-1]}", f"--save_every={ITERS[0]}", "--keep_checkpoints=10",
           "--eval_every=0", "--log_every=20", f"--seed={seed}", *OUR_FLAGS[impl]]
    if threads:
        cmd.append(f"--intra_op_threads={threads}")
    return cmd


def official_command(args, work, npy, seed, threads):
    return [args.torch_python, os.path.join(HERE, "official_train.py"),
            f"--official_repo={args.official_repo}", f"--images={npy}",
            f"--out_dir={work}/official_seed{seed}", f"--seed={seed}", f"--iters={ITERS[-1]}",
            f"--save_at={','.join(map(str, ITERS))}", f"--gf_dim={GF}", f"--df_dim={DF}",
            f"--threads={threads}"]


def ours_done(work, seed, impl="ours"):
    return os.path.exists(os.path.join(work, f"{impl}_seed{seed}", "checkpoints",
                                       f"ckpt-{ITERS[-1]}.index"))


def official_done(work, seed):
    return os.path.exists(os.path.join(work, f"official_seed{seed}", "done.json"))


def run_job(name, cmd, work):
    log_path = os.path.join(work, f"{name}.log")
    log(f"{name}: starting (log {log_path})")
    start = time.time()
    with open(log_path, "a", encoding="utf-8") as f:
        code = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)
    log(f"{name}: exit {code} after {time.time() - start:.0f} s")
    return name, code, time.time() - start


def train_all(args, work, root, npy, scores):
    threads = 1 if args.lanes > 1 else 0
    jobs = []
    for seed in args.seeds:
        if ("official" in args.impls and not official_done(work, seed)
                and not fully_scored(scores, "official", seed)):
            jobs.append((f"official_seed{seed}", official_command(args, work, npy, seed, threads)))
        for impl in OUR_FLAGS:
            if (impl in args.impls and not ours_done(work, seed, impl)
                    and not fully_scored(scores, impl, seed)):
                jobs.append((f"{impl}_seed{seed}",
                             ours_command(work, root, seed, threads, impl)))
    with concurrent.futures.ThreadPoolExecutor(args.lanes) as pool:
        results = list(pool.map(lambda j: run_job(j[0], j[1], work), jobs))
    failed = [name for name, code, _ in results if code != 0]
    if failed:
        raise SystemExit(f"training failed: {failed} (see WORK/<name>.log)")


def _official_generator(path):
    import numpy as np

    from autogan_tf import models
    from autogan_tf.official import weights

    g = models.DerivedGenerator(ARCH, GF, LATENT, BOTTOM)
    with np.load(path) as state:
        weights.load_generator_state(g, dict(state), layout="derived")
    return g


def _our_generator(work, seed, it, ema, impl="ours"):
    import tensorflow as tf

    from autogan_tf import models

    g = models.DerivedGenerator(ARCH, GF, LATENT, BOTTOM)  # float32, whatever it trained in
    g(tf.zeros((1, LATENT)), training=False)  # every variable exists before the restore
    path = os.path.join(work, f"{impl}_seed{seed}", "checkpoints", f"ckpt-{it}")
    item = "ema_generator" if ema else "generator"
    # The rest of the run's checkpoint (D, optimizers) is not wanted; every variable of G
    # must come from it, or the score would be a random generator's.
    tf.train.Checkpoint(**{item: g}).restore(path).expect_partial() \
        .assert_existing_objects_matched()
    return g


def _available(work, impl, seed, it):
    """Whether the generator of ``impl``/``seed`` at iteration ``it`` has been saved."""
    if impl in OUR_FLAGS:
        return os.path.exists(os.path.join(work, f"{impl}_seed{seed}", "checkpoints",
                                           f"ckpt-{it}.index"))
    return os.path.exists(os.path.join(work, f"official_seed{seed}", f"G_ema_{it}.npz"))


def score_all(args, work, classifier, stats, scores):
    """IS/FID of every saved generator not scored yet (``WORK/scores.json``, resumable).

    ``scores`` holds what is recorded already; it is updated and returned.
    """
    import tensorflow as tf

    from autogan_tf import images
    from autogan_tf.metrics import classifiers, streaming

    path = os.path.join(work, "scores.json")
    extractor = classifiers.load_feature_extractor(classifier)
    for impl in args.impls:
        for seed in args.seeds:
            for it in ITERS:
                if not _available(work, impl, seed, it):  # not trained that far yet
                    continue
                for gen in ("raw", "ema"):
                    key = f"{impl}/seed{seed}/{it}/{gen}"
                    if key in scores:
                        continue
                    if impl in OUR_FLAGS:
                        g = _our_generator(work, seed, it, gen == "ema", impl)
                    else:
                        g = _official_generator(os.path.join(work, f"official_seed{seed}",
                                                             f"G_{gen}_{it}.npz"))
                    gen_seed = tf.random.Generator.from_seed(1234)

                    def generate(n, g=g, rng=gen_seed):
                        z = rng.normal((n, LATENT))
                        return images.to_uint8(g(z, training=False)).numpy()

                    result = streaming.generator_scores(generate, args.num_samples, 250, extractor,
                                                       fid_stats=stats)
                    scores[key] = {k: result[k] for k in ("is_mean", "is_std", "fid")}
                    log(f"{key}: IS {result['is_mean']:.3f}  FID {result['fid']:.2f}")
                    with open(path + ".tmp", "w", encoding="utf-8") as f:
                        json.dump(scores, f, indent=1)
                    os.replace(path + ".tmp", path)
    return scores


def _speed(work, impl, seed):
    """Seconds per generator iteration over the run (from the logs)."""
    if impl == "official":
        p = os.path.join(work, f"official_seed{seed}", "done.json")
        return json.load(open(p))["seconds"] / ITERS[-1] if os.path.exists(p) else None
    return None


def compare(scores, seeds, candidate="ours", reference="official") -> list:
    """``candidate`` against ``reference`` at every checkpoint: "at least as good within seed
    noise" (ours against the official code; ours in bfloat16 against float32 or official).

    The seed noise of a figure is the largest difference between two seeds of one
    implementation at that checkpoint (both implementations' spreads considered). The
    candidate passes when its mean IS is at least the reference's mean minus that noise,
    and its mean FID at most the reference's mean plus it.

    Returns:
      One record per iteration, generator and metric, with both means (keyed by the
      implementations' names), the noise, the difference (``<candidate>_minus_<reference>``)
      and ``ok``; empty when a side has no scores.
    """
    import numpy as np

    out = []
    for it in ITERS:
        for gen in ("raw", "ema"):
            for metric, better in (("is_mean", 1), ("fid", -1)):
                vals = {impl: [scores[k][metric] for s in seeds
                               if (k := f"{impl}/seed{s}/{it}/{gen}") in scores]
                        for impl in (reference, candidate)}
                if not all(vals.values()):
                    continue
                noise = max(max(v) - min(v) for v in vals.values())
                diff = float(np.mean(vals[candidate]) - np.mean(vals[reference]))
                out.append({"iteration": it, "generator": gen, "metric": metric,
                            reference: float(np.mean(vals[reference])),
                            candidate: float(np.mean(vals[candidate])), "seed_noise": noise,
                            f"{candidate}_minus_{reference}": diff,
                            "ok": better * diff >= -noise})
    return out


NAMES = {"official": "official", "ours": "ours", "ours_bf16": "ours bf16"}


def table(scores, seeds, info):
    """IS and FID of every implementation with scores, at every checkpoint, as Markdown."""
    import numpy as np

    impls = [i for i in IMPLS if any(k.startswith(f"{i}/") for k in scores)]
    lines = [f"Scores by our CIFAR-10 classifier ({info['test_accuracy']:.1%} test accuracy), "
             "not Inception numbers; mean over seeds "
             f"{', '.join(map(str, seeds))} (each seed in brackets).", "",
             "| iteration | G | " + " | ".join(f"{NAMES[i]} IS" for i in impls) + " | "
             + " | ".join(f"{NAMES[i]} FID" for i in impls) + " |",
             "|---|---|" + "---|" * (2 * len(impls))]
    for it in ITERS:
        for gen in ("raw", "ema"):
            cells = []
            for metric in ("is_mean", "fid"):
                for impl in impls:
                    vals = [scores.get(f"{impl}/seed{s}/{it}/{gen}", {}).get(metric) for s in seeds]
                    vals = [v for v in vals if v is not None]
                    cells.append(f"{np.mean(vals):.2f} ({' / '.join(f'{v:.2f}' for v in vals)})"
                                 if vals else "-")
            lines.append(f"| {it} | {gen} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# The verdicts reported: (candidate, reference) compared by `compare`.
COMPARISONS = (("ours", "official"), ("ours_bf16", "ours"), ("ours_bf16", "official"))


def verdict(checks, candidate, reference) -> str:
    """One line (and a line per figure that fails) of `compare`'s records."""
    failed = [c for c in checks if not c["ok"]]
    return (f"{NAMES[candidate]} at least as good as {NAMES[reference]} within seed noise: "
            f"{len(checks) - len(failed)} of {len(checks)} figures"
            + "".join(f"\n  not: {c['metric']} {c['generator']} at {c['iteration']}: "
                      f"{NAMES[candidate]} {c[candidate]:.3f}, {NAMES[reference]} "
                      f"{c[reference]:.3f}, seed noise {c['seed_noise']:.3f}" for c in failed))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work_dir", required=True)
    p.add_argument("--official_repo", default="/work/official")
    p.add_argument("--torch_python", default="/work/torchvenv/bin/python")
    p.add_argument("--data", default=DATA)
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--impls", default="official,ours",
                   help=f"which to train and score, of {', '.join(IMPLS)}")
    p.add_argument("--lanes", type=int, default=2)
    p.add_argument("--num_samples", type=int, default=5000)
    p.add_argument("--skip_training", action="store_true",
                   help="only score what has been saved so far (e.g. while the runs go on)")
    p.add_argument("--results", default=os.path.join(HERE, "results.json"),
                   help="the results JSON: its scores (same classifier) are kept, runs it "
                        "scored completely are not trained again, and it is rewritten")
    p.add_argument("--scorer", default=os.path.join(HERE, "scorer"),
                   help="directory of the scoring classifier and FID statistics (trained "
                        "there when missing)")
    args = p.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.impls = args.impls.split(",")
    unknown = sorted(set(args.impls) - set(IMPLS))
    if unknown:
        p.error(f"--impls: unknown {', '.join(unknown)} (choose from {', '.join(IMPLS)})")
    work = os.path.abspath(args.work_dir)
    os.makedirs(work, exist_ok=True)
    if not os.path.exists(args.data):
        raise SystemExit(f"--data={args.data}: no such file (the CIFAR-10 JPEG tarball)")
    root, npy = prepare_data(work, args.data)
    classifier, info, stats = prepare_classifier(args.scorer, root)
    path = os.path.join(work, "scores.json")
    scores = json.load(open(path, encoding="utf-8")) if os.path.exists(path) else {}
    scores = {**recorded_scores(args.results, info), **scores}
    if not args.skip_training:
        train_all(args, work, root, npy, scores)
    scores = score_all(args, work, classifier, stats, scores)
    seeds = sorted({int(key.split("/")[1][len("seed"):]) for key in scores})
    result = {"settings": {"arch": ARCH, "gf_dim": GF, "df_dim": DF, "g_batch": 128,
                           "d_batch": 64, "n_critic": 5, "lr": 2e-4, "betas": [0.0, 0.9],
                           "ema": 0.999, "ema_warmup": "none", "iters": list(ITERS),
                           "num_samples": args.num_samples, "seeds": seeds},
              "classifier": info, "scores": scores, "comparison": compare(scores, seeds),
              "comparisons": {f"{c} vs {r}": compare(scores, seeds, c, r)
                              for c, r in COMPARISONS}}
    for out in filter(None, [os.path.join(work, "results.json"), args.results]):
        with open(out + ".tmp", "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
        os.replace(out + ".tmp", out)
    print(table(scores, seeds, info))
    for candidate, reference in COMPARISONS:
        checks = result["comparisons"][f"{candidate} vs {reference}"]
        if checks:
            print("\n" + verdict(checks, candidate, reference))
    return 0


if __name__ == "__main__":
    sys.exit(main())
