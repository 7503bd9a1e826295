"""autogan-search: the AutoGAN architecture search.

    autogan-search --flagfile=search_quick --model_dir=/tmp/s
    autogan-search --flagfile=flags/search_cifar10.cfg --model_dir=/tmp/search

Writes MODEL_DIR/search_result.json (key top_archs) and MODEL_DIR/search_log.jsonl.
Rerunning the same command resumes from the latest checkpoint in --model_dir.
"""

import json

from absl import flags

from autogan_tf.search import SearchConfig
from autogan_tf.cli import common

FLAGS = flags.FLAGS
common.define_runtime_flags()
HELPS = {
    "precision": "float32, or bfloat16 compute with float32 variables (see the README's "
                 "Performance section).",
    "dataset": "cifar10, stl10, shapes (built in) or folder:PATH.",
    "gf_dim": "Supernet generator width (paper search: 128).",
    "df_dim": "Discriminator width (paper search: 64).",
    "num_cells": "Generator cells; images are bottom_width * 2^num_cells.",
    "unused_ops": "'freeze': ops a step did not use keep weights and Adam moments; "
                  "'momentum': plain Adam on their zero gradients (official code under PyTorch 1.x).",
    "shared_epochs": "Shared-GAN training per search iteration, in epochs of --epoch_images images.",
    "epoch_images": "Images in one epoch (CIFAR-10: 50000).",
    "shared_iters": "Generator iterations of shared training per search iteration (overrides --shared_epochs).",
    "max_search_iters": "Search iterations (official: 65).",
    "grow_steps": "Search iterations at which a cell is added, comma separated (official script: 15,35).",
    "ctrl_steps": "Controller steps per search iteration.",
    "ctrl_sample_batch": "Architectures per controller step.",
    "entropy_coeff": "Entropy bonus (paper: 1e-4; official code default 1e-3).",
    "num_candidates": "Architectures sampled at each stage end.",
    "topk": "Architectures kept in the beam at each stage end.",
    "reward": "'is' (Inception Score) or 'fid' (reciprocal FID).",
    "reward_num_images": "Images per reward evaluation (official: 5000).",
    "classifier": "'inception', a .keras classifier file, or 'auto' (train a small one on --dataset).",
    "search": "'rl' (controller) or 'random' (random search with weight sharing).",
    "mlas": "Multi-level search (one controller per cell, growing); false: one controller, full resolution.",
    "dynamic_reset": "Re-initialise the shared GAN when its losses stop moving.",
    "reset_threshold": "Dynamic-reset threshold on the moving loss statistic.",
    "reset_window": "Window (losses) of the dynamic-reset statistic.",
    "reset_statistic": "'var' (the official code and the paper: variance < threshold) or 'std'.",
    "ctrl_baseline": "'iteration': the REINFORCE baseline restarts every search iteration "
                     "(official); 'persistent': kept across iterations.",
    "ctrl_loss": "'official': the official controller loss (per-decision rewards and baseline, "
                 "summed log-probs times summed advantages); 'independent': textbook REINFORCE.",
    "save_every": "Checkpoint every N generator iterations inside shared training.",
    "max_nan_restores": "On NaN/Inf losses or weights, restore the last checkpoint and go on "
                        "with the next batches at most this many times, then stop with an error.",
}
common.define_dataclass_flags(SearchConfig, HELPS)
flags.DEFINE_string("model_dir", None, "Directory for checkpoints, logs and the result.")
flags.DEFINE_float("min_free_mb", 200.0, "Refuse to start when the file system of --model_dir "
                   "has less free space than this (MB): checkpoints and logs need room.")
flags.mark_flag_as_required("model_dir")


def main(argv):
    strategy = common.apply_runtime_flags(distributed=True)
    from autogan_tf import pipeline, search

    config = common.dataclass_from_flags(SearchConfig, FLAGS)
    config.check_reward()
    pipeline.prepare_run_dir(FLAGS.model_dir, config, search.check_config, FLAGS.min_free_mb)
    result = search.run_search(config, FLAGS.model_dir, min_free_mb=FLAGS.min_free_mb,
                               strategy=strategy, sync_bn=common.sync_bn(FLAGS, strategy))
    if result.get("preempted"):
        print(json.dumps({"preempted": True, "checkpoint": result["checkpoint"],
                          "iteration": result["iteration"],
                          "resume": "rerun the same command"}))
        common.exit_if_preempted(result, "autogan-search")
    best = result["top_archs"][0]
    print(json.dumps({"best_arch": best["arch_str"], "reward": best["reward"],
                      "result": f"{FLAGS.model_dir}/search_result.json"}))


def run():
    common.run(main)


if __name__ == "__main__":
    run()
