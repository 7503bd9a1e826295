"""Do the quick search's rewards predict how an architecture trains alone?

Issue #13's check of the search's rewards. For each shared-training budget this runs the
quick search (flagfile ``search_quick``, seed 0, its classifier) with the full search space,
then asks its supernet (`api.supernet_rewards`, 1,000 images, two noise seeds) for the
rewards of nine architectures whose IS after the quick start's training is known, with
batch norm by moving statistics (the official ``eval()``) and by each candidate's batch
statistics (``--reward_bn=batch``), and prints Spearman's rank correlation:

    python experiments/reward_bn_panel/run.py --work_dir=/tmp/panel \\
        --output=experiments/reward_bn_panel/results.json

A finished search is reused on a rerun. ``results.json`` beside this script holds what it
measured.
"""

import argparse
import json
import os

# IS of 1,000 EMA samples after train_quick (4,000 iterations, bf16), by architecture: the
# quick start's figures of 2026-12-05/06 (experiments/quick_search_levels/results.json and
# the README's Quick start); those marked "in" have instance norm in their first two cells.
TRAINED_IS = {
    "1 1 1 1 1 2 0 1 0 0 0 0 0 0": 3.96,  # in
    "1 2 1 1 0 1 0 0 0 0 1 0 0 3": 3.88,  # in
    "1 1 2 1 1 1 0 1 1 0 0 1 0 0": 4.70,
    "1 1 0 0 0 1 0 0 1 0 0 2 0 3": 4.35,
    "1 1 0 0 0 1 0 1 1 0 1 0 1 2": 4.39,
    "0 1 0 0 1 0 1 1 0 1 0 0 1 3": 3.98,
    "0 2 0 0 1 2 1 0 1 0 0 0 0 0": 3.76,  # in
    "0 2 0 0 1 2 1 0 1 0 0 1 0 0": 3.38,  # in
    "0 1 0 0 1 1 1 0 1 0 0 1 0 0": 4.40,
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work_dir", required=True)
    parser.add_argument("--output", required=True, help="JSON file the figures go to")
    parser.add_argument("--shared_iters", default="40,200",
                        help="shared generator iterations per search iteration, comma-separated")
    args = parser.parse_args(argv)
    try:
        args.shared_iters = [int(s) for s in args.shared_iters.split(",")]
    except ValueError:
        parser.error(f"--shared_iters must be comma-separated integers, got {args.shared_iters!r}")
    return args


def spearman(xs, ys) -> float:
    """Spearman's rank correlation (no ties expected)."""
    from scipy.stats import spearmanr

    return float(spearmanr(xs, ys).correlation)


def main(argv=None):
    args = parse_args(argv)
    from autogan_tf.cli import output  # first: it quiets TensorFlow before TF is imported
    from autogan_tf import api, distribute, quickstart
    from autogan_tf.metrics import classifiers
    from autogan_tf.search import loop as search
    from autogan_tf import config as config_lib

    output.configure()
    distribute.configure_threads(2, 1)  # as the quick start
    os.makedirs(args.work_dir, exist_ok=True)
    classifier, _ = classifiers.train_small_classifier(
        "shapes", os.path.join(args.work_dir, "classifier_s0.keras"), seed=0,
        **quickstart.QUICK_CLASSIFIER)
    search_kwargs, _ = quickstart.quick_settings()
    archs = list(TRAINED_IS)
    results = {"what": __doc__.splitlines()[0], "trained_is": TRAINED_IS, "budgets": []}
    for shared_iters in args.shared_iters:
        directory = os.path.join(args.work_dir, f"search_{shared_iters}")
        config = config_lib.SearchConfig(**{**search_kwargs, "classifier": classifier, "seed": 0,
                                        "excluded_choices": "", "shared_iters": shared_iters})
        search.run_search(config, directory, progress=False)
        budget = {"shared_iters": shared_iters,
                  "shared_iters_total": shared_iters * config.max_search_iters}
        for mode in ("moving", "batch"):
            rewards = api.supernet_rewards(directory, archs, seeds=(0, 1), reward_bn=mode,
                                           reward_num_images=1000)
            budget[mode] = {"rewards": dict(zip(archs, [round(r, 3) for r in rewards])),
                            "spearman": round(spearman([TRAINED_IS[a] for a in archs], rewards),
                                              3)}
            print(f"{shared_iters} shared iterations per search iteration, {mode} statistics: "
                  f"Spearman {budget[mode]['spearman']:+.2f}", flush=True)
        results["budgets"].append(budget)
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
