"""autogan-search: the AutoGAN architecture search.

    autogan-search --flagfile=search_quick --model_dir=/tmp/s
    autogan-search --flagfile=flags/search_cifar10.cfg --model_dir=/tmp/search

Writes MODEL_DIR/search_result.json (key top_archs) and MODEL_DIR/search_log.jsonl.
Rerunning the same command resumes from the latest checkpoint in --model_dir.

Prints one JSON line: ``best_arch``, ``reward`` and the result file's path; a run stopped by
a signal prints ``{"preempted": true, ...}`` and exits with status 75 (rerun to resume).
"""

import json

from absl import flags

from autogan_tf import config as config_lib
from autogan_tf.cli import common
from autogan_tf.config import SearchConfig

FLAGS = flags.FLAGS
common.define_runtime_flags()
config_lib.define_flags(SearchConfig)
common.define_run_dir_flags("checkpoints, logs and the result")


def main(argv):
    """Check the flags and --model_dir, then run the search (`search.loop.run_search`).

    Args:
      argv: the program name, as absl passes it (the command takes no positional arguments).
    """
    strategy = common.apply_runtime_flags(distributed=True)
    from autogan_tf.search import loop

    config = config_lib.from_flags(SearchConfig, FLAGS)
    config.check_reward()
    result = loop.run_search(config, FLAGS.model_dir, min_free_mb=FLAGS.min_free_mb,
                               strategy=strategy, sync_bn=common.sync_bn(FLAGS, strategy))
    if result.get("preempted"):
        print(json.dumps({"preempted": True, "checkpoint": result["checkpoint"],
                          "iteration": result["iteration"], "phase": result["phase"],
                          "phase_step": result["phase_step"],
                          "resume": "rerun the same command"}))
        common.exit_if_preempted(result, "autogan-search")
    best = result["top_archs"][0]
    print(json.dumps({"best_arch": best["arch_str"], "reward": best["reward"],
                      "result": f"{FLAGS.model_dir}/search_result.json"}))


def run():
    """Console script `autogan-search`: parse its flags and run `main` (`common.run`)."""
    common.run(main)


if __name__ == "__main__":
    run()
