"""Which label-free network ranks generators as labelled scores do? A first, cheap look.

Issue 36 asks for a reward that needs no labels. Its full evidence (a search at CIFAR-10
16 px, 12 architectures trained alone) takes many hours; this script is the first look,
in minutes, on generators that already exist: the quick start's ten seeds
(``experiments/quick_start_seeds``), each a generator trained on the shapes, at their
checkpoints of 2,000, 2,500 and 3,000 iterations, raw and EMA weights: up to 60
generators of varying quality.

* **Quality**, as the search never sees it: FID and IS of ``--quality_samples`` images by
  a *labelled* shapes classifier (the first seed's, 100 % test accuracy).
* **Candidate rewards**, each from ``--reward_samples`` other images, as a search's reward
  would be: ``-ln KID`` to the real shapes (`search.rewards.DistanceToReal`) in the
  features of each label-free network (`metrics.label_free`, trained on the shapes'
  images with the labels thrown away), and, beside them, the labelled IS reward.
* The Spearman correlation between each reward and the quality (higher reward should go
  with lower FID and with higher IS). Beside the rewards, two diagnostics per network:
  KID from the ``--quality_samples`` images (less estimation noise) and FID of the reward's
  images in the network's features.

    python experiments/label_free_reward/shapes_proxy.py --seeds_dir=/work/exp/seeds \\
        --work_dir=/work/exp/label_free_proxy \\
        --results=experiments/label_free_reward/shapes_proxy.json

Resumable: finished networks and scored generators are kept (``--results`` is read back).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time

import numpy as np

import autogan_tf.cli  # noqa: F401 - TensorFlow's native log lines hidden, as in the commands

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # experiments/: the scripts' shared helpers
from common import log, read_json, write_json  # noqa: E402

KINDS = ("rotation", "contrastive", "random")


def generators(seeds_dir):
    """``(name, train_dir, checkpoint_path, ema)`` of every saved checkpoint, raw and EMA."""
    found = []
    for train_dir in sorted(glob.glob(os.path.join(seeds_dir, "seed_*", "train"))):
        seed = os.path.basename(os.path.dirname(train_dir))
        for index in sorted(glob.glob(os.path.join(train_dir, "checkpoints", "ckpt-*.index"))):
            step = int(index.rsplit("-", 1)[1].split(".")[0])
            for ema in (False, True):
                found.append((f"{seed}/{step}/{'ema' if ema else 'raw'}", train_dir,
                              index[:-len(".index")], ema))
    return found


def load_generator(train_dir, checkpoint, ema):
    import tensorflow as tf

    from autogan_tf import models, training

    config = training.load_config(train_dir)
    g = models.DerivedGenerator(config.arch, config.gf_dim, config.latent_dim,
                                config.bottom_width)
    tf.train.Checkpoint(**{"ema_generator" if ema else "generator": g}).read(
        checkpoint).expect_partial()
    return g


def samples(generator, num, seed):
    from autogan_tf import sampling

    sampler = sampling.generator_sampler(generator, 250, None)
    return np.concatenate([np.asarray(b) for b in sampler.batches(num, seed)])


def spearman(a, b):
    """Spearman's rank correlation (average ranks for ties)."""
    from scipy import stats

    return float(stats.spearmanr(a, b).statistic)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds_dir", required=True)
    parser.add_argument("--work_dir", required=True)
    parser.add_argument("--results", required=True)
    parser.add_argument("--quality_samples", type=int, default=5000)
    parser.add_argument("--reward_samples", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args(argv)

    from autogan_tf.metrics import classifiers, label_free, scores, streaming
    from autogan_tf.search import rewards

    results = read_json(args.results, {})
    settings = {"quality_samples": args.quality_samples, "reward_samples": args.reward_samples,
                "steps": args.steps}
    if results.get("settings") != settings:
        results = {"settings": settings, "networks": {}, "generators": {}}
    labelled_path = os.path.join(args.seeds_dir, "seed_0", "classifier.keras")
    labelled = classifiers.load_keras_classifier(labelled_path)
    results["labelled_scorer"] = {"path": "quick start seed 0's classifier",
                                  **read_json(labelled_path + ".json", {})}
    real_labelled = streaming.dataset_statistics("shapes", labelled)
    extractors, to_real, to_real_large, real_stats = {}, {}, {}, {}
    for kind in KINDS:
        path = os.path.join(args.work_dir, label_free.file_name(kind))
        start = time.time()
        path, info = label_free.network(kind, "shapes", path, steps=args.steps, echo=log)
        results["networks"].setdefault(kind, {**info, "seconds": round(time.time() - start)})
        extractors[kind] = classifiers.load_keras_classifier(path)
        real = streaming.dataset_statistics("shapes", extractors[kind])
        real_stats[kind] = real
        to_real[kind] = rewards.DistanceToReal(real.features, args.reward_samples)
        to_real_large[kind] = rewards.DistanceToReal(real.features, args.quality_samples)
    write_json(args.results, results)

    for name, train_dir, checkpoint, ema in generators(args.seeds_dir):
        if "fid_" + KINDS[-1] in results["generators"].get(name, {}):
            continue
        g = load_generator(train_dir, checkpoint, ema)
        quality = samples(g, args.quality_samples, seed=1)
        logits, features = labelled(quality)
        fid = real_labelled.fid(scores.Statistics(*scores.feature_statistics(features.numpy())))
        is_mean, _ = scores.inception_score_from_logits(logits.numpy())
        reward_images = samples(g, args.reward_samples, seed=2)
        row = {"fid": fid, "is": is_mean,
               "reward_is": scores.inception_score_from_logits(
                   labelled(reward_images)[0].numpy())[0]}
        for kind in KINDS:
            features = extractors[kind](reward_images)[1].numpy()
            kid = to_real[kind].kid(features)
            row[f"kid_{kind}"] = kid
            row[f"reward_{kind}"] = rewards.DistanceToReal.reward(kid)
            # The same network with more images, and FID in its features: is a weak
            # ranking the network's or the 1,000-image estimate's noise?
            many = extractors[kind](quality)[1].numpy()
            row[f"kid_many_{kind}"] = to_real_large[kind].kid(many)
            row[f"fid_{kind}"] = real_stats[kind].fid(
                scores.Statistics(*scores.feature_statistics(features)))
        results["generators"][name] = row
        log(f"{name}: FID {fid:.2f} IS {is_mean:.2f} " + " ".join(
            f"{k} {row['reward_' + k]:.2f}" for k in KINDS))
        write_json(args.results, results)

    rows = list(results["generators"].values())
    fid = [r["fid"] for r in rows]
    is_ = [r["is"] for r in rows]
    results["spearman"] = {
        reward: {"with_minus_fid": spearman([r[f"reward_{reward}"] for r in rows],
                                            [-f for f in fid]),
                 "with_is": spearman([r[f"reward_{reward}"] for r in rows], is_)}
        for reward in ("is", *KINDS)}
    for kind in KINDS:
        for measure, sign in (("kid_many", -1), ("fid", -1)):
            values = [sign * r[f"{measure}_{kind}"] for r in rows]
            results["spearman"][f"{measure}_{kind}"] = {
                "with_minus_fid": spearman(values, [-f for f in fid]),
                "with_is": spearman(values, is_)}
    results["generator_count"] = len(rows)
    write_json(args.results, results)
    print(json.dumps(results["spearman"], indent=1))


if __name__ == "__main__":
    sys.exit(main())
