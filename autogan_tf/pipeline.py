"""The whole pipeline in one call: search -> train -> evaluate -> export -> sample.

`quickstart` runs it at toy scale on the built-in ``shapes`` data so that a new
user sees every artifact of the project in a few minutes on a laptop CPU.
Every stage is resumable: rerunning with the same ``output_dir`` continues.
"""

from __future__ import annotations

import json
import os
import time

from absl import logging

from autogan_tf import runlog

QUICK_SEARCH = dict(
    dataset="shapes", gf_dim=16, df_dim=16, latent_dim=32, g_batch_size=32, d_batch_size=32,
    n_critic=2, shared_iters=20, max_search_iters=6, grow_steps="2,4", ctrl_steps=4,
    ctrl_sample_batch=2, num_candidates=4, topk=2, reward_num_images=200,
    reset_window=40, save_every=10, log_every=10)
QUICK_TRAIN = dict(
    dataset="shapes", gf_dim=32, df_dim=32, latent_dim=32, g_batch_size=32, d_batch_size=32,
    n_critic=2, max_iters=300, log_every=50, save_every=100, eval_every=300,
    eval_num_samples=1000, ema_decay=0.99)


def train_small_classifier(dataset, path, epochs=4, data_dir=None, max_train_images=None):
    """A small classifier for IS/FID on machines without the Inception weights (cached)."""
    if os.path.exists(path):
        return path
    from autogan_tf.metrics import classifiers

    logging.info("training a small classifier on %s into %s", dataset, path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    model, accuracy = classifiers.train_classifier(dataset, epochs=epochs, data_dir=data_dir,
                                                   max_train_images=max_train_images, verbose=0)
    logging.info("classifier test accuracy %.3f", accuracy)
    tmp = path + ".tmp.keras"
    model.save(tmp)
    os.replace(tmp, path)
    return path


def quickstart(output_dir: str, seed: int = 0, search_overrides=None,
               train_overrides=None) -> dict:
    """Run the toy pipeline into ``output_dir``; returns the paths of every artifact."""
    from autogan_tf import export, search, serving, training

    t0 = time.time()
    runlog.check_writable(output_dir)
    # 5,000 images x 3 epochs: about 95% test accuracy on shapes, in well under a minute.
    classifier = train_small_classifier("shapes", os.path.join(output_dir, "classifier.keras"),
                                        epochs=3, max_train_images=5000)
    search_config = search.SearchConfig(**{**QUICK_SEARCH, "classifier": classifier,
                                           "seed": seed, **(search_overrides or {})})
    search_dir = os.path.join(output_dir, "search")
    result = search.run_search(search_config, search_dir)
    best = result["top_archs"][0]["arch_str"]
    logging.info("search found %s", best)

    train_dir = os.path.join(output_dir, "train")
    train_config = training.TrainConfig(**{**QUICK_TRAIN, "arch": best, "classifier": classifier,
                                           "seed": seed, **(train_overrides or {})})
    training.train(train_config, train_dir)

    generator, config, checkpoint = training.restore_generator(train_dir)
    evaluator = training.Evaluator(classifier, fid_stats=os.path.join(train_dir, "fid_stats.npz"),
                                   image_size=config.image_size)
    scores = evaluator(generator, train_config.eval_num_samples, seed=seed)
    scores.update({"checkpoint": checkpoint, "arch": best, "seed": seed})
    runlog.write_json_atomic(os.path.join(output_dir, "evaluation.json"), scores)

    export_base = os.path.join(output_dir, "export", "autogan")
    saved_model = export.export_generator(generator, export_base, 1, overwrite=True)
    images = serving.LocalGenerator(saved_model).generate(64, seed)
    grid_path = os.path.join(output_dir, "samples.png")
    runlog.save_png(grid_path, runlog.make_grid(images, 8))
    artifacts = {
        "search_result": os.path.join(search_dir, search.RESULT_FILE),
        "best_arch": best, "train_dir": train_dir,
        "evaluation": os.path.join(output_dir, "evaluation.json"),
        "is_mean": scores["is_mean"], "fid": scores["fid"], "classifier": classifier,
        "saved_model": saved_model, "samples": grid_path,
        "wall_time_s": round(time.time() - t0, 1),
    }
    runlog.write_json_atomic(os.path.join(output_dir, "quickstart.json"), artifacts)
    return artifacts
