"""Multi-level or single-level quick search: which finds generators that train better?

Issue #13's experiment. The quick start searches at 16x16 with bottom width 2, so a
multi-level search (``--mlas=true``) chooses its first cell from 4x4 images, in which the
quick start's classifier cannot see a shape. For each seed this runs what the quick start
runs (its classifier, its search with ``--mlas`` on or off, the training of the best
architecture with ``train_quick`` and the IS/FID of 1,000 EMA samples) and prints one line:

    python experiments/quick_search_levels/run.py --work_dir=/tmp/levels --seeds=0,1,2,3,4 \\
        --mlas=false [--threads=2,1]

Finished steps are reused on a rerun (the classifier is cached, a finished search and
training are resumed as they are). ``results.json`` beside this script holds what it
measured on 2026-12-06 (2-core Xeon with AMX, bfloat16 training).
"""

import argparse
import json
import os
import time


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work_dir", required=True)
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--mlas", choices=("true", "false"), default="false")
    parser.add_argument("--threads", default="2,1",
                        help="inter-op,intra-op threads (the quick start's: 2,1)")
    return parser.parse_args(argv)


def run_seed(seed: int, mlas: bool, work_dir: str) -> dict:
    """The quick start's classifier, search and training for one seed; its figures."""
    from autogan_tf import quickstart, training
    from autogan_tf.metrics import classifiers
    from autogan_tf import config as config_lib
    from autogan_tf.search import loop as search
    from autogan_tf.metrics.evaluator import Evaluator

    classifier, _ = classifiers.train_small_classifier(
        "shapes", os.path.join(work_dir, f"classifier_s{seed}.keras"), seed=seed,
        **quickstart.QUICK_CLASSIFIER)
    search_kwargs, train_kwargs = quickstart.quick_settings()
    overrides = {"mlas": mlas, **({"grow_steps": "2,4"} if mlas else {})}
    config = config_lib.SearchConfig(**{**search_kwargs, "classifier": classifier, "seed": seed,
                                    **overrides})
    run = os.path.join(work_dir, f"{'mlas' if mlas else 'single'}_s{seed}")
    start = time.time()
    found = search.run_search(config, os.path.join(run, "search"), progress=False)
    search_seconds = time.time() - start
    arch = found["top_archs"][0]["arch_str"]
    train_config = config_lib.TrainConfig(**{**train_kwargs, "arch": arch,
                                           "classifier": classifier, "seed": seed})
    training.train(train_config, os.path.join(run, "train"), progress=False)
    generator, config, _ = training.restore_generator(os.path.join(run, "train"))
    evaluator = Evaluator(classifier, dataset="shapes", image_size=config.image_size,
                          model_dir=os.path.join(run, "train"))
    scores = evaluator(generator, quickstart.EVAL_SAMPLES, seed=seed)
    return {"seed": seed, "mlas": mlas, "arch": arch, "is_mean": round(scores["is_mean"], 3),
            "fid": round(scores["fid"], 2), "search_seconds": round(search_seconds, 1)}


def main(argv=None):
    args = parse_args(argv)
    from autogan_tf.cli import output  # first: it quiets TensorFlow before TF is imported
    from autogan_tf import distribute

    output.configure()
    distribute.configure_threads(*map(int, args.threads.split(",")))
    os.makedirs(args.work_dir, exist_ok=True)
    for seed in map(int, args.seeds.split(",")):
        print(json.dumps(run_seed(seed, args.mlas == "true", args.work_dir)), flush=True)


if __name__ == "__main__":
    main()
