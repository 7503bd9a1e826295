"""autogan-train: train a derived AutoGAN architecture from scratch.

    autogan-train --arch="1 0 1 1 1 0 0 1 1 1 0 1 0 3" --model_dir=/tmp/train_a
    autogan-train --search_result=/tmp/s/search_result.json --rank=0 --model_dir=...
    autogan-train --flagfile=flags/train_cifar10_a.cfg --model_dir=...

Rerunning the same command resumes from the latest checkpoint in --model_dir.

Prints the last logged values as one JSON line (``step``, losses, scores, ``model_dir``,
``preempted``, ...); a run stopped by a signal then exits with status 75 (rerun to resume).
"""

import json

from absl import flags

from autogan_tf import config as config_lib
from autogan_tf.cli import common
from autogan_tf.config import TrainConfig

FLAGS = flags.FLAGS
common.define_runtime_flags()
config_lib.define_flags(TrainConfig)
common.define_run_dir_flags("checkpoints, logs and samples")
flags.DEFINE_string("search_result", None, "search_result.json of autogan-search, or "
                    "derive_result.json of autogan-derive (its ranking); use with --rank.")
flags.DEFINE_integer("rank", 0, "Which of the search result's top architectures (0 = best).")


def main(argv):
    """Check the flags and --model_dir, then train (`training.train`) and print the result.

    Args:
      argv: the program name, as absl passes it (the command takes no positional arguments).
    """
    strategy = common.apply_runtime_flags(distributed=True)
    from autogan_tf import training
    from autogan_tf.search import derive

    overrides = {}
    if FLAGS.search_result:
        overrides["arch"] = derive.top_arch(FLAGS.search_result, FLAGS.rank)
        conditional = derive.carry_conditional(
            FLAGS.search_result, FLAGS.conditional if FLAGS["conditional"].present else None)
        if conditional is not None:
            overrides["conditional"] = conditional
    config = config_lib.from_flags(TrainConfig, FLAGS, **overrides)
    result = training.train(config, FLAGS.model_dir, min_free_mb=FLAGS.min_free_mb,
                            strategy=strategy, sync_bn=common.sync_bn(FLAGS, strategy))
    print(json.dumps(result))
    common.exit_if_preempted(result, "autogan-train")


def run():
    """Console script `autogan-train`: parse its flags and run `main` (`common.run`)."""
    common.run(main)


if __name__ == "__main__":
    run()
